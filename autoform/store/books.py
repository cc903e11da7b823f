"""Books and their units: the book as read, each unit's status, and what re-ingest writes (the book, its units,
their dependencies, and the Lean work it withdraws from units whose statement changed)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable

from autoform.store.core import StoreCore
from autoform.store.models import Book, Unit, UnitContent, UnitStatus, _row

#: the columns of a unit that the book's text fills in (``refs`` and ``flags`` are stored beside them, as JSON)
CONTENT_FIELDS = (
    "kind",
    "number",
    "title",
    "label",
    "statement",
    "statement_raw",
    "proof",
    "chapter",
    "section",
    "source",
)


def content_values(unit: UnitContent) -> dict[str, str]:
    """A unit's content as the store keeps it: the text columns, and ``refs`` and ``flags`` as JSON."""
    values = {f: getattr(unit, f) for f in CONTENT_FIELDS}
    values["refs"] = json.dumps(unit.refs)
    values["flags"] = json.dumps(unit.flags)
    return values


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

    # -- writing a book as read (ingest) ----------------------------------------------------------------
    def upsert_book(self, slug: str, *, title: str, source_path: str, source_kind: str, warnings: list[str]) -> int:
        """Add the book ``slug`` or rewrite its header (title, source, time of ingest, warnings); its id."""
        with self.tx() as c:
            row = c.execute("SELECT id FROM books WHERE slug = ?", (slug,)).fetchone()
            fields = (title, source_path, source_kind, time.time(), json.dumps(warnings))
            if row is None:
                cur = c.execute(
                    "INSERT INTO books (slug, title, source_path, source_kind, ingested_at, warnings) "
                    "VALUES (?,?,?,?,?,?)",
                    (slug, *fields),
                )
                return int(cur.lastrowid or 0)
            c.execute(
                "UPDATE books SET title = ?, source_path = ?, source_kind = ?, ingested_at = ?, warnings = ? "
                "WHERE id = ?",
                (*fields, row[0]),
            )
            return int(row[0])

    def units_by_ident(self, book_id: int) -> dict[str, Unit]:
        """Every unit of the book, present or absent, by its identity across re-ingests."""
        return {u.ident: u for u in self.units(book_id, present_only=False)}

    def add_unit(self, book_id: int, ident: str, seq: int, unit: UnitContent) -> int:
        """A new unit at place ``seq`` of the book; its id."""
        values = content_values(unit)
        cols = ["book_id", "ident", "seq", *values]
        with self.tx() as c:
            cur = c.execute(
                f"INSERT INTO units ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                (book_id, ident, seq, *values.values()),
            )
            return int(cur.lastrowid or 0)

    def rewrite_unit(self, unit_id: int, seq: int, unit: UnitContent, *, reopen: bool) -> None:
        """Rewrite a unit's content and place, present again; ``reopen``: pending again (its statement changed)."""
        values = content_values(unit)
        sets = ", ".join(f"{k} = ?" for k in [*values, "seq", "present", *(["status"] if reopen else [])])
        params = [*values.values(), seq, 1, *([UnitStatus.PENDING] if reopen else [])]
        with self.tx() as c:
            c.execute(f"UPDATE units SET {sets} WHERE id = ?", (*params, unit_id))

    def mark_absent(self, unit_ids: Iterable[int]) -> None:
        """Units gone from the book: kept (with their work), marked absent."""
        with self.tx() as c:
            c.executemany("UPDATE units SET present = 0 WHERE id = ?", [(uid,) for uid in unit_ids])

    def set_deps(self, book_id: int, edges: Iterable[tuple[int, int, str]]) -> None:
        """Replace the book's dependencies by ``edges`` (unit, dependency, via)."""
        with self.tx() as c:
            c.execute("DELETE FROM unit_deps WHERE unit_id IN (SELECT id FROM units WHERE book_id = ?)", (book_id,))
            c.executemany("INSERT INTO unit_deps (unit_id, dep_id, via) VALUES (?,?,?)", list(edges))

    def withdraw_work(self, book_id: int, changed: list[int]) -> int:
        """Withdraw the Lean work that rested on the old text of the ``changed`` units: their atlas entry, locked
        statement, extraction and attempts; and, where a changed unit was in the Atlas (so its Lean code was in
        the prelude of every unit depending on it, transitively), the entry, lock and attempts of those
        dependents. Nothing is deleted from the history: attempts are marked superseded, locks and extractions
        become ``lock_superseded`` / ``extraction_superseded`` posts, and an ``invalidation`` post keeps the
        withdrawn entry's Lean. The units are pending again, so the next run redoes them. Returns how many units
        lost work."""
        if not changed:
            return 0
        with self.tx() as c:
            reasons = _withdrawal_reasons(c, book_id, changed)
            return sum(_withdraw_unit(c, book_id, uid, reason, own=uid in changed) for uid, reason in reasons.items())

    def add_reader_deps(self, unit_id: int, dep_ids: Iterable[int]) -> None:
        """Dependencies of the unit that the reader agent found in its text ("by Lemma 1.3") and the parser
        missed, as graph edges (``via = 'reader'``); an edge already there is kept as it is."""
        with self.tx() as c:
            for dep in dep_ids:
                c.execute(
                    "INSERT OR IGNORE INTO unit_deps (unit_id, dep_id, via) VALUES (?,?,'reader')", (unit_id, dep)
                )


