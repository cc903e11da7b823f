"""The local executor: units in threads of this process, one :class:`UnitPipeline` shared by all (it is
thread-safe), the oracle and the LLM client of the job. Needs nothing beyond autoform itself."""

from __future__ import annotations

import queue
from concurrent.futures import ThreadPoolExecutor

from autoform.config import Settings
from autoform.executors.base import CappedLLM, ExecContext, UnitOutcome, UnitWork, run_unit, store_failure
from autoform.store import Store, Unit


class LocalExecutor:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._done: queue.SimpleQueue[UnitOutcome] = queue.SimpleQueue()
        self._pool: ThreadPoolExecutor | None = None

    def connect(self) -> None:
        pass  # threads of this process: nothing to reach

    def preflight(self, settings: Settings, store: Store) -> list[str]:
        return []  # the driver starts the job's own Lean (the CLI's preflight)

    def start(self, ctx: ExecContext) -> None:
        from autoform.pipeline import UnitPipeline

        self.ctx = ctx
        llm = ctx.llm if ctx.unit_tokens is None else CappedLLM(ctx.llm, ctx.store, ctx.job.id, ctx.unit_tokens)
        self.pipeline: UnitWork = UnitPipeline(
            ctx.settings,
            ctx.store,
            ctx.book,
            ctx.job,
            ctx.oracle,
            llm,
            max_attempts=ctx.max_attempts,
            namespace=ctx.namespace,
            graph=ctx.graph,
            stop=ctx.stop,
            on_event=ctx.on_event,
        )
        self.board = self.pipeline.board
        self._pool = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="unit")

    def _work(self, unit: Unit) -> None:
        try:
            outcome = run_unit(self.pipeline, unit, self.ctx.on_event, stop=self.ctx.stop)
        except BaseException as e:  # never lose a completion: the scheduler would wait for it forever
            why = store_failure(e)
            outcome = UnitOutcome(
                unit.id, fatal=why or f"{type(e).__name__}: {e}", fatal_kind="store" if why else "error"
            )
        self._done.put(outcome)

    def submit(self, unit: Unit) -> None:
        assert self._pool is not None, "start() first"
        self._pool.submit(self._work, unit)

    def completed(self, timeout: float) -> list[UnitOutcome]:
        try:
            out = [self._done.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                return out

    def request_stop(self) -> None:
        pass  # the pipeline watches the job's stop event between steps

    def close(self, *, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
