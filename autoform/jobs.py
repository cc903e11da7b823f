"""Batch formalization jobs: the scheduler. Units go through the per-unit pipeline (:mod:`autoform.pipeline`)
as soon as their dependencies are done, many in flight, on an executor (:mod:`autoform.executors`: threads
here, or a Ray cluster); all state is in the store, so a job is resumable.

Scheduling. A unit is *ready* once every dependency it has in this job is done: admitted, stated or failed
(a failed dependency does not block; the unit proceeds with its stated form: the dependency's locked
statement is shown to the agents, and only admitted declarations enter the Lean prelude). Dependency cycles
are cut as :func:`autoform.graph.work_order` cuts them: only edges to units earlier in the work order count.
Ready units start highest first by *height* (the longest chain of units waiting on them), then in work order, so
the critical path is never starved. The scheduler is event driven: a completion decrements its dependents'
counters, O(edges) over the whole job.

Budgets. ``budget_usd`` and ``budget_tokens`` bound the job (all its runs); spending is read incrementally
from ``llm_calls``. When reached, no new unit starts and units in flight stop after their current step; the
job ends ``interrupted`` with the reason and is resumable (with a larger budget). ``unit_tokens`` caps one
unit's tokens in the job: past it, its next LLM call is refused and the unit fails.

Resume rules. A job that did not finish (``running`` after a crash, or ``interrupted``) is continued by the
next ``autoform run`` of the same book. Every step is one transaction: the reader's extraction, a locked
statement, a rejected attempt with its verdict, an admission (atlas entry + attempt + unit status + post).
So a kill at any moment loses at most the step in flight, which is redone (from the LLM reply cache), and a
unit is admitted at most once (``atlas_entries.unit_id`` is unique). A store that cannot be written (disk
full) stops the job with that reason; the transaction in flight is rolled back.
"""

from __future__ import annotations

import heapq
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import networkx as nx
from pydantic import BaseModel, Field

from autoform import graph as graphs
from autoform.atlas import book_namespace, write_atlas
from autoform.config import Settings
from autoform.errors import UsageError
from autoform.executors import ExecContext, Executor, OracleBreaker, UnitOutcome, make_executor, store_failure
from autoform.llm import price
from autoform.store import Book, Job, Store, Unit

TERMINAL = ("proved", "defined", "stated", "failed", "skipped")
ADMITTED = ("proved", "defined", "stated")


class JobError(UsageError):
    """The job cannot start or continue (unknown book, bad parameters); the message says why."""


class JobParams(BaseModel):
    max_attempts: int = Field(ge=1)
    jobs: int = Field(ge=1)
    budget_usd: float | None = Field(default=None, gt=0)
    budget_tokens: int | None = Field(default=None, gt=0)
    unit_tokens: int | None = Field(default=None, gt=0)
    executor: Literal["local", "ray"] = "local"
    address: str | None = None
    ray_workers: int | None = Field(default=None, ge=1)


class JobSummary(BaseModel):
    job_id: int
    book: str
    resumed: bool
    status: str
    units: dict[str, int]
    admitted_this_job: int
    attempts: int
    llm_calls: int
    llm_cached: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float = 0.0
    elapsed_s: float
    stop_reason: str = ""  # "" | "sigint" | "budget" | "llm" | "lean" | "store" | "worker"
    message: str = ""


def start_or_resume(store: Store, book: Book, params: JobParams) -> tuple[Job, bool]:
    """The unfinished job of this book, continued (with the new parameters); else a new one. Units left
    mid-work become pending; a new job retries the units earlier jobs failed."""
    with store.tx() as c:
        row = c.execute(
            "SELECT id, status, pid FROM jobs WHERE book_id = ? AND status IN ('running', 'interrupted') "
            "ORDER BY id DESC LIMIT 1",
            (book.id,),
        ).fetchone()
        if row is not None and row[1] == "running" and row[2] != os.getpid() and _job_process_alive(row[2]):
            raise JobError(
                f"job {row[0]} of {book.slug} is already running (pid {row[2]}); stop it first "
                f"(Ctrl-C, or kill -INT {row[2]}), or wait for it to end"
            )
        if row is not None:
            job_id, resumed = row[0], True
            c.execute(
                "UPDATE jobs SET status = 'running', pid = ?, message = '', params = ? WHERE id = ?",
                (os.getpid(), params.model_dump_json(), job_id),
            )
        else:
            job_id = c.execute(
                "INSERT INTO jobs (book_id, status, params, started_at, pid) VALUES (?,?,?,?,?)",
                (book.id, "running", params.model_dump_json(), time.time(), os.getpid()),
            ).lastrowid
            resumed = False
            c.execute("UPDATE units SET status = 'pending' WHERE book_id = ? AND status = 'failed'", (book.id,))
        c.execute("UPDATE units SET status = 'pending' WHERE book_id = ? AND status = 'working'", (book.id,))
    return store.job(int(job_id or 0)), resumed


