"""The stand-in REPL's answers (tests/fake_lean_repl.py) as an in-process Lean oracle, for the benchmarks that
measure the scheduler and the pipeline rather than the REPL pool: no subprocess, an optional latency a check, the
gate's queries answered each as a command of its own on the environment the code produced."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import fake_lean_repl

from autoform.lean.oracle import LeanCheck, parse_repl_reply


class InProcessLean:
    """An oracle answering as the stand-in REPL; ``latency`` seconds a check; ``checks`` counts them."""

    def __init__(self, *, latency: float = 0.0, backend: str = "repl", toolchain: str = "") -> None:
        self.latency, self.backend, self.toolchain = latency, backend, toolchain
        self.checks = 0
        self._lock = threading.Lock()

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

    def close(self) -> None:
        pass
