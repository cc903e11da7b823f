"""The Atlas: admitted declarations written as a Lake library, ``atlas/Atlas/<Book>/<Chapter>.lean``.

Files are derived from the store only, written deterministically (same store, same bytes) and atomically
(temporary file + rename), so a crash never leaves a half-written module. Statements admitted as *stated*
(no proof) go to the separate ``AtlasStated`` library so that ``Atlas`` is free of ``sorry``.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
from pydantic import BaseModel

from autoform.config import Settings
from autoform.lean.prescreen import lean_tokens
from autoform.store import AtlasEntry, Book, Store, Unit, UnitStatus
from autoform.toolchain.workspace import split_header

_write_lock = threading.Lock()


def lean_ident(text: str, default: str) -> str:
    """CamelCase Lean module/namespace component from a slug or title: 'elementary-number-theory' ->
    'ElementaryNumberTheory'."""
    words = re.findall(r"[A-Za-z0-9]+", text)
    name = "".join(w[:1].upper() + w[1:] for w in words)
    if not name or not name[0].isalpha():
        name = default + name
    return name


def book_module(book: Book) -> str:
    return lean_ident(book.slug, "Book")


def book_namespace(book: Book) -> str:
    return f"Atlas.{book_module(book)}"


def chapter_modules(units: list[Unit]) -> dict[str, str]:
    """Chapter title -> module name, in book order, unique."""
    out: dict[str, str] = {}
    for u in units:
        if u.chapter not in out:
            base = lean_ident(u.chapter, "Chapter") if u.chapter else "Front"
            name, k = base, 2
            while name in out.values():
                name, k = f"{base}{k}", k + 1
            out[u.chapter] = name
    return out


def comment_safe(text: str) -> str:
    """Text that can sit inside a Lean block or doc comment: comments nest in Lean, so neither ``/-`` nor ``-/``
    may appear (they become ``/ -`` and ``- /``)."""
    return text.replace("/-", "/ -").replace("-/", "- /")


def full_decl_name(book: Book, entry: AtlasEntry) -> str:
    """The declaration's fully qualified Lean name (entries store the name inside the book's namespace)."""
    ns = book_namespace(book)
    return entry.decl_name if entry.decl_name.startswith(ns + ".") else f"{ns}.{entry.decl_name}"


def _docstring(unit: Unit, entry: AtlasEntry, book: Book, extra: str = "") -> str:
    """The informal statement (LaTeX, as in the book) and the provenance of one declaration."""
    prov = [
        f"Source: {book.slug}, {unit.display}" + (f", label `{unit.label}`" if unit.label else ""),
        f"Kind: {unit.kind}; number: {unit.number or '-'}" + (f"; chapter: {unit.location}" if unit.location else ""),
        f"Span: {unit.source}" if unit.source else "",
        f"autoform job {entry.job_id}, model {entry.model}, {entry.attempts} attempt(s); status {entry.status}"
        if entry.job_id is not None
        else f"status {entry.status}",
    ]
    parts = [unit.statement.strip(), "", *[p for p in prov if p]]
    if extra.strip():
        parts += ["", extra.strip()]
    return "/-- " + comment_safe("\n".join(parts)) + "\n-/\n"


#: the start of the line declaring `name` (with its attributes and modifiers)
def decl_start(code: str, name: str) -> int | None:
    m = _decl_pattern(name.rsplit(".", 1)[-1]).search(code)
    return m.start() if m else None


@functools.lru_cache(maxsize=16384)
def _decl_pattern(short: str) -> re.Pattern[str]:
    """Compiled once per name: the atlas is rendered again during a job, and a book has more declarations
    than the ``re`` module's own cache holds."""
    return re.compile(
        r"^[ \t]*(?:@\[[^\]]*\][ \t\n]*)?(?:(?:private|protected|noncomputable|nonrec|partial|unsafe)\s+)*"
        r"(?:theorem|lemma|def|abbrev|instance|structure|class|inductive|opaque|axiom)\s+"
        rf"(?:[^\s:({{\[]*\.)?{re.escape(short)}(?=[\s:({{\[]|$)",
        re.MULTILINE,
    )


