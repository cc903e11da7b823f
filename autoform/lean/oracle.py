"""The Lean oracle: compiles Lean text with a real Lean 4 toolchain and reports what Lean said.

The oracle never decides admission (that is :mod:`autoform.lean.gate`); it returns Lean's own messages,
sorries and, when Lean did not answer (timeout, crash, garbage), a ``failure`` that the gate treats as a
rejection. Two production backends share one interface:

* :class:`ReplOracle` drives the community Lean REPL through lean-interact: the import header is elaborated
  once and every candidate is checked in that environment;
* :class:`LakeFileOracle` writes the module to a file in the Lean project and runs ``lake env lean --json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
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

    def check(self, code: str, *, timeout_s: float | None = None) -> LeanCheck: ...

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


class ReplOracle:
    """A Lean REPL process (through lean-interact) that imports the header once and checks many candidates.

    Thread-safe: one check at a time per process. A timeout, crash or unparseable reply is reported as a
    ``failure`` and the process is restarted on the next call.
    """

    backend = "repl"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cfg = settings.lean
        self.toolchain = ""
        self._server: Any = None
        self._header_env: int | None = None
        self._lock = threading.Lock()

    def _config(self) -> Any:
        from lean_interact import LeanREPLConfig, LocalProject

        kwargs: dict[str, Any] = {
            "lake_path": self.cfg.lake_path,
            "memory_hard_limit_mb": self.cfg.memory_mb,
            # candidates must be judged exactly as written; no reuse of partial elaborations
            "enable_incremental_optimization": False,
            "enable_parallel_elaboration": False,
        }
        project_dir = self.settings.lean_project
        if self.cfg.repl_path:
            kwargs["local_repl_path"] = self.cfg.repl_path
            kwargs["build_repl"] = False
            repl_bin = Path(self.cfg.repl_path) / ".lake" / "build" / "bin" / "repl"
            if not repl_bin.exists():
                raise OracleUnavailable(
                    f"No built Lean REPL at {repl_bin}: run `lake build` in {self.cfg.repl_path}, or remove "
                    "[lean] repl_path from autoform.toml to let lean-interact fetch and build it."
                )
        kwargs["project"] = LocalProject(
            directory=str(project_dir), lake_path=self.cfg.lake_path, auto_build=False
        )
        return LeanREPLConfig(**kwargs)

    def start(self) -> None:
        if self._server is not None:
            return
        problem = lake_problem(self.settings)
        if problem:
            raise OracleUnavailable(problem)
        from lean_interact import LeanServer

        try:
            config = self._config()
            self.toolchain = config.lean_version or ""
            self._server = LeanServer(config)
        except OracleUnavailable:
            raise
        except Exception as e:  # lean-interact raises plain exceptions for a missing REPL/toolchain
            raise OracleUnavailable(
                f"The Lean REPL could not be started ({type(e).__name__}: {str(e).strip()[:400]}). "
                "Run `scripts/setup.sh` (it builds the REPL with lean-interact), or set [lean] repl_path."
            ) from e
        t0 = time.monotonic()
        try:
            reply = self._server.run_dict({"cmd": self.cfg.header}, timeout=self.cfg.start_timeout_s)
        except Exception as e:
            self._kill()
            raise OracleUnavailable(
                f"The Lean REPL could not elaborate the header {self.cfg.header!r} in "
                f"{self.settings.lean_project}: {type(e).__name__}: {str(e).strip()[:400]}. Is Mathlib "
                "built there? Run `lake exe cache get` in that folder."
            ) from e
        check = parse_repl_reply(reply)
        if check.failure or check.errors or check.env is None:
            self._kill()
            detail = check.failure or "; ".join(m.text for m in check.errors) or "no environment returned"
            raise OracleUnavailable(
                f"The header {self.cfg.header!r} does not elaborate in {self.settings.lean_project}: "
                f"{detail[:400]}. Run `lake exe cache get` there to fetch Mathlib's build."
            )
        self._header_env = check.env
        self.header_seconds = time.monotonic() - t0

    def check(self, code: str, *, timeout_s: float | None = None) -> LeanCheck:
        with self._lock:
            t0 = time.monotonic()
            try:
                self.start()
            except OracleUnavailable as e:
                return LeanCheck(failure=str(e), backend=self.backend)
            try:
                reply = self._server.run_dict(
                    {"cmd": code, "env": self._header_env}, timeout=timeout_s or self.cfg.timeout_s
                )
                result = parse_repl_reply(reply)
            except TimeoutError:
                self._kill()
                result = LeanCheck(failure=f"Lean timed out after {timeout_s or self.cfg.timeout_s:.0f} s")
            except (ValueError, json.JSONDecodeError) as e:
                self._kill()
                result = LeanCheck(failure=f"unparseable reply from the Lean REPL: {str(e)[:200]}")
            except Exception as e:  # crash, broken pipe, out of memory
                self._kill()
                result = LeanCheck(failure=f"the Lean REPL died: {type(e).__name__}: {str(e).strip()[:300]}")
            result.elapsed_s = time.monotonic() - t0
            result.backend = self.backend
            result.toolchain = self.toolchain
            return result

    def _kill(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.kill()
        self._server = None
        self._header_env = None

    def close(self) -> None:
        with self._lock:
            self._kill()


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

    def check(self, code: str, *, timeout_s: float | None = None) -> LeanCheck:
        t0 = time.monotonic()
        try:
            self.start()
        except OracleUnavailable as e:
            return LeanCheck(failure=str(e), backend=self.backend)
        header = self.cfg.header.rstrip("\n") + "\n"
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


def make_oracle(settings: Settings) -> Oracle:
    if settings.lean.backend == "lake":
        return LakeFileOracle(settings)
    return ReplOracle(settings)
