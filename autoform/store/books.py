"""Books and their units: the book as read, and each unit's status."""

from __future__ import annotations

from autoform.store.core import StoreCore
from autoform.store.models import Book, Unit, _row


class BookOps(StoreCore):
    """Books and their units: the book as read, and each unit's status."""

    def book(self, slug: str) -> Book | None:
        rows = self.query("SELECT * FROM books WHERE slug = ?", (slug,))
        return _row(Book, rows[0]) if rows else None

    def books(self) -> list[Book]:
        return [_row(Book, r) for r in self.query("SELECT * FROM books ORDER BY slug")]

    def units(self, book_id: int, *, present_only: bool = True) -> list[Unit]:
        sql = "SELECT * FROM units WHERE book_id = ?" + (" AND present = 1" if present_only else "")
        return [_row(Unit, r) for r in self.query(sql + " ORDER BY seq", (book_id,))]

    def unit(self, unit_id: int) -> Unit:
        rows = self.query("SELECT * FROM units WHERE id = ?", (unit_id,))
        if not rows:
            raise KeyError(unit_id)
        return _row(Unit, rows[0])

    def deps(self, book_id: int) -> list[tuple[int, int, str]]:
        rows = self.query(
            "SELECT d.unit_id, d.dep_id, d.via FROM unit_deps d JOIN units u ON u.id = d.unit_id "
            "WHERE u.book_id = ? ORDER BY d.unit_id, d.dep_id",
            (book_id,),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def set_unit_status(self, unit_id: int, status: str) -> None:
        with self.tx() as c:
            c.execute("UPDATE units SET status = ? WHERE id = ?", (status, unit_id))
