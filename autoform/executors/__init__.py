"""Executors run the units the job runner (:mod:`autoform.jobs.runner`) releases: ``local`` (threads in this
process, the default, no extra dependency) or ``ray`` (actors spread over a Ray cluster, the store on the
head)."""

from __future__ import annotations

from autoform.errors import MissingError
from autoform.executors.base import (
    CappedLLM,
    ChatClient,
    EventFn,
    ExecContext,
    Executor,
    LeanUnanswering,
    OracleBreaker,
    StepLost,
    StoreWriteFailed,
    UnitOutcome,
    UnitTokenCap,
    UnitWork,
    run_unit,
    store_failure,
)
from autoform.executors.local import LocalExecutor

RAY_INSTALL = "pip install 'autoform[ray]'"

__all__ = [
    "CappedLLM",
    "ChatClient",
    "EventFn",
    "ExecContext",
    "Executor",
    "LeanUnanswering",
    "LocalExecutor",
    "OracleBreaker",
    "StepLost",
    "StoreWriteFailed",
    "UnitOutcome",
    "UnitTokenCap",
    "UnitWork",
    "RAY_INSTALL",
    "make_executor",
    "run_unit",
    "store_failure",
]


class ExecutorUnavailable(MissingError):
    """The executor asked for cannot be used here (Ray missing, cluster unreachable); the message says how."""


def make_executor(kind: str, slots: int | None, *, address: str | None = None, workers: int | None = None) -> Executor:
    """The executor ``kind`` names with ``slots`` units in flight (None, on Ray: as many as the cluster's
    workers hold; locally: one)."""
    if kind == "local":
        return LocalExecutor(slots or 1)
    if kind == "ray":
        try:
            import ray  # noqa: F401
        except ImportError as e:
            raise ExecutorUnavailable(
                f"--executor ray needs Ray, which is not installed: {RAY_INSTALL} (or pip install ray)"
            ) from e
        from autoform.executors.ray_executor import RayExecutor

        return RayExecutor(slots, address=address, workers=workers)
    raise ExecutorUnavailable(f"unknown executor {kind!r} (local or ray)")
