"""Running a benchmark through the real pipeline.

The evaluation has a workspace of its own (``--out DIR``, default ``<home>/eval/<benchmark>``): its store,
LLM cache and transcripts, so benchmark problems never enter the user's Atlas. Problems are stored as books of
*exercise* units, as ingest stores a textbook's exercises (the informal statement is the unit's statement, the
informal proof its proof, the problem's name its label); one book per distinct Lean header (header and helper
definitions), which is the Lean header of that book's checks. Each book is run by a job (the job's budgets,
``--jobs``, ``--max-attempts`` and resume apply), then Lean decides each drafted statement's equivalence to the
reference (:mod:`autoform.evaluation.equivalence`) and the verdict is posted (kind ``eval_result``). A problem
with that post is finished: a later ``autoform eval`` skips it.
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
from autoform.executors import EventFn
from autoform.ingest import IngestResult, RawUnit, store_book
from autoform.jobs import JobParams, JobRunner, JobSummary
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
    """Problems by Lean header, in order of first appearance."""
    out: dict[str, list[Problem]] = {}
    for p in problems:
        out.setdefault(p.lean_header, []).append(p)
    return out


def store_problems(store: Store, bench: Path, header: str, problems: list[Problem]) -> Book:
    """The book of these problems (kept with those stored by earlier runs of the same benchmark)."""
    slug = book_slug(bench, header)
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
    store_book(
        store,
        slug,
        IngestResult(title=f"{bench.name} [{first}]", source_kind="latex", root=str(bench), units=list(raw.values())),
    )
    found = store.book(slug)
    assert found is not None
    return found


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


def run_eval(
    settings: Settings,
    store: Store,
    bench: Path,
    problems: list[Problem],
    out: Path,
    params: JobParams,
    *,
    make_oracle: Callable[[Settings], Oracle],
    make_llm: Callable[[Settings], LLMClient],
    on_event: EventFn | None = None,
    on_group: Callable[[str, int, int], None] | None = None,
) -> list[JobSummary]:
    """Run every unfinished problem; returns the summaries of the jobs run (none when all were finished)."""
    summaries: list[JobSummary] = []
    llm: LLMClient | None = None
    for header, group in groups(problems).items():
        book = store_problems(store, bench, header, group)
        by_label = {u.label: u for u in store.units(book.id)}
        done = finished(store, book)
        todo = [p for p in group if by_label[p.name].id not in done]
        if on_group is not None:
            on_group(book.slug, len(group), len(todo))
        if not todo:
            continue
        gs = group_settings(settings, out, header)
        llm = llm or make_llm(gs)
        oracle = make_oracle(gs)
        try:
            job_id: int | None = None
            if any(by_label[p.name].status not in TERMINAL for p in todo):
                summary = _run_job(gs, store, book, oracle, llm, params, on_event)
                summaries.append(summary)
                job_id = summary.job_id
            for p in todo:
                unit = store.unit(by_label[p.name].id)
                if unit.status in TERMINAL and unit.status != UnitStatus.SKIPPED:
                    record(store, book, unit, p, oracle, job_id)
        finally:
            oracle.close()
        if summaries and summaries[-1].status != JobStatus.DONE:
            break  # stopped (budget, Ctrl-C, Lean or the LLM missing): the next run resumes
    return summaries


def _run_job(
    settings: Settings,
    store: Store,
    book: Book,
    oracle: Oracle,
    llm: LLMClient,
    params: JobParams,
    on_event: EventFn | None,
) -> JobSummary:
    """A job over the book's unconcluded problems. A new job retries failed units: those already concluded are
    parked (skipped) while it runs, and failed again after."""
    parked = [u.id for u in store.units(book.id) if u.status == UnitStatus.FAILED]
    store.skip_units(parked)
    try:
        return JobRunner(settings, store, book, oracle, llm, params, on_event=on_event).run()
    finally:
        store.unskip_units(parked, UnitStatus.FAILED)


def elapsed_since(t0: float) -> float:
    return round(time.monotonic() - t0, 3)
