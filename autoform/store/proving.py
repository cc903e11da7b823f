"""Attempts, reserved declaration names and the Atlas entries that Lean admitted."""

from __future__ import annotations

from autoform.store.core import StoreCore
from autoform.store.models import AtlasEntry, Attempt, _row


class ProvingOps(StoreCore):
    """Attempts, reserved declaration names and the Atlas entries that Lean admitted."""

    def attempts(self, unit_id: int, job_id: int | None = None, *, superseded: bool = False) -> list[Attempt]:
        """The unit's attempts (of one job), oldest first; ``superseded``: also those made for a statement that
        re-ingest has since changed (history only, never counted or reused)."""
        cond = "" if superseded else " AND superseded = 0"
        if job_id is None:
            rows = self.query(f"SELECT * FROM attempts WHERE unit_id = ?{cond} ORDER BY id", (unit_id,))
        else:
            rows = self.query(
                f"SELECT * FROM attempts WHERE unit_id = ? AND job_id = ?{cond} ORDER BY id", (unit_id, job_id)
            )
        return [_row(Attempt, r) for r in rows]

    def atlas_entries(self, book_id: int) -> list[AtlasEntry]:
        rows = self.query(
            "SELECT a.* FROM atlas_entries a JOIN units u ON u.id = a.unit_id WHERE a.book_id = ? ORDER BY u.seq",
            (book_id,),
        )
        return [_row(AtlasEntry, r) for r in rows]

    def atlas_entry(self, unit_id: int) -> AtlasEntry | None:
        rows = self.query("SELECT * FROM atlas_entries WHERE unit_id = ?", (unit_id,))
        return _row(AtlasEntry, rows[0]) if rows else None

    def reserve_name(self, book_id: int, unit_id: int, name: str) -> str:
        """``name``, or ``name_2``, ``name_3``, ... : the first that no other unit of the book has reserved,
        reserved for ``unit_id`` in one transaction (so two workers, threads or Ray nodes, never pick the same
        declaration name)."""
        with self.tx() as c:
            candidate, k = name, 2
            while True:
                c.execute(
                    "INSERT OR IGNORE INTO decl_names (book_id, name, unit_id) VALUES (?,?,?)",
                    (book_id, candidate, unit_id),
                )
                owner = c.execute(
                    "SELECT unit_id FROM decl_names WHERE book_id = ? AND name = ?", (book_id, candidate)
                ).fetchone()[0]
                taken = c.execute(
                    "SELECT 1 FROM atlas_entries WHERE book_id = ? AND decl_name = ? AND unit_id != ?",
                    (book_id, candidate, unit_id),
                ).fetchone()
                if owner == unit_id and taken is None:
                    return candidate
                candidate, k = f"{name}_{k}", k + 1
