"""The Atlas as a dataset: one JSON line per unit Lean accepted, pairing the textbook's informal statement
and proof with the Lean statement and code Lean checked, its place in the Atlas's modules, its dependencies
and its provenance. For autoformalization and proving research (statement pairs, proof pairs, premises).

Only what Lean checked is marked so: ``status`` is the store's verdict (``proved``/``defined``: admitted by
the gate; ``stated``: the locked statement elaborated, the book gives no proof). With ``include_unproved``,
units whose statement Lean elaborated and locked but that no proof was admitted for are added with status
``statement_only`` and no ``lean_code``: statement pairs, never counted as proofs.

Each record can be reopened and checked alone, as public datasets carry it: ``header`` (imports, the header's
``open`` lines, the gate's options and ``namespace <book>``), ``context`` (the code of the Atlas declarations
the gate checked it with, in textbook order) and ``formal_statement`` (``... := by sorry`` for a theorem, the
definition itself for a definition): ``header + context + formal_statement`` is the text Lean elaborated
(``standalone_text``). ``depends_on`` is computed from the Lean code (the Atlas declarations whose names it
uses, resolved in the book's namespace); ``book_depends_on`` is what the textbook's references say. Its place:
``repository`` (the ``origin`` remote, without credentials), ``commit`` (``HEAD``, only when ``atlas/`` and the
Lake files are committed as exported), ``file_path`` (from the git top level) and ``start_line``/``end_line``
(1-based: the declaration's keyword line, below its doc comment, to its last line), given only when the module
on disk is the one the store renders.

``--trace`` adds LeanDojo's tracing of the built Atlas (tactics with their goal states before and after, and
the premises each proof uses). LeanDojo is an optional extra (``pip install -e '.[dojo]'``; its authors have
deprecated 4.x, and here it is the best tool for this one job). What LeanDojo 4.20 (the last 4.x release)
supports, read from its source: a git repository whose lakefile is at the top level and requires its packages
from git (``require ... from "path"`` raises "Local dependencies are not supported"), traced at a commit (it
clones the commit and runs ``lake build`` there, so only committed files count); ``build_deps=False`` traces only
the repository's own modules (``ExtractData.lean noDeps``), not Mathlib, after ``lake exe cache get``. It needs
the network: the clone fetches Mathlib at the pin and its prebuilt cache, and LeanDojo asks the GitHub API for
the toolchain's commit and each manifest package (set ``GITHUB_ACCESS_TOKEN`` for a higher rate limit). Its
``ExtractData.lean`` was written against the Lean of its release (v4.20); on a newer pin the extraction may
fail, and the error says so. autoform hands it a local clone of the workspace at ``HEAD`` (so that LeanDojo
copies the committed sources, not ``.lake/`` with Mathlib's build), named like the workspace (LeanDojo caches
traces by name and commit, under ``~/.cache/lean_dojo``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field

from autoform.atlas import (
    atomic_write,
    book_module,
    book_namespace,
    chapter_modules,
    decl_start,
    full_decl_name,
    module_paths,
    render_book,
    with_docstring,
)
from autoform.config import LeanConfig, Settings
from autoform.errors import EXIT_MISSING, UsageError
from autoform.lean.gate import STRICT_OPTIONS
from autoform.store import AtlasEntry, Book, Post, Store, Unit, UnitStatus
from autoform.toolchain.workspace import split_header

DATASET_VERSION = 2  # 2: header/context/formal_statement, provenance, depends_on from the Lean code
DONE = (UnitStatus.PROVED, UnitStatus.DEFINED)  # what enters a dependent's prelude (autoform/pipeline.py)
#: the files of the workspace a trace (and a record's commit) depends on
TRACED_FILES = ("atlas", "lakefile.lean", "lean-toolchain", "lake-manifest.json")
LEANDOJO_LEAN = "v4.20"  # the Lean that LeanDojo 4.20's ExtractData.lean was written for


class DatasetError(UsageError):
    """The dataset cannot be made as asked (bad input): the message says why."""


class MissingTool(DatasetError):
    exit_code = EXIT_MISSING

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
    header: str = ""  # imports, `open` lines, the gate's options, `namespace <book>`
    context: str = ""  # code of the Atlas declarations it was checked with (textbook order)
    formal_statement: str = ""  # `... := by sorry` (a theorem) or the definition: elaborates after header+context
    lean_statement: str
    lean_code: str | None  # the admitted declaration; None for a statement only
    elaborated_type: str | None = None
    fidelity: str = ""  # the back-translation critic's badge (steers; never admits)
    depends_on: list[str] = Field(default_factory=list)  # Atlas declarations the Lean code names
    book_depends_on: list[str] = Field(default_factory=list)  # the textbook's references, by declaration name
    repository: str | None = None  # the workspace's `origin` remote (no credentials)
    commit: str | None = None  # git HEAD, when atlas/ and the Lake files are committed as exported
    file_path: str | None = None  # the module's file, from the git top level (else from the workspace)
    start_line: int | None = None  # 1-based line of the declaration's keyword (its doc comment is above)
    end_line: int | None = None  # 1-based last line of the declaration
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


def standalone_text(rec: Record) -> str:
    """The Lean text a record stands for on its own: header, the code it uses, its formal statement."""
    parts = [rec.header.rstrip("\n"), rec.context.strip("\n"), rec.formal_statement.strip("\n")]
    return "\n\n".join(p for p in parts if p) + "\n"


# -- git -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GitInfo:
    top: Path  # the git top level
    head: str  # HEAD's commit
    remote: str | None  # `origin`, without credentials
    clean: bool  # TRACED_FILES are committed as they are on disk


def _public_url(url: str) -> str:
    """A remote URL without user name or password (a token in an https remote stays private)."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https", "ssh", "git") and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url


