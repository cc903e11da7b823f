"""The stand-in REPL's answers (tests/fake_lean_repl.py) as an in-process Lean oracle, for the benchmarks that
measure the scheduler and the pipeline rather than the REPL pool: no subprocess, an optional latency a check, the
gate's queries answered each as a command of its own on the environment the code produced, and the REPL's tactic
mode (``session``: a check and tactic steps on the proof states it reported, as ``ReplPool.session``)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence

import fake_lean_repl

from autoform.lean.goals import TacticResult, parse_tactic_reply
from autoform.lean.oracle import LeanCheck, parse_repl_reply


class InProcessSession:
    """Goal-level steps on the in-process stand-in (its proof states live until the session ends)."""

    def __init__(self, lean: InProcessLean) -> None:
        self.lean = lean

    def check(self, code: str) -> LeanCheck:
        self.lean.checks += 1
        return parse_repl_reply(fake_lean_repl.answer(code))

    def tactic(self, proof_state: int, tactic: str) -> TacticResult:
        self.lean.tactic_steps += 1
        return parse_tactic_reply(fake_lean_repl.run_tactic({"tactic": tactic, "proofState": proof_state}))


class InProcessLean:
    """An oracle answering as the stand-in REPL; ``latency`` seconds a check; ``checks`` counts them."""

    def __init__(self, *, latency: float = 0.0, backend: str = "repl", toolchain: str = "") -> None:
        self.latency, self.backend, self.toolchain = latency, backend, toolchain
        self.checks = 0  # command-mode checks (a session's check too)
        self.tactic_steps = 0  # tactic-mode steps on proof states
        self._lock = threading.RLock()

    def start(self) -> None:
        pass

    def check(
        self,
        code: str,
        *,
        header: str | None = None,
        timeout_s: float | None = None,
        context_lines: int = 0,
        queries: Sequence[str] = (),
    ) -> LeanCheck:
        if self.latency:
            time.sleep(self.latency)
        with self._lock:  # the stand-in numbers its environments and proof states in one counter
            self.checks += 1
            result = parse_repl_reply(fake_lean_repl.answer(code))
            answers = [parse_repl_reply(fake_lean_repl.answer(q, result.env)).messages for q in queries]
            fake_lean_repl.ENVS.clear()  # nothing refers to an earlier environment here
            fake_lean_repl.STATES.clear()
        result = result.model_copy(update={"answers": answers})
        return result.stamped(elapsed_s=self.latency, backend=self.backend, toolchain=self.toolchain)

    @contextlib.contextmanager
    def session(self, header: str | None = None, *, timeout_s: float | None = None) -> Iterator[InProcessSession]:
        """Tactic mode: one session at a time (the stand-in numbers environments and proof states in one counter)."""
        with self._lock:
            try:
                yield InProcessSession(self)
            finally:
                fake_lean_repl.ENVS.clear()
                fake_lean_repl.STATES.clear()

    def close(self) -> None:
        pass
