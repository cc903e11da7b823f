"""The REPL pool: Lean REPL processes (driven through lean-interact), keyed by import header.

Each process imports its header once (``import Mathlib`` costs seconds to minutes) and then checks many
candidates in that environment. The pool is pre-warmed for the workspace's header, grows up to ``size``
processes, and hands an idle process of the right header to each check; a process of another header is
recycled when the pool is full. A process is retired after ``max_uses`` checks or when its memory grows
``restart_growth_mb`` past what it held right after importing its header (measured then: never for the memory
the import needs; autoform/toolchain/memory.py), and killed (with its whole process group) on a timeout, a crash, an
out-of-memory death (``RLIMIT_AS`` is set on every process) or an unparseable reply; that check is a rejection with the
reason, and the next one gets a fresh process. Nothing here decides admission.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from autoform.config import Settings
from autoform.lean.goals import TacticResult, parse_tactic_reply
from autoform.lean.lake import lake_problem
from autoform.lean.oracle import LeanCheck, OracleUnavailable, parse_repl_reply
from autoform.toolchain.memory import MemoryReport, process_memory
from autoform.toolchain.workspace import recorded_repl

#: shared blocks (preludes) whose environments a process keeps; the REPL keeps every environment it made
#: until the process is retired after ``max_uses`` checks, so this bounds only the lookup table
CONTEXTS_PER_PROCESS = 64
#: with an absolute ``restart_memory_mb`` below a process's post-import memory, growth it tolerates (MB)
MIN_GROWTH_MB = 512


class _Worker:
    """One REPL process with its header imported."""

    def __init__(self, pool: ReplPool, header: str) -> None:
        self.pool, self.header = pool, header
        self.server: Any = None
        self.env: int | None = None
        self.uses = 0
        self.started_at = 0.0
        #: memory right after the header was imported (restarts are measured from it, never below it)
        self.baseline: MemoryReport | None = None
        # environments of shared blocks (preludes) elaborated on top of the header: digest -> env id
        self.contexts: OrderedDict[str, int] = OrderedDict()

    def start(self) -> None:
        from lean_interact import LeanServer

        cfg = self.pool.cfg
        try:
            self.server = LeanServer(self.pool.repl_config())
        except OracleUnavailable:
            raise
        except Exception as e:  # lean-interact raises plain exceptions for a missing REPL/toolchain
            raise OracleUnavailable(
                f"The Lean REPL could not be started ({type(e).__name__}: {str(e).strip()[:400]}). "
                "Run `scripts/setup.sh` (it builds the REPL with lean-interact), or set [lean] repl_path."
            ) from e
        self.started_at = time.monotonic()
        if not self.header.strip():
            self.env = None
            self.baseline = self.memory()
            return
        try:
            reply = self.server.run_dict({"cmd": self.header}, timeout=cfg.start_timeout_s)
        except Exception as e:
            self.kill()
            raise OracleUnavailable(
                f"The Lean REPL could not elaborate the header {self.header!r} in {self.pool.project}: "
                f"{type(e).__name__}: {str(e).strip()[:400]}. Is Mathlib built there? Run `lake exe cache get` "
                "in that folder."
            ) from e
        check = parse_repl_reply(reply)
        if check.failure or check.errors or check.env is None:
            self.kill()
            detail = check.failure or "; ".join(m.text for m in check.errors) or "no environment returned"
            raise OracleUnavailable(
                f"The header {self.header!r} does not elaborate in {self.pool.project}: {detail[:400]}. "
                "Run `lake exe cache get` there to fetch Mathlib's build."
            )
        self.env = check.env
        self.baseline = self.memory()
        self.pool.note_baseline(self.baseline)

    def context_env(self, context: str, digest: str, timeout: float) -> int | LeanCheck | None:
        """The environment of ``context`` on top of the header: cached, else elaborated now. None when the
        block does not elaborate cleanly (the caller then checks the whole text, so Lean's messages about it
        are reported as usual); a LeanCheck with the failure when the process died or timed out."""
        env = self.contexts.get(digest)
        if env is not None:
            self.contexts.move_to_end(digest)
            self.pool.count("context_hits")
            return env
        check = self.run(context, timeout)
        if check.failure is not None:
            return check if not self.alive else None
        # only a block Lean accepts silently is kept (the admitted dependencies are): with an error, a sorry or
        # a warning the whole text is checked instead, so those messages reach the gate as they always did
        if check.messages or check.sorries or check.env is None:
            return None
        self.contexts[digest] = check.env
        while len(self.contexts) > CONTEXTS_PER_PROCESS:
            self.contexts.popitem(last=False)
        self.pool.count("context_builds")
        return check.env

    def run(self, code: str, timeout: float, env: int | None = None) -> LeanCheck:
        self.uses += 1
        request: dict[str, Any] = {"cmd": code}
        if env is not None:
            request["env"] = env
        elif self.env is not None:
            request["env"] = self.env
        try:
            return parse_repl_reply(self.server.run_dict(request, timeout=timeout))
        except TimeoutError:
            self.kill()
            return LeanCheck(failure=f"Lean timed out after {timeout:.0f} s")
        except (ValueError, json.JSONDecodeError) as e:
            self.kill()
            return LeanCheck(failure=f"unparseable reply from the Lean REPL: {str(e)[:200]}")
        except Exception as e:  # crash, broken pipe, killed by the memory limit
            self.kill()
            return LeanCheck(failure=f"the Lean REPL died: {type(e).__name__}: {str(e).strip()[:300]}")

    def memory_mb(self) -> float:
        """Resident memory of the REPL and its parent ``lake env`` (lean-interact's measure), MB."""
        try:
            return float(self.server.get_memory_usage()) if self.server is not None else 0.0
        except Exception:
            return 0.0

    def memory(self) -> MemoryReport:
        proc = getattr(self.server, "_proc", None) if self.server is not None else None
        return process_memory(proc.pid) if proc is not None else MemoryReport()

    def over_memory(self) -> bool:
        """Whether the process grew past ``restart_growth_mb`` above its post-import baseline, or past the
        absolute ``restart_memory_mb`` while holding more than that baseline: the memory the import itself
        needs never retires a process."""
        cfg = self.pool.cfg
        if not cfg.restart_growth_mb and not cfg.restart_memory_mb:
            return False
        now = self.memory_mb()
        base = self.baseline.rss_mb if self.baseline is not None else 0.0
        if cfg.restart_growth_mb and now - base > cfg.restart_growth_mb:
            return True
        return bool(cfg.restart_memory_mb) and now > max(cfg.restart_memory_mb, base + MIN_GROWTH_MB)

    @property
    def alive(self) -> bool:
        return self.server is not None and self.server.is_alive()

    def kill(self) -> None:
        """Kill the REPL with its whole process group (it runs in a session of its own: `lake env repl`
        and anything it spawned), then let lean-interact reap it."""
        if self.server is not None:
            proc = getattr(self.server, "_proc", None)
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                self.server.kill()
        self.server = None
        self.env = None
        self.contexts.clear()


class ReplSession:
    """Goal-level steps on one REPL process (see :meth:`ReplPool.session`)."""

    def __init__(self, worker: _Worker, timeout: float) -> None:
        self.worker, self.timeout = worker, timeout
        self.failed = False

    def check(self, code: str) -> LeanCheck:
        """Lean's messages and holes (``sorries``, with their goals and proof states) on ``code``."""
        result = self.worker.run(code, self.timeout)
        self.failed = self.failed or result.failure is not None
        return result

    def tactic(self, proof_state: int, tactic: str) -> TacticResult:
        """Run ``tactic`` on a proof state: the goals it leaves (tactic mode; exploring only)."""
        self.worker.uses += 1
        try:
            reply = self.worker.server.run_dict({"tactic": tactic, "proofState": proof_state}, timeout=self.timeout)
        except TimeoutError:
            self.worker.kill()
            self.failed = True
            return TacticResult(failure=f"Lean timed out after {self.timeout:.0f} s")
        except Exception as e:  # crash, broken pipe, unparseable reply
            self.worker.kill()
            self.failed = True
            return TacticResult(failure=f"the Lean REPL died: {type(e).__name__}: {str(e).strip()[:300]}")
        return parse_tactic_reply(reply)


class ReplPool:
    """The ``repl`` oracle backend: a pool of Lean REPL processes. Thread-safe."""

    backend = "repl"

    def __init__(self, settings: Settings, *, size: int | None = None, reuse_header: bool = True) -> None:
        self.settings = settings
        self.cfg = settings.lean
        self.size = max(1, size or self.cfg.pool_size)
        self.reuse_header = reuse_header
        self.project: Path = settings.lean_project
        self.toolchain = ""
        self._repl_config: Any = None
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._busy = 0
        self._starting = 0
        self.stats = {"checks": 0, "started": 0, "retired": 0, "failures": 0, "context_builds": 0, "context_hits": 0}
        #: memory of the last process right after it imported the header (`autoform doctor` shows it)
        self.baseline: MemoryReport | None = None

    # -- configuration (one LeanREPLConfig, many servers, as lean-interact recommends) ---------------
    def repl_config(self) -> Any:
        if self._repl_config is not None:
            return self._repl_config
        problem = lake_problem(self.settings)
        if problem:
            raise OracleUnavailable(problem)
        from lean_interact import LeanREPLConfig, LocalProject

        kwargs: dict[str, Any] = {
            "lake_path": self.cfg.lake_path,
            "memory_hard_limit_mb": self.cfg.memory_mb,
            # candidates are judged exactly as written: no reuse of partial elaborations across commands
            "enable_incremental_optimization": False,
            "enable_parallel_elaboration": False,
            "project": LocalProject(directory=str(self.project), lake_path=self.cfg.lake_path, auto_build=False),
        }
        # always a local, already built REPL: starting the pool never clones, pulls or builds anything (setup
        # built the REPL with lean-interact and recorded where: autoform/toolchain/workspace.py)
        repl_dir = Path(self.cfg.repl_path) if self.cfg.repl_path else recorded_repl(self.project)
        if repl_dir is None:
            raise OracleUnavailable(
                f"The Lean REPL is not built for {self.project}: run `scripts/setup.sh` (it builds the REPL once, "
                "with access to GitHub), or set [lean] repl_path to a built leanprover-community/repl checkout."
            )
        repl_bin = repl_dir / ".lake" / "build" / "bin" / "repl"
        if not repl_bin.exists():
            raise OracleUnavailable(
                f"No built Lean REPL at {repl_bin}: run `lake build` in {repl_dir}, or run `scripts/setup.sh`."
            )
        kwargs["local_repl_path"] = str(repl_dir)
        kwargs["build_repl"] = False
        try:
            self._repl_config = LeanREPLConfig(**kwargs)
        except Exception as e:
            raise OracleUnavailable(
                f"The Lean REPL is not set up ({type(e).__name__}: {str(e).strip()[:400]}). Run "
                "`scripts/setup.sh` (lean-interact fetches and builds the REPL), or set [lean] repl_path."
            ) from e
        self.toolchain = self._repl_config.lean_version or ""
        return self._repl_config

    # -- life cycle ----------------------------------------------------------------------------------
    def start(self, *, prewarm: int | None = None) -> None:
        """Pre-warm processes for the workspace's header; raises OracleUnavailable with the reason."""
        n = min(self.size, prewarm if prewarm is not None else self.cfg.prewarm)
        with self._cond:
            have = len(self._idle) + self._busy + self._starting
        if have >= max(1, n):
            return
        header = self.cfg.header if self.reuse_header else ""
        workers = [_Worker(self, header) for _ in range(max(1, n) - have)]
        errors: list[OracleUnavailable] = []

        def boot(w: _Worker) -> None:
            try:
                w.start()
            except OracleUnavailable as e:
                errors.append(e)

        threads = [threading.Thread(target=boot, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with self._cond:
            for w in workers:
                if w.alive:
                    self._idle.append(w)
                    self.stats["started"] += 1
            self._cond.notify_all()
        if errors and not any(w.alive for w in workers):
            raise errors[0]

    def check(
        self,
        code: str,
        *,
        header: str | None = None,
        timeout_s: float | None = None,
        context_lines: int = 0,
        queries: Sequence[str] = (),
    ) -> LeanCheck:
        """See :meth:`autoform.lean.oracle.Oracle.check`. With ``context_lines``, the shared block is
        elaborated once per process (kept for the next checks, up to ``CONTEXTS_PER_PROCESS`` blocks) and the
        rest of ``code`` is checked in its environment; an idle process that already holds the block is
        preferred. Each query is a REPL command of its own on the environment ``code`` produced: the REPL
        returns each command's own messages, so the answers cannot be written by ``code``."""
        header = self.cfg.header if header is None else header
        t0 = time.monotonic()
        shift = 0
        if not self.reuse_header and header.strip():  # the header is elaborated again with every check
            prefix = header.rstrip("\n") + "\n"
            code, header, shift = prefix + code, "", prefix.count("\n")
            context_lines = 0  # nothing is reused in this mode (a benchmark's baseline)
        lines = code.split("\n")
        context = "\n".join(lines[:context_lines]) if 0 < context_lines < len(lines) else ""
        digest = hashlib.sha256(context.encode()).hexdigest() if context else ""
        try:
            worker = self._acquire(header, digest)
        except OracleUnavailable as e:
            return LeanCheck(failure=str(e), backend=self.backend, elapsed_s=time.monotonic() - t0)
        timeout = timeout_s or self.cfg.timeout_s
        t_block = time.monotonic()
        env = worker.context_env(context, digest, timeout) if context else None
        # the time limit is the whole text's: what the shared block took now is taken from the rest's share
        left = max(1.0, timeout - (time.monotonic() - t_block))
        if isinstance(env, LeanCheck):  # the process died or timed out on the shared block
            result = env
        elif env is not None:
            result = worker.run("\n".join(lines[context_lines:]), left, env=env)
            shift -= context_lines  # the rest's line 1 is line context_lines + 1 of the whole text
        else:
            result = worker.run(code, timeout)
        if queries and result.failure is None:
            result = self._ask(worker, result, list(queries), timeout - (time.monotonic() - t0))
        self._release(worker, failed=result.failure is not None)
        result = result.shifted(shift)  # positions relative to the candidate's own text
        return result.stamped(elapsed_s=time.monotonic() - t0, backend=self.backend, toolchain=self.toolchain)

    @contextlib.contextmanager
    def session(self, header: str | None = None, *, timeout_s: float | None = None) -> Iterator[ReplSession]:
        """One REPL process held for a sequence of goal-level steps (its proof states live in that process):
        check text with holes, run tactics on the proof states it reported. For exploring only: every admission
        is a whole-text check through the gate."""
        header = self.cfg.header if header is None else header
        worker = self._acquire(header)
        session = ReplSession(worker, timeout_s or self.cfg.timeout_s)
        try:
            yield session
        finally:
            self._release(worker, failed=session.failed)

    @staticmethod
    def _ask(worker: _Worker, result: LeanCheck, queries: list[str], timeout: float) -> LeanCheck:
        """Run each query on the environment of ``result``; its messages become ``result.answers``."""
        if result.env is None:
            return LeanCheck(failure="the Lean REPL returned no environment to ask the gate's queries on")
        answers = []
        for q in queries:
            reply = worker.run(q, max(1.0, timeout), env=result.env)
            if reply.failure is not None:
                return reply
            answers.append(reply.messages)
        return result.model_copy(update={"answers": answers})

    def _acquire(self, header: str, context: str = "") -> _Worker:
        with self._cond:
            while True:
                # a process of this header, one that already holds the shared block first
                for w in sorted(self._idle, key=lambda w: bool(context) and context not in w.contexts):
                    if w.header == header:
                        self._idle.remove(w)
                        self._busy += 1
                        self.stats["checks"] += 1
                        return w
                total = len(self._idle) + self._busy + self._starting
                if total < self.size or self._idle:
                    if total >= self.size:  # full: recycle an idle process of another header
                        old = self._idle.pop(0)
                        old.kill()
                        self.stats["retired"] += 1
                    self._starting += 1
                    break
                self._cond.wait()
        w = _Worker(self, header)
        try:
            w.start()
        except BaseException:
            with self._cond:
                self._starting -= 1
                self._cond.notify_all()
            raise
        with self._cond:
            self._starting -= 1
            self._busy += 1
            self.stats["started"] += 1
            self.stats["checks"] += 1
        return w

    def _release(self, w: _Worker, *, failed: bool) -> None:
        retire = failed or not w.alive or w.uses >= self.cfg.max_uses or w.over_memory()
        if retire:
            w.kill()
        with self._cond:
            self._busy -= 1
            if retire:
                self.stats["retired"] += 1
                self.stats["failures"] += int(failed)
            else:
                self._idle.append(w)
            self._cond.notify_all()

    def note_baseline(self, report: MemoryReport) -> None:
        with self._cond:
            self.baseline = report

    def count(self, stat: str) -> None:
        with self._cond:
            self.stats[stat] += 1

    @property
    def processes(self) -> int:
        with self._cond:
            return len(self._idle) + self._busy

    def pids(self) -> list[int]:
        with self._cond:
            return [w.server._proc.pid for w in self._idle if w.server is not None and w.server._proc]

    def close(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
        for w in idle:
            w.kill()
