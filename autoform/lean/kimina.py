"""The ``kimina`` oracle backend: a remote Kimina Lean Server (project-numina/kimina-lean-server), for teams
that run a verification cluster.

Two API generations are spoken: ``check`` (``POST /api/check`` with ``snippets``) and the older ``verify``
(``POST /verify`` with ``codes``). The server splits the import header from the body and reports positions
relative to the body, which is exactly the code the gate built, so the gate's query lines line up. Whatever
the server says that is not a REPL reply (an error, a timeout, an HTTP failure) is a ``failure``: a rejection.

Goals: a reply carries the REPL's ``sorries`` (each hole's goal), so decomposition and the goals at a failing
step work here; there is **no tactic mode**: the API keeps no proof state between requests, so
:meth:`KiminaOracle.session` says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, NoReturn

from autoform.config import Settings
from autoform.lean.goals import goal_support
from autoform.lean.oracle import LeanCheck, OracleUnavailable, parse_repl_reply


class KiminaOracle:
    backend = "kimina"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cfg = settings.lean
        self.url = self.cfg.kimina_url.rstrip("/")
        self.toolchain = ""
        self.api_key = os.environ.get("KIMINA_API_KEY") or self.cfg.kimina_api_key

    def _post(self, path: str, payload: dict[str, Any], timeout: float) -> Any:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["X-Auth-Token"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url + path, data=json.dumps(payload).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (configured URL)
            return json.loads(resp.read().decode("utf-8"))

    def start(self) -> None:
        """Check that the server answers (and elaborates the header)."""
        chk = self.check("example : True := trivial", timeout_s=self.cfg.start_timeout_s)
        if chk.failure is not None:
            raise OracleUnavailable(f"Kimina Lean Server at {self.url}: {chk.failure}. Set [lean] kimina_url.")

    def check(
        self,
        code: str,
        *,
        header: str | None = None,
        timeout_s: float | None = None,
        context_lines: int = 0,
        queries: Sequence[str] = (),
    ) -> LeanCheck:
        """Kimina's API has no environment handle, so the queries are appended to the snippet, each after a
        marker line, and each answer is the messages on its own query's line. A candidate could write there
        only by running code while Lean elaborates, which the pre-screen refuses before anything is sent; the
        built Atlas is audited again in a fresh process (``autoform atlas audit``)."""
        header = self.cfg.header if header is None else header
        timeout = timeout_s or self.cfg.timeout_s
        body = code.rstrip("\n") + "\n"
        first_query = body.count("\n") + 1
        if queries:
            body += "".join(q + "\n" for q in queries)
        full = (header.rstrip("\n") + "\n\n" if header.strip() else "") + body
        ident = hashlib.sha256(full.encode()).hexdigest()[:16]
        if self.cfg.kimina_api == "verify":
            path, payload = "/verify", {"codes": [{"custom_id": ident, "proof": full}], "infotree_type": None}
        else:
            path, payload = (
                "/api/check",
                {"snippets": [{"id": ident, "code": full}], "timeout": int(timeout), "debug": False, "reuse": True},
            )
        t0 = time.monotonic()
        try:
            data = self._post(path, payload, timeout + 30)
            result = self._parse(data)
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")[:300]
            result = LeanCheck(failure=f"Kimina server {self.url}{path}: HTTP {e.code}: {detail}")
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            reason = getattr(e, "reason", e)
            result = LeanCheck(failure=f"cannot reach the Kimina server at {self.url}: {reason}")
        except (ValueError, KeyError, TypeError, IndexError) as e:
            result = LeanCheck(failure=f"unparseable reply from the Kimina server at {self.url}: {e}")
        if queries and result.failure is None:
            lines = range(first_query, first_query + len(queries))
            answers = [[m.model_copy(update={"line": 1}) for m in result.messages if m.line == ln] for ln in lines]
            result = result.model_copy(
                update={
                    "answers": answers,
                    "messages": [m for m in result.messages if m.line < first_query],
                    "sorries": [x for x in result.sorries if x.line is None or x.line < first_query],
                }
            )
        return result.stamped(elapsed_s=time.monotonic() - t0, backend=self.backend, toolchain=result.toolchain)

    @staticmethod
    def _parse(data: Any) -> LeanCheck:
        item = data["results"][0]
        if item.get("error"):
            return LeanCheck(failure=f"Kimina server error: {str(item['error'])[:300]}")
        reply = item.get("response")
        if not isinstance(reply, dict):
            return LeanCheck(failure="the Kimina server returned no REPL reply")
        reply = {k: v for k, v in reply.items() if k != "time"}
        return parse_repl_reply(reply)

    def session(self, header: str | None = None, *, timeout_s: float | None = None) -> NoReturn:
        """Kimina's API has no tactic mode (no proof state handle between requests)."""
        raise OracleUnavailable(f"the Kimina Lean Server ({self.url}) has no tactic mode: {goal_support(self.backend)}")

    def close(self) -> None:
        pass
