"""The declaration index read from Lean's own environment (``autoform mathlib index --from-lean``).

The source reader (:mod:`autoform.mathlib.source`) needs no Lean and reads all of Mathlib in under a minute,
but it sees what is written: binders as typed, no names that Lean generates. This reader runs
``DumpDecls.lean`` (beside this module) with ``lake env lean --run`` in the Lean project: Lean imports the
roots (default ``Mathlib``), and prints every declaration of their modules with its elaborated type as Lean
pretty-prints it, its module, line, docstring and deprecation, one JSON object a line. The names Lean
generates for users (``Foo.ext_iff``, ``Foo.mk.injEq``) come with them; internal names do not.

Attributes are not in Lean's reply (most live in extensions that differ by attribute); where the source
reader saw the same name, its attributes are kept (:func:`merge_source`).
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import BaseModel, ValidationError

from autoform.config import Settings
from autoform.errors import AutoformError, MissingError
from autoform.lean.lake import lake_problem
from autoform.mathlib.index import MathlibIndex, read_source, source_revision
from autoform.mathlib.source import Decl

SCRIPT = Path(__file__).with_name("DumpDecls.lean")
#: the kinds Lean reports that the index keeps under another name, or not at all
_KINDS = {"constructor": "def", "recursor": None}


class LeanExportFailed(AutoformError):
    """Lean ran but the export did not complete (it crashed, ran out of time or memory, or printed garbage)."""


class LeanDecl(BaseModel):
    """One line of ``DumpDecls.lean``'s output."""

    name: str
    kind: str
    type: str
    module: str
    line: int = 0
    doc: str = ""
    deprecated: bool = False
    deprecated_to: str | None = None

    def decl(self) -> Decl | None:
        kind = _KINDS.get(self.kind, self.kind)
        if kind is None:
            return None
        signature = f": {' '.join(self.type.split())}" if self.type else ""
        return Decl(
            name=self.name,
            kind=kind,
            signature=signature,
            module=self.module,
            line=self.line,
            doc=" ".join(self.doc.split()),
            deprecated=self.deprecated,
            deprecated_to=self.deprecated_to if self.deprecated else None,
        )


def parse_lines(lines: Iterable[str], *, what: str = "Lean's export") -> Iterator[Decl]:
    """The declarations of ``DumpDecls.lean``'s output; a line that is not one of its objects is an error that
    names the line (a truncated export must not pass for a small library)."""
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            decl = LeanDecl.model_validate(json.loads(line)).decl()
        except (json.JSONDecodeError, ValidationError) as e:
            detail = str(e).splitlines()[0]
            raise LeanExportFailed(f"{what}, line {n}: not a declaration ({detail}): {line[:120]!r}") from e
        if decl is not None:
            yield decl


def read_from_lean(settings: Settings, roots: list[str], *, timeout_s: float = 3600.0) -> list[Decl]:
    """Every declaration of the modules under ``roots``, as Lean's environment has it (see the module doc)."""
    problem = lake_problem(settings)
    if problem is not None:
        raise MissingError(f"--from-lean needs Lean: {problem}")
    cmd = [settings.lean.lake_path, "env", "lean", "--run", str(SCRIPT), *roots]
    limit = settings.lean.memory_mb * 1024 * 1024

    def _limits() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    try:
        proc = subprocess.run(
            cmd,
            cwd=settings.lean_project,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            preexec_fn=_limits,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise LeanExportFailed(f"`{' '.join(cmd)}` did not finish in {timeout_s:.0f} s") from e
    except OSError as e:
        raise MissingError(f"cannot run `{cmd[0]}`: {e}") from e
    decls = list(parse_lines(proc.stdout.splitlines(), what=f"`{' '.join(cmd)}`"))
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-5:]) or f"exit code {proc.returncode}"
        raise LeanExportFailed(
            f"`{' '.join(cmd)}` in {settings.lean_project} failed after {len(decls)} declarations: {tail} "
            f"(a process killed for memory means [lean] memory_mb is too small for importing {' '.join(roots)})"
        )
    if not decls:
        raise LeanExportFailed(f"`{' '.join(cmd)}` printed no declarations for {' '.join(roots)}")
    return decls


def merge_source(lean: list[Decl], source: Iterable[Decl]) -> list[Decl]:
    """Lean's declarations, with the attributes (and, where Lean has none, the docstring) the source reader saw
    for the same name."""
    seen = {d.name: d for d in source}
    out = []
    for d in lean:
        s = seen.get(d.name)
        if s is not None:
            d.attrs = list(s.attrs)
            d.doc = d.doc or s.doc
        out.append(d)
    return out


def build_from_lean(
    index: MathlibIndex, settings: Settings, *, roots: list[str], source: Path | None, workers: int = 2
) -> int:
    """Replace the index's Mathlib declarations by Lean's (with the source's attributes and name popularity where
    the source is at hand); the revision recorded is the source's, marked as read from Lean."""
    decls = read_from_lean(settings, roots)
    refs: Counter[str] = Counter()
    revision = "lean:" + ",".join(roots)
    if source is not None and source.is_dir():
        source_decls, refs = read_source(source, workers=workers)
        decls = merge_source(decls, source_decls)
        revision = f"lean:{source_revision(source)}"
    return index.replace("mathlib", decls, revision=revision, source=f"lean --run ({', '.join(roots)})", refs=refs)
