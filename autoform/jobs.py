"""Batch formalization jobs: units in dependency order, each through reader -> drafter -> prover ->
gap-closer, every candidate judged by the admission gate, all state in the store (resumable).

Resume rules. A job that did not finish (``running`` after a crash, or ``interrupted``) is continued by the
next ``autoform run`` of the same book. Every step is one transaction: the reader's extraction, a locked
statement, a rejected attempt with its verdict, an admission (atlas entry + attempt + unit status + post).
So a kill at any moment loses at most the step in flight, which is redone (from the LLM reply cache), and a
unit is admitted at most once (``atlas_entries.unit_id`` is unique).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import networkx as nx
from pydantic import BaseModel, Field

from agents import AgentRun, Drafter, GapCloser, Prover, Reader
from autoform import graph as graphs
from autoform.atlas import book_namespace, write_atlas
from autoform.blackboard import Blackboard
from autoform.config import Settings
from autoform.lean.gate import (
    Candidate,
    Verdict,
    admit,
    admit_stated,
    check_statement,
    declared_name,
)
from autoform.lean.oracle import Oracle
from autoform.llm import LLMClient, LLMUnavailable, MalformedReply
from autoform.store import Book, Job, Store, Unit

DONE = ("proved", "defined")
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
        self.reader, self.drafter, self.prover, self.gap_closer = Reader(), Drafter(), Prover(), GapCloser()
        self._names_lock = threading.Lock()
        self.fatal: str | None = None

    # -- the job -----------------------------------------------------------------------------------
    def run(self) -> JobSummary:
        t0 = time.monotonic()
        job, resumed = start_or_resume(self.store, self.book, self.params)
        self.job = job
        if hasattr(self.oracle, "job_id"):  # the result cache counts checks per job
            self.oracle.job_id = job.id
        self.board = Blackboard(self.store, self.book.id, job.id)
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
            self.work_unit(unit)
        except LLMUnavailable as e:
            self.fatal = str(e)
            self.stop.set()
            self.store.set_unit_status(unit.id, "pending")
        except Exception as e:  # a bug must not lose the job: record it on the unit and go on
            self.board.post("job", "critique", f"internal error: {type(e).__name__}: {e}", unit_id=unit.id)
            self.store.set_unit_status(unit.id, "failed")
            self.on_event("failed", unit, f"internal error: {e}")

    # -- one unit ----------------------------------------------------------------------------------
    def _deps_lean(self, unit: Unit) -> list[dict[str, str]]:
        if unit.id not in self.graph:
            return []
        closure = nx.descendants(self.graph, unit.id)
        out = []
        for uid in sorted(closure, key=lambda n: self.graph.nodes[n]["seq"]):
            e = self.store.atlas_entry(uid)
            if e is not None and e.status in DONE:
                out.append({"name": e.decl_name, "statement": e.statement_lean, "code": e.lean_code})
        return out

    def work_unit(self, unit: Unit) -> None:
        self.store.set_unit_status(unit.id, "working")
        self.on_event("start", unit, "")
        deps = self._deps_lean(unit)
        prelude = "\n\n".join(d["code"] for d in deps)
        hops = graphs.hops(self.graph, unit.id) if unit.id in self.graph else {}
        run = AgentRun(self.settings, self.llm, self.board, unit, hops, namespace=self.namespace, deps_lean=deps)

        if self.board.latest(unit.id, "extraction") is None:
            self.reader.run(run)
        lock = self.board.latest(unit.id, "lock")
        kind = "definition" if unit.kind == "definition" else "theorem"
        if kind == "definition":
            self._definition(run, prelude)
            return
        if lock is None:
            lock_id = self._draft_statement(run, prelude)
            if lock_id is None:
                self._finish(unit, "failed", "no statement elaborated")
                return
            lock = self.board.latest(unit.id, "lock")
        assert lock is not None
        run.pinned_ids.add(lock.id)
        self._prove(run, prelude, lock.data["statement"], lock.data["elaborated_type"])

    def _attempts(self, unit: Unit, stage: str) -> list:
        return [a for a in self.store.attempts(unit.id, self.job.id) if a.stage == stage]

    def _unique_name(self, text: str, unit: Unit) -> str:
        """Rename the declaration if another unit of the book already owns the name."""
        name = declared_name(text) or ""
        with self._names_lock:
            taken = {r[0] for r in self.store.query(
                "SELECT decl_name FROM atlas_entries WHERE book_id = ? AND unit_id != ?", (self.book.id, unit.id))}
            taken |= {p.data.get("name") for p in self.board.read(kind="lock") if p.unit_id != unit.id}
        new, k = name, 2
        while new in taken:
            new, k = f"{name}_{k}", k + 1
        return text.replace(name, new, 1) if new != name else text

    def _draft_statement(self, run: AgentRun, prelude: str) -> int | None:
        unit = run.unit
        error = ""
        while len(self._attempts(unit, "statement")) < self.params.max_attempts and not self.stop.is_set():
            run.round = len(self._attempts(unit, "statement"))
            try:
                text, _ = self.drafter.run(run, previous_error=error)
            except MalformedReply as e:
                error = str(e)
                self._record(unit, "statement", "drafter", "", Verdict(admitted=False, reasons=[]), note=error)
                continue
            text = self._unique_name(text, unit)
            cand = Candidate(kind="theorem", namespace=self.namespace, statement=text, prelude=prelude)
            chk = check_statement(cand, self.oracle)
            verdict = Verdict(admitted=chk.elaborates, reasons=chk.reasons, module=chk.module,
                              messages=chk.messages, elaborated_type=chk.elaborated_type, elapsed_s=chk.elapsed_s)
            with self.store.tx():
                self._record(unit, "statement", "drafter", text, verdict)
                if chk.elaborates:
                    return self.board.post(
                        "drafter", "lock", text, unit_id=unit.id, round=run.round,
                        data={"statement": text, "name": cand.name, "elaborated_type": chk.elaborated_type},
                    )
            error = verdict.summary()
            self.on_event("statement_rejected", unit, error)
        return None

    def _definition(self, run: AgentRun, prelude: str) -> None:
        unit = run.unit
        error = ""
        while len(self._attempts(unit, "definition")) < self.params.max_attempts and not self.stop.is_set():
            run.round = len(self._attempts(unit, "definition"))
            try:
                text, _ = self.drafter.run(run, previous_error=error)
            except MalformedReply as e:
                error = str(e)
                self._record(unit, "definition", "drafter", "", Verdict(admitted=False), note=error)
                continue
            text = self._unique_name(text, unit)
            cand = Candidate(kind="definition", namespace=self.namespace, statement=text, prelude=prelude)
            verdict = admit(cand, self.oracle)
            if self._conclude(run, cand, verdict, "definition", "drafter", text):
                return
            error = verdict.summary()
        if not self.stop.is_set():
            self._finish(unit, "failed", error)

    def _prove(self, run: AgentRun, prelude: str, statement: str, locked_type: str) -> None:
        unit = run.unit
        while not self.stop.is_set():
            previous = self._attempts(unit, "proof")
            if len(previous) >= self.params.max_attempts:
                if not unit.proof.strip() and self._admit_stated(run, prelude, statement, locked_type):
                    return
                self._finish(unit, "failed", previous[-1].reasons[0]["message"] if previous and
                             previous[-1].reasons else "attempts exhausted")
                return
            run.round = len(previous)
            try:
                if not previous:
                    aux, proof, _ = self.prover.run(run, locked=statement)
                    author = "prover"
                else:
                    last = previous[-1]
                    aux, proof, _ = self.gap_closer.run(
                        run, locked=statement, failed_proof=last.lean_code, errors=_errors_text(last))
                    author = "gap_closer"
            except MalformedReply as e:
                self._record(unit, "proof", "prover" if not previous else "gap_closer", "",
                             Verdict(admitted=False), note=str(e))
                continue
            cand = Candidate(kind="theorem", namespace=self.namespace, statement=statement, proof=proof, aux=aux,
                             prelude=prelude, locked_type=locked_type)
            verdict = admit(cand, self.oracle)
            if self._conclude(run, cand, verdict, "proof", author, proof):
                return

    def _admit_stated(self, run: AgentRun, prelude: str, statement: str, locked_type: str) -> bool:
        """A statement the book does not prove, not proved by the agents either: admitted as *stated* (the
        AtlasStated library) when Lean confirms its locked statement."""
        cand = Candidate(kind="theorem", namespace=self.namespace, statement=statement, prelude=prelude,
                         locked_type=locked_type)
        verdict = admit_stated(cand, self.oracle)
        if not verdict.admitted:
            return False
        with self.store.tx() as c:
            c.execute(
                "INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code,"
                " job_id, model, attempts, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (run.unit.id, self.book.id, cand.name, "stated", statement.strip(),
                 f"{statement.rstrip()} := by\n  sorry", self.job.id, self.settings.llm.model_for("drafter"),
                 len(self.store.attempts(run.unit.id, self.job.id)), time.time()),
            )
            c.execute("UPDATE units SET status = 'stated' WHERE id = ?", (run.unit.id,))
            self.board.post("gate", "admission", f"{cand.full_name} admitted as stated (no proof in the book)",
                            unit_id=run.unit.id, data={"decl": cand.full_name, "stated": True})
        write_atlas(self.store, self.settings)
        self.on_event("stated", run.unit, cand.full_name)
        return True

    # -- recording -----------------------------------------------------------------------------------
    def _record(self, unit: Unit, stage: str, author: str, code: str, verdict: Verdict, note: str = "") -> int:
        reasons = [r.model_dump() for r in verdict.reasons]
        if note:
            reasons.append({"code": "malformed_reply", "message": note, "line": None})
        with self.store.tx() as c:
            n = c.execute("SELECT COUNT(*) FROM attempts WHERE unit_id = ? AND job_id = ? AND stage = ?",
                          (unit.id, self.job.id, stage)).fetchone()[0]
            aid = c.execute(
                "INSERT INTO attempts (job_id, unit_id, n, author, stage, lean_code, admitted, reasons, messages,"
                " axioms, toolchain, elapsed_s, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (self.job.id, unit.id, n + 1, author, stage, code, int(verdict.admitted), json.dumps(reasons),
                 json.dumps([m.model_dump() for m in verdict.messages]),
                 json.dumps(verdict.axioms) if verdict.axioms is not None else None, verdict.toolchain,
                 verdict.elapsed_s, time.time()),
            ).lastrowid
            self.board.post("gate", "verdict", _verdict_body(verdict, note), unit_id=unit.id, round=n,
                            data={"attempt": aid, "admitted": verdict.admitted, "stage": stage})
        return int(aid or 0)

    def _conclude(self, run: AgentRun, cand: Candidate, verdict: Verdict, stage: str, author: str,
                  code: str) -> bool:
        unit = run.unit
        if not verdict.admitted:
            self._record(unit, stage, author, code, verdict)
            self.on_event("rejected", unit, verdict.summary())
            return False
        lean_code = (cand.aux.strip() + "\n\n" if cand.aux.strip() else "") + (
            cand.statement.strip() if cand.kind == "definition"
            else f"{cand.statement.rstrip()} := by\n" + "\n".join(
                "  " + ln if ln.strip() else ln for ln in _proof_lines(cand)))
        status = "defined" if cand.kind == "definition" else "proved"
        with self.store.tx() as c:
            aid = self._record(unit, stage, author, code, verdict)
            n_attempts = c.execute("SELECT COUNT(*) FROM attempts WHERE unit_id = ? AND job_id = ?",
                                   (unit.id, self.job.id)).fetchone()[0]
            c.execute(
                "INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code,"
                " attempt_id, job_id, model, attempts, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (unit.id, self.book.id, cand.name, status, cand.statement.strip(), lean_code, aid, self.job.id,
                 self.settings.llm.model_for("prover" if stage == "proof" else "drafter"), n_attempts, time.time()),
            )
            c.execute("UPDATE units SET status = ? WHERE id = ?", (status, unit.id))
            self.board.post("gate", "admission", f"{cand.full_name} admitted ({status})", unit_id=unit.id,
                            data={"decl": cand.full_name, "attempt": aid})
        write_atlas(self.store, self.settings)
        self.on_event(status, unit, cand.full_name)
        return True

    def _finish(self, unit: Unit, status: str, detail: str) -> None:
        self.store.set_unit_status(unit.id, status)
        self.on_event(status, unit, detail)

    def _over_budget(self) -> bool:
        if self.params.budget_usd is None:
            return False
        return job_cost(self.store, self.settings, self.job.id) >= self.params.budget_usd

    def summary(self, job_id: int, resumed: bool, status: str, elapsed: float) -> JobSummary:
        return job_summary(self.store, self.book, job_id, resumed=resumed, status=status, elapsed=elapsed,
                           message=self.fatal or "")


def _proof_lines(c: Candidate) -> list[str]:
    from autoform.lean.gate import normalize_proof

    return normalize_proof(c.proof).splitlines()


def _errors_text(attempt: object) -> str:
    reasons = getattr(attempt, "reasons", [])
    messages = getattr(attempt, "messages", [])
    lines = [f"- {r['message']}" for r in reasons]
    lines += [f"- {m['severity']} at line {m['line']}: {m['text']}" for m in messages
              if m["severity"] in ("error", "warning")]
    return "\n".join(dict.fromkeys(lines)) or "(no message)"


def _verdict_body(v: Verdict, note: str) -> str:
    if v.admitted:
        return "Lean accepted the candidate."
    lines = [f"Rejected: {v.summary()}"] if v.reasons else []
    if note:
        lines.append(f"Malformed reply: {note}")
    for m in v.messages:
        if m.severity == "error":
            lines.append(f"error (line {m.line}): {m.text}")
    return "\n".join(lines) or "Rejected."


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