def git_info(home: Path) -> GitInfo | None:
    """The git facts of the workspace, or None where it is not in a git repository with a commit."""
    git = shutil.which("git")
    if git is None:
        return None

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([git, *args], cwd=home, capture_output=True, text=True, timeout=60)

    top = run("rev-parse", "--show-toplevel")
    head = run("rev-parse", "--verify", "-q", "HEAD")
    if top.returncode != 0 or head.returncode != 0:
        return None
    remote = run("remote", "get-url", "origin")
    paths = [p for p in TRACED_FILES if (home / p).exists()]
    dirty = run("status", "--porcelain", "--untracked-files=all", "--", *paths)
    return GitInfo(
        top=Path(top.stdout.strip()).resolve(),
        head=head.stdout.strip(),
        remote=_public_url(remote.stdout.strip()) if remote.returncode == 0 and remote.stdout.strip() else None,
        clean=dirty.returncode == 0 and not dirty.stdout.strip(),
    )


# -- Lean names ------------------------------------------------------------------------------------------------

_COMMENT_OR_STRING = re.compile(r'--[^\n]*|"(?:[^"\\]|\\.)*"', re.S)
_IDENT = re.compile(r"(?<![\w'.!?«»])(?:«[^»]*»|[^\W\d][\w'!?]*)(?:\.(?:«[^»]*»|[^\W\d][\w'!?]*))*")
_DECLARED = re.compile(
    r"^[ \t]*(?:@\[[^\]]*\][ \t\n]*)?(?:(?:private|protected|noncomputable|nonrec|partial|unsafe)\s+)*"
    r"(?:theorem|lemma|def|abbrev|instance|structure|class|inductive|opaque|axiom)\s+([^\s:({\[]+)",
    re.M,
)


def _strip_comments(code: str) -> str:
    """Lean code without its comments (block comments nest) and string literals."""
    out, depth, i = [], 0, 0
    while i < len(code):
        if code.startswith("/-", i):
            depth, i = depth + 1, i + 2
        elif depth and code.startswith("-/", i):
            depth, i = depth - 1, i + 2
        elif depth:
            i += 1
        else:
            j = code.find("/-", i)
            j = len(code) if j < 0 else j
            out.append(code[i:j])
            i = j
    return _COMMENT_OR_STRING.sub(" ", "".join(out))


def declared_names(code: str) -> list[str]:
    """The names a piece of Lean code declares (relative to its namespace)."""
    return [m.group(1).removeprefix("_root_.") for m in _DECLARED.finditer(_strip_comments(code))]


