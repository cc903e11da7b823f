"""Joining a Ray cluster from the driver: a ``ray://`` (Ray Client) address is refused with the reason, Ray's
own output while it connects is kept off the terminal, and a failure says its cause in one line (token
authentication, nothing listening, a version mismatch) instead of Ray's "Failed to connect"."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

import ray

RAY_CLIENT_REFUSED = (
    "--address {address}: Ray Client (ray://) addresses are not supported: the driver keeps the store, a local "
    "SQLite file, and its store server must run on the driver's node, so run `autoform run` on a node of the "
    "cluster (the head, or any node started with `ray start --address HEAD:6379`) with --address HEAD:6379 "
    "or --address auto"
)


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """What the process writes to file descriptor 2 meanwhile (Ray's C++ core logs there), collected into
    the yielded list at the end instead of reaching the terminal."""
    sys.stderr.flush()
    saved = os.dup(2)
    out: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read().decode("utf-8", "replace"))


def join_error(where: str, e: BaseException, logged: str) -> str:
    """One line saying why joining the cluster at ``where`` failed, from the exception and Ray's log."""
    text = f"{e} {logged}"
    if "Unauthenticated" in text or "InvalidAuthToken" in text or type(e).__name__ == "AuthenticationError":
        return (
            f"cannot join the Ray cluster at {where}: it uses token authentication and refused this process's "
            "token. Set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to the cluster's token (`ray get-auth-token` on "
            "the head prints it)"
        )
    if "version" in text.lower() and "mismatch" in text.lower():
        first = next((ln for ln in str(e).splitlines() if "version" in ln.lower()), str(e).splitlines()[0])
        return f"cannot join the Ray cluster at {where}: {first.strip()} (every node needs the same Ray and Python)"
    if isinstance(e, ConnectionError) or "Failed to connect" in text or "Could not find any running" in text:
        return (
            f"cannot join the Ray cluster at {where}: nothing answered as a Ray cluster there. Start it with "
            "`ray start --head` on that machine, and pass its address (HOST:6379, or auto on a node of it)"
        )
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return f"cannot join the Ray cluster at {where}: {type(e).__name__}: {first[:300]}"


def join_cluster(address: str | None) -> None:
    """``ray.init`` for the driver; raises :class:`~autoform.executors.ExecutorUnavailable` with the cause."""
    from autoform.executors import ExecutorUnavailable

    if address and address.strip().lower().startswith("ray://"):
        raise ExecutorUnavailable(RAY_CLIENT_REFUSED.format(address=address))
    where = address or "a new local Ray instance"
    with _captured_stderr() as logged:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
            error: BaseException | None = None
        except Exception as e:  # ConnectionError, RuntimeError, ValueError, ... depending on what is wrong
            error = e
    if error is not None:
        raise ExecutorUnavailable(join_error(where, error, "".join(logged))) from None
