"""The ``lake`` oracle backend: ``lake env lean --json`` on a file of the Lean project, and what the rest of
autoform needs of ``lake`` (is it there; one ``lake env lean`` run under the memory cap)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from autoform.config import Settings
from autoform.lean.oracle import LeanCheck, LeanMessage, OracleUnavailable, parse_lean_json_lines


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


def run_lake_lean(
    settings: Settings,
    args: list[str],
    *,
    cwd: Path,
    timeout: float,
    line_offset: int = 0,
    lean_path: Path | None = None,
) -> LeanCheck:
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
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=_limits,
            env=env,
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

    def _run(
        self, args: list[str], timeout: float, *, line_offset: int = 0, lean_path: Path | None = None
    ) -> LeanCheck:
        return run_lake_lean(
            self.settings,
            args,
            cwd=self.settings.lean_project,
            timeout=timeout,
            line_offset=line_offset,
            lean_path=lean_path,
        )

    def check(
        self,
        code: str,
        *,
        header: str | None = None,
        timeout_s: float | None = None,
        context_lines: int = 0,
        queries: Sequence[str] = (),
    ) -> LeanCheck:
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
                answers = self._ask(module, tmpdir, list(queries), timeout - (time.monotonic() - t0))
                if answers is None:
                    result = LeanCheck(failure="Lean did not answer the gate's queries on the compiled candidate")
                else:
                    result = result.model_copy(update={"answers": answers})
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        return result.stamped(elapsed_s=time.monotonic() - t0, backend=self.backend, toolchain=self.toolchain)

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
