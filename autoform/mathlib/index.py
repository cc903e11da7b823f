"""The Mathlib declaration index: every declaration of a Mathlib checkout (and of the Atlas) in SQLite, with a
full-text index (FTS5) over the words of names, signatures and docstrings.

Built from source by :mod:`autoform.mathlib.source` (no Lean run; two processes read the files), stored in one
SQLite file of the workspace and rebuilt when the source changes (its revision is a digest of every file's path
and size, cheap to compute on each open). Words are split the way Mathlib names are built: ``Nat.Prime.two_le``
is ``nat prime two le``, ``IsPrimePow`` is ``is prime pow``, and symbols in signatures become the words of
Mathlib's naming convention (``≤`` is ``le``, ``∣`` is ``dvd``, ``∑`` is ``sum``)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from pydantic import BaseModel

from autoform.mathlib.source import Decl, read_file

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS decls (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    signature TEXT NOT NULL,
    doc TEXT NOT NULL,
    module TEXT NOT NULL,
    line INTEGER NOT NULL,
    attrs TEXT NOT NULL,
    deprecated INTEGER NOT NULL,
    deprecated_to TEXT,
    origin TEXT NOT NULL,
    refs INTEGER NOT NULL DEFAULT 0,
    notion TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS decls_name ON decls(name);
CREATE INDEX IF NOT EXISTS decls_notion ON decls(notion);
CREATE VIRTUAL TABLE IF NOT EXISTS decls_fts USING fts5(
    name_words, sig_words, doc_words, content='', tokenize='unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE IF NOT EXISTS decls_vocab USING fts5vocab(decls_fts, 'row');
"""
INDEX_VERSION = "2"

#: symbols of Lean and Mathlib notation -> the words Mathlib's names use for them (naming conventions)
SYMBOL_WORDS = {
    "+": "add",
    "*": "mul",
    "-": "sub",
    "/": "div",
    "∣": "dvd",
    "≤": "le",
    "<": "lt",
    "≥": "le",
    ">": "lt",
    "^": "pow",
    "⁻¹": "inv",
    "∑": "sum",
    "∏": "prod",
    "∈": "mem",
    "∉": "mem",
    "⊆": "subset",
    "⊂": "ssubset",
    "∩": "inter",
    "∪": "union",
    "¬": "not",
    "∘": "comp",
    "≠": "ne",
    "•": "smul",
    "√": "sqrt",
    "∫": "integral",
    "∀": "forall",
    "∃": "exists",
    "↔": "iff",
    "→": "imp",
    "∧": "and",
    "∨": "or",
    "⊤": "top",
    "⊥": "bot",
    "ᶜ": "compl",
    "×": "prod",
    "≃": "equiv",
    "≅": "iso",
    "⧸": "quotient",
    "‖": "norm",
    "∞": "top",
    "%": "mod",
    "!": "factorial",
    "⌊": "floor",
    "⌈": "ceil",
    "|": "abs",
}
_SYMBOLS = re.compile("|".join(re.escape(s) for s in sorted(SYMBOL_WORDS, key=len, reverse=True)))
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_']*(?:\.[A-Za-z_][A-Za-z0-9_']*)*")


def name_words(name: str) -> list[str]:
    """``Nat.Prime.two_le`` -> nat prime two le; ``IsPrimePow`` -> is prime pow; ``finrank`` stays whole."""
    out: list[str] = []
    for part in re.split(r"[._']+", name):
        for piece in _CAMEL.findall(part):
            out.append(piece.lower())
    return out


def text_words(text: str) -> list[str]:
    """Words of a signature or a docstring: identifiers split as names, symbols as the naming convention's."""
    words: list[str] = []
    for m in _SYMBOLS.finditer(text):
        words.append(SYMBOL_WORDS[m.group(0)])
    for m in _IDENT.finditer(text):
        words.extend(name_words(m.group(0)))
    return words


class Hit(BaseModel):
    name: str
    kind: str
    signature: str
    module: str
    score: float
    doc: str = ""
    line: int = 0
    deprecated_to: str | None = None


#: the folders of a source directory that hold each origin's declarations (not its tests, scripts or, for Lean's
#: own library, the compiler); an origin not listed (the Atlas) is read whole
TOPS: dict[str, tuple[str, ...]] = {"mathlib": ("Mathlib",), "batteries": ("Batteries",), "core": ("Init", "Std")}


def _roots(source: Path, origin: str) -> list[Path]:
    tops = [source / t for t in TOPS.get(origin, ()) if (source / t).is_dir()]
    return tops or [source]