class Spend:
    """The job's LLM spending and attempts (all its runs), read incrementally from ``llm_calls`` and
    ``attempts`` (rows after the last seen id), so a check costs O(new rows)."""

    def __init__(self, store: Store, settings: Settings, job_id: int) -> None:
        self.store, self.prices, self.job_id = store, settings.llm.prices, job_id
        self.last_id = 0
        self.last_attempt = 0
        self.usd = 0.0
        self.tokens = 0
        self.calls = 0
        self.attempts = 0

    def refresh(self) -> None:
        row = self.store.query(
            "SELECT COUNT(*), MAX(id) FROM attempts WHERE id > ? AND job_id = ?", (self.last_attempt, self.job_id)
        )[0]
        if row[0]:
            self.attempts += row[0]
            self.last_attempt = row[1]
        rows = self.store.query(
            "SELECT id, model, prompt_tokens, completion_tokens, cached FROM llm_calls WHERE id > ? AND job_id = ?",
            (self.last_id, self.job_id),
        )
        for rid, model, pt, ct, cached in rows:
            self.last_id = max(self.last_id, rid)
            self.calls += 1
            if cached:
                continue
            self.tokens += (pt or 0) + (ct or 0)
            price = self.prices.get(model)
            if price:
                self.usd += (pt or 0) / 1e6 * price[0] + (ct or 0) / 1e6 * price[1]


class JobMonitor:
    """Live counters of a running job for the progress view and tests (thread-safe; fed by events)."""

    def __init__(self, units: dict[int, Unit], total: int) -> None:
        self._lock = threading.Lock()
        self.total = total
        self.counts: dict[str, int] = {"admitted": 0, "stated": 0, "failed": 0}
        for u in units.values():
            key = {"proved": "admitted", "defined": "admitted"}.get(u.status, u.status)
            if key in self.counts:
                self.counts[key] += 1
        self.in_flight: dict[int, tuple[str, float]] = {}
        self.concluded_now = 0
        self.t0 = time.monotonic()
        self.attempts = 0
        self.usd = 0.0
        self.tokens = 0
        self.last = ""

    def started(self, unit: Unit) -> None:
        with self._lock:
            self.in_flight[unit.id] = (unit.display, time.monotonic())

    def finished(self, unit_id: int) -> None:
        with self._lock:
            self.in_flight.pop(unit_id, None)

    def event(self, kind: str, unit: Unit, detail: str) -> None:
        key = {"proved": "admitted", "defined": "admitted"}.get(kind, kind)
        with self._lock:
            if key in self.counts:
                self.counts[key] += 1
                self.concluded_now += 1
            self.last = f"{unit.display}: {kind}"

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            elapsed = time.monotonic() - self.t0
            done = sum(self.counts.values())
            rate = self.concluded_now / elapsed * 60 if elapsed > 0 else 0.0
            left = max(0, self.total - done)
            return {
                **self.counts,
                "done": done,
                "total": self.total,
                "in_flight": len(self.in_flight),
                "in_flight_units": [name for name, _ in sorted(self.in_flight.values(), key=lambda x: x[1])],
                "attempts": self.attempts,
                "cost_usd": round(self.usd, 6),
                "tokens": self.tokens,
                "rate_per_min": round(rate, 2),
                "eta_s": round(left / rate * 60, 1) if rate > 0 else None,
                "elapsed_s": round(elapsed, 1),
                "last": self.last,
            }