def used_names(code: str, namespace: str, known: dict[str, int]) -> set[int]:
    """The keys (``known[full name]``) of the Atlas declarations ``code`` names, resolved as Lean resolves a name
    inside ``namespace``: in that namespace, then its enclosing ones, then at the root; a dotted name resolves by
    its longest known prefix (``foo.symm``, ``Foo.field``)."""
    scopes = [".".join(namespace.split(".")[:k]) for k in range(namespace.count(".") + 1, -1, -1)]
    out: set[int] = set()
    for m in _IDENT.finditer(_strip_comments(code)):
        tok = m.group(0).replace("«", "").replace("»", "")
        tok_scopes = [""] if tok.startswith("_root_.") else scopes
        tok = tok.removeprefix("_root_.")
        parts = tok.split(".")
        found = None
        for scope in tok_scopes:
            for n in range(len(parts), 0, -1):
                name = ".".join(([scope] if scope else []) + parts[:n])
                if name in known:
                    found = known[name]
                    break
            if found is not None:
                break
        if found is not None:
            out.add(found)
    return out


# -- records ---------------------------------------------------------------------------------------------------


def _header(header: str, namespace: str) -> str:
    imports, rest = split_header(header)
    return "\n".join([*imports, *rest, *STRICT_OPTIONS.splitlines(), f"namespace {namespace}"]) + "\n"


def _formal_statement(statement: str, code: str | None, status: str, kind: str) -> str:
    if status == UnitStatus.DEFINED or (kind == "definition" and code is not None):
        return (code or statement).strip("\n") + "\n"
    return f"{statement.rstrip()} := by\n  sorry\n"


def _positions(
    store: Store,
    book: Book,
    header: str,
    home: Path | None,
    top: Path | None,
    units: dict[int, Unit],
    entries: list[AtlasEntry],
) -> dict[int, tuple[str, int, int]]:
    """unit id -> (file path, start line, end line) of its declaration in the module the store renders, only
    where that module is on disk as rendered (else the positions would point elsewhere)."""
    files = render_book(store, book, header)
    paths = module_paths(store, book)
    out: dict[int, tuple[str, int, int]] = {}
    for e in entries:
        u = units[e.unit_id]
        rel = paths[e.unit_id]
        text = files.get(rel)
        path = home / "atlas" / rel if home is not None else None
        if text is None or path is None or not path.is_file() or path.read_text(encoding="utf-8") != text:
            continue
        code = e.lean_code.strip("\n")
        block = with_docstring(code, u, e, book)
        at = text.find(block)
        if at < 0:
            continue
        tail = code[decl_start(code, e.decl_name) or 0 :]
        start = at + len(block) - len(tail)
        start_line = text.count("\n", 0, start) + 1
        end_line = text.count("\n", 0, at + len(block.rstrip("\n"))) + 1
        try:
            shown = str(path.resolve().relative_to(top)) if top is not None else str(path.relative_to(home))
        except ValueError:
            shown = str(path.relative_to(home))
        out[u.id] = (shown, start_line, end_line)
    return out


@dataclass
class _BookFacts:
    """One book's units, Atlas entries, locked statements and dependencies, as its records need them."""

    book: Book
    ns: str
    units: list[Unit]
    by_id: dict[int, Unit]
    entry_list: list[AtlasEntry]
    entries: dict[int, AtlasEntry]
    locks: dict[int, Post]  # the latest lock of each unit
    chapters: dict[str, str]
    toolchains: dict[int, str]  # attempt id -> the Lean that checked it
    seq: dict[int, int]
    book_deps: dict[int, list[int]]  # what the textbook's references say
    known: dict[str, int]  # every name an Atlas declaration of the book declares (auxiliary lemmas too) -> its unit
    lean_deps: dict[int, set[int]]  # what each admitted unit's Lean code names

    @classmethod
    def of(cls, store: Store, book: Book) -> _BookFacts:
        ns = book_namespace(book)
        units = store.units(book.id)
        by_id = {u.id: u for u in units}
        entry_list = [e for e in store.atlas_entries(book.id) if e.unit_id in by_id]
        entries = {e.unit_id: e for e in entry_list}
        book_deps: dict[int, list[int]] = {}
        for uid, dep, _ in store.deps(book.id):
            book_deps.setdefault(uid, []).append(dep)
        known = _known_names(book, entry_list)
        return cls(
            book=book,
            ns=ns,
            units=units,
            by_id=by_id,
            entry_list=entry_list,
            entries=entries,
            locks={p.unit_id: p for p in store.posts(book.id, kind="lock") if p.unit_id is not None},
            chapters=chapter_modules(units),
            toolchains=store.attempt_toolchains([e.attempt_id for e in entries.values() if e.attempt_id is not None]),
            seq={u.id: u.seq for u in units},
            book_deps=book_deps,
            known=known,
            lean_deps={uid: used_names(e.lean_code, ns, known) - {uid} for uid, e in entries.items()},
        )

    def chosen(self, include_unproved: bool) -> tuple[list[tuple[Unit, AtlasEntry | None]], dict[int, str]]:
        """The units that get a record (with their Atlas entry, None for a statement only) and the fully
        qualified name of each."""
        names: dict[int, str] = {}
        rows: list[tuple[Unit, AtlasEntry | None]] = []
        for u in self.units:
            e = self.entries.get(u.id)
            if e is not None:
                names[u.id] = full_decl_name(self.book, e)
                rows.append((u, e))
            elif include_unproved and u.id in self.locks and self.locks[u.id].data.get("name"):
                names[u.id] = f"{self.ns}.{self.locks[u.id].data['name']}"
                rows.append((u, None))
        return rows, names

    def in_order(self, ids: Iterable[int]) -> list[int]:
        """Unit ids in textbook order."""
        return sorted(ids, key=lambda d: self.seq.get(d, 0))

    def context(self, uid: int, direct: set[int]) -> list[int]:
        """What the gate checked the unit with: the admitted book dependencies, transitively, and what the code
        names; in textbook order."""
        seen: set[int] = set()
        todo = [*self.book_deps.get(uid, []), *direct]
        while todo:
            d = todo.pop()
            if d in seen or d == uid:
                continue
            seen.add(d)
            todo += self.book_deps.get(d, []) + sorted(self.lean_deps.get(d, set()))
        return [d for d in self.in_order(seen) if d in self.entries and (self.entries[d].status in DONE or d in direct)]


