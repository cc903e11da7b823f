"""The job's loop: it starts (or resumes) the job, releases units from the plan to the executor as slots free
up, records what became of each, holds the budget, keeps ``atlas/`` current, and stops cleanly on Ctrl-C, a
reached budget or a fault (an LLM or Lean that answers nothing, a store that cannot be written).

Every step of a unit is one transaction: the reader's extraction, a locked statement, a rejected attempt with
its verdict, an admission (atlas entry + attempt + unit status + post). So a kill at any moment loses at most
the step in flight, which is redone (from the LLM reply cache), and a unit is admitted at most once
(``atlas_entries.unit_id`` is unique). A store that cannot be written (disk full) stops the job with that
reason; the transaction in flight is rolled back.
"""

from __future__ import annotations

import threading
import time

import networkx as nx

from autoform import graph as graphs
from autoform.atlas import book_namespace, write_atlas
from autoform.config import Settings
from autoform.executors import (
    EventFn,
    ExecContext,
    Executor,
    OracleBreaker,
    UnitOutcome,
    make_executor,
    store_failure,
)
from autoform.jobs.atlas_writer import AtlasWriter
from autoform.jobs.budget import Budget, Spend
from autoform.jobs.lifecycle import close_job, start_or_resume
from autoform.jobs.model import JobParams, JobSummary
from autoform.jobs.monitor import JobMonitor
from autoform.jobs.plan import ReadyQueue, job_todo
from autoform.jobs.report import job_summary
from autoform.lean.cache import CachedOracle
from autoform.lean.oracle import Oracle
from autoform.llm import LLMClient
from autoform.store import ADMITTED, Book, Job, JobStatus, Store, Unit, UnitStatus

#: how long the loop waits for a completion before it checks the budget and the stop flag again
POLL_S = 0.25


