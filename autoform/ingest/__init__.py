"""Ingest: read a textbook (LaTeX root, directory, or PDF) and store its units and dependencies."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from autoform.ingest.latex import Limits, ingest_latex
from autoform.ingest.model import IngestError, IngestResult, RawUnit
from autoform.store import Store, Unit
from autoform.store.books import CONTENT_FIELDS


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
    with store.tx():
        book_id = store.upsert_book(
            slug,
            title=result.title,
            source_path=result.root,
            source_kind=result.source_kind,
            warnings=result.warnings,
        )
        ids, changed_statements = _store_units(store, book_id, result.units, summary)
        edges = _dependencies(result.units, ids, summary.unresolved_refs)
        store.set_deps(book_id, edges)
        summary.edges = len(edges)
        summary.invalidated = store.withdraw_work(book_id, changed_statements)
    return summary


def _store_units(
    store: Store, book_id: int, units: list[RawUnit], summary: IngestSummary
) -> tuple[list[int], list[int]]:
    """Add or rewrite the book's units in order and mark those gone absent, counting them in ``summary``; the
    units' ids (in book order) and the ids of the units whose statement changed."""
    existing = store.units_by_ident(book_id)
    seen: set[str] = set()
    ids: list[int] = []
    changed_statements: list[int] = []
    for seq, u in enumerate(units):
        ident = u.ident or f"{u.kind}@{seq}"
        if ident in seen:  # duplicate label or number: keep both, disambiguated
            ident = f"{ident}#{seq}"
        old = existing.get(ident)
        if old is None:
            uid = store.add_unit(book_id, ident, seq, u)
            summary.added += 1
        else:
            uid = old.id
            changed = _changed(old, u)
            if old.statement != u.statement:
                changed_statements.append(uid)
            store.rewrite_unit(uid, seq, u, reopen=changed and old.statement != u.statement)
            if changed:
                summary.updated += 1
            else:
                summary.unchanged += 1
        seen.add(ident)
        ids.append(uid)
    gone = [old.id for ident, old in existing.items() if ident not in seen and old.present]
    store.mark_absent(gone)
    summary.removed = len(gone)
    return ids, changed_statements


def _changed(old: Unit, new: RawUnit) -> bool:
    """Whether re-ingest changed a unit: its content, or it was absent. Where it sits (its source span) is
    rewritten but is not a change of the unit, nor are its references."""
    return any(getattr(old, f) != getattr(new, f) for f in CONTENT_FIELDS if f != "source") or not old.present


def _dependencies(units: list[RawUnit], ids: list[int], unresolved: list[str]) -> list[tuple[int, int, str]]:
    """The book's dependency edges (unit id, dependency id, via "ref" or "text"), from the units' references
    (``\\ref`` labels; those that name no unit are added to ``unresolved``) and textual references."""
    by_label = {lab: ids[k] for k, u in reversed(list(enumerate(units))) for lab in u.labels}
    by_label.update({u.label: ids[k] for k, u in enumerate(units) if u.label})
    by_number = {(u.kind, u.number): ids[k] for k, u in enumerate(units) if u.number}
    any_number = {u.number: ids[k] for k, u in enumerate(units) if u.number}
    edges: list[tuple[int, int, str]] = []
    for k, u in enumerate(units):
        deps: dict[int, str] = {}
        for lab in u.refs:
            if lab in by_label:
                deps.setdefault(by_label[lab], "ref")
            elif lab not in unresolved:
                unresolved.append(lab)
        for kind, number in u.text_refs:
            target = by_number.get((kind, number)) or any_number.get(number)
            if target is not None:
                deps.setdefault(target, "text")
        deps.pop(ids[k], None)
        edges += [(ids[k], dep, via) for dep, via in deps.items()]
    return edges


def ingest(store: Store, path: Path, slug: str, *, env_map: dict[str, str] | None = None) -> IngestSummary:
    return store_book(store, slug, read_book(path, env_map=env_map))


__all__ = ["IngestError", "IngestResult", "IngestSummary", "Limits", "RawUnit", "ingest", "read_book", "store_book"]