def _known_names(book: Book, entry_list: list[AtlasEntry]) -> dict[str, int]:
    """Every name an Atlas declaration of the book declares (auxiliary lemmas too) -> its unit."""
    ns = book_namespace(book)
    known: dict[str, int] = {}
    for e in entry_list:
        for short in declared_names(e.lean_code):
            known.setdefault(f"{ns}.{short}" if not short.startswith(ns + ".") else short, e.unit_id)
        known[full_decl_name(book, e)] = e.unit_id
    return known


def _unit_ref(u: Unit) -> UnitRef:
    return UnitRef(
        id=u.id,
        ident=u.ident,
        kind=u.kind,
        number=u.number,
        title=u.title,
        label=u.label,
        location=u.location,
        source=u.source,
    )


def _place_fields(git: GitInfo | None, place: tuple[str, int, int] | None) -> dict[str, Any]:
    """A record's place: the repository, and where the module on disk is the one the store renders, the
    commit (when it is committed as exported), the file and the lines."""
    file_path, start_line, end_line = place if place is not None else (None, None, None)
    return {
        "repository": git.remote if git else None,
        "commit": git.head if git and git.clean and place is not None else None,
        "file_path": file_path,
        "start_line": start_line,
        "end_line": end_line,
    }


def _record(
    f: _BookFacts,
    u: Unit,
    e: AtlasEntry | None,
    names: dict[int, str],
    head: str,
    place: tuple[str, int, int] | None,
    git: GitInfo | None,
) -> Record:
    """The record of one unit: admitted (``e``, its Atlas entry) or a locked statement only (``e`` is None)."""
    lock = f.locks.get(u.id)
    lock_data = lock.data if lock is not None else {}
    code = e.lean_code if e is not None else lock_data["statement"]
    direct = f.lean_deps[u.id] if e is not None else used_names(code, f.ns, f.known) - {u.id}
    ctx = f.context(u.id, direct)
    common: dict[str, Any] = {
        "book": f.book.slug,
        "unit": _unit_ref(u),
        "informal_statement": u.statement,
        "informal_proof": u.proof,
        "decl_name": names[u.id],
        "elaborated_type": lock_data.get("elaborated_type"),
        "fidelity": lock_data.get("fidelity", ""),
        "header": head,
        "context": "\n\n".join(f.entries[d].lean_code.strip("\n") for d in ctx) + ("\n" if ctx else ""),
        "depends_on": [names[d] for d in f.in_order(direct) if d in names],
        "book_depends_on": [names[d] for d in f.in_order(f.book_deps.get(u.id, [])) if d in names],
        **_place_fields(git, place),
    }
    if e is None:
        return Record(
            **common,
            status="statement_only",
            module=None,
            formal_statement=_formal_statement(lock_data["statement"], None, "statement_only", u.kind),
            lean_statement=lock_data["statement"],
            lean_code=None,
        )
    lib = "AtlasStated" if e.status == UnitStatus.STATED else "Atlas"
    return Record(
        **common,
        status=e.status,
        module=f"{lib}.{book_module(f.book)}.{f.chapters[u.chapter]}",
        formal_statement=_formal_statement(e.statement_lean, e.lean_code, e.status, u.kind),
        lean_statement=e.statement_lean,
        lean_code=e.lean_code,
        toolchain=f.toolchains.get(e.attempt_id or 0, ""),
        job_id=e.job_id,
        model=e.model,
        attempts=e.attempts,
    )