def with_docstring(code: str, unit: Unit, entry: AtlasEntry, book: Book) -> str:
    """`code` with our docstring just before the main declaration (auxiliary declarations may precede it); a
    doc comment the code already had there is merged into ours (Lean allows one per declaration)."""
    start = decl_start(code, entry.decl_name)
    if start is None:
        start = 0
    head, tail = code[:start], code[start:]
    extra, idx = "", head.rfind("/--")
    m = re.fullmatch(r"/--(.*?)-/\s*", head[idx:], re.S) if idx >= 0 else None
    if m:
        extra, head = m.group(1).strip(), head[:idx]
    return with_helper_provenance(head, unit, book) + _docstring(unit, entry, book, extra) + tail


#: a declaration at column 0 (after its attributes and modifiers), as the auxiliary declarations of a proof begin
_HELPER = re.compile(
    r"^(?:@\[[^\n]*\]\s*)?(?:(?:private|protected|noncomputable)\s+)*"
    r"(?:theorem|lemma|def|abbrev|instance|structure|inductive)\b",
    re.M,
)


def with_helper_provenance(head: str, unit: Unit, book: Book) -> str:
    """The auxiliary declarations before a unit's main one (the subgoals of its decomposition, the prover's own
    lemmas), each with a doc comment saying whose helper it is, unless it has a comment of its own already."""
    note = f"/-- A helper of {comment_safe(unit.display)} ({book.slug}), proved by autoform for its proof. -/\n"
    out, last = [], 0
    for m in _HELPER.finditer(head):
        if head[: m.start()].rstrip().endswith("-/"):
            continue
        out += [head[last : m.start()], note]
        last = m.start()
    return "".join(out) + head[last:]


