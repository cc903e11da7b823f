"""What a job did, as its summary (the end of ``autoform run``) and its status (``autoform status``), read from
the store; and what people did to a book (reviews, hints, statements, retries: :func:`people_report`)."""

from __future__ import annotations

from typing import Any, TypedDict

from autoform.config import Settings
from autoform.jobs.budget import Spend, job_cost
from autoform.jobs.lifecycle import job_process_alive
from autoform.jobs.model import JobSummary
from autoform.store import Book, Job, JobStatus, Store, UnitStatus
from autoform.store.jobs import JobActivity
from autoform.store.review import APPROVED, REJECTED


class InFlight(TypedDict):
    id: int
    unit: str
    label: str


class JobState(TypedDict):
    """What ``autoform status --json`` reports for one job."""

    id: int
    status: str
    message: str
    alive: bool
    pid: int | None
    params: dict[str, Any]
    started_at: float
    finished_at: float | None
    in_flight: list[InFlight]
    attempts: int
    attempts_admitted: int
    admitted: int
    failed: int
    llm_calls: int
    tokens: int
    cost_usd: float
    rate_units_per_min: float
    eta_s: float | None
    lean: dict[str, float]


def unit_counts(store: Store, book_id: int) -> dict[str, int]:
    """How many of the book's units have each status."""
    return store.unit_status_counts(book_id)


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
    totals = store.job_totals(job_id)
    return JobSummary(
        job_id=job_id,
        book=book.slug,
        resumed=resumed,
        status=status or job.status,
        units=unit_counts(store, book.id),
        admitted_this_job=totals.admitted,
        attempts=totals.attempts,
        llm_calls=totals.llm_calls,
        llm_cached=totals.llm_cached,
        prompt_tokens=totals.prompt_tokens,
        completion_tokens=totals.completion_tokens,
        elapsed_s=round(elapsed, 3),
        cost_usd=round(job_cost(store, settings, job_id), 6) if settings is not None else 0.0,
        message=message or job.message,
    )


def _rate_per_min(activity: JobActivity) -> float:
    """Units concluded (admitted or failed) per minute while the job was active."""
    starts = [t for t in (activity.first_attempt_at, activity.first_call_at) if t is not None]
    ends = [t for t in (activity.last_attempt_at, activity.last_call_at, activity.last_admitted_at) if t is not None]
    active_s = (max(ends) - min(starts)) if starts and ends else 0.0
    concluded = activity.admitted + activity.failed_units
    return concluded / active_s * 60 if active_s > 0 else 0.0


def _in_flight(store: Store, job: Job) -> list[InFlight]:
    return [
        InFlight(id=u.id, unit=u.display, label=u.label)
        for u in store.units_with_status(job.book_id, UnitStatus.WORKING)
    ]


def job_status(store: Store, settings: Settings, job: Job) -> JobState:
    """What ``autoform status --json`` reports for one job: state, units in flight, attempts, admissions,
    spending, rate (units concluded per minute while the job was active) and ETA."""
    from autoform.lean.cache import hit_rate

    alive = job.status == JobStatus.RUNNING and job_process_alive(job.pid)
    activity = store.job_activity(job.id, job.book_id)
    spend = Spend(store, settings, job.id)
    spend.refresh()
    rate = _rate_per_min(activity)
    pending = activity.open_units
    return JobState(
        id=job.id,
        status=job.status,
        message=job.message,
        alive=alive,
        pid=job.pid,
        params=job.params,
        started_at=job.started_at,
        finished_at=job.finished_at,
        in_flight=_in_flight(store, job) if alive else [],
        attempts=activity.attempts,
        attempts_admitted=activity.attempts_admitted,
        admitted=activity.admitted,
        failed=activity.failed_units,
        llm_calls=spend.calls,
        tokens=spend.tokens,
        cost_usd=round(spend.usd, 6),
        rate_units_per_min=round(rate, 3),
        eta_s=round(pending / rate * 60, 1) if rate > 0 and job.status != JobStatus.DONE and pending else None,
        lean=hit_rate(store, job.id),
    )


def people_report(store: Store, book: Book) -> dict[str, int | float]:
    """What people did to the book: reviews (approved, rejected, the share of the Atlas reviewed), hints,
    statements, retries, entries withdrawn."""
    states = store.review_states(book.id)
    entries = len(store.atlas_entries(book.id))
    approved = sum(1 for s in states.values() if s == APPROVED)
    reviews = store.reviews(book.id)
    posts = [p for p in store.posts(book.id) if p.author == "person"]
    return {
        "reviewed": approved,
        "atlas_entries": entries,
        "reviewed_share": round(approved / entries, 4) if entries else 0.0,
        "approvals": sum(1 for r in reviews if r.verdict == APPROVED),
        "rejections": sum(1 for r in reviews if r.verdict == REJECTED),
        "hints": sum(1 for p in posts if p.kind == "hint" and not p.data),
        "statements": sum(1 for p in posts if p.kind in ("lock", "lock_superseded")),
        "retries": sum(1 for p in posts if p.kind == "hint" and p.data.get("retry")),
        "withdrawn": len(store.atlas_history(book.id)),
    }