def _withdrawal_reasons(c: sqlite3.Connection, book_id: int, changed: list[int]) -> dict[int, str]:
    """The units that lose their Lean work, with why: the changed ones, and the dependents (transitively) of
    those that were in the Atlas, whose prelude held them."""
    users: dict[int, list[int]] = {}
    for uid, dep in c.execute(
        "SELECT d.unit_id, d.dep_id FROM unit_deps d JOIN units u ON u.id = d.unit_id WHERE u.book_id = ?", (book_id,)
    ):
        users.setdefault(dep, []).append(uid)
    why: dict[int, str] = {uid: "its statement changed on re-ingest" for uid in changed}
    for uid in changed:
        row = c.execute("SELECT status FROM atlas_entries WHERE unit_id = ?", (uid,)).fetchone()
        if row is None or row[0] not in (UnitStatus.PROVED, UnitStatus.DEFINED):
            continue  # not in anyone's prelude
        todo = list(users.get(uid, ()))
        while todo:
            w = todo.pop()
            if w in why:
                continue
            why[w] = f"unit {uid}, in its Lean prelude, changed on re-ingest"
            todo.extend(users.get(w, ()))
    return why


def _withdraw_unit(c: sqlite3.Connection, book_id: int, uid: int, reason: str, *, own: bool) -> bool:
    """Withdraw one unit's Lean work (see :meth:`BookOps.withdraw_work`); whether it had any (or changed itself)."""
    entry = c.execute("SELECT * FROM atlas_entries WHERE unit_id = ?", (uid,)).fetchone()
    kinds = ("lock", "extraction") if own else ("lock",)
    marks = ",".join("?" * len(kinds))
    posts = c.execute(f"SELECT id FROM posts WHERE unit_id = ? AND kind IN ({marks})", (uid, *kinds)).fetchall()
    attempts = c.execute("SELECT COUNT(*) FROM attempts WHERE unit_id = ? AND superseded = 0", (uid,)).fetchone()[0]
    if not own and entry is None and not posts and not attempts:
        return False
    c.execute("UPDATE attempts SET superseded = 1 WHERE unit_id = ?", (uid,))
    c.execute(f"UPDATE posts SET kind = kind || '_superseded' WHERE unit_id = ? AND kind IN ({marks})", (uid, *kinds))
    c.execute("DELETE FROM atlas_entries WHERE unit_id = ?", (uid,))
    c.execute("DELETE FROM decl_names WHERE unit_id = ?", (uid,))
    c.execute("UPDATE units SET status = ? WHERE id = ? AND status != ?", (UnitStatus.PENDING, uid, UnitStatus.PENDING))
    old = {k: entry[k] for k in ("decl_name", "status", "statement_lean", "lean_code", "job_id")} if entry else None
    body = f"Lean work withdrawn: {reason}" + (
        f"; the Atlas entry {old['decl_name']} ({old['status']}) is kept here" if old else ""
    )
    c.execute(
        "INSERT INTO posts (book_id, unit_id, author, kind, body, data, created_at) VALUES (?,?,?,?,?,?,?)",
        (
            book_id,
            uid,
            "ingest",
            "invalidation",
            body,
            json.dumps({"reason": reason, "entry": old, "attempts": attempts}),
            time.time(),
        ),
    )
    return True
