"""Ingest: read a textbook (LaTeX root, directory, or PDF) and store its units and dependencies."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from pydantic import BaseModel, Field

from autoform.ingest.latex import IngestError, Limits, ingest_latex
from autoform.ingest.model import IngestResult, RawUnit
from autoform.store import Store


class IngestSummary(BaseModel):
    book: str
    units: int
    added: int
    updated: int
    unchanged: int
    removed: int
    edges: int
    invalidated: int = 0  # units whose Lean work re-ingest withdrew (a changed statement, or a changed prelude)
    unresolved_refs: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


def read_book(path: Path, *, env_map: dict[str, str] | None = None, limits: Limits | None = None) -> IngestResult:
    """Parse a book without touching the store (within ``limits``: file size, units, nesting, expansion work,
    open inputs, the directories inputs may come from)."""
    if not path.exists():
        raise IngestError(f"{path}: no such file or directory")
    if path.suffix.lower() == ".pdf":
        try:
            from autoform.ingest.pdf import ingest_pdf
        except ImportError as e:
            raise IngestError(
                f"{path}: PDF ingest is not available in this install ({e}); pass the LaTeX source instead"
            ) from e

        return ingest_pdf(path)
    return ingest_latex(path, env_map=env_map, limits=limits)


_CONTENT_FIELDS = (
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


def store_book(store: Store, slug: str, result: IngestResult) -> IngestSummary:
    """Write a parsed book in one transaction. Units keep their id (and the work attached to them) when their
    identity (label, else kind+number) is unchanged; units gone from the book are marked absent, not deleted."""
    summary = IngestSummary(
        book=slug,
        units=len(result.units),
        added=0,
        updated=0,
        unchanged=0,
        removed=0,
        edges=0,
        warnings=list(result.warnings),
    )
    with store.tx() as c:
        row = c.execute("SELECT id FROM books WHERE slug = ?", (slug,)).fetchone()
        if row is None:
            book_id = c.execute(
                "INSERT INTO books (slug, title, source_path, source_kind, ingested_at, warnings) VALUES (?,?,?,?,?,?)",
                (slug, result.title, result.root, result.source_kind, time.time(), json.dumps(result.warnings)),
            ).lastrowid
        else:
            book_id = row[0]
            c.execute(
                "UPDATE books SET title = ?, source_path = ?, source_kind = ?, ingested_at = ?, warnings = ? "
                "WHERE id = ?",
                (result.title, result.root, result.source_kind, time.time(), json.dumps(result.warnings), book_id),
            )
        existing = {r["ident"]: r for r in c.execute("SELECT * FROM units WHERE book_id = ?", (book_id,))}
        seen: dict[str, int] = {}
        ids: list[int] = []
        changed_statements: list[int] = []
        for seq, u in enumerate(result.units):
            ident = u.ident or f"{u.kind}@{seq}"
            if ident in seen:  # duplicate label or number: keep both, disambiguated
                ident = f"{ident}#{seq}"
            values = {f: getattr(u, f) for f in _CONTENT_FIELDS}
            values["refs"] = json.dumps(u.refs)
            old = existing.get(ident)
            if old is None:
                cols = ["book_id", "ident", "seq", *values]
                uid = c.execute(
                    f"INSERT INTO units ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    (book_id, ident, seq, *values.values()),
                ).lastrowid
                summary.added += 1
            else:
                uid = old["id"]
                # where the unit sits (its source span) is rewritten but is not a change of the unit
                changed = (
                    any(old[k] != v for k, v in values.items() if k not in ("refs", "source")) or not old["present"]
                )
                sets = ", ".join(f"{k} = ?" for k in values)
                extra = ", status = 'pending'" if changed and old["statement"] != u.statement else ""
                if old["statement"] != u.statement:
                    changed_statements.append(int(uid))
                c.execute(
                    f"UPDATE units SET {sets}, seq = ?, present = 1{extra} WHERE id = ?", (*values.values(), seq, uid)
                )
                if changed:
                    summary.updated += 1
                else:
                    summary.unchanged += 1
            seen[ident] = int(uid or 0)
            ids.append(int(uid or 0))
        gone = [r["id"] for k, r in existing.items() if k not in seen and r["present"]]
        for uid in gone:
            c.execute("UPDATE units SET present = 0 WHERE id = ?", (uid,))
        summary.removed = len(gone)
        # dependencies, recomputed from scratch for this book
        c.execute("DELETE FROM unit_deps WHERE unit_id IN (SELECT id FROM units WHERE book_id = ?)", (book_id,))
        by_label = {lab: ids[k] for k, u in reversed(list(enumerate(result.units))) for lab in u.labels}
        by_label.update({u.label: ids[k] for k, u in enumerate(result.units) if u.label})
        by_number = {(u.kind, u.number): ids[k] for k, u in enumerate(result.units) if u.number}
        any_number = {u.number: ids[k] for k, u in enumerate(result.units) if u.number}
        for k, u in enumerate(result.units):
            deps: dict[int, str] = {}
            for lab in u.refs:
                if lab in by_label:
                    deps.setdefault(by_label[lab], "ref")
                elif lab not in summary.unresolved_refs:
                    summary.unresolved_refs.append(lab)
            for kind, number in u.text_refs:
                target = by_number.get((kind, number)) or any_number.get(number)
                if target is not None:
                    deps.setdefault(target, "text")
            deps.pop(ids[k], None)
            for dep, via in deps.items():
                c.execute("INSERT INTO unit_deps (unit_id, dep_id, via) VALUES (?,?,?)", (ids[k], dep, via))
                summary.edges += 1
        summary.invalidated = invalidate(c, book_id, changed_statements)
    return summary


def invalidate(c: sqlite3.Connection, book_id: int, changed: list[int]) -> int:
    """Withdraw the Lean work that rested on the old text of the ``changed`` units (inside the caller's
    transaction): their atlas entry, locked statement, extraction and attempts; and, where a changed unit was in
    the Atlas (so its Lean code was in the prelude of every unit depending on it, transitively), the entry, lock
    and attempts of those dependents. Nothing is deleted from the history: attempts are marked superseded, locks
    and extractions become ``lock_superseded`` / ``extraction_superseded`` posts, and an ``invalidation`` post
    keeps the withdrawn entry's Lean. The units are pending again, so the next run redoes them. Returns how many
    units lost work."""
    if not changed:
        return 0
    users: dict[int, list[int]] = {}
    for uid, dep in c.execute(
        "SELECT d.unit_id, d.dep_id FROM unit_deps d JOIN units u ON u.id = d.unit_id WHERE u.book_id = ?", (book_id,)
    ):
        users.setdefault(dep, []).append(uid)
    why: dict[int, str] = {uid: "its statement changed on re-ingest" for uid in changed}
    for uid in changed:
        row = c.execute("SELECT status FROM atlas_entries WHERE unit_id = ?", (uid,)).fetchone()
        if row is None or row[0] not in ("proved", "defined"):
            continue  # not in anyone's prelude
        todo = list(users.get(uid, ()))
        while todo:
            w = todo.pop()
            if w in why:
                continue
            why[w] = f"unit {uid}, in its Lean prelude, changed on re-ingest"
            todo.extend(users.get(w, ()))
    n = 0
    for uid, reason in why.items():
        own = uid in changed
        entry = c.execute("SELECT * FROM atlas_entries WHERE unit_id = ?", (uid,)).fetchone()
        kinds = ("lock", "extraction") if own else ("lock",)
        posts = c.execute(
            f"SELECT id FROM posts WHERE unit_id = ? AND kind IN ({','.join('?' * len(kinds))})", (uid, *kinds)
        ).fetchall()
        attempts = c.execute("SELECT COUNT(*) FROM attempts WHERE unit_id = ? AND superseded = 0", (uid,)).fetchone()[0]
        if not own and entry is None and not posts and not attempts:
            continue
        n += 1
        c.execute("UPDATE attempts SET superseded = 1 WHERE unit_id = ?", (uid,))
        c.execute(
            f"UPDATE posts SET kind = kind || '_superseded' WHERE unit_id = ? AND kind IN "
            f"({','.join('?' * len(kinds))})",
            (uid, *kinds),
        )
        c.execute("DELETE FROM atlas_entries WHERE unit_id = ?", (uid,))
        c.execute("DELETE FROM decl_names WHERE unit_id = ?", (uid,))
        c.execute("UPDATE units SET status = 'pending' WHERE id = ? AND status != 'pending'", (uid,))
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
    return n


def ingest(store: Store, path: Path, slug: str, *, env_map: dict[str, str] | None = None) -> IngestSummary:
    return store_book(store, slug, read_book(path, env_map=env_map))


__all__ = ["IngestError", "IngestResult", "IngestSummary", "Limits", "RawUnit", "ingest", "read_book", "store_book"]