def source_revision(source: Path, origin: str = "mathlib") -> str:
    """A digest of the checkout's git commit (when it is one, as Lake's are) and of every ``.lean`` file's path
    and size under ``source`` (rebuild when it changes)."""
    h = hashlib.sha256(INDEX_VERSION.encode())
    h.update(_git_head(source).encode())
    for root in _roots(source, origin):
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for f in sorted(filenames):
                if f.endswith(".lean"):
                    p = os.path.join(dirpath, f)
                    h.update(f"{os.path.relpath(p, source)}\0{os.path.getsize(p)}\n".encode())
    return h.hexdigest()[:24]


def _git_head(source: Path) -> str:
    """The commit a git checkout is at ('' when it is none): Lake checks packages out at a detached commit."""
    try:
        head = (source / ".git" / "HEAD").read_text(encoding="utf-8").strip()
        if head.startswith("ref: "):
            ref = source / ".git" / head[5:]
            head = ref.read_text(encoding="utf-8").strip() if ref.is_file() else head
    except OSError:
        return ""
    return head


def _lean_files(source: Path, origin: str = "mathlib") -> list[Path]:
    return sorted(p for root in _roots(source, origin) for p in root.rglob("*.lean") if ".lake" not in p.parts)


def dependency_sources(mathlib_source: Path, project: Path) -> list[tuple[str, Path]]:
    """(origin, source) of what Mathlib builds on, where it is present: Batteries beside Mathlib in Lake's
    packages folder, and Lean's own library (``Init``, ``Std``) in the toolchain elan installed for ``project``
    (``Nat.lt_irrefl`` and ``Int.emod_emod_of_dvd`` are Lean's, not Mathlib's: a name check must know them)."""
    out: list[tuple[str, Path]] = []
    batteries = mathlib_source.parent / "batteries"
    if (batteries / "Batteries").is_dir():
        out.append(("batteries", batteries))
    try:
        toolchain = (project / "lean-toolchain").read_text(encoding="utf-8").strip()
    except OSError:
        toolchain = ""
    if toolchain:
        elan = Path(os.environ.get("ELAN_HOME") or Path.home() / ".elan")
        core = elan / "toolchains" / toolchain.replace("/", "--").replace(":", "---") / "src" / "lean"
        if (core / "Init").is_dir():
            out.append(("core", core))
    return out


_TOKEN = re.compile(r"(?<![\w.'])[A-Za-z_][\w']*(?:\.[A-Za-z_][\w']*)*")


def _read_many(args: tuple[str, list[str]]) -> tuple[list[Decl], Counter[str]]:
    """The declarations of some files, and how often each identifier is written there (a name's popularity:
    ``Group`` is written tens of thousands of times, ``FreeGroup.freeAddGroup.red.reduce_eq`` hardly ever)."""
    root, paths = args
    out: list[Decl] = []
    refs: Counter[str] = Counter()
    for p in paths:
        out.extend(read_file(Path(root), Path(p)))
        try:
            text = Path(p).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for tok in _TOKEN.findall(text):
            refs[tok] += 1
            if "." in tok:
                refs[tok.rsplit(".", 1)[-1]] += 1  # `h.two_le`, `Nat.Prime.two_le`: its last component too
    return out, refs


def read_source(source: Path, *, workers: int = 2, origin: str = "mathlib") -> tuple[list[Decl], Counter[str]]:
    """Every declaration under ``source`` (a Mathlib checkout: its ``Mathlib/`` folder is read; see ``TOPS``), in
    file order, and the identifier counts."""
    files = _lean_files(source, origin)
    if not files:
        raise FileNotFoundError(f"{source}: no .lean files (expected a Mathlib checkout with a Mathlib/ folder)")
    chunks = [files[k :: max(1, workers * 8)] for k in range(max(1, workers * 8))]
    jobs = [(str(source), [str(p) for p in chunk]) for chunk in chunks if chunk]
    decls: list[Decl] = []
    refs: Counter[str] = Counter()
    if workers <= 1:
        results: Iterable[tuple[list[Decl], Counter[str]]] = map(_read_many, jobs)
        for d, r in results:
            decls += d
            refs.update(r)
        return decls, refs
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for d, r in pool.map(_read_many, jobs):
            decls += d
            refs.update(r)
    return decls, refs


#: words left out of a notion's key: ``orderOf`` is the notion "order", ``IsCyclic`` the notion "cyclic"
_KEY_STOP = frozenset({"of", "is", "to", "the", "mk", "has"})


def notion_key(name: str) -> str:
    """The key a notion is found by from informal words: its last component's words, without ``of``/``is``."""
    return " ".join(w for w in name_words(name.rsplit(".", 1)[-1]) if w not in _KEY_STOP)


