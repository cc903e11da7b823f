"""Batch formalization jobs: the scheduler. Units go in dependency order through the per-unit pipeline
(:mod:`autoform.pipeline`), many in flight; all state is in the store, so a job is resumable.

Resume rules. A job that did not finish (``running`` after a crash, or ``interrupted``) is continued by the
next ``autoform run`` of the same book. Every step is one transaction: the reader's extraction, a locked
statement, a rejected attempt with its verdict, an admission (atlas entry + attempt + unit status + post).
So a kill at any moment loses at most the step in flight, which is redone (from the LLM reply cache), and a
unit is admitted at most once (``atlas_entries.unit_id`` is unique).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import networkx as nx
from pydantic import BaseModel, Field

from autoform import graph as graphs
from autoform.atlas import book_namespace, write_atlas
from autoform.config import Settings
from autoform.lean.oracle import Oracle
from autoform.llm import LLMClient, LLMUnavailable
from autoform.pipeline import UnitPipeline
from autoform.store import Book, Job, Store, Unit

TERMINAL = ("proved", "defined", "stated", "failed", "skipped")


class JobError(Exception):
    """The job cannot start or continue (unknown book, bad parameters); the message says why."""


class JobParams(BaseModel):
    max_attempts: int = Field(ge=1)
    jobs: int = Field(ge=1)
    budget_usd: float | None = Field(default=None, gt=0)


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
    elapsed_s: float
    message: str = ""


def start_or_resume(store: Store, book: Book, params: JobParams) -> tuple[Job, bool]:
    """The unfinished job of this book, continued; else a new one. Units left mid-work become pending."""
    with store.tx() as c:
        row = c.execute(
            "SELECT id FROM jobs WHERE book_id = ? AND status IN ('running', 'interrupted') ORDER BY id DESC LIMIT 1",
            (book.id,),
        ).fetchone()
        if row is not None:
            job_id, resumed = row[0], True
            c.execute("UPDATE jobs SET status = 'running', pid = ?, message = '' WHERE id = ?", (os.getpid(), job_id))
        else:
            job_id = c.execute(
                "INSERT INTO jobs (book_id, status, params, started_at, pid) VALUES (?,?,?,?,?)",
                (book.id, "running", params.model_dump_json(), time.time(), os.getpid()),
            ).lastrowid
            resumed = False
            c.execute("UPDATE units SET status = 'pending' WHERE book_id = ? AND status = 'failed'", (book.id,))
        c.execute("UPDATE units SET status = 'pending' WHERE book_id = ? AND status = 'working'", (book.id,))
    return store.job(int(job_id or 0)), resumed


class JobRunner:
    def __init__(self, settings: Settings, store: Store, book: Book, oracle: Oracle, llm: LLMClient,
                 params: JobParams, *, on_event: Callable[[str, Unit, str], None] | None = None) -> None:
        self.settings, self.store, self.book, self.oracle, self.llm = settings, store, book, oracle, llm
        self.params = params
        self.stop = threading.Event()
        self.on_event = on_event or (lambda kind, unit, detail: None)
        self.namespace = book_namespace(book)
        self.graph: nx.DiGraph = graphs.book_graph(store, book.id)
        self.fatal: str | None = None

    # -- the job -----------------------------------------------------------------------------------
    def run(self) -> JobSummary:
        t0 = time.monotonic()
        job, resumed = start_or_resume(self.store, self.book, self.params)
        self.job = job
        if hasattr(self.oracle, "job_id"):  # the result cache counts checks per job
            self.oracle.job_id = job.id
        self.pipeline = UnitPipeline(
            self.settings, self.store, self.book, job, self.oracle, self.llm, max_attempts=self.params.max_attempts,
            namespace=self.namespace, graph=self.graph, stop=self.stop, on_event=self.on_event)
        self.board = self.pipeline.board
        write_atlas(self.store, self.settings)  # repairs files after a crash between commit and write
        units = {u.id: u for u in self.store.units(self.book.id)}
        kinds = set(self.settings.job.formalize_kinds)
        with self.store.tx() as c:
            for u in units.values():
                if u.kind not in kinds and u.status == "pending":
                    c.execute("UPDATE units SET status = 'skipped' WHERE id = ?", (u.id,))
        units = {u.id: u for u in self.store.units(self.book.id)}
        order = [uid for uid in graphs.work_order(self.graph) if uid in units]
        todo = [uid for uid in order if units[uid].status not in TERMINAL]
        status = "done"
        try:
            self._schedule(todo, units)
        except KeyboardInterrupt:
            self.stop.set()
        if self.fatal or self.stop.is_set():
            status = "interrupted"
        with self.store.tx() as c:
            c.execute("UPDATE units SET status = 'pending' WHERE book_id = ? AND status = 'working'", (self.book.id,))
            c.execute("UPDATE jobs SET status = ?, finished_at = ?, message = ? WHERE id = ?",
                      (status, time.time() if status == "done" else None, self.fatal or "", job.id))
        write_atlas(self.store, self.settings)
        return self.summary(job.id, resumed, status, time.monotonic() - t0)

    def _schedule(self, todo: list[int], units: dict[int, Unit]) -> None:
        pending = list(todo)
        remaining = set(todo)
        in_flight: dict[Future, int] = {}
        with ThreadPoolExecutor(max_workers=self.params.jobs, thread_name_prefix="unit") as pool:
            while (pending or in_flight) and not self.stop.is_set():
                for uid in list(pending):
                    if len(in_flight) >= self.params.jobs:
                        break
                    deps = set(self.graph.successors(uid)) & remaining if uid in self.graph else set()
                    if deps:
                        continue
                    pending.remove(uid)
                    in_flight[pool.submit(self._work_guarded, units[uid])] = uid
                if not in_flight:
                    if pending:  # only cycles remain: take the earliest in book order
                        uid = pending.pop(0)
                        in_flight[pool.submit(self._work_guarded, units[uid])] = uid
                    continue
                done, _ = wait(in_flight, timeout=0.5, return_when=FIRST_COMPLETED)
                for f in done:
                    uid = in_flight.pop(f)
                    remaining.discard(uid)
                    f.result()
                if self._over_budget():
                    self.fatal = f"budget of {self.params.budget_usd} USD reached"
                    self.stop.set()
            if self.stop.is_set():
                for f in in_flight:
                    f.cancel()

    def _work_guarded(self, unit: Unit) -> None:
        if self.stop.is_set():
            return
        try:
            self.pipeline.work_unit(unit)
        except LLMUnavailable as e:
            self.fatal = str(e)
            self.stop.set()
            self.store.set_unit_status(unit.id, "pending")
        except Exception as e:  # a bug must not lose the job: record it on the unit and go on
            self.board.post("job", "critique", f"internal error: {type(e).__name__}: {e}", unit_id=unit.id)
            self.store.set_unit_status(unit.id, "failed")
            self.on_event("failed", unit, f"internal error: {e}")

    def _over_budget(self) -> bool:
        if self.params.budget_usd is None:
            return False
        return job_cost(self.store, self.settings, self.job.id) >= self.params.budget_usd

    def summary(self, job_id: int, resumed: bool, status: str, elapsed: float) -> JobSummary:
        return job_summary(self.store, self.book, job_id, resumed=resumed, status=status, elapsed=elapsed,
                           message=self.fatal or "")


def job_cost(store: Store, settings: Settings, job_id: int) -> float:
    rows = store.query(
        "SELECT model, SUM(prompt_tokens), SUM(completion_tokens) FROM llm_calls WHERE job_id = ? AND cached = 0 "
        "GROUP BY model", (job_id,))
    total = 0.0
    for model, pt, ct in rows:
        price = settings.llm.prices.get(model)
        if price:
            total += (pt or 0) / 1e6 * price[0] + (ct or 0) / 1e6 * price[1]
    return total


def unit_counts(store: Store, book_id: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in store.query("SELECT status, COUNT(*) FROM units WHERE book_id = ? AND present = 1 GROUP BY status",
                         (book_id,)):
        counts[r[0]] = r[1]
    return counts


def job_summary(store: Store, book: Book, job_id: int, *, resumed: bool = False, status: str | None = None,
                elapsed: float = 0.0, message: str = "") -> JobSummary:
    job = store.job(job_id)
    n_attempts = store.query("SELECT COUNT(*) FROM attempts WHERE job_id = ?", (job_id,))[0][0]
    admitted = store.query("SELECT COUNT(*) FROM atlas_entries WHERE job_id = ?", (job_id,))[0][0]
    usage = store.query(
        "SELECT COUNT(*), COALESCE(SUM(cached),0), COALESCE(SUM(prompt_tokens),0), COALESCE(SUM(completion_tokens),0)"
        " FROM llm_calls WHERE job_id = ?", (job_id,))[0]
    return JobSummary(
        job_id=job_id, book=book.slug, resumed=resumed, status=status or job.status,
        units=unit_counts(store, book.id), admitted_this_job=admitted, attempts=n_attempts, llm_calls=usage[0],
        llm_cached=usage[1], prompt_tokens=usage[2], completion_tokens=usage[3], elapsed_s=round(elapsed, 3),
        message=message or job.message,
    )
