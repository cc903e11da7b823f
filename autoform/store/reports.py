"""Read-only questions the outputs ask of the store: the site, the exports, transcripts, status and reports.

Also the one write the Atlas makes: :meth:`ReportOps.record_build`, the result of a ``lake build`` (``builds``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel

from autoform.store.core import StoreCore
from autoform.store.models import Unit, _row

#: attempt ids are asked for in chunks of this many (SQLite limits the number of parameters of a statement)
_CHUNK = 500


class LLMCall(BaseModel):
    """One LLM call as a transcript shows it: the request (JSON text, as sent) and the reply."""

    id: int
    job_id: int | None
    unit_id: int | None
    role: str
    model: str
    request: str
    response: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    elapsed_s: float = 0.0
    created_at: float


class CallUsage(BaseModel):
    """The tokens of one LLM call (a cached reply cost nothing)."""

    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False


class UnitEffort(BaseModel):
    """What was spent on one unit: its current attempts, Lean's time on all of them, and its LLM calls."""

    attempts: int  # attempts not superseded by a re-ingest
    attempts_lean_s: float  # Lean's time on every attempt, superseded ones too
    calls: list[CallUsage]


class ReportOps(StoreCore):
    """Read-only questions the outputs ask of the store: the site, the exports, transcripts, status and reports."""

    def book_slug(self, book_id: int) -> str:
        """The slug of the book with this id."""
        return str(self.query("SELECT slug FROM books WHERE id = ?", (book_id,))[0][0])

    def present_unit_by_label(self, book_id: int, label: str) -> Unit | None:
        """The book's present unit with this label (the first, if several have it), or None."""
        rows = self.query("SELECT * FROM units WHERE book_id = ? AND label = ? AND present = 1", (book_id, label))
        return _row(Unit, rows[0]) if rows else None

    def llm_calls_of_unit(self, unit_id: int, job_id: int | None = None) -> list[LLMCall]:
        """Every LLM call made for a unit (of one job, if given), in the order they were made."""
        where, params = (" AND job_id = ?", (job_id,)) if job_id is not None else ("", ())
        rows = self.query(f"SELECT * FROM llm_calls WHERE unit_id = ?{where} ORDER BY id", (unit_id, *params))
        return [_row(LLMCall, r) for r in rows]

    def unit_effort(self, unit_id: int) -> UnitEffort:
        """The attempts, Lean time and LLM calls spent on one unit (for the evaluation's figures)."""
        live = self.query("SELECT COUNT(*) FROM attempts WHERE unit_id = ? AND superseded = 0", (unit_id,))[0][0]
        lean_s = self.query("SELECT COALESCE(SUM(elapsed_s), 0) FROM attempts WHERE unit_id = ?", (unit_id,))[0][0]
        calls = [
            CallUsage(model=model, prompt_tokens=pt or 0, completion_tokens=ct or 0, cached=bool(cached))
            for model, pt, ct, cached in self.query(
                "SELECT model, prompt_tokens, completion_tokens, cached FROM llm_calls WHERE unit_id = ?", (unit_id,)
            )
        ]
        return UnitEffort(attempts=int(live), attempts_lean_s=float(lean_s), calls=calls)

    def latest_post_data(self, unit_id: int, kind: str) -> dict[str, Any] | None:
        """The data of the unit's latest post of this kind, or None when it has none."""
        rows = self.query(
            "SELECT data FROM posts WHERE unit_id = ? AND kind = ? ORDER BY id DESC LIMIT 1", (unit_id, kind)
        )
        return json.loads(rows[0][0]) if rows else None

    def attempt_toolchains(self, attempt_ids: list[int]) -> dict[int, str]:
        """attempt id -> the Lean toolchain it was checked with."""
        out: dict[int, str] = {}
        for i in range(0, len(attempt_ids), _CHUNK):
            chunk = attempt_ids[i : i + _CHUNK]
            rows = self.query(
                f"SELECT id, toolchain FROM attempts WHERE id IN ({','.join('?' * len(chunk))})", tuple(chunk)
            )
            out.update({r[0]: r[1] for r in rows})
        return out

    def record_build(self, ok: bool, command: list[str], output: str) -> None:
        """Record the result of an Atlas build (``lake build ...``) in ``builds``."""
        with self.tx() as c:
            c.execute(
                "INSERT INTO builds (ok, command, output, created_at) VALUES (?,?,?,?)",
                (int(ok), " ".join(command), output, time.time()),
            )

    def closed_by(self, book_id: int) -> dict[str, int]:
        """How the book's Atlas entries were closed: the author of each admitted attempt (``prover``,
        ``gap_closer``, ``automation``, ``decomposition``, ``library_search``, ...), counted; an entry without an
        attempt (stated, or written by a person) counts under ``stated``."""
        rows = self.query(
            "SELECT COALESCE(t.author, 'stated'), COUNT(*) FROM atlas_entries a "
            "LEFT JOIN attempts t ON t.id = a.attempt_id WHERE a.book_id = ? GROUP BY 1 ORDER BY 2 DESC, 1",
            (book_id,),
        )
        return {str(r[0]): int(r[1]) for r in rows}
