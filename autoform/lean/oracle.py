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
from collections.abc import Sequence
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
    """What one Lean run said about one piece of Lean text (positions relative to that text).

    ``answers``: for each query passed to :meth:`Oracle.check`, the messages of that query's own command, run on
    the environment the text produced (positions relative to the query); None when no query was asked."""

    messages: list[LeanMessage] = Field(default_factory=list)
    sorries: list[SorryInfo] = Field(default_factory=list)
    answers: list[list[LeanMessage]] | None = None
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
              context_lines: int = 0, queries: Sequence[str] = ()) -> LeanCheck:
        """Lean's messages on ``code`` (in the environment of ``header``), with lines relative to ``code``.

        ``queries``: commands (``#print axioms X``, ``#check``) run after ``code``, each on the environment
        ``code`` produced and each answered with its own messages only (``LeanCheck.answers``), never mixed
        with what ``code`` itself logged. A backend that cannot keep them apart must say so in its docs.

        ``context_lines``: the first lines of ``code`` are a self-contained block shared by many checks (the
        admitted dependencies); the rest is self-contained on top of it. A backend may elaborate that block
        once and check the rest in its environment (the REPL pool does); the verdict must be the same as for
        the whole text, which is what a backend that ignores the hint checks."""
        ...

    def close(self) -> None: ...


#: ``lean --json`` writes Lean's ``MessageSeverity`` as ``information``; the REPL writes ``info``
_SEVERITY = {"information": "info", "info": "info", "warning": "warning", "error": "error"}


def severity(value: str) -> str:
    """Lean's message severity in one spelling (``info``, ``warning``, ``error``); an unknown one is kept."""
    return _SEVERITY.get(value, value)


def parse_repl_reply(reply: dict[str, Any]) -> LeanCheck:
    """Turn one JSON reply of the Lean REPL into a :class:`LeanCheck` (parsed once, here, at the edge)."""
    if not isinstance(reply, dict):
        return LeanCheck(failure=f"unparseable REPL reply: {reply!r:.200}")
    if set(reply) == {"message"}:  # the REPL's own error (unknown env, bad JSON, ...)
        return LeanCheck(failure=f"Lean REPL error: {reply['message']}")
    try:
        msgs = [
            LeanMessage(
                severity=severity(m["severity"]),
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
                    severity=severity(m["severity"]),
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


def run_lake_lean(settings: Settings, args: list[str], *, cwd: Path, timeout: float, line_offset: int = 0,
                  lean_path: Path | None = None) -> LeanCheck:
    """One ``lake env lean --json ARGS`` process in ``cwd`` under the memory cap, killed with its process group
    on a timeout. ``lean_path`` is put on Lean's search path (Lake appends the caller's ``LEAN_PATH`` to the
    workspace's: ``Workspace.augmentedLeanPath``). A crash, a timeout or output that is not ``lean --json`` is a
    ``failure``."""
    limit = settings.lean.memory_mb * 1024 * 1024

    def _limits() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = None
    if lean_path is not None:
        env = dict(os.environ)
        env["LEAN_PATH"] = os.pathsep.join(x for x in (str(lean_path), env.get("LEAN_PATH", "")) if x)
    try:
        proc = subprocess.Popen(
            [settings.lean.lake_path, "env", "lean", "--json", *args],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
            preexec_fn=_limits, env=env,
        )
    except OSError as e:
        return LeanCheck(failure=f"cannot run `{settings.lean.lake_path} env lean`: {e}")
    try:
        out, err = proc.communicate(timeout=max(1.0, timeout))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return LeanCheck(failure=f"Lean timed out after {timeout:.0f} s")
    result = parse_lean_json_lines(out, line_offset=line_offset)
    if result.failure is None and proc.returncode not in (0, 1):
        return LeanCheck(failure=f"lean exited with code {proc.returncode} (crash or out of memory): {err[-300:]}")
    if result.failure is None and proc.returncode == 1 and not result.errors:
        return LeanCheck(failure=f"lean failed without an error message: {err[-300:]}")
    return result


class LakeFileOracle:
    """``lake env lean --json FILE`` in the Lean project: the final word on a whole module.

    With queries, the candidate is compiled to a module of its own (``-o``) and the queries are a second file
    that imports it, run in a second process: that run's messages can only come from the queries, since
    importing a module does not elaborate it again."""

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

    def _run(self, args: list[str], timeout: float, *, line_offset: int = 0,
             lean_path: Path | None = None) -> LeanCheck:
        return run_lake_lean(self.settings, args, cwd=self.settings.lean_project, timeout=timeout,
                             line_offset=line_offset, lean_path=lean_path)

    def check(self, code: str, *, header: str | None = None, timeout_s: float | None = None,
              context_lines: int = 0, queries: Sequence[str] = ()) -> LeanCheck:
        t0 = time.monotonic()
        try:
            self.start()
        except OracleUnavailable as e:
            return LeanCheck(failure=str(e), backend=self.backend)
        header = (self.cfg.header if header is None else header).rstrip("\n") + "\n"
        text = header + code
        digest = hashlib.sha256(("\0".join([text, *queries])).encode()).hexdigest()[:16]
        module = f"Candidate_{digest}"
        tmpdir = Path(tempfile.mkdtemp(prefix="autoform-", dir=self.settings.lean_project))
        path = tmpdir / f"{module}.lean"
        path.write_text(text, encoding="utf-8")
        timeout = timeout_s or self.cfg.timeout_s
        try:
            build = ["-R", str(tmpdir), "-o", str(tmpdir / f"{module}.olean")] if queries else []
            result = self._run([*build, str(path)], timeout, line_offset=header.count("\n"))
            if queries and result.failure is None and not result.errors:
                result.answers = self._ask(module, tmpdir, list(queries), timeout - (time.monotonic() - t0))
                if result.answers is None:
                    result = LeanCheck(failure="Lean did not answer the gate's queries on the compiled candidate")
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        result.elapsed_s = time.monotonic() - t0
        result.backend = self.backend
        result.toolchain = self.toolchain
        return result

    def _ask(self, module: str, tmpdir: Path, queries: list[str], timeout: float) -> list[list[LeanMessage]] | None:
        """Each query's messages, from a second process that imports the compiled candidate."""
        if any("\n" in q for q in queries):
            raise ValueError("a query must be one line")
        qpath = tmpdir / f"Query_{module}.lean"
        qpath.write_text(f"import {module}\n" + "".join(q + "\n" for q in queries), encoding="utf-8")
        run = self._run([str(qpath)], timeout, lean_path=tmpdir)
        if run.failure is not None or any(m.line == 1 for m in run.messages):
            return None
        answers: list[list[LeanMessage]] = [[] for _ in queries]
        for m in run.messages:
            k = m.line - 2
            if 0 <= k < len(queries):
                answers[k].append(m.model_copy(update={"line": 1, "end_line": 1 if m.end_line else None}))
        return answers

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