def atomic_write(path: Path, text: str) -> bool:
    """Write if the content differs; returns whether the file changed."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _one_line(text: str) -> str:
    return comment_safe(" ".join(text.split()))


def _library(entry: AtlasEntry) -> str:
    return "AtlasStated" if entry.status == UnitStatus.STATED else "Atlas"


def _unit_block(code: str) -> str:
    """One unit's code closed in a section of its own: its ``open``, ``variable``, ``attribute [local ...]``,
    ``local notation`` and options end with it, as when Lean checked it (with only its own dependencies)."""
    return f"section\n\n{code}\nend\n"


#: commands whose effect outlives a ``section`` unless they are ``local`` or ``scoped``
_GLOBAL_COMMANDS = frozenset(
    {"instance", "notation", "infix", "infixl", "infixr", "prefix", "postfix", "macro", "macro_rules", "syntax"}
)


def global_effect(code: str) -> str | None:
    """What in a unit's code reaches past its own ``section`` (a global ``instance``, an attribute that is not
    ``local``, notation, ``export``), else None. Such a unit gets a module of its own, so that the units after it
    in its chapter are compiled as Lean checked them: without it, unless they depend on it."""
    toks = lean_tokens(code, punctuation=True)
    for k, t in enumerate(toks):
        prev = toks[k - 1].text if k else ""
        if t.kind == "ident" and t.text in _GLOBAL_COMMANDS and prev not in ("local", "scoped"):
            return f"`{t.text}`"
        if t.kind == "ident" and t.text == "export" and (k == 0 or toks[k - 1].line < t.line):
            return "`export`"
        if t.text == "@[" or (t.text == "[" and prev == "attribute"):
            first = toks[k + 1].text if k + 1 < len(toks) else ""
            if first not in ("local", "scoped"):
                return f"the attribute `{first}`"
    return None


#: the Atlas's two libraries and the statuses of the entries each holds (``Atlas`` is free of ``sorry``)
LIBRARIES: tuple[tuple[str, frozenset[UnitStatus]], ...] = (
    ("Atlas", frozenset({UnitStatus.PROVED, UnitStatus.DEFINED})),
    ("AtlasStated", frozenset({UnitStatus.STATED})),
)


@dataclass
class _BookModules:
    """What rendering one book's modules needs to know: its units, Atlas entries, dependency graph and modules.

    A unit goes into its chapter's module, closed in its own ``section``; a unit with a global effect
    (:func:`global_effect`) goes into a module of its own below the chapter's (``Chapter/Name.lean``), which the
    chapter imports only where one of its units depends on it."""

    book: Book
    by_id: dict[int, Unit]
    entries: list[AtlasEntry]
    entry_of: dict[int, AtlasEntry]
    chapters: dict[str, str]
    graph: nx.DiGraph
    own: dict[int, str]  # unit id -> the name of its own module, for units with a global effect

    @classmethod
    def of(cls, store: Store, book: Book) -> _BookModules:
        units = store.units(book.id)
        by_id = {u.id: u for u in units}
        entries = [e for e in store.atlas_entries(book.id) if e.unit_id in by_id]
        graph = nx.DiGraph()
        graph.add_nodes_from(by_id)
        graph.add_edges_from((u, d) for u, d, _ in store.deps(book.id) if u in by_id and d in by_id)
        own: dict[int, str] = {}
        for e in entries:
            if global_effect(e.lean_code) is not None:
                base, k = lean_ident(e.decl_name.rsplit(".", 1)[-1], "Unit"), 2
                name = base
                while name in own.values():
                    name, k = f"{base}{k}", k + 1
                own[e.unit_id] = name
        return cls(book, by_id, entries, {e.unit_id: e for e in entries}, chapter_modules(units), graph, own)

    def chapter_module(self, lib: str, chapter: str) -> str:
        return f"{lib}.{book_module(self.book)}.{self.chapters[chapter]}"

    def module_of(self, e: AtlasEntry) -> str:
        chapter = self.chapter_module(_library(e), self.by_id[e.unit_id].chapter)
        return f"{chapter}.{self.own[e.unit_id]}" if e.unit_id in self.own else chapter

    def needed_modules(self, lib: str, this: str, chosen: list[AtlasEntry]) -> list[str]:
        """The modules holding what the chosen units were checked with: their admitted dependencies,
        transitively, in book order (the stated ones only from ``AtlasStated``), without duplicates."""
        needed: list[str] = []
        for e in chosen:
            for d in sorted(nx.descendants(self.graph, e.unit_id), key=lambda i: self.by_id[i].seq):
                de = self.entry_of.get(d)
                if de is None or self.module_of(de) == this or (lib == "Atlas" and de.status == UnitStatus.STATED):
                    continue
                needed.append(self.module_of(de))
        return list(dict.fromkeys(needed))

    def modules(self, lib: str, statuses: frozenset[UnitStatus]) -> dict[str, list[AtlasEntry]]:
        """Module name -> its entries in book order, for the entries of ``lib``: chapters first, each followed by
        the modules of its own units."""
        out: dict[str, list[AtlasEntry]] = {}
        for chapter in self.chapters:
            chosen = [e for e in self.entries if e.status in statuses and self.by_id[e.unit_id].chapter == chapter]
            shared = [e for e in chosen if e.unit_id not in self.own]
            if shared:
                out[self.chapter_module(lib, chapter)] = shared
            for e in chosen:
                if e.unit_id in self.own:
                    out[self.module_of(e)] = [e]
        return out


def module_paths(store: Store, book: Book) -> dict[int, str]:
    """Unit id -> the file (relative to ``atlas/``) that holds the unit's Atlas entry."""
    mods = _BookModules.of(store, book)
    return {e.unit_id: mods.module_of(e).replace(".", "/") + ".lean" for e in mods.entries}


def _chapter_text(book: Book, chapter: str, imports: list[str], header_rest: list[str], decls: list[str]) -> str:
    title = _one_line(chapter) or "Front matter"
    ns = book_namespace(book)
    return (
        "\n".join(imports)
        + "\n\n"
        + ("\n".join(header_rest) + "\n\n" if header_rest else "")
        + f"/-!\n# {_one_line(book.title or book.slug)}: {title}\n\nGenerated by autoform from the store; "
        + "do not edit by hand.\n-/\n\n"
        + f"namespace {ns}\n\n"
        + "\n".join(decls)
        + f"\nend {ns}\n"
    )


