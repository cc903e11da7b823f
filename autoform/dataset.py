"""The Atlas as a dataset: one JSON line per unit Lean accepted, pairing the textbook's informal statement
and proof with the Lean statement and code Lean checked, its place in the Atlas's modules, its dependencies
and its provenance. For autoformalization and proving research (statement pairs, proof pairs, premises).

Only what Lean checked is marked so: ``status`` is the store's verdict (``proved``/``defined``: admitted by
the gate; ``stated``: the locked statement elaborated, the book gives no proof). With ``include_unproved``,
units whose statement Lean elaborated and locked but that no proof was admitted for are added with status
``statement_only`` and no ``lean_code``: statement pairs, never counted as proofs.

``--trace`` adds LeanDojo's tracing of the built Atlas (tactics with their goal states before and after, and
the premises each proof uses). LeanDojo is an optional extra (``pip install -e '.[dojo]'``; its authors have
deprecated 4.x, and here it is the best tool for this one job): it traces a git commit of a Lean project, so
the workspace must be a git repository whose ``atlas/`` is committed, with ``lake`` on PATH.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from autoform.atlas import atomic_write, book_module, book_namespace, chapter_modules, full_decl_name
from autoform.config import Settings
from autoform.store import AtlasEntry, Book, Store, Unit

DATASET_VERSION = 1


class DatasetError(Exception):
    """The dataset cannot be made as asked (bad input): the message says why."""


class MissingTool(DatasetError):
    """Something the export needs is not installed here: the message says what and how to get it."""


class TracedTactic(BaseModel):
    tactic: str
    state_before: str
    state_after: str


class Trace(BaseModel):
    """What LeanDojo traced of one declaration."""

    tactics: list[TracedTactic] = Field(default_factory=list)
    premises: list[str] = Field(default_factory=list)


class UnitRef(BaseModel):
    id: int
    ident: str
    kind: str
    number: str
    title: str
    label: str
    location: str
    source: str


class Record(BaseModel):
    """One line of the dataset."""

    version: int = DATASET_VERSION
    book: str
    unit: UnitRef
    informal_statement: str
    informal_proof: str
    status: Literal["proved", "defined", "stated", "statement_only"]
    decl_name: str  # fully qualified
    module: str | None  # the Atlas module holding it (None for a statement only)
    lean_statement: str
    lean_code: str | None  # the admitted declaration; None for a statement only
    elaborated_type: str | None = None
    fidelity: str = ""  # the back-translation critic's badge (steers; never admits)
    depends_on: list[str] = Field(default_factory=list)  # decl names of the dependencies in this dataset
    toolchain: str = ""  # the Lean that checked the admitted attempt
    job_id: int | None = None
    model: str = ""
    attempts: int = 0
    trace: Trace | None = None


class DatasetSummary(BaseModel):
    path: str
    records: int
    by_status: dict[str, int]
    traced: int = 0


def records(store: Store, books: Iterable[Book], *, include_unproved: bool = False) -> list[Record]:
    """The dataset's records, in book order then textbook order (deterministic)."""
    out: list[Record] = []
    for book in sorted(books, key=lambda b: b.slug):
        units = store.units(book.id)
        entries = {e.unit_id: e for e in store.atlas_entries(book.id)}
        locks = {p.unit_id: p for p in store.posts(book.id, kind="lock")}  # the latest lock of each unit
        chapters = chapter_modules(units)
        toolchains = _toolchains(store, [e.attempt_id for e in entries.values() if e.attempt_id is not None])
        names: dict[int, str] = {}
        rows: list[tuple[Unit, AtlasEntry | None]] = []
        for u in units:
            e = entries.get(u.id)
            if e is not None:
                names[u.id] = full_decl_name(book, e)
                rows.append((u, e))
            elif include_unproved and u.id in locks and locks[u.id].data.get("name"):
                names[u.id] = f"{book_namespace(book)}.{locks[u.id].data['name']}"
                rows.append((u, None))
        deps: dict[int, list[int]] = {}
        for uid, dep, _ in store.deps(book.id):
            deps.setdefault(uid, []).append(dep)
        seq = {u.id: u.seq for u in units}
        for u, e in rows:
            lock = locks.get(u.id)
            lock_data = lock.data if lock is not None else {}
            depends = [names[d] for d in sorted(deps.get(u.id, []), key=lambda d: seq.get(d, 0)) if d in names]
            common: dict[str, Any] = {
                "book": book.slug,
                "unit": UnitRef(id=u.id, ident=u.ident, kind=u.kind, number=u.number, title=u.title, label=u.label,
                                location=u.location, source=u.source),
                "informal_statement": u.statement, "informal_proof": u.proof, "decl_name": names[u.id],
                "elaborated_type": lock_data.get("elaborated_type"), "fidelity": lock_data.get("fidelity", ""),
                "depends_on": depends,
            }
            if e is not None:
                lib = "AtlasStated" if e.status == "stated" else "Atlas"
                out.append(Record(
                    **common, status=e.status, module=f"{lib}.{book_module(book)}.{chapters[u.chapter]}",
                    lean_statement=e.statement_lean, lean_code=e.lean_code,
                    toolchain=toolchains.get(e.attempt_id or 0, ""), job_id=e.job_id, model=e.model,
                    attempts=e.attempts))
            else:
                out.append(Record(**common, status="statement_only", module=None,
                                  lean_statement=lock_data["statement"], lean_code=None))
    return out