class JobRunner:
    """Runs one job of a book: :meth:`run` returns its summary. ``stop_reason`` says why it stopped early
    ("sigint", "budget", "llm", "lean", "store", "worker", "error"; "sigint-now" to leave at once), ``fatal``
    the message of a fault."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        book: Book,
        oracle: Oracle | None,
        llm: LLMClient | None,
        params: JobParams,
        *,
        on_event: EventFn | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.settings, self.store, self.book, self.oracle, self.llm = settings, store, book, oracle, llm
        self.params = params
        self.stop = threading.Event()
        self._user_event: EventFn = on_event or (lambda kind, unit, detail: None)
        self.namespace = book_namespace(book)
        self.graph: nx.DiGraph = graphs.book_graph(store, book.id)
        self.fatal: str | None = None
        self.stop_reason = ""
        self.executor = executor
        self.monitor: JobMonitor | None = None
        self.trace: list[tuple[str, int, float]] = []  # ("start"|"end", unit id, monotonic time)
        self.sched_cpu_s = 0.0  # CPU time of the scheduling thread inside the scheduling loop
        self._units: dict[int, Unit] = {}
        self.atlas_writer = AtlasWriter(store, settings)

    def on_event(self, kind: str, unit: Unit, detail: str) -> None:
        if self.monitor is not None:
            self.monitor.event(kind, unit, detail)
        if kind in ADMITTED:
            self.atlas_writer.poke()
        self._user_event(kind, unit, detail)

    def request_stop(self, reason: str = "sigint", message: str = "") -> None:
        """Stop starting units; units in flight stop after their current step (safe from a signal handler)."""
        if not self.stop.is_set():
            self.stop_reason = self.stop_reason or reason
            if message and not self.fatal:
                self.fatal = message
        self.stop.set()

    # -- the job -----------------------------------------------------------------------------------
    def run(self) -> JobSummary:
        t0 = time.monotonic()
        job, resumed = start_or_resume(self.store, self.book, self.params)
        self.job = job
        self.spend = Spend(self.store, self.settings, job.id)
        self.budget = Budget(self.spend, self.params)
        status = JobStatus.INTERRUPTED
        try:
            status = self._run(job)
        except KeyboardInterrupt:
            self.request_stop("sigint")
        except Exception as e:
            why = store_failure(e)
            if why is None:
                raise
            self.request_stop("store", why)
            self.fatal = why
        status = self._finish(job, status)
        return self.summary(job.id, resumed, status, time.monotonic() - t0)

    def _run(self, job: Job) -> JobStatus:
        self._guard_oracle(job)
        write_atlas(self.store, self.settings)  # repairs files after a crash between commit and write
        self._reopened_seen = self.store.last_reopening_id(self.book.id)  # later ones: taken up as they come
        units = self._units = self._formalized_units()
        kinds = set(self.settings.job.formalize_kinds)
        self.monitor = JobMonitor(units, total=sum(1 for u in units.values() if u.kind in kinds))
        todo = job_todo(self.graph, {uid: u.status for uid, u in units.items()})
        self._check_budget()
        if self.stop.is_set():
            if self.executor is not None:
                self.executor.close(wait=False)
            return JobStatus.INTERRUPTED
        executor = self._start_executor(job)
        self.atlas_writer.start()
        try:
            self._schedule(todo, units, executor)
        finally:
            executor.close(wait=not self.stop_reason.endswith("now"))
            self.atlas_writer.stop()
        return JobStatus.INTERRUPTED if self.stop.is_set() or self.fatal else JobStatus.DONE

    def _guard_oracle(self, job: Job) -> None:
        """The oracle counts its checks for this job and sits behind the breaker that stops a silent Lean."""
        if isinstance(self.oracle, CachedOracle):  # the result cache counts checks per job
            self.oracle.job_id = job.id
        if self.oracle is not None and not isinstance(self.oracle, OracleBreaker):
            self.oracle = OracleBreaker(self.oracle, self.settings.job.lean_failures_to_stop)

    def _formalized_units(self) -> dict[int, Unit]:
        """The book's units by id, after the pending ones of kinds not formalized (``[job] formalize_kinds``)
        are marked skipped."""
        kinds = set(self.settings.job.formalize_kinds)
        units = self.store.units(self.book.id)
        self.store.skip_units(u.id for u in units if u.kind not in kinds and u.status == UnitStatus.PENDING)
        return {u.id: u for u in self.store.units(self.book.id)}

    def _start_executor(self, job: Job) -> Executor:
        p = self.params
        executor = self.executor or make_executor(p.executor, p.jobs, address=p.address, workers=p.ray_workers)
        self.executor = executor
        executor.start(
            ExecContext(
                settings=self.settings,
                store=self.store,
                book=self.book,
                job=job,
                graph=self.graph,
                max_attempts=p.max_attempts,
                namespace=self.namespace,
                stop=self.stop,
                on_event=self.on_event,
                slots=p.jobs,
                unit_tokens=p.unit_tokens,
                oracle=self.oracle,
                llm=self.llm,
            )
        )
        return executor

    # -- the loop ----------------------------------------------------------------------------------
    def _schedule(self, todo: list[int], units: dict[int, Unit], executor: Executor) -> None:
        """Start ready units while slots are free; conclude what the executor completed; check the budget.
        Ends when every unit concluded, or when the job stops and nothing is in flight."""
        cpu0 = time.thread_time()
        plan = ReadyQueue(self.graph, todo)
        in_flight: set[int] = set()
        stop_sent = False
        while True:
            if not self.stop.is_set():
                self._take_up_reopened(plan, units)
            if not (plan.has_ready() or in_flight or plan.has_waiting()):
                break
            if self.stop.is_set() and not stop_sent:
                executor.request_stop()
                stop_sent = True
            if not self.stop.is_set():
                self._start_ready(plan, in_flight, units, executor)
            if not in_flight:
                if self.stop.is_set() or not plan.has_waiting():
                    break
                raise AssertionError("units wait on nothing in flight: the dependency plan is inconsistent")
            for o in executor.completed(timeout=POLL_S):
                self._conclude(o, units, in_flight)
                plan.conclude(o.unit_id)
            self._check_budget()  # incremental: O(calls since the last check)
            if self.stop.is_set() and not in_flight:
                break
        self.sched_cpu_s = time.thread_time() - cpu0

    def _take_up_reopened(self, plan: ReadyQueue, units: dict[int, Unit]) -> None:
        """Units a person re-opened since the last look (``autoform retry``, ``review --reject``, ``state``, and
        the units re-checked with them) go back into the plan, unless the plan has them open already (their
        next step reads the change) or they are no longer pending (a job concluded them meanwhile)."""
        new = self.store.reopenings_since(self.book.id, self._reopened_seen)
        if not new:
            return
        self._reopened_seen = new[-1].id
        kinds = set(self.settings.job.formalize_kinds)
        back: list[int] = []
        for uid in dict.fromkeys(r.unit_id for r in new):
            if plan.is_open(uid):
                continue
            unit = self.store.unit(uid)
            if unit.status != UnitStatus.PENDING or not unit.present or unit.kind not in kinds:
                continue
            units[uid] = unit
            if self.monitor is not None:
                self.monitor.reopened(unit)
            back.append(uid)
        plan.reopen(back)

    def _start_ready(self, plan: ReadyQueue, in_flight: set[int], units: dict[int, Unit], executor: Executor) -> None:
        """Submit ready units until the executor's slots are full."""
        assert self.monitor is not None
        slots = max(1, executor.slots)
        if slots != self.params.jobs:  # the slots a Ray cluster gives (without --jobs), recorded as the job's
            self.params = self.params.model_copy(update={"jobs": slots})
            self.store.set_job_params(self.job.id, self.params.model_dump_json())
        while plan.has_ready() and len(in_flight) < slots:
            uid = plan.pop()
            in_flight.add(uid)
            self.monitor.started(units[uid])
            self.trace.append(("start", uid, time.monotonic()))
            executor.submit(units[uid])

    def _conclude(self, o: UnitOutcome, units: dict[int, Unit], in_flight: set[int]) -> None:
        in_flight.discard(o.unit_id)
        self.trace.append(("end", o.unit_id, time.monotonic()))
        assert self.monitor is not None
        self.monitor.finished(o.unit_id)
        for kind, uid, detail in o.events:  # events of remote executors, replayed here
            unit = units.get(uid)
            if unit is not None:
                self.on_event(kind, unit, detail)
        if o.fatal:
            self.request_stop(o.fatal_kind or "error", o.fatal)

    def _check_budget(self) -> None:
        why = self.budget.check()
        if self.monitor is not None:
            self.monitor.usd, self.monitor.tokens = self.spend.usd, self.spend.tokens
            self.monitor.attempts = self.spend.attempts
        if why is not None:
            self.request_stop("budget", why)

    # -- the end -----------------------------------------------------------------------------------
    def _finish(self, job: Job, status: JobStatus) -> JobStatus:
        """Write atlas/ and record how the job ended; returns the job's final status. A job whose atlas/ cannot
        be written is not done: it ends ``interrupted`` (the next run resumes it, which rewrites the files from
        the store) with the cause. If the store cannot be written, the job stays 'running' in the store, which
        the next run resumes exactly like an interrupted one. A job stopped because Lean answers nothing
        (``stop_reason`` "lean") ends ``failed``, so the next run starts a fresh job: the checks Lean never
        answered do not count against the units' attempts, and the units it failed are pending again."""
        status = self._write_final_atlas(status)
        if self.stop_reason == "lean":
            status = JobStatus.FAILED
        try:
            close_job(self.store, self.book, job, status, self.fatal or "")
        except Exception as e:
            why = store_failure(e)
            if why is None:
                raise
            self.fatal = self.fatal or why
            self.stop_reason = self.stop_reason or "store"
        return status

    def _write_final_atlas(self, status: JobStatus) -> JobStatus:
        """Write atlas/ once more; if the disk refuses, the job is not done (the cause is kept)."""
        try:
            write_atlas(self.store, self.settings)
        except Exception as e:
            why = store_failure(e)
            if why is None:
                raise
            self.fatal = f"{self.fatal}; {why}" if self.fatal else why
            self.stop_reason = self.stop_reason or "store"
            if status == JobStatus.DONE:
                status = JobStatus.INTERRUPTED
        return status

    def summary(self, job_id: int, resumed: bool, status: str, elapsed: float) -> JobSummary:
        s = job_summary(
            self.store,
            self.book,
            job_id,
            resumed=resumed,
            status=status,
            elapsed=elapsed,
            message=self.fatal or "",
            settings=self.settings,
        )
        return s.model_copy(update={"stop_reason": self.stop_reason if status != JobStatus.DONE else ""})
