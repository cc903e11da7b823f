"""The Lean oracle: compiles Lean text with a real Lean 4 toolchain and reports what Lean said.

The oracle never decides admission (that is :mod:`autoform.lean.gate`); it returns Lean's own messages,
sorries and, when Lean did not answer (timeout, crash, garbage), a ``failure`` that the gate treats as a
rejection. Two production backends share one interface:

* :class:`autoform.lean.repl_pool.ReplPool` drives community Lean REPL processes through lean-interact: each
  imports the header once and checks many candidates in that environment;
* :class:`LakeFileOracle` writes the module to a file in the Lean project and runs ``lake env lean --json``;
* :class:`autoform.lean.kimina.KiminaOracle` asks a remote Kimina Lean Server (a verification cluster).

:class:`autoform.lean.cache.CachedOracle` answers identical checks from the store.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from autoform.config import Settings


class OracleUnavailable(Exception):
    """Lean cannot be started here; the message says what is missing and how to get it."""


class LeanMessage(BaseModel):
    severity: str
    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None
    text: str


class SorryInfo(BaseModel):
    line: int | None = None
    column: int | None = None
    goal: str = ""
    proof_state: int | None = None


class LeanCheck(BaseModel):
    """What one Lean run said about one piece of Lean text (positions relative to that text)."""

    messages: list[LeanMessage] = Field(default_factory=list)
    sorries: list[SorryInfo] = Field(default_factory=list)
    env: int | None = None
    failure: str | None = None
    elapsed_s: float = 0.0
    backend: str = ""
    toolchain: str = ""

    @property
    def errors(self) -> list[LeanMessage]:
        return [m for m in self.messages if m.severity == "error"]

    @property
    def answered(self) -> bool:
        return self.failure is None


class Oracle(Protocol):
    backend: str
    toolchain: str

    def start(self) -> None: ...

    def check(self, code: str, *, header: str | None = None, timeout_s: float | None = None,
              context_lines: int = 0) -> LeanCheck:
        """Lean's messages on ``code`` (in the environment of ``header``), with lines relative to ``code``.

        ``context_lines``: the first lines of ``code`` are a self-contained block shared by many checks (the
        admitted dependencies); the rest is self-contained on top of it. A backend may elaborate that block
        once and check the rest in its environment (the REPL pool does); the verdict must be the same as for
        the whole text, which is what a backend that ignores the hint checks."""
        ...

    def close(self) -> None: ...


def parse_repl_reply(reply: dict[str, Any]) -> LeanCheck:
    """Turn one JSON reply of the Lean REPL into a :class:`LeanCheck` (parsed once, here, at the edge)."""
    if not isinstance(reply, dict):
        return LeanCheck(failure=f"unparseable REPL reply: {reply!r:.200}")
    if set(reply) == {"message"}:  # the REPL's own error (unknown env, bad JSON, ...)
        return LeanCheck(failure=f"Lean REPL error: {reply['message']}")
    try:
        msgs = [
            LeanMessage(
                severity=m["severity"],
                line=m["pos"]["line"],
                column=m["pos"]["column"],
                end_line=(m.get("endPos") or {}).get("line"),
                end_column=(m.get("endPos") or {}).get("column"),
                text=m["data"],
            )
            for m in reply.get("messages", [])
        ]
        sorries = [
            SorryInfo(
                line=(s.get("pos") or {}).get("line"),
                column=(s.get("pos") or {}).get("column"),
                goal=s.get("goal", ""),
                proof_state=s.get("proofState"),
            )
            for s in reply.get("sorries", [])
        ]
    except (KeyError, TypeError) as e:
        return LeanCheck(failure=f"unparseable REPL reply (missing {e}): {json.dumps(reply)[:200]}")
    env = reply.get("env")
    return LeanCheck(messages=msgs, sorries=sorries, env=env if isinstance(env, int) else None)


def parse_lean_json_lines(output: str, *, line_offset: int = 0) -> LeanCheck:
    """Parse ``lean --json`` output: one JSON message per line. Lines shifted by ``line_offset``."""
    msgs: list[LeanMessage] = []
    for raw in output.splitlines():
        raw = raw.strip()
        if not raw:
            continue
        try:
            m = json.loads(raw)
            pos, end = m["pos"], m.get("endPos") or {}
            msgs.append(
                LeanMessage(
                    severity=m["severity"],
                    line=pos["line"] - line_offset,
                    column=pos["column"],
                    end_line=(end["line"] - line_offset) if "line" in end else None,
                    end_column=end.get("column"),
                    text=m["data"],
                )
            )
        except (ValueError, KeyError, TypeError):
            return LeanCheck(failure=f"unparseable output from lean --json: {raw[:200]}")
    return LeanCheck(messages=msgs)


def lake_problem(settings: Settings) -> str | None:
    """Why lake cannot be used here, with how to get it; None when it can."""
    lake = settings.lean.lake_path
    if shutil.which(lake) is None and not Path(lake).is_file():
        return (
            f"Lean's build tool `{lake}` was not found. Install the toolchain with elan: "
            "curl https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh -sSf | sh -s -- -y "
            "--default-toolchain none, then run `scripts/setup.sh` again (or set [lean] lake_path in "
            "autoform.toml)."
        )
    proj = settings.lean_project
    if not (proj / "lean-toolchain").is_file():
        return (
            f"The Lean project {proj} has no lean-toolchain file. Set [lean] project_dir in autoform.toml "
            "to a Lake project with Mathlib (the repository's lean_project/ is one)."
        )
    return None


class LakeFileOracle:
    """``lake env lean --json FILE`` in the Lean project: the final word on a whole module."""

    backend = "lake"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cfg = settings.lean
        self.toolchain = ""

    def start(self) -> None:
        problem = lake_problem(self.settings)
        if problem:
            raise OracleUnavailable(problem)
        self.toolchain = (self.settings.lean_project / "lean-toolchain").read_text().strip()

    def check(self, code: str, *, header: str | None = None, timeout_s: float | None = None,
              context_lines: int = 0) -> LeanCheck:
        t0 = time.monotonic()
        try:
            self.start()
        except OracleUnavailable as e:
            return LeanCheck(failure=str(e), backend=self.backend)
        header = (self.cfg.header if header is None else header).rstrip("\n") + "\n"
        text = header + code
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        tmpdir = Path(tempfile.mkdtemp(prefix="autoform-", dir=self.settings.lean_project))
        path = tmpdir / f"Candidate_{digest}.lean"
        path.write_text(text, encoding="utf-8")
        limit = self.cfg.memory_mb * 1024 * 1024

        def _limits() -> None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        timeout = timeout_s or self.cfg.timeout_s
        proc = subprocess.Popen(
            [self.cfg.lake_path, "env", "lean", "--json", str(path)],
            cwd=self.settings.lean_project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=_limits,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            result = LeanCheck(failure=f"Lean timed out after {timeout:.0f} s")
        else:
            result = parse_lean_json_lines(out, line_offset=header.count("\n"))
            if result.failure is None and proc.returncode not in (0, 1):
                result = LeanCheck(
                    failure=f"lean exited with code {proc.returncode} (crash or out of memory): {err[-300:]}"
                )
            elif result.failure is None and proc.returncode == 1 and not result.errors:
                result = LeanCheck(failure=f"lean failed without an error message: {err[-300:]}")
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        result.elapsed_s = time.monotonic() - t0
        result.backend = self.backend
        result.toolchain = self.toolchain
        return result

    def close(self) -> None:
        pass


def make_oracle(settings: Settings, store: Any = None) -> Oracle:
    """The configured backend; with a store, wrapped in the result cache."""
    oracle: Oracle
    if settings.lean.backend == "lake":
        oracle = LakeFileOracle(settings)
    elif settings.lean.backend == "kimina":
        from autoform.lean.kimina import KiminaOracle

        oracle = KiminaOracle(settings)
    else:
        from autoform.lean.repl_pool import ReplPool

        oracle = ReplPool(settings)
    if store is not None:
        from autoform.lean.cache import CachedOracle

        oracle = CachedOracle(oracle, store, settings)
    return oracle