def _toolchains(store: Store, attempt_ids: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for i in range(0, len(attempt_ids), 500):
        chunk = attempt_ids[i:i + 500]
        rows = store.query(f"SELECT id, toolchain FROM attempts WHERE id IN ({','.join('?' * len(chunk))})",
                           tuple(chunk))
        out.update({r[0]: r[1] for r in rows})
    return out


def to_jsonl(recs: list[Record]) -> str:
    """The records as JSON Lines (one object a line, UTF-8 text kept as is)."""
    return "".join(json.dumps(r.model_dump(mode="json"), ensure_ascii=False) + "\n" for r in recs)


def attach_traces(recs: list[Record], traces: dict[str, Trace]) -> int:
    """Give each record LeanDojo's trace of its declaration (by fully qualified name); returns how many."""
    n = 0
    for r in recs:
        t = traces.get(r.decl_name)
        if t is not None and r.lean_code is not None:
            r.trace = t
            n += 1
    return n


def trace_atlas(settings: Settings) -> dict[str, Trace]:
    """LeanDojo's trace of the Atlas at the workspace's current git commit: fully qualified name -> Trace."""
    try:
        from lean_dojo import LeanGitRepo, trace  # type: ignore[import-not-found]
    except ImportError as e:
        raise MissingTool("--trace needs LeanDojo, an optional extra: pip install -e '.[dojo]' (then elan and "
                          f"lake on PATH; see scripts/setup.sh) [{e}]") from e
    if shutil.which(settings.lean.lake_path) is None:
        raise MissingTool(f"--trace builds the Atlas with Lean: `{settings.lean.lake_path}` is not on PATH "
                          "(run scripts/setup.sh, which installs elan, Lean and Mathlib)")
    home = settings.home
    git = shutil.which("git")
    if git is None:
        raise MissingTool("--trace traces a git commit: git is not installed")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([git, *args], cwd=home, capture_output=True, text=True, timeout=60)

    if run("rev-parse", "--show-toplevel").returncode != 0:
        raise DatasetError(f"--trace: {home} is not a git repository; LeanDojo traces a commit "
                           "(git init, then commit lakefile.lean, lean-toolchain and atlas/)")
    dirty = run("status", "--porcelain", "--", "atlas", "lakefile.lean", "lean-toolchain").stdout.strip()
    if dirty:
        raise DatasetError("--trace: atlas/ has changes that are not committed; LeanDojo traces the commit, so "
                           "commit them first (git add atlas && git commit):\n" + dirty)
    traced = trace(LeanGitRepo.from_path(str(home)))
    out: dict[str, Trace] = {}
    for thm in traced.get_traced_theorems():
        name = thm.theorem.full_name
        if not name.startswith("Atlas."):
            continue
        tactics = [TracedTactic(tactic=t.tactic, state_before=t.state_before, state_after=t.state_after)
                   for t in thm.get_traced_tactics()]
        out[name] = Trace(tactics=tactics, premises=sorted(set(thm.get_premise_full_names())))
    return out


def export_dataset(store: Store, settings: Settings, out: Path, *, books: list[Book] | None = None,
                   include_unproved: bool = False, trace: bool = False) -> DatasetSummary:
    """Write the dataset to ``out`` (JSON Lines), atomically: a failure leaves any earlier file as it was."""
    out = Path(out)
    if out.is_dir():  # before any work (a trace can take hours)
        raise DatasetError(f"{out} is a directory; give a file name (for example {out / 'atlas.jsonl'})")
    chosen = books if books is not None else store.books()
    recs = records(store, chosen, include_unproved=include_unproved)
    traced = attach_traces(recs, trace_atlas(settings)) if trace else 0
    atomic_write(out, to_jsonl(recs))  # a failure leaves any earlier file as it was
    by_status = dict(Counter(r.status for r in recs))
    return DatasetSummary(path=str(out), records=len(recs), by_status=by_status, traced=traced)