class AtlasWriter:
    """Keeps ``atlas/`` up to date during a job without holding up the units: after an admission it rewrites
    the files from the store in a background thread, at most once per ``interval`` seconds (the files are
    derived from the store and written atomically; the job's end writes them once more, and the next job's
    start repairs them after a crash)."""

    def __init__(self, store: Store, settings: Settings, interval: float = 2.0) -> None:
        self.store, self.settings, self.interval = store, settings, interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._done = False
        self.error: BaseException | None = None
        self.writes = 0
        self._thread = threading.Thread(target=self._loop, name="atlas-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        last = 0.0
        while not self._done:
            self._wake.wait()
            if self._done:
                return
            self._stopping.wait(max(0.0, last + self.interval - time.monotonic()))
            self._wake.clear()
            if self._done:  # the job's end writes the files itself
                return
            try:
                write_atlas(self.store, self.settings)
                self.writes += 1
            except Exception as e:  # reported at the job's end; the store is intact
                self.error = e
            last = time.monotonic()

    def stop(self) -> None:
        self._done = True
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)


def dependency_plan(graph: nx.DiGraph, todo: list[int]) -> tuple[dict[int, int], dict[int, list[int]], dict[int, int]]:
    """For units in ``todo`` (in work order): how many unfinished dependencies each waits on, who waits on
    each, and each unit's height (longest chain of waiting units above it, itself included). Only edges to
    units earlier in the work order count, which cuts cycles exactly where the work order does."""
    pos = {uid: i for i, uid in enumerate(todo)}
    waiting: dict[int, int] = {}
    dependents: dict[int, list[int]] = {}
    for uid in todo:
        deps = [d for d in graph.successors(uid) if pos.get(d, len(todo)) < pos[uid]] if uid in graph else []
        waiting[uid] = len(deps)
        for d in deps:
            dependents.setdefault(d, []).append(uid)
    height: dict[int, int] = {}
    for uid in reversed(todo):
        height[uid] = 1 + max((height[w] for w in dependents.get(uid, ())), default=0)
    return waiting, dependents, height