class MathlibIndex:
    """The index in one SQLite file. Thread-safe for readers (one connection per thread is not needed: SQLite
    serialises a shared connection, and queries are short)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, check_same_thread=False)
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        self.conn.close()

    # -- building ---------------------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def count(self, origin: str | None = None) -> int:
        sql, args = "SELECT COUNT(*) FROM decls", ()
        if origin:
            sql, args = sql + " WHERE origin = ?", (origin,)
        return int(self.conn.execute(sql, args).fetchone()[0])

    def replace(
        self, origin: str, decls: Iterable[Decl], *, revision: str, source: str, refs: Counter[str] | None = None
    ) -> int:
        """Replace every declaration of ``origin`` (``mathlib`` or ``atlas``) by ``decls``, in one transaction."""
        n = 0
        with self.conn:
            ids = [r[0] for r in self.conn.execute("SELECT id FROM decls WHERE origin = ?", (origin,))]
            if ids:
                self.conn.execute("DELETE FROM decls WHERE origin = ?", (origin,))
                # a contentless FTS table is emptied with its 'delete-all' command, then refilled from the rest
                self.conn.execute("INSERT INTO decls_fts (decls_fts) VALUES ('delete-all')")
                self._refill_fts(exclude=origin)
            refs = refs or Counter()
            for d in decls:
                short = d.name.rsplit(".", 1)[-1]
                cur = self.conn.execute(
                    "INSERT INTO decls (name, kind, signature, doc, module, line, attrs, deprecated, deprecated_to,"
                    " origin, refs, notion) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        d.name,
                        d.kind,
                        d.signature,
                        d.doc,
                        d.module,
                        d.line,
                        json.dumps(d.attrs),
                        int(d.deprecated),
                        d.deprecated_to,
                        origin,
                        refs[d.name] + (refs[short] if short != d.name else 0) // 4,
                        notion_key(d.name),
                    ),
                )
                self._fts_insert(int(cur.lastrowid or 0), d.name, d.signature, d.doc)
                n += 1
            self.conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [
                    (f"{origin}.revision", revision),
                    (f"{origin}.source", source),
                    (f"{origin}.built_at", str(time.time())),
                    (f"{origin}.count", str(n)),
                ],
            )
        return n

    def _fts_insert(self, rowid: int, name: str, signature: str, doc: str) -> None:
        self.conn.execute(
            "INSERT INTO decls_fts (rowid, name_words, sig_words, doc_words) VALUES (?,?,?,?)",
            (
                rowid,
                " ".join(name_words(name)),
                " ".join(text_words(signature)),
                " ".join(w.lower() for w in re.findall(r"[A-Za-z]+", doc)),
            ),
        )

    def _refill_fts(self, *, exclude: str) -> None:
        for rowid, name, sig, doc in self.conn.execute(
            "SELECT id, name, signature, doc FROM decls WHERE origin != ?", (exclude,)
        ).fetchall():
            self._fts_insert(rowid, name, sig, doc)

    # -- reading ----------------------------------------------------------------------------------------------
    def get(self, name: str) -> Hit | None:
        row = self.conn.execute(
            "SELECT name, kind, signature, module, doc, line, deprecated_to FROM decls WHERE name = ? "
            "ORDER BY deprecated LIMIT 1",
            (name,),
        ).fetchone()
        return _hit(row, 1.0) if row else None

    def deprecation(self, name: str) -> tuple[bool, str | None] | None:
        """Whether ``name`` is declared, and if so whether it is deprecated and to what: None when it is not."""
        row = self.conn.execute(
            "SELECT deprecated, deprecated_to FROM decls WHERE name = ? ORDER BY deprecated LIMIT 1", (name,)
        ).fetchone()
        return None if row is None else (bool(row[0]), row[1])

    def fts(
        self,
        match: str,
        *,
        limit: int,
        kinds: tuple[str, ...] | None = None,
        weights: tuple[float, float, float] = (8.0, 2.0, 1.0),
        prior: float = 0.0,
    ) -> list[Hit]:
        """Rows matching an FTS5 query, best first: BM25 with per-column weights, plus ``prior`` times the log of
        how often the name is written in the source (a higher score is better).

        Two stages, for speed on long queries: FTS5 ranks inside its own index (``ORDER BY rank`` with the
        weights, which it answers without visiting every match's row), then the best few hundred are joined
        with their declarations, filtered and re-ranked with the prior."""
        pool = max(200, limit * 25)
        try:
            ranked = self.conn.execute(
                "SELECT rowid, -rank FROM decls_fts WHERE decls_fts MATCH ? AND rank MATCH ? ORDER BY rank LIMIT ?",
                (match, f"bm25({weights[0]}, {weights[1]}, {weights[2]})", pool),
            ).fetchall()
        except sqlite3.OperationalError:  # a query FTS5 cannot parse: no match, not a crash
            return []
        if not ranked:
            return []
        score = dict(ranked)
        sql = (
            "SELECT id, name, kind, signature, module, doc, line, deprecated_to, refs FROM decls "
            f"WHERE deprecated = 0 AND id IN ({','.join('?' * len(score))})"
        )
        args: list[object] = list(score)
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args += list(kinds)
        hits = [
            _hit(r[1:8], float(score[r[0]]) + prior * math.log1p(r[8])) for r in self.conn.execute(sql, args).fetchall()
        ]
        hits.sort(key=lambda h: -h.score)
        return hits[:limit]

    def document_frequency(self, words: list[str]) -> dict[str, int]:
        """In how many declarations each word occurs (0 for a word the index does not hold)."""
        if not words:
            return {}
        rows = self.conn.execute(
            f"SELECT term, doc FROM decls_vocab WHERE term IN ({','.join('?' * len(words))})", words
        ).fetchall()
        found = dict(rows)
        return {w: int(found.get(w, 0)) for w in words}

    def notions(self, key: str, *, kinds: tuple[str, ...], limit: int = 5) -> list[Hit]:
        """Declarations of ``kinds`` whose notion key is ``key``, the most used first."""
        rows = self.conn.execute(
            "SELECT name, kind, signature, module, doc, line, deprecated_to, refs FROM decls WHERE notion = ? "
            f"AND deprecated = 0 AND kind IN ({','.join('?' * len(kinds))}) ORDER BY refs DESC LIMIT ?",
            (key, *kinds, limit),
        ).fetchall()
        return [_hit(r[:7], float(r[7])) for r in rows]

    def deprecated_names(self) -> list[str]:
        """Every deprecated name the index holds (their targets: :meth:`deprecation`)."""
        return [r[0] for r in self.conn.execute("SELECT name FROM decls WHERE deprecated = 1 ORDER BY id")]

    def names_of_notion(self, key: str, *, limit: int = 200) -> list[str]:
        """Names (not deprecated, any kind) whose last component has the notion key ``key``, the most used first:
        ``Nat.Prime``, ``Ideal.IsPrime`` and ``Prime`` for ``prime`` (a name in the wrong namespace, or with
        its last component in the other case convention, is found by its key)."""
        if not key:
            return []
        rows = self.conn.execute(
            "SELECT name FROM decls WHERE notion = ? AND deprecated = 0 ORDER BY refs DESC LIMIT ?", (key, limit)
        ).fetchall()
        return [r[0] for r in rows]

    def names_with_words(self, words: list[str], *, limit: int = 200) -> list[str]:
        """Names whose name words include all of ``words`` (for the nearest-name answer)."""
        if not words:
            return []
        match = "name_words : (" + " AND ".join(_quote(w) for w in words) + ")"
        rows = self.conn.execute(
            "SELECT d.name FROM decls_fts JOIN decls d ON d.id = decls_fts.rowid WHERE decls_fts MATCH ? LIMIT ?",
            (match, limit),
        ).fetchall()
        return [r[0] for r in rows]


def _quote(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _hit(row: tuple, score: float) -> Hit:
    name, kind, sig, module, doc, line, dep = row
    return Hit(
        name=name, kind=kind, signature=sig, module=module, doc=doc, line=line, deprecated_to=dep, score=round(score, 4)
    )


def build(
    index: MathlibIndex, source: Path, *, workers: int = 2, origin: str = "mathlib", force: bool = False
) -> tuple[int, bool]:
    """(declarations, whether it was rebuilt): the index of ``source``, rebuilt only when its revision changed."""
    revision = source_revision(source, origin)
    if not force and index.meta(f"{origin}.revision") == revision:
        return int(index.meta(f"{origin}.count") or 0), False
    decls, refs = read_source(source, workers=workers, origin=origin)
    n = index.replace(origin, decls, revision=revision, source=str(source), refs=refs)
    return n, True


def follow_source(index: MathlibIndex, source: Path, *, workers: int = 2) -> bool:
    """Whether the index's Mathlib part was rebuilt because ``source``, which it was built from (not with
    ``--from-lean``), changed revision (a Mathlib bump)."""
    revision = index.meta("mathlib.revision") or ""
    if revision.startswith("lean:") or index.meta("mathlib.source") != str(source) or not source.is_dir():
        return False
    return build(index, source, workers=workers)[1]
