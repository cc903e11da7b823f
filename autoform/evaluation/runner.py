"""Running a benchmark through the real pipeline.

The evaluation has a workspace of its own (``--out DIR``, default ``<home>/eval/<benchmark>``): its store,
LLM cache and transcripts, so benchmark problems never enter the user's Atlas. Problems are stored as books of
*exercise* units, as ingest stores a textbook's exercises (the informal statement is the unit's statement, the
informal proof its proof, the problem's name its label); one book per distinct Lean header (header and helper
definitions), which is the Lean header of that book's checks. The benchmark gives the statement, so the
reader's extraction is the given text (no reader call). Each book is run by a job (the job's budgets, ``--jobs``,
``--max-attempts``, the executor and resume apply), then Lean decides each drafted statement's equivalence to
the reference (:mod:`autoform.evaluation.equivalence`) and the verdict is posted (kind ``eval_result``). A
problem with that post is finished: a later ``autoform eval`` skips it. Where asked, the reference statements
are proved too, in a book of their own (:mod:`autoform.evaluation.reference`).

Books of one import block run one after the other on one Lean backend started with those imports
(:mod:`autoform.evaluation.headers`): the rest of each header is a shared block the REPL elaborates once.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autoform.atlas import book_namespace
from autoform.config import Settings
from autoform.evaluation.bench import Problem
from autoform.evaluation.equivalence import decide
from autoform.evaluation.headers import HeaderOracles, split_header
from autoform.evaluation.reference import SUFFIX, concluded, lock_references, wants_reference
from autoform.executors import EventFn
from autoform.ingest import IngestResult, RawUnit, store_book
from autoform.jobs import JobParams, JobRunner, JobSummary
from autoform.jobs.budget import job_cost
from autoform.lean.cache import CachedOracle
from autoform.lean.oracle import Oracle
from autoform.llm import LLMClient
from autoform.store import TERMINAL, Book, JobStatus, Store, Unit, UnitStatus

RESULT = "eval_result"


def default_out(settings: Settings, bench: Path) -> Path:
    return settings.home / "eval" / bench.stem


def book_slug(bench: Path, header: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "-", bench.stem).strip("-").lower() or "bench"
    return f"{stem}-{hashlib.sha256(header.encode()).hexdigest()[:8]}"


def group_settings(settings: Settings, out: Path, header: str) -> Settings:
    """The user's settings, in the evaluation's workspace, with the benchmark's header for Lean."""
    lean = settings.lean.model_copy(update={"header": header, "project_dir": str(settings.lean_project)})
    return settings.model_copy(update={"home": out, "lean": lean})


def groups(problems: list[Problem]) -> dict[str, list[Problem]]:
    """Problems by Lean header, in order of first appearance, the headers of one import block together."""
    out: dict[str, list[Problem]] = {}
    for p in problems:
        out.setdefault(p.lean_header, []).append(p)
    first: dict[str, int] = {}
    for i, header in enumerate(out):
        first.setdefault(split_header(header)[0], i)
    return dict(sorted(out.items(), key=lambda kv: first[split_header(kv[0])[0]]))


def store_problems(store: Store, bench: Path, header: str, problems: list[Problem], *, reference: bool = False) -> Book:
    """The book of these problems (kept with those stored by earlier runs of the same benchmark); ``reference``:
    the book of their reference statements. Each unit's extraction is its given statement (no reader call)."""
    slug = book_slug(bench, header) + (SUFFIX if reference else "")
    book = store.book(slug)
    raw: dict[str, RawUnit] = {}
    if book is not None:
        for u in store.units(book.id):
            raw[u.label] = RawUnit(
                kind=u.kind,
                number=u.number,
                title=u.title,
                label=u.label,
                statement=u.statement,
                proof=u.proof,
                source=u.source,
            )
    for p in problems:
        if p.name not in raw:
            raw[p.name] = RawUnit(
                kind="exercise",
                number=str(len(raw) + 1),
                title=p.name,
                label=p.name,
                statement=p.informal,
                proof=p.informal_proof,
                source=f"{bench.name}:{p.line}",
            )
    first = header.splitlines()[0] if header.strip() else ""
    title = f"{bench.name} [{first}]" + (" (reference statements)" if reference else "")
    store_book(store, slug, IngestResult(title=title, source_kind="latex", root=str(bench), units=list(raw.values())))
    found = store.book(slug)
    assert found is not None
    given_extractions(store, found)
    return found