class JobRunner:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        book: Book,
        oracle: Any,
        llm: Any,
        params: JobParams,
        *,
        on_event: Callable[[str, Unit, str], None] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.settings, self.store, self.book, self.oracle, self.llm = settings, store, book, oracle, llm
        self.params = params
        self.stop = threading.Event()
        self._user_event = on_event or (lambda kind, unit, detail: None)
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
        status = "interrupted"
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

    def _run(self, job: Job) -> str:
        if hasattr(self.oracle, "job_id"):  # the result cache counts checks per job
            self.oracle.job_id = job.id
        if self.oracle is not None and not isinstance(self.oracle, OracleBreaker):
            self.oracle = OracleBreaker(self.oracle, self.settings.job.lean_failures_to_stop)
        write_atlas(self.store, self.settings)  # repairs files after a crash between commit and write
        units = {u.id: u for u in self.store.units(self.book.id)}
        kinds = set(self.settings.job.formalize_kinds)
        with self.store.tx() as c:
            for u in units.values():
                if u.kind not in kinds and u.status == "pending":
                    c.execute("UPDATE units SET status = 'skipped' WHERE id = ?", (u.id,))
        units = {u.id: u for u in self.store.units(self.book.id)}
        self._units = units
        order = [uid for uid in graphs.work_order(self.graph) if uid in units]
        todo = [uid for uid in order if units[uid].status not in TERMINAL]
        total = sum(1 for u in units.values() if u.kind in kinds)
        self.monitor = JobMonitor(units, total)
        self._check_budget()
        if self.stop.is_set():
            if self.executor is not None:
                self.executor.close(wait=False)
            return "interrupted"
        executor = self.executor or make_executor(
            self.params.executor, self.params.jobs, address=self.params.address, workers=self.params.ray_workers
        )
        self.executor = executor
        executor.start(
            ExecContext(
                settings=self.settings,
                store=self.store,
                book=self.book,
                job=job,
                graph=self.graph,
                max_attempts=self.params.max_attempts,
                namespace=self.namespace,
                stop=self.stop,
                on_event=self.on_event,
                slots=self.params.jobs,
                unit_tokens=self.params.unit_tokens,
                oracle=self.oracle,
                llm=self.llm,
            )
        )
        self.atlas_writer.start()
        try:
            self._schedule(todo, units, executor)
        finally:
            executor.close(wait=not self.stop_reason.endswith("now"))
            self.atlas_writer.stop()
        return "interrupted" if self.stop.is_set() or self.fatal else "done"

    def _schedule(self, todo: list[int], units: dict[int, Unit], executor: Executor) -> None:
        cpu0 = time.thread_time()
        waiting, dependents, height = dependency_plan(self.graph, todo)
        pos = {uid: i for i, uid in enumerate(todo)}
        ready: list[tuple[int, int, int]] = [(-height[u], pos[u], u) for u, n in waiting.items() if n == 0]
        heapq.heapify(ready)
        for _, _, u in ready:
            del waiting[u]
        in_flight: set[int] = set()
        slots = max(1, executor.slots)
        monitor = self.monitor
        assert monitor is not None
        stop_sent = False
        while ready or in_flight or waiting:
            if self.stop.is_set() and not stop_sent:
                executor.request_stop()
                stop_sent = True
            if not self.stop.is_set():
                while ready and len(in_flight) < slots:
                    _, _, uid = heapq.heappop(ready)
                    in_flight.add(uid)
                    monitor.started(units[uid])
                    self.trace.append(("start", uid, time.monotonic()))
                    executor.submit(units[uid])
            if not in_flight:
                if self.stop.is_set() or not waiting:
                    break
                raise AssertionError("units wait on nothing in flight: the dependency plan is inconsistent")
            outcomes = executor.completed(timeout=0.25)
            for o in outcomes:
                self._conclude(o, units, in_flight)
                for w in dependents.get(o.unit_id, ()):
                    if w in waiting:
                        waiting[w] -= 1
                        if waiting[w] == 0:
                            del waiting[w]
                            heapq.heappush(ready, (-height[w], pos[w], w))
            self._check_budget()  # incremental: O(calls since the last check)
            if self.stop.is_set() and not in_flight:
                break
        self.sched_cpu_s = time.thread_time() - cpu0

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
        self.spend.refresh()
        if self.monitor is not None:
            self.monitor.usd, self.monitor.tokens = self.spend.usd, self.spend.tokens
            self.monitor.attempts = self.spend.attempts
        p = self.params
        if p.budget_usd is not None and self.spend.usd >= p.budget_usd:
            self.request_stop(
                "budget",
                f"budget reached: {self.spend.usd:.4f} USD spent of {p.budget_usd} USD "
                "(--budget-usd); run again with a larger budget to continue",
            )
        elif p.budget_tokens is not None and self.spend.tokens >= p.budget_tokens:
            self.request_stop(
                "budget",
                f"budget reached: {self.spend.tokens} tokens used of {p.budget_tokens} "
                "(--budget-tokens); run again with a larger budget to continue",
            )

    def _finish(self, job: Job, status: str) -> str:
        """Write atlas/ and record how the job ended; returns the job's final status. A job whose atlas/ cannot
        be written is not done: it ends ``interrupted`` (the next run resumes it, which rewrites the files from
        the store) with the cause. If the store cannot be written, the job stays 'running' in the store, which
        the next run resumes exactly like an interrupted one. A job stopped because Lean answers nothing
        (``stop_reason`` "lean") ends ``failed``, so the next run starts a fresh job: the checks Lean never
        answered do not count against the units' attempts, and the units it failed are pending again."""
        try:
            write_atlas(self.store, self.settings)
        except Exception as e:
            why = store_failure(e)
            if why is None:
                raise
            self.fatal = f"{self.fatal}; {why}" if self.fatal else why
            self.stop_reason = self.stop_reason or "store"
            if status == "done":
                status = "interrupted"
        if self.stop_reason == "lean":
            status = "failed"

        def close_job() -> None:
            with self.store.tx() as c:
                c.execute(
                    "UPDATE units SET status = 'pending' WHERE book_id = ? AND status = 'working'", (self.book.id,)
                )
                if status == "failed":  # units failed by a Lean that never answered: pending, not failed
                    c.execute(
                        "UPDATE units SET status = 'pending' WHERE book_id = ? AND status = 'failed' AND id IN "
                        "(SELECT a.unit_id FROM attempts a WHERE a.job_id = ? AND a.id = (SELECT MAX(b.id) FROM "
                        "attempts b WHERE b.unit_id = a.unit_id AND b.job_id = a.job_id) AND a.reasons LIKE "
                        "'%\"lean_failure\"%')",
                        (self.book.id, job.id),
                    )
                c.execute(
                    "UPDATE jobs SET status = ?, finished_at = ?, message = ? WHERE id = ?",
                    (status, time.time() if status in ("done", "failed") else None, self.fatal or "", job.id),
                )

        try:
            close_job()
        except Exception as e:
            why = store_failure(e)
            if why is None:
                raise
            self.fatal = self.fatal or why
            self.stop_reason = self.stop_reason or "store"
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
        s.stop_reason = self.stop_reason if status != "done" else ""
        return s