def render_book(store: Store, book: Book, header: str) -> dict[str, str]:
    """Relative path (under atlas/) -> file text, for one book, proved/defined and stated separately.

    A module imports the header's imports first, then the modules holding the admitted dependencies its units
    were checked with (wherever they are in the book: a later chapter too), then the rest of the header
    (``open ...``, options); each unit is closed in its own ``section``, and a unit whose effect a section would
    not close has a module of its own (:class:`_BookModules`)."""
    mods = _BookModules.of(store, book)
    header_imports, header_rest = split_header(header)
    files: dict[str, str] = {}
    for lib, statuses in LIBRARIES:
        for module, chosen in mods.modules(lib, statuses).items():
            imports = header_imports + [f"import {m}" for m in mods.needed_modules(lib, module, chosen)]
            decls = [
                _unit_block(with_docstring(e.lean_code.strip("\n"), mods.by_id[e.unit_id], e, book)) for e in chosen
            ]
            chapter = mods.by_id[chosen[0].unit_id].chapter
            files[module.replace(".", "/") + ".lean"] = _chapter_text(book, chapter, imports, header_rest, decls)
    return files


@contextlib.contextmanager
def _exclusive(root: Path) -> Iterator[None]:
    """One writer of ``atlas/`` at a time: threads of this process (a lock) and other processes, such as two
    jobs on two books of one workspace (an advisory lock on a file beside ``atlas/``), so that no writer
    removes a module another has just written from a newer store."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with _write_lock, open(root.parent / f".{root.name}.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def write_atlas(store: Store, settings: Settings) -> list[Path]:
    """Regenerate every book's modules and the library roots. Returns the files that changed."""
    with _exclusive(settings.atlas_dir):
        root = settings.atlas_dir
        changed: list[Path] = []
        libs: dict[str, list[str]] = {"Atlas": [], "AtlasStated": []}
        wanted: set[Path] = set()
        for book in store.books():
            for rel, text in render_book(store, book, settings.lean.header).items():
                path = root / rel
                wanted.add(path)
                if atomic_write(path, text):
                    changed.append(path)
                lib = rel.split("/", 1)[0]
                libs[lib].append(rel.removesuffix(".lean").replace("/", "."))  # render_book: textbook order
        for lib, modules in libs.items():
            text = "".join(f"import {m}\n" for m in dict.fromkeys(modules)) or "-- no modules yet\n"
            path = root / f"{lib}.lean"
            wanted.add(path)
            if atomic_write(path, text):
                changed.append(path)
        # modules of units no longer admitted (e.g. a chapter renamed) are removed
        for lib in libs:
            for p in (root / lib).rglob("*.lean") if (root / lib).exists() else []:
                if p not in wanted:
                    p.unlink()
                    changed.append(p)
        return changed


def _run(cmd: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> tuple[bool, str]:
    """(ok, the last 20000 characters of stdout + stderr) of a command; a missing program or a timeout is a
    failure with a message, never an exception."""
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **env} if env else None
        )
        return proc.returncode == 0, (proc.stdout + proc.stderr)[-20000:]
    except FileNotFoundError:
        return False, f"`{cmd[0]}` not found"
    except subprocess.TimeoutExpired:
        return False, f"`{' '.join(cmd)}` timed out after {timeout:.0f} s"


def build_atlas(store: Store, settings: Settings) -> tuple[bool, str]:
    """``lake build Atlas AtlasStated`` in the workspace; the result is recorded in the store (``builds``)."""
    cmd = [settings.lean.lake_path, "build", "Atlas", "AtlasStated"]
    ok, output = _run(cmd, settings.home, 6 * 3600)
    store.record_build(ok, cmd, output)
    return ok, output


# -- doc-gen4 ------------------------------------------------------------------------------------------------------
# doc-gen4's documented set-up (its README, https://github.com/leanprover/doc-gen4): a nested Lake project
# ``docbuild/`` whose lakefile requires doc-gen4 and the library by path, sharing the parent's packages
# directory; ``lake update doc-gen4`` there once (MATHLIB_NO_CACHE_ON_UPDATE=1 when Mathlib is a dependency),
# then ``lake build Atlas:docs`` there writes ``docbuild/.lake/build/doc/index.html``. A nested project keeps
# doc-gen4 out of the Atlas's own dependencies, so projects that require the Atlas do not inherit it.
DOCBUILD = "docbuild"