def records(
    store: Store, books: Iterable[Book], *, include_unproved: bool = False, settings: Settings | None = None
) -> list[Record]:
    """The dataset's records, in book order then textbook order (deterministic). With ``settings``, the header
    is the workspace's and the records carry the repository, commit, file and lines (else the default header,
    and no place)."""
    header = settings.lean.header if settings is not None else LeanConfig().header
    home = settings.home if settings is not None else None
    git = git_info(home) if home is not None else None
    out: list[Record] = []
    for book in sorted(books, key=lambda b: b.slug):
        f = _BookFacts.of(store, book)
        rows, names = f.chosen(include_unproved)
        where = _positions(store, book, header, home, git.top if git else None, f.by_id, f.entry_list)
        head = _header(header, f.ns)
        out += [_record(f, u, e, names, head, where.get(u.id), git) for u, e in rows]
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


# -- LeanDojo --------------------------------------------------------------------------------------------------

_LOCAL_REQUIRE = re.compile(r"^\s*require\s+\S+\s+from\s+\"", re.M)  # LeanDojo 4.20's own test, per line


def _check_lakefile(home: Path) -> None:
    lakefile = home / "lakefile.lean"
    if not lakefile.is_file():
        raise DatasetError(
            f"--trace: {lakefile} is missing; LeanDojo 4.20 reads a lakefile.lean or lakefile.toml at the top level"
        )
    if _LOCAL_REQUIRE.search(lakefile.read_text(encoding="utf-8")):
        raise DatasetError(
            '--trace: lakefile.lean requires a package by local path (`require ... from "..."`); '
            'LeanDojo 4.20 supports only git requirements (`require mathlib from git "..." @ '
            '"<tag>"`), as autoform\'s own lakefile has them'
        )


def _check_manifest(home: Path) -> None:
    manifest = home / "lake-manifest.json"
    try:
        packages = json.loads(manifest.read_text(encoding="utf-8")).get("packages", [])
    except (OSError, ValueError) as e:
        raise DatasetError(
            f"--trace: {manifest} is missing or unreadable ({e}); LeanDojo reads the pinned commit "
            "of every package from it (run `lake update` once and commit it)"
        ) from e
    local = [p.get("name", "?") for p in packages if p.get("type") != "git" or not p.get("url")]
    if local:
        raise DatasetError(
            f"--trace: lake-manifest.json has packages that are not from git ({', '.join(local)}); "
            "LeanDojo 4.20 supports only git dependencies"
        )


def _uncommitted(home: Path) -> str:
    """``git status`` of the traced files that have changes not committed."""
    paths = [p for p in TRACED_FILES if (home / p).exists()]
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--", *paths],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()


def check_trace_workspace(home: Path) -> GitInfo:
    """What LeanDojo 4.20 needs of the workspace, checked before any work; raises DatasetError naming what is
    missing. Returns the git facts of the commit to trace."""
    home = Path(home).resolve()
    if shutil.which("git") is None:
        raise MissingTool("--trace traces a git commit: git is not installed")
    info = git_info(home)
    if info is None:
        raise DatasetError(
            f"--trace: {home} is not a git repository with a commit; LeanDojo traces a commit "
            "(git init, then commit lakefile.lean, lean-toolchain, lake-manifest.json and atlas/)"
        )
    if info.top != home:
        raise DatasetError(
            f"--trace: the workspace {home} is not the git top level ({info.top}); LeanDojo clones "
            "the repository and runs `lake build` at its top, so the lakefile must be there"
        )
    _check_lakefile(home)
    _check_manifest(home)
    if not info.clean:
        raise DatasetError(
            "--trace: atlas/ or the Lake files have changes that are not committed; LeanDojo traces "
            "the commit, so commit them first (git add atlas lakefile.lean lean-toolchain "
            "lake-manifest.json && git commit):\n" + _uncommitted(home)
        )
    return info