def given_extractions(store: Store, book: Book) -> None:
    """The benchmark gives each statement: it stands as the unit's extraction, so the reader is not asked."""
    with store.tx():
        for u in store.units(book.id):
            if store.latest_post_data(u.id, "extraction") is None:
                store.add_post(
                    book_id=book.id,
                    unit_id=u.id,
                    author="eval",
                    kind="extraction",
                    body=u.statement,
                    data={
                        "statement": u.statement,
                        "concepts": [],
                        "conventions": [],
                        "dependencies": [],
                        "llm_call": 0,
                    },
                )


def finished(store: Store, book: Book) -> dict[int, dict[str, Any]]:
    """Units whose evaluation is recorded: unit id -> the recorded verdict."""
    return {p.unit_id: p.data for p in store.posts(book.id, kind=RESULT) if p.unit_id is not None}


def record(store: Store, book: Book, unit: Unit, problem: Problem, oracle: Oracle, job_id: int | None) -> dict:
    """Lean's verdict on the unit's locked statement against the reference, posted as the unit's result."""
    lock = next(iter(reversed(store.posts(book.id, unit_id=unit.id, kind="lock"))), None)
    data: dict[str, Any] = {
        "problem": problem.name,
        "status": unit.status,
        "drafted": "",
        "fidelity": "",
        "faithful": None,
        "equivalence": "no_statement",
        "reason": "no statement elaborated",
        "checks": [],
        "equivalence_lean_s": 0.0,
    }
    if lock is not None:
        data["drafted"] = lock.data.get("statement", "")
        data["fidelity"] = lock.data.get("fidelity", "")
        crit = [
            c
            for c in store.posts(book.id, unit_id=unit.id, kind="critique")
            if c.data.get("lean", "").strip() == data["drafted"].strip()
        ]
        data["faithful"] = crit[-1].data.get("faithful") if crit else None
        data["critic_score"] = crit[-1].data.get("score") if crit else None
        eq = decide(
            oracle,
            header=problem.lean_header,
            namespace=book_namespace(book),
            reference=problem.formal,
            drafted=data["drafted"],
        )
        data.update(
            equivalence=eq.outcome,
            reason=eq.reason,
            equivalence_lean_s=round(eq.lean_s, 4),
            checks=[c.model_dump(exclude={"module"}) for c in eq.checks],
        )
    store.add_post(
        book_id=book.id,
        author="eval",
        kind=RESULT,
        unit_id=unit.id,
        job_id=job_id,
        body=f"{problem.name}: {data['equivalence']} ({data['reason']})"
        if data["reason"]
        else f"{problem.name}: {data['equivalence']}",
        data=data,
    )
    return data


