"""The reader, composed of its concerns, and :func:`ingest_latex`, which reads a book with it."""

from __future__ import annotations

from pathlib import Path

from autoform.ingest.latex.conditionals import ConditionalOps
from autoform.ingest.latex.definitions import DefinitionOps
from autoform.ingest.latex.inclusion import InclusionOps
from autoform.ingest.latex.scanner import Scanner
from autoform.ingest.latex.sections import SectionOps
from autoform.ingest.latex.state import ExpansionLimit, Limits
from autoform.ingest.model import KINDS, IngestError, IngestResult, link_textual


class Reader(Scanner, InclusionOps, SectionOps, DefinitionOps, ConditionalOps):
    """A book's reader: the scanner with every concern's handlers (see
    :class:`~autoform.ingest.latex.state.ReaderState`)."""


def ingest_latex(path: Path, *, env_map: dict[str, str] | None = None, limits: Limits | None = None) -> IngestResult:
    """Read a .tex root file (or a directory holding one) into units with dependencies."""
    limits = limits or Limits()
    root = _find_root(path, limits)
    reader = Reader(root, dict(env_map or {}), limits)
    try:
        reader.run_file(root)
    except ExpansionLimit as e:
        if e.nested:
            raise IngestError(
                f"{e.where or reader.rel(root)}: expanding \\{e.name}: macros nested {e.nested} deep, "
                "a macro that expands into itself without end (TeX stops such a book with 'TeX "
                "capacity exceeded')"
            ) from None
        raise IngestError(
            f"{e.where or reader.rel(root)}: expanding \\{e.name} went past the limit of "
            f"{limits.max_expansion} expansion steps for one book ([ingest] max_expansion): a macro "
            "bomb, whose uses multiply without end? (TeX would stop at its own stack limits)"
        ) from None
    while reader.frames:
        fr = reader.frames.pop()
        (reader.finish_proof if fr.role == "proof" else reader.finish_unit)(fr, len(fr.src.text), len(fr.src.text))
    units = [u for u in reader.units if u.kind in KINDS]
    link_textual(units)
    return IngestResult(title=reader.title, source_kind="latex", units=units, warnings=reader.warnings, root=str(root))


def _find_root(path: Path, limits: Limits) -> Path:
    if path.is_file():
        return path
    if not path.exists():
        raise IngestError(f"{path}: no such file or directory")
    cands = sorted(
        p
        for p in path.glob("*.tex")
        if p.stat().st_size <= limits.max_file_bytes and "\\documentclass" in p.read_text(errors="replace")
    )
    if not cands:
        raise IngestError(f"{path}: no .tex file with \\documentclass in this directory; pass the root file")
    for preferred in ("main.tex", "book.tex"):
        for c in cands:
            if c.name == preferred:
                return c
    return cands[0]
