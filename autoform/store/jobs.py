"""Jobs: their rows, parameters and outcome; the unit statuses a job sets as it starts, parks and ends; what a job
spent (LLM calls, tokens, attempts) and what it did, for its budget, summary and status."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from autoform.store.core import StoreCore
from autoform.store.models import Job, JobStatus, Unit, UnitStatus, _row

#: the statuses of a job that the next run of its book continues
UNFINISHED: tuple[JobStatus, ...] = (JobStatus.RUNNING, JobStatus.INTERRUPTED)


class LLMCallTokens(NamedTuple):
    """One LLM call of a job, as its budget counts it."""

    id: int
    model: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool


@dataclass(frozen=True)
class JobTotals:
    """What a job did, for its summary: attempts, admissions and LLM calls with their tokens."""

    attempts: int
    admitted: int
    llm_calls: int
    llm_cached: int
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class JobActivity:
    """What a job did and when, for ``autoform status``: attempts, admissions, units failed, the first and last
    moments of its work, and the units of its book still to do."""

    attempts: int
    attempts_admitted: int
    admitted: int
    failed_units: int
    open_units: int
    first_attempt_at: float | None
    last_attempt_at: float | None
    last_admitted_at: float | None
    first_call_at: float | None
    last_call_at: float | None


class JobOps(StoreCore):
    """Jobs: their rows, parameters and outcome, the unit statuses a job sets, and what a job spent and did."""

    def job(self, job_id: int) -> Job:
        return _row(Job, self.query("SELECT * FROM jobs WHERE id = ?", (job_id,))[0])

    def jobs(self, book_id: int | None = None) -> list[Job]:
        if book_id is None:
            return [_row(Job, r) for r in self.query("SELECT * FROM jobs ORDER BY id")]
        return [_row(Job, r) for r in self.query("SELECT * FROM jobs WHERE book_id = ? ORDER BY id", (book_id,))]

    # -- a job's life ------------------------------------------------------------------------------
    def unfinished_job(self, book_id: int) -> Job | None:
        """The book's latest job that did not finish (``running`` or ``interrupted``), if any."""
        rows = self.query(
            "SELECT * FROM jobs WHERE book_id = ? AND status IN (?, ?) ORDER BY id DESC LIMIT 1",
            (book_id, *UNFINISHED),
        )
        return _row(Job, rows[0]) if rows else None

    def start_job(self, book_id: int, params: str, pid: int) -> int:
        """A new ``running`` job of the book (``params``: its parameters as JSON) run by process ``pid``."""
        with self.tx() as c:
            cur = c.execute(
                "INSERT INTO jobs (book_id, status, params, started_at, pid) VALUES (?,?,?,?,?)",
                (book_id, JobStatus.RUNNING, params, time.time(), pid),
            )
            return int(cur.lastrowid or 0)

    def resume_job(self, job_id: int, params: str, pid: int) -> None:
        """The job is ``running`` again, in process ``pid`` with new parameters; its last message is cleared."""
        with self.tx() as c:
            c.execute(
                "UPDATE jobs SET status = ?, pid = ?, message = '', params = ? WHERE id = ?",
                (JobStatus.RUNNING, pid, params, job_id),
            )

    def set_job_params(self, job_id: int, params: str) -> None:
        """The job's parameters (JSON) as it actually runs with them (e.g. the slots a Ray cluster gave it)."""
        with self.tx() as c:
            c.execute("UPDATE jobs SET params = ? WHERE id = ?", (params, job_id))

    def finish_job(self, job_id: int, status: JobStatus, message: str = "") -> None:
        """Record how the job ended; a ``done`` or ``failed`` job gets its finishing time."""
        finished_at = time.time() if status in (JobStatus.DONE, JobStatus.FAILED) else None
        with self.tx() as c:
            c.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, message = ? WHERE id = ?",
                (status, finished_at, message, job_id),
            )

    # -- the unit statuses a job sets --------------------------------------------------------------
    def _move_units(self, book_id: int, old: UnitStatus, new: UnitStatus) -> None:
        with self.tx() as c:
            c.execute("UPDATE units SET status = ? WHERE book_id = ? AND status = ?", (new, book_id, old))

    def reset_working(self, book_id: int) -> None:
        """Units left mid-work (``working``) by a job that ended or died become ``pending`` again."""
        self._move_units(book_id, UnitStatus.WORKING, UnitStatus.PENDING)

    def reopen_failed(self, book_id: int) -> None:
        """The book's ``failed`` units become ``pending``: a new job retries them."""
        self._move_units(book_id, UnitStatus.FAILED, UnitStatus.PENDING)

    def reopen_lean_failures(self, book_id: int, job_id: int) -> None:
        """The units the job failed because Lean never answered (their last attempt in the job carries the
        reason ``lean_failure``) become ``pending``, not failed."""
        with self.tx() as c:
            c.execute(
                "UPDATE units SET status = ? WHERE book_id = ? AND status = ? AND id IN "
                "(SELECT a.unit_id FROM attempts a WHERE a.job_id = ? AND a.id = (SELECT MAX(b.id) FROM "
                "attempts b WHERE b.unit_id = a.unit_id AND b.job_id = a.job_id) AND a.reasons LIKE "
                "'%\"lean_failure\"%')",
                (UnitStatus.PENDING, book_id, UnitStatus.FAILED, job_id),
            )

    def skip_units(self, unit_ids: Iterable[int]) -> None:
        """These units are ``skipped``: no job works on them (a kind not formalized; units parked meanwhile)."""
        with self.tx() as c:
            for uid in unit_ids:
                c.execute("UPDATE units SET status = ? WHERE id = ?", (UnitStatus.SKIPPED, uid))

    def unskip_units(self, unit_ids: Iterable[int], status: UnitStatus) -> None:
        """Those of these units that are still ``skipped`` get ``status`` back (the end of a parking)."""
        with self.tx() as c:
            for uid in unit_ids:
                c.execute("UPDATE units SET status = ? WHERE id = ? AND status = ?", (status, uid, UnitStatus.SKIPPED))

    def units_with_status(self, book_id: int, status: UnitStatus) -> list[Unit]:
        """The book's units (present or not) with this status, in book order."""
        rows = self.query("SELECT * FROM units WHERE book_id = ? AND status = ? ORDER BY seq", (book_id, status))
        return [_row(Unit, r) for r in rows]

    def unit_status_counts(self, book_id: int) -> dict[str, int]:
        """How many of the book's present units have each status."""
        rows = self.query(
            "SELECT status, COUNT(*) FROM units WHERE book_id = ? AND present = 1 GROUP BY status", (book_id,)
        )
        return {r[0]: r[1] for r in rows}

    # -- what a job spent and did ------------------------------------------------------------------
    def job_attempts_since(self, job_id: int, after_id: int) -> tuple[int, int]:
        """How many attempts the job made after attempt ``after_id``, and the last one's id (0 if none)."""
        n, last = self.query("SELECT COUNT(*), MAX(id) FROM attempts WHERE id > ? AND job_id = ?", (after_id, job_id))[
            0
        ]
        return int(n), int(last or 0)

    def job_llm_calls_since(self, job_id: int, after_id: int) -> list[LLMCallTokens]:
        """The job's LLM calls after call ``after_id``, with their tokens."""
        rows = self.query(
            "SELECT id, model, prompt_tokens, completion_tokens, cached FROM llm_calls WHERE id > ? AND job_id = ?",
            (after_id, job_id),
        )
        return [LLMCallTokens(r[0], r[1], r[2] or 0, r[3] or 0, bool(r[4])) for r in rows]

    def job_tokens_by_model(self, job_id: int) -> list[tuple[str, int, int]]:
        """The job's uncached (paid) prompt and completion tokens, per model."""
        rows = self.query(
            "SELECT model, SUM(prompt_tokens), SUM(completion_tokens) FROM llm_calls WHERE job_id = ? AND cached = 0 "
            "GROUP BY model",
            (job_id,),
        )
        return [(r[0], r[1] or 0, r[2] or 0) for r in rows]

    def unit_job_tokens(self, job_id: int, unit_id: int) -> int:
        """The tokens of the unit's uncached LLM calls in the job (what its per-unit cap counts)."""
        row = self.query(
            "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM llm_calls "
            "WHERE job_id = ? AND unit_id = ? AND cached = 0",
            (job_id, unit_id),
        )
        return int(row[0][0])

    def unit_proof_spend(
        self, job_id: int, unit_id: int, roles: tuple[str, ...], *, since: float = 0.0
    ) -> tuple[int, int, float, int, float]:
        """What the unit's proof has cost in the job (from the moment ``since`` on: a person's re-opening):
        (uncached LLM calls of ``roles``, their tokens, their seconds, proof attempts Lean judged, Lean's seconds
        on them)."""
        marks = ",".join("?" * len(roles))
        calls, tokens, llm_s = self.query(
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens + completion_tokens), 0), COALESCE(SUM(elapsed_s), 0) "
            f"FROM llm_calls WHERE job_id = ? AND unit_id = ? AND cached = 0 AND role IN ({marks}) AND created_at >= ?",
            (job_id, unit_id, *roles, since),
        )[0]
        checks, lean_s = self.query(
            "SELECT COUNT(*), COALESCE(SUM(elapsed_s), 0) FROM attempts "
            "WHERE job_id = ? AND unit_id = ? AND stage = 'proof' AND superseded = 0 AND created_at >= ?",
            (job_id, unit_id, since),
        )[0]
        return int(calls), int(tokens), float(llm_s), int(checks), float(lean_s)

    def job_totals(self, job_id: int) -> JobTotals:
        """The job's attempts, admissions and LLM calls with their tokens."""
        attempts = self.query("SELECT COUNT(*) FROM attempts WHERE job_id = ?", (job_id,))[0][0]
        admitted = self.query("SELECT COUNT(*) FROM atlas_entries WHERE job_id = ?", (job_id,))[0][0]
        usage = self.query(
            "SELECT COUNT(*), COALESCE(SUM(cached),0), COALESCE(SUM(prompt_tokens),0), "
            "COALESCE(SUM(completion_tokens),0) FROM llm_calls WHERE job_id = ?",
            (job_id,),
        )[0]
        return JobTotals(attempts, admitted, usage[0], usage[1], usage[2], usage[3])

    def job_activity(self, job_id: int, book_id: int) -> JobActivity:
        """What the job did and when, and the units of its book still ``pending`` or ``working``."""
        attempts = self.query(
            "SELECT COUNT(*), COALESCE(SUM(admitted), 0), MIN(created_at), MAX(created_at) FROM attempts "
            "WHERE job_id = ?",
            (job_id,),
        )[0]
        admitted = self.query("SELECT COUNT(*), MAX(created_at) FROM atlas_entries WHERE job_id = ?", (job_id,))[0]
        failed = self.query(
            "SELECT COUNT(DISTINCT a.unit_id) FROM attempts a JOIN units u ON u.id = a.unit_id "
            "WHERE a.job_id = ? AND u.status = ?",
            (job_id, UnitStatus.FAILED),
        )[0][0]
        calls = self.query("SELECT MIN(created_at), MAX(created_at) FROM llm_calls WHERE job_id = ?", (job_id,))[0]
        open_units = self.query(
            "SELECT COUNT(*) FROM units WHERE book_id = ? AND present = 1 AND status IN (?, ?)",
            (book_id, UnitStatus.PENDING, UnitStatus.WORKING),
        )[0][0]
        return JobActivity(
            attempts=attempts[0],
            attempts_admitted=attempts[1],
            admitted=admitted[0],
            failed_units=failed,
            open_units=open_units,
            first_attempt_at=attempts[2],
            last_attempt_at=attempts[3],
            last_admitted_at=admitted[1],
            first_call_at=calls[0],
            last_call_at=calls[1],
        )

    # -- remote sessions ---------------------------------------------------------------------------
    def session_connection(self, busy_ms: int | None = None) -> sqlite3.Connection:
        """A new connection of its own (not this thread's), set up as the store sets up every connection: for
        a session that a remote worker drives (the Ray executor's store server); ``busy_ms``: its lock wait."""
        conn = self._connect()
        if busy_ms is not None:
            conn.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        return conn