class EvalRun:
    """One ``autoform eval`` over the problems: for each header (those of one import block together, so each
    block's Lean environment is started once: :class:`~autoform.evaluation.headers.HeaderOracles`), a job over
    the book of its drafted statements, Lean's equivalence verdicts, then (where asked) a job over the book of
    its reference statements. ``make_backend``: the configured Lean backend for given settings (not started, no
    result cache: each book's checks go through the cache of the evaluation's store)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        bench: Path,
        out: Path,
        params: JobParams,
        *,
        make_backend: Callable[[Settings], Oracle],
        make_llm: Callable[[Settings], LLMClient],
        prove_reference: bool = False,
        on_event: EventFn | None = None,
        on_group: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.settings, self.store, self.bench, self.out, self.params = settings, store, bench, out, params
        self.make_llm, self.prove_reference, self.on_event = make_llm, prove_reference, on_event
        self.on_group = on_group or (lambda slug, n, todo: None)
        self.oracles = HeaderOracles(group_settings(settings, out, ""), make_backend)
        self._llm: LLMClient | None = None

    def llm(self, gs: Settings) -> LLMClient:
        self._llm = self._llm or self.make_llm(gs)
        return self._llm

    def oracle(self, gs: Settings) -> Oracle:
        """The book's oracle: its header's checks on the shared backend of its imports, through the result cache."""
        return CachedOracle(self.oracles.oracle(gs.lean.header), self.store, gs)

    def job_params(self, book: Book) -> JobParams:
        """The job's parameters, with ``--budget-usd`` the whole evaluation's: what the evaluation's other jobs
        (every run) spent is taken from it (the book's unfinished job, resumed, counts its own spending)."""
        p = self.params
        if p.budget_usd is None:
            return p
        resumed = self.store.unfinished_job(book.id)
        spent = sum(
            job_cost(self.store, self.settings, j.id)
            for j in self.store.jobs()
            if resumed is None or j.id != resumed.id
        )
        return p.model_copy(update={"budget_usd": max(p.budget_usd - spent, 1e-9)})

    def run(self, problems: list[Problem]) -> list[JobSummary]:
        """Run every unfinished problem; the summaries of the jobs run (none when all were finished). Stops
        after a job that stopped (budget, Ctrl-C, Lean or the LLM missing): the next run resumes."""
        summaries: list[JobSummary] = []
        try:
            for header, group in groups(problems).items():
                for step in (self.drafted, self.references):
                    summary = step(header, group)
                    if summary is not None:
                        summaries.append(summary)
                        if summary.status != JobStatus.DONE:
                            return summaries
        finally:
            self.oracles.close()
        return summaries

    def drafted(self, header: str, group: list[Problem]) -> JobSummary | None:
        """The problems' statements drafted, proved and compared with the references by Lean."""
        book = store_problems(self.store, self.bench, header, group)
        by_label = {u.label: u for u in self.store.units(book.id)}
        done = finished(self.store, book)
        todo = [p for p in group if by_label[p.name].id not in done]
        self.on_group(book.slug, len(group), len(todo))
        if not todo:
            return None
        gs = group_settings(self.settings, self.out, header)
        oracle = self.oracle(gs)
        summary = None
        if any(by_label[p.name].status not in TERMINAL for p in todo):
            summary = _run_job(gs, self.store, book, oracle, self.llm(gs), self.job_params(book), self.on_event)
        for p in todo:
            unit = self.store.unit(by_label[p.name].id)
            if unit.status in TERMINAL and unit.status != UnitStatus.SKIPPED:
                record(self.store, book, unit, p, oracle, summary.job_id if summary else None)
        return summary

    def references(self, header: str, group: list[Problem]) -> JobSummary | None:
        """The problems' reference statements, locked as given and proved (only those asked for)."""
        refs = [p for p in group if wants_reference(p, self.prove_reference)]
        if not refs:
            return None
        book = store_problems(self.store, self.bench, header, refs, reference=True)
        by_label = {u.label: u for u in self.store.units(book.id)}
        open_ = [p for p in refs if not concluded(by_label[p.name].status)]
        self.on_group(book.slug, len(refs), len(open_))
        if not open_:
            return None
        gs = group_settings(self.settings, self.out, header)
        oracle = self.oracle(gs)
        if not lock_references(self.store, book, open_, oracle):
            return None
        wanted = {by_label[p.name].id for p in refs}
        unlocked = [  # units of earlier runs not asked for now and never locked: never drafted here
            u.id
            for u in self.store.units(book.id)
            if u.id not in wanted
            and u.status == UnitStatus.PENDING
            and self.store.latest_post_data(u.id, "lock") is None
        ]
        params = self.job_params(book)
        return _run_job(gs, self.store, book, oracle, self.llm(gs), params, self.on_event, park=unlocked)


def _run_job(
    settings: Settings,
    store: Store,
    book: Book,
    oracle: Oracle,
    llm: LLMClient,
    params: JobParams,
    on_event: EventFn | None,
    *,
    park: list[int] | None = None,
) -> JobSummary:
    """A job over the book's unconcluded problems. A new job retries failed units: those already concluded are
    parked (skipped) while it runs, and failed again after; ``park``: pending units left out of this job."""
    parked = [u.id for u in store.units(book.id) if u.status == UnitStatus.FAILED]
    store.skip_units(parked)
    store.skip_units(park or [])
    try:
        return JobRunner(settings, store, book, oracle, llm, params, on_event=on_event).run()
    finally:
        store.unskip_units(parked, UnitStatus.FAILED)
        store.unskip_units(park or [], UnitStatus.PENDING)


def elapsed_since(t0: float) -> float:
    return round(time.monotonic() - t0, 3)