def _clone_at(home: Path, commit: str, parent: Path) -> Path:
    """A local clone of the workspace at ``commit`` (committed files only, no ``.lake/``), named like it."""
    dest = parent / home.name
    for args in (["clone", "-q", "--no-checkout", str(home), str(dest)], ["-C", str(dest), "checkout", "-q", commit]):
        r = subprocess.run(["git", *args], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise DatasetError(f"--trace: git {' '.join(args)} failed: {r.stderr.strip()}")
    return dest


def _import_leandojo() -> ModuleType:
    try:
        import lean_dojo  # type: ignore[import-not-found]
    except ImportError as e:
        raise MissingTool(
            "--trace needs LeanDojo, an optional extra: pip install -e '.[dojo]' (then elan and "
            f"lake on PATH; see scripts/setup.sh) [{e}]"
        ) from e
    return lean_dojo


def _traces_of(traced: Any) -> dict[str, Trace]:
    out: dict[str, Trace] = {}
    for thm in traced.get_traced_theorems():
        name = thm.theorem.full_name
        if not name.startswith("Atlas."):
            continue
        tactics = [
            TracedTactic(tactic=t.tactic, state_before=t.state_before, state_after=t.state_after)
            for t in thm.get_traced_tactics()
        ]
        out[name] = Trace(tactics=tactics, premises=sorted(set(thm.get_premise_full_names())))
    return out


def trace_atlas(settings: Settings) -> dict[str, Trace]:
    """LeanDojo's trace of the Atlas at the workspace's HEAD (its own modules only, ``build_deps=False``):
    fully qualified name -> Trace."""
    lean_dojo = _import_leandojo()
    if shutil.which(settings.lean.lake_path) is None:
        raise MissingTool(
            f"--trace builds the Atlas with Lean: `{settings.lean.lake_path}` is not on PATH "
            "(run scripts/setup.sh, which installs elan, Lean and Mathlib)"
        )
    home = Path(settings.home).resolve()
    info = check_trace_workspace(home)
    version = getattr(lean_dojo, "__version__", "?")
    toolchain = (
        (home / "lean-toolchain").read_text(encoding="utf-8").strip() if (home / "lean-toolchain").is_file() else "?"
    )
    with tempfile.TemporaryDirectory(prefix="autoform-trace-") as tmp:
        clone = _clone_at(home, info.head, Path(tmp))
        try:
            repo = lean_dojo.LeanGitRepo(str(clone), info.head)
            traced = lean_dojo.trace(repo, build_deps=False)
            return _traces_of(traced)
        except (DatasetError, KeyboardInterrupt):
            raise
        except Exception as e:  # LeanDojo raises assertions, CalledProcessError, GitHub and network errors
            raise DatasetError(
                f"--trace: LeanDojo {version} failed on commit {info.head} (toolchain {toolchain}): "
                f"{type(e).__name__}: {e}\nLeanDojo {version} traces Lean 4 git repositories from v4.3.0-rc2 "
                f"whose dependencies are git requirements, and was released for Lean {LEANDOJO_LEAN}; its "
                "ExtractData.lean may not compile on a newer toolchain. It needs the network (GitHub API, the "
                "Mathlib clone and `lake exe cache get`); run with VERBOSE=1 for its log"
            ) from e


def export_dataset(
    store: Store,
    settings: Settings,
    out: Path,
    *,
    books: list[Book] | None = None,
    include_unproved: bool = False,
    trace: bool = False,
) -> DatasetSummary:
    """Write the dataset to ``out`` (JSON Lines), atomically: a failure leaves any earlier file as it was."""
    out = Path(out)
    if out.is_dir():  # before any work (a trace can take hours)
        raise DatasetError(f"{out} is a directory; give a file name (for example {out / 'atlas.jsonl'})")
    chosen = books if books is not None else store.books()
    recs = records(store, chosen, include_unproved=include_unproved, settings=settings)
    traced = attach_traces(recs, trace_atlas(settings)) if trace else 0
    atomic_write(out, to_jsonl(recs))  # a failure leaves any earlier file as it was
    by_status = dict(Counter(r.status for r in recs))
    return DatasetSummary(path=str(out), records=len(recs), by_status=by_status, traced=traced)
