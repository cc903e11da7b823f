"""People in the loop: reviews of a statement's fidelity (``reviews``), Atlas entries withdrawn by a person's
decision and kept as history (``atlas_history``), and the units a person re-opens (``reopenings``: a running job
takes them up; a retry's proof budget). Each operation joins the caller's transaction
(:meth:`~autoform.store.core.StoreCore.tx`), so a command's whole change is one."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable

from pydantic import BaseModel

from autoform.store.core import StoreCore
from autoform.store.models import AtlasEntry, UnitStatus, _row

#: review verdicts
APPROVED, REJECTED = "approved", "rejected"
_ENTRY_COLUMNS = (
    "unit_id, book_id, decl_name, status, statement_lean, lean_code, attempt_id, job_id, model, attempts, created_at"
)


class Review(BaseModel):
    """A person's verdict on the fidelity of a unit's Lean statement (it holds for that statement only)."""

    id: int
    book_id: int
    unit_id: int
    decl_name: str
    statement_lean: str
    verdict: str
    reason: str = ""
    reviewer: str = ""
    created_at: float


class HistoryEntry(AtlasEntry):
    """An Atlas entry withdrawn by a person's decision, as it was, with when and why."""

    entry_id: int
    removed_at: float
    reason: str


class Reopening(BaseModel):
    """A unit a person re-opened: ``cause`` is ``retry``, ``reject``, ``state`` or ``recheck`` (it used an
    entry that left the Atlas); ``limits``: the proof budget a retry gave it (``[prove]`` fields), else empty."""

    id: int
    book_id: int
    unit_id: int
    cause: str
    limits: dict[str, int | float] = {}
    created_at: float


def _reopening(row: object) -> Reopening:
    d = dict(row)  # type: ignore[call-overload]
    return Reopening.model_validate({**d, "limits": json.loads(d["limits"] or "{}")})