def docgen_rev(toolchain: str) -> str:
    """The doc-gen4 revision matching a lean-toolchain line: its tag for a release (``v4.24.0``) or a release
    candidate (``v4.25.0-rc2``: doc-gen4 tags those too), else ``main``."""
    m = re.fullmatch(r"\s*(?:leanprover/lean4:)?(v\d+\.\d+\.\d+(?:-rc\d+)?)\s*", toolchain)
    return m.group(1) if m else "main"


#: the first line of every docbuild file autoform writes: such a file is regenerated when it goes stale
DOCBUILD_MARK = "# Generated by `autoform atlas docs`"


def docgen_source_env(home: Path) -> dict[str, str]:
    """``DOCGEN_SRC=file`` unless the workspace's ``origin`` is on GitHub (doc-gen4 links each declaration to its
    source and, without ``DOCGEN_SRC``, needs a GitHub remote to build those links) or the caller set it."""
    if os.environ.get("DOCGEN_SRC"):
        return {}
    url = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        url = subprocess.run(
            ["git", "remote", "get-url", "origin"], cwd=home, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    return {} if re.match(r"(?:https://|ssh://git@|git@)github\.com[/:]", url) else {"DOCGEN_SRC": "file"}


def docbuild_files(settings: Settings) -> dict[str, str]:
    """The files of the nested doc-gen4 project (relative to the workspace)."""
    tc_path = settings.home / "lean-toolchain"
    toolchain = tc_path.read_text(encoding="utf-8").strip() if tc_path.is_file() else ""
    lakefile = (
        f"{DOCBUILD_MARK}: a nested Lake project that builds the Atlas's doc-gen4 pages\n"
        "# (doc-gen4's recommended set-up; the Atlas itself does not depend on doc-gen4).\n"
        'name = "docbuild"\n'
        "reservoir = false\n"
        'version = "0.1.0"\n'
        'packagesDir = "../.lake/packages"\n'
        "\n[[require]]\n"
        'scope = "leanprover"\n'
        'name = "doc-gen4"\n'
        f'rev = "{docgen_rev(toolchain)}"\n'
        "\n[[require]]\n"
        'name = "autoform"\n'
        'path = "../"\n'
    )
    files = {f"{DOCBUILD}/lakefile.toml": lakefile}
    if toolchain:
        files[f"{DOCBUILD}/lean-toolchain"] = toolchain + "\n"
    return files


def sync_docbuild(settings: Settings) -> list[str]:
    """Write the docbuild project's files: missing ones, and ours (the marked lakefile, a toolchain file equal to
    what we wrote) when the workspace's toolchain changed, so the doc-gen4 pin follows the Lean pin. A lakefile
    the user wrote (no mark) is kept; returns warnings for what is then stale."""
    home, notes = settings.home, []
    for rel, text in docbuild_files(settings).items():
        path = home / rel
        if not path.exists():
            atomic_write(path, text)
            continue
        old = path.read_text(encoding="utf-8", errors="replace")
        if old == text:
            continue
        if rel.endswith("lakefile.toml") and not old.startswith(DOCBUILD_MARK):
            rev = re.search(r'name\s*=\s*"doc-gen4"[^\[]*?rev\s*=\s*"([^"]*)"', old, re.S)
            want = re.search(r'rev = "([^"]*)"', text)
            if want and (rev is None or rev.group(1) != want.group(1)):
                notes.append(
                    f"{path} is yours (not generated) and pins doc-gen4 at "
                    f"{rev.group(1) if rev else '?'}, not {want.group(1) if want else '?'} as the workspace's "
                    "lean-toolchain asks: update it, or delete it to have it regenerated"
                )
            continue
        atomic_write(path, text)  # ours and stale (a toolchain change): regenerated
        notes.append(
            f"{path} regenerated for the workspace's toolchain; run `autoform atlas docs --fetch` "
            "to update doc-gen4 to it"
        )
    return notes


def docgen_installed(settings: Settings) -> bool:
    """Whether doc-gen4 has been fetched for the docbuild project."""
    home = settings.home
    return any((d / "doc-gen4").is_dir() for d in (home / ".lake" / "packages", home / DOCBUILD / ".lake" / "packages"))


class DocsResult(BaseModel):
    ok: bool
    #: "built", "failed", "no-lake", "no-docgen" (not fetched, or fetching failed)
    state: str
    message: str
    index: Path | None = None
    output: str = ""


def _workspace_problem(settings: Settings) -> DocsResult | None:
    """Why doc-gen4 cannot run here at all (no Lake, no lakefile), or None."""
    lake, home = settings.lean.lake_path, settings.home
    if shutil.which(lake) is None and not Path(lake).is_file():
        return DocsResult(
            ok=False,
            state="no-lake",
            message=(
                f"Lean's build tool `{lake}` was not found, so doc-gen4 cannot run. Install the Lean toolchain with "
                "elan (https://github.com/leanprover/elan), e.g. `scripts/setup.sh`, or set [lean] lake_path in "
                "autoform.toml; then run `autoform atlas docs --fetch`."
            ),
        )
    if not (home / "lakefile.lean").is_file():
        return DocsResult(
            ok=False,
            state="failed",
            message=(
                f"{home} has no lakefile.lean: the Atlas's documentation is built from the workspace that holds it "
                "(the repository root is one)."
            ),
        )
    return None


def _ensure_docgen(settings: Settings, docbuild: Path, *, fetch: bool) -> DocsResult | None:
    """Fetch doc-gen4 when it is missing and `fetch` is true; a result saying why it is missing, or None when
    it is there."""
    if docgen_installed(settings):
        return None
    how = (
        f"Fetch it with `autoform atlas docs --fetch` (runs `MATHLIB_NO_CACHE_ON_UPDATE=1 lake update doc-gen4` "
        f"in {docbuild}; needs access to GitHub)."
    )
    if not fetch:
        return DocsResult(ok=False, state="no-docgen", message=f"doc-gen4 is not installed for this workspace. {how}")
    lake = settings.lean.lake_path
    ok, output = _run([lake, "update", "doc-gen4"], docbuild, 3600, env={"MATHLIB_NO_CACHE_ON_UPDATE": "1"})
    if not ok or not docgen_installed(settings):
        return DocsResult(
            ok=False,
            state="no-docgen",
            output=output,
            message=("fetching doc-gen4 failed (no network?); see the output above. " + how),
        )
    return None


def build_docs(store: Store, settings: Settings, *, fetch: bool = False) -> DocsResult:
    """doc-gen4 pages of the Atlas, through the nested ``docbuild/`` project (written when missing).

    Nothing is downloaded unless `fetch` is true (``lake update doc-gen4``, which needs GitHub).
    """
    problem = _workspace_problem(settings)
    if problem is not None:
        return problem
    notes = sync_docbuild(settings)
    docbuild = settings.home / DOCBUILD
    missing = _ensure_docgen(settings, docbuild, fetch=fetch)
    if missing is not None:
        return missing
    write_atlas(store, settings)
    cmd = [settings.lean.lake_path, "build", "Atlas:docs", "AtlasStated:docs"]
    ok, output = _run(cmd, docbuild, 6 * 3600, env=docgen_source_env(settings.home))
    store.record_build(ok, cmd, output)
    index = docbuild / ".lake" / "build" / "doc" / "index.html"
    extra = "".join(f"\nnote: {n}" for n in notes)
    if not ok:
        return DocsResult(ok=False, state="failed", output=output, message=f"`{' '.join(cmd[1:])}` failed" + extra)
    return DocsResult(
        ok=True,
        state="built",
        output=output,
        index=index,
        message=(
            f"doc-gen4 pages in {index.parent} (serve them, e.g. `autoform atlas serve --dir {index.parent}`: "
            "doc-gen4's pages need a web server, not file://)" + extra
        ),
    )