def job_cost(store: Store, settings: Settings, job_id: int) -> float:
    rows = store.query(
        "SELECT model, SUM(prompt_tokens), SUM(completion_tokens) FROM llm_calls WHERE job_id = ? AND cached = 0 "
        "GROUP BY model",
        (job_id,),
    )
    return sum(price(settings, model, pt or 0, ct or 0) for model, pt, ct in rows)


def unit_counts(store: Store, book_id: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in store.query(
        "SELECT status, COUNT(*) FROM units WHERE book_id = ? AND present = 1 GROUP BY status", (book_id,)
    ):
        counts[r[0]] = r[1]
    return counts


def job_summary(
    store: Store,
    book: Book,
    job_id: int,
    *,
    resumed: bool = False,
    status: str | None = None,
    elapsed: float = 0.0,
    message: str = "",
    settings: Settings | None = None,
) -> JobSummary:
    job = store.job(job_id)
    n_attempts = store.query("SELECT COUNT(*) FROM attempts WHERE job_id = ?", (job_id,))[0][0]
    admitted = store.query("SELECT COUNT(*) FROM atlas_entries WHERE job_id = ?", (job_id,))[0][0]
    usage = store.query(
        "SELECT COUNT(*), COALESCE(SUM(cached),0), COALESCE(SUM(prompt_tokens),0), COALESCE(SUM(completion_tokens),0)"
        " FROM llm_calls WHERE job_id = ?",
        (job_id,),
    )[0]
    return JobSummary(
        job_id=job_id,
        book=book.slug,
        resumed=resumed,
        status=status or job.status,
        units=unit_counts(store, book.id),
        admitted_this_job=admitted,
        attempts=n_attempts,
        llm_calls=usage[0],
        llm_cached=usage[1],
        prompt_tokens=usage[2],
        completion_tokens=usage[3],
        elapsed_s=round(elapsed, 3),
        cost_usd=round(job_cost(store, settings, job_id), 6) if settings is not None else 0.0,
        message=message or job.message,
    )


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _job_process_alive(pid: int | None) -> bool:
    """Is ``pid`` a live autoform process (not a process that reused the pid of a killed job)?"""
    if not _pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return True  # no /proc: trust the pid
    return b"autoform" in cmdline


def job_status(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """What ``autoform status --json`` reports for one job: state, units in flight, attempts, admissions,
    spending, rate (units concluded per minute while the job was active) and ETA."""
    from autoform.lean.cache import hit_rate

    alive = job.status == "running" and _job_process_alive(job.pid)
    in_flight = (
        [
            {"id": u.id, "unit": u.display, "label": u.label}
            for u in (
                store.unit(r[0])
                for r in store.query(
                    "SELECT id FROM units WHERE book_id = ? AND status = 'working' ORDER BY seq", (job.book_id,)
                )
            )
        ]
        if alive
        else []
    )
    attempts = store.query(
        "SELECT COUNT(*), COALESCE(SUM(admitted), 0), MIN(created_at), MAX(created_at) FROM attempts WHERE job_id = ?",
        (job.id,),
    )[0]
    admitted = store.query("SELECT COUNT(*), MAX(created_at) FROM atlas_entries WHERE job_id = ?", (job.id,))[0]
    failed = store.query(
        "SELECT COUNT(DISTINCT a.unit_id) FROM attempts a JOIN units u ON u.id = a.unit_id "
        "WHERE a.job_id = ? AND u.status = 'failed'",
        (job.id,),
    )[0][0]
    spend = Spend(store, settings, job.id)
    spend.refresh()
    calls = store.query("SELECT MIN(created_at), MAX(created_at) FROM llm_calls WHERE job_id = ?", (job.id,))[0]
    starts = [t for t in (attempts[2], calls[0]) if t is not None]
    ends = [t for t in (attempts[3], calls[1], admitted[1]) if t is not None]
    concluded = admitted[0] + failed
    active_s = (max(ends) - min(starts)) if starts and ends else 0.0
    rate = concluded / active_s * 60 if active_s > 0 else 0.0
    pending = store.query(
        "SELECT COUNT(*) FROM units WHERE book_id = ? AND present = 1 AND status IN ('pending', 'working')",
        (job.book_id,),
    )[0][0]
    return {
        "id": job.id,
        "status": job.status,
        "message": job.message,
        "alive": alive,
        "pid": job.pid,
        "params": job.params,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "in_flight": in_flight,
        "attempts": attempts[0],
        "attempts_admitted": attempts[1],
        "admitted": admitted[0],
        "failed": failed,
        "llm_calls": spend.calls,
        "tokens": spend.tokens,
        "cost_usd": round(spend.usd, 6),
        "rate_units_per_min": round(rate, 3),
        "eta_s": round(pending / rate * 60, 1) if rate > 0 and job.status != "done" and pending else None,
        "lean": hit_rate(store, job.id),
    }


def render_live(runner: JobRunner, title: str) -> Any:
    """The live view of ``autoform run`` (a rich renderable that fits the terminal's width): a bar of units
    concluded, then admitted, stated, failed, in flight, attempts, cost, tokens, rate and ETA (the ones that fit,
    in that order of need), and the units in flight."""
    from rich.text import Text

    mon = runner.monitor
    if mon is None:
        return Text(f"{title}: starting...")
    return _LiveView(runner, title, mon.snapshot())


class _LiveView:
    """Laid out at render time, for the width rich gives it."""

    def __init__(self, runner: JobRunner, title: str, snap: dict[str, Any]) -> None:
        self.runner, self.title, self.snap = runner, title, snap

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        from autoform.tables import fit_line

        snap, width = self.snap, options.max_width
        count = f"{snap['done']}/{snap['total']}"
        head = Table.grid(padding=(0, 1))
        bar = max(5, min(40, width - len(self.title) - len(count) - 2))
        head.add_row(
            Text(self.title, style="bold", overflow="ellipsis", no_wrap=True),
            ProgressBar(total=max(1, snap["total"]), completed=snap["done"], width=bar),
            Text(count),
        )
        yield head
        eta = "-" if snap["eta_s"] is None else time.strftime("%H:%M:%S", time.gmtime(snap["eta_s"]))
        yield fit_line(
            [
                (f"admitted {snap['admitted']}", "green"),
                (f"failed {snap['failed']}", "red"),
                (f"in flight {snap['in_flight']}", "yellow"),
                (f"${snap['cost_usd']:.4f}", ""),
                (f"ETA {eta}", ""),
                (f"stated {snap['stated']}", "cyan"),
                (f"attempts {snap['attempts']}", ""),
                (f"{snap['rate_per_min']:.1f} units/min", ""),
                (f"{snap['tokens']} tok", ""),
            ],
            width,
        )
        flying = snap["in_flight_units"]
        if flying:
            more = f" (+{len(flying) - 6} more)" if len(flying) > 6 else ""
            yield Text("working on: " + ", ".join(flying[:6]) + more, style="dim", overflow="ellipsis", no_wrap=True)
        if self.runner.stop.is_set():
            yield Text(f"stopping: {self.runner.fatal or self.runner.stop_reason}", style="yellow")