class ReviewOps(StoreCore):
    """Reviews, the Atlas's history, and the units people re-open."""

    def add_review(
        self, entry: AtlasEntry, verdict: str, *, reason: str = "", reviewer: str = "", unit_id: int | None = None
    ) -> int:
        """Record a person's verdict on ``entry``'s statement."""
        with self.tx() as c:
            cur = c.execute(
                "INSERT INTO reviews (book_id, unit_id, decl_name, statement_lean, verdict, reason, reviewer, "
                "created_at) VALUES (?,?,?,?,?,?,?,?)",
                (
                    entry.book_id,
                    unit_id or entry.unit_id,
                    entry.decl_name,
                    entry.statement_lean,
                    verdict,
                    reason,
                    reviewer,
                    time.time(),
                ),
            )
            return int(cur.lastrowid or 0)

    def reviews(self, book_id: int, unit_id: int | None = None) -> list[Review]:
        """The book's reviews (of one unit), oldest first."""
        sql, params = "SELECT * FROM reviews WHERE book_id = ?", [book_id]
        if unit_id is not None:
            sql += " AND unit_id = ?"
            params.append(unit_id)
        return [_row(Review, r) for r in self.query(sql + " ORDER BY id", tuple(params))]

    def review_states(self, book_id: int) -> dict[int, str]:
        """Each Atlas entry's review state by unit id: ``approved`` when a person approved its very statement
        last, else ``unreviewed``; and ``rejected`` for a unit out of the Atlas whose last review rejected it."""
        latest: dict[int, Review] = {r.unit_id: r for r in self.reviews(book_id)}
        entries = {
            r[0]: r[1]
            for r in self.query("SELECT unit_id, statement_lean FROM atlas_entries WHERE book_id = ?", (book_id,))
        }
        states: dict[int, str] = {}
        for uid, statement in entries.items():
            r = latest.get(uid)
            ok = r is not None and r.verdict == APPROVED and r.statement_lean == statement
            states[uid] = APPROVED if ok else "unreviewed"
        for uid, r in latest.items():
            if uid not in entries and r.verdict == REJECTED:
                states[uid] = REJECTED
        return states

    def atlas_history(self, book_id: int, unit_id: int | None = None) -> list[HistoryEntry]:
        """The withdrawn entries of the book (of one unit), oldest first."""
        sql, params = "SELECT * FROM atlas_history WHERE book_id = ?", [book_id]
        if unit_id is not None:
            sql += " AND unit_id = ?"
            params.append(unit_id)
        rows = self.query(sql + " ORDER BY id", tuple(params))
        return [HistoryEntry.model_validate({**dict(r), "id": r["id"]}) for r in rows]

    def withdraw_entries(self, unit_ids: Iterable[int], reason: str) -> list[AtlasEntry]:
        """Move the units' Atlas entries to the history (with ``reason``): gone from the Atlas, kept there.
        Returns the entries withdrawn."""
        out: list[AtlasEntry] = []
        with self.tx() as c:
            for uid in unit_ids:
                row = c.execute("SELECT * FROM atlas_entries WHERE unit_id = ?", (uid,)).fetchone()
                if row is None:
                    continue
                entry = _row(AtlasEntry, row)
                c.execute(
                    f"INSERT INTO atlas_history (entry_id, {_ENTRY_COLUMNS}, removed_at, reason) "
                    f"SELECT id, {_ENTRY_COLUMNS}, ?, ? FROM atlas_entries WHERE unit_id = ?",
                    (time.time(), reason, uid),
                )
                c.execute("DELETE FROM atlas_entries WHERE unit_id = ?", (uid,))
                out.append(entry)
        return out

    def reopen_unit(
        self,
        unit_id: int,
        *,
        keep_lock: bool,
        stages: tuple[str, ...],
        cause: str,
        limits: dict[str, int | float] | None = None,
    ) -> None:
        """The unit is pending again: its attempts at ``stages`` are kept as history but no longer counted
        (superseded), its lock becomes a ``lock_superseded`` post unless ``keep_lock``, and the declaration
        names it reserved are free again (but its kept lock's). The re-opening is recorded with its ``cause``
        and the proof budget ``limits`` a retry gives (:meth:`reopenings_since`)."""
        marks = ",".join("?" * len(stages))
        with self.tx() as c:
            c.execute(
                "INSERT INTO reopenings (book_id, unit_id, cause, limits, created_at) "
                "SELECT book_id, id, ?, ?, ? FROM units WHERE id = ?",
                (cause, json.dumps(limits or {}), time.time(), unit_id),
            )
            if stages:
                c.execute(
                    f"UPDATE attempts SET superseded = 1 WHERE unit_id = ? AND stage IN ({marks})", (unit_id, *stages)
                )
            keep = ""
            if keep_lock:
                row = c.execute(
                    "SELECT json_extract(data, '$.name') FROM posts WHERE unit_id = ? AND kind = 'lock' "
                    "ORDER BY id DESC LIMIT 1",
                    (unit_id,),
                ).fetchone()
                keep = (row[0] or "") if row else ""
            else:
                c.execute("UPDATE posts SET kind = 'lock_superseded' WHERE unit_id = ? AND kind = 'lock'", (unit_id,))
            c.execute("DELETE FROM decl_names WHERE unit_id = ? AND name != ?", (unit_id, keep))
            c.execute("UPDATE units SET status = ? WHERE id = ?", (UnitStatus.PENDING, unit_id))

    def reopenings_since(self, book_id: int, after_id: int) -> list[Reopening]:
        """The book's re-openings after re-opening ``after_id`` (0: all), oldest first."""
        rows = self.query("SELECT * FROM reopenings WHERE book_id = ? AND id > ? ORDER BY id", (book_id, after_id))
        return [_reopening(r) for r in rows]

    def last_reopening_id(self, book_id: int) -> int:
        """The id of the book's latest re-opening (0 if none)."""
        return int(self.query("SELECT COALESCE(MAX(id), 0) FROM reopenings WHERE book_id = ?", (book_id,))[0][0])

    def last_reopening(self, unit_id: int, cause: str | None = None) -> Reopening | None:
        """The unit's latest re-opening (of that ``cause``), if any."""
        sql, params = "SELECT * FROM reopenings WHERE unit_id = ?", [unit_id]
        if cause is not None:
            sql += " AND cause = ?"
            params.append(cause)
        rows = self.query(sql + " ORDER BY id DESC LIMIT 1", tuple(params))
        return _reopening(rows[0]) if rows else None

    def users_of(self, book_id: int, unit_id: int, decl_name: str, *, in_prelude: bool) -> set[int]:
        """The units whose Atlas code uses the unit (transitively): those depending on it in the graph when its
        code is in their prelude (``in_prelude``: proved or defined), and those whose code names
        ``decl_name``; then, in turn, the users of each."""
        users: dict[int, list[int]] = {}
        for uid, dep in self.query(
            "SELECT d.unit_id, d.dep_id FROM unit_deps d JOIN units u ON u.id = d.unit_id WHERE u.book_id = ?",
            (book_id,),
        ):
            users.setdefault(dep, []).append(uid)
        entries = {
            r[0]: (r[1], r[2])
            for r in self.query("SELECT unit_id, decl_name, lean_code FROM atlas_entries WHERE book_id = ?", (book_id,))
        }
        found: set[int] = set()
        todo = [(unit_id, decl_name, in_prelude)]
        while todo:
            uid, name, prelude = todo.pop()
            short = name.rsplit(".", 1)[-1]
            pat = re.compile(rf"(?<![\w.']){re.escape(short)}(?![\w'])")
            near = set(users.get(uid, ())) if prelude else set()
            near |= {w for w, (_, code) in entries.items() if w != uid and pat.search(code)}
            for w in near - found - {unit_id}:
                if w in entries:
                    found.add(w)
                    todo.append((w, entries[w][0], True))
        return found

    def units_in_work(self, unit_ids: Iterable[int]) -> list[int]:
        """Those of the units that a job has in work (status ``working``)."""
        ids = list(unit_ids)
        if not ids:
            return []
        rows = self.query(
            f"SELECT id FROM units WHERE status = ? AND id IN ({','.join('?' * len(ids))})",
            (UnitStatus.WORKING, *ids),
        )
        return [r[0] for r in rows]

    def name_owner(self, book_id: int, name: str) -> int | None:
        """The unit that reserved ``name`` in the book or holds it in the Atlas, if any."""
        rows = self.query(
            "SELECT unit_id FROM decl_names WHERE book_id = ? AND name = ? UNION "
            "SELECT unit_id FROM atlas_entries WHERE book_id = ? AND decl_name = ?",
            (book_id, name, book_id, name),
        )
        return int(rows[0][0]) if rows else None
