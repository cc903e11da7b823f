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


class UnitSpending(BaseModel):
    """What a unit's work has cost in every job: Lean's checks of its candidates and their time, and its LLM
    calls (uncached ones by model, for the price)."""

    unit_id: int
    lean_checks: int = 0  # attempts Lean judged (superseded ones too: they were paid for)
    lean_s: float = 0.0
    llm_calls: int = 0  # uncached calls
    cached_calls: int = 0
    tokens_by_model: dict[str, tuple[int, int]] = {}  # model -> (prompt, completion) tokens of uncached calls


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

    def unit_spending(self, book_id: int, *, unit_id: int | None = None) -> dict[int, UnitSpending]:
        """unit id -> what its work cost, for every unit of the book (or only ``unit_id``) that has any attempt or
        LLM call."""
        only, params = (" AND u.id = ?", (book_id, unit_id)) if unit_id is not None else ("", (book_id,))
        out: dict[int, UnitSpending] = {}
        for uid, n, lean_s in self.query(
            "SELECT a.unit_id, COUNT(*), COALESCE(SUM(a.elapsed_s), 0) FROM attempts a "
            f"JOIN units u ON u.id = a.unit_id WHERE u.book_id = ?{only} GROUP BY a.unit_id",
            params,
        ):
            out[uid] = UnitSpending(unit_id=uid, lean_checks=int(n), lean_s=float(lean_s))
        for uid, model, cached, n, pt, ct in self.query(
            "SELECT c.unit_id, c.model, c.cached, COUNT(*), COALESCE(SUM(c.prompt_tokens), 0), "
            "COALESCE(SUM(c.completion_tokens), 0) FROM llm_calls c JOIN units u ON u.id = c.unit_id "
            f"WHERE u.book_id = ?{only} GROUP BY c.unit_id, c.model, c.cached",
            params,
        ):
            got = out.setdefault(uid, UnitSpending(unit_id=uid))
            if cached:
                got.cached_calls += int(n)
                continue
            got.llm_calls += int(n)
            before = got.tokens_by_model.get(model, (0, 0))
            got.tokens_by_model[model] = (before[0] + int(pt), before[1] + int(ct))
        return out

    def unit_closers(self, book_id: int, *, unit_id: int | None = None) -> dict[int, str]:
        """unit id -> how its Atlas entry was closed: the author of the admitted attempt (``stated`` for an entry
        without one), as :meth:`closed_by` counts them; for every unit of the book, or only ``unit_id``."""
        only, params = (" AND a.unit_id = ?", (book_id, unit_id)) if unit_id is not None else ("", (book_id,))
        rows = self.query(
            "SELECT a.unit_id, COALESCE(t.author, 'stated') FROM atlas_entries a "
            f"LEFT JOIN attempts t ON t.id = a.attempt_id WHERE a.book_id = ?{only}",
            params,
        )
        return {int(r[0]): str(r[1]) for r in rows}

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
