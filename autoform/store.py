"""The store: one SQLite database (WAL) per workspace, with a schema version and migrations.

Every write goes through :meth:`Store.tx`, a transaction: either all of it lands or none of it does, so a
``kill -9`` at any moment leaves the store as it was before or after a step, never in between.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

SCHEMA_VERSION = 4

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE books (
        id INTEGER PRIMARY KEY,
        slug TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL DEFAULT '',
        source_path TEXT NOT NULL,
        source_kind TEXT NOT NULL CHECK (source_kind IN ('latex', 'pdf')),
        ingested_at REAL NOT NULL,
        warnings TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE units (
        id INTEGER PRIMARY KEY,
        book_id INTEGER NOT NULL REFERENCES books(id) ON DELETE CASCADE,
        ident TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        number TEXT NOT NULL DEFAULT '',
        title TEXT NOT NULL DEFAULT '',
        label TEXT NOT NULL DEFAULT '',
        statement TEXT NOT NULL,
        statement_raw TEXT NOT NULL DEFAULT '',
        proof TEXT NOT NULL DEFAULT '',
        chapter TEXT NOT NULL DEFAULT '',
        section TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT '',
        refs TEXT NOT NULL DEFAULT '[]',
        present INTEGER NOT NULL DEFAULT 1,
        status TEXT NOT NULL DEFAULT 'pending',
        UNIQUE (book_id, ident)
    );
    CREATE INDEX units_book ON units(book_id, seq);
    CREATE TABLE unit_deps (
        unit_id INTEGER NOT NULL REFERENCES units(id) ON DELETE CASCADE,
        dep_id INTEGER NOT NULL REFERENCES units(id) ON DELETE CASCADE,
        via TEXT NOT NULL DEFAULT 'ref',
        PRIMARY KEY (unit_id, dep_id)
    );
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        book_id INTEGER NOT NULL REFERENCES books(id),
        status TEXT NOT NULL CHECK (status IN ('running', 'done', 'interrupted', 'failed')),
        params TEXT NOT NULL DEFAULT '{}',
        started_at REAL NOT NULL,
        finished_at REAL,
        pid INTEGER,
        message TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE posts (
        id INTEGER PRIMARY KEY,
        book_id INTEGER NOT NULL REFERENCES books(id),
        unit_id INTEGER REFERENCES units(id),
        job_id INTEGER REFERENCES jobs(id),
        round INTEGER NOT NULL DEFAULT 0,
        author TEXT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}',
        refs TEXT NOT NULL DEFAULT '[]',
        pinned INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE INDEX posts_unit ON posts(unit_id, kind);
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        job_id INTEGER NOT NULL REFERENCES jobs(id),
        unit_id INTEGER NOT NULL REFERENCES units(id),
        n INTEGER NOT NULL,
        author TEXT NOT NULL,
        stage TEXT NOT NULL CHECK (stage IN ('statement', 'proof', 'definition')),
        lean_code TEXT NOT NULL,
        admitted INTEGER NOT NULL,
        reasons TEXT NOT NULL DEFAULT '[]',
        messages TEXT NOT NULL DEFAULT '[]',
        axioms TEXT,
        toolchain TEXT NOT NULL DEFAULT '',
        elapsed_s REAL NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE INDEX attempts_unit ON attempts(unit_id, job_id);
    CREATE TABLE atlas_entries (
        id INTEGER PRIMARY KEY,
        unit_id INTEGER NOT NULL UNIQUE REFERENCES units(id),
        book_id INTEGER NOT NULL REFERENCES books(id),
        decl_name TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('proved', 'defined', 'stated')),
        statement_lean TEXT NOT NULL,
        lean_code TEXT NOT NULL,
        attempt_id INTEGER REFERENCES attempts(id),
        job_id INTEGER REFERENCES jobs(id),
        model TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        UNIQUE (book_id, decl_name)
    );
    CREATE TABLE llm_calls (
        id INTEGER PRIMARY KEY,
        cache_key TEXT NOT NULL,
        job_id INTEGER,
        unit_id INTEGER,
        role TEXT NOT NULL,
        model TEXT NOT NULL,
        request TEXT NOT NULL,
        response TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        cached INTEGER NOT NULL DEFAULT 0,
        posts_used TEXT NOT NULL DEFAULT '[]',
        elapsed_s REAL NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE INDEX llm_calls_key ON llm_calls(cache_key);
    CREATE TABLE builds (
        id INTEGER PRIMARY KEY,
        ok INTEGER NOT NULL,
        command TEXT NOT NULL,
        output TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    """,
    2: """
    CREATE TABLE lean_cache (
        key TEXT PRIMARY KEY,
        toolchain TEXT NOT NULL,
        result TEXT NOT NULL,
        hits INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE TABLE lean_checks (
        id INTEGER PRIMARY KEY,
        job_id INTEGER,
        cached INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        elapsed_s REAL NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX lean_checks_job ON lean_checks(job_id);
    """,
    3: """
    CREATE TABLE embeddings (
        key TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        vector TEXT NOT NULL
    );
    """,
    4: """
    ALTER TABLE attempts ADD COLUMN elaborated_type TEXT NOT NULL DEFAULT '';
    CREATE TABLE decl_names (
        book_id INTEGER NOT NULL REFERENCES books(id),
        name TEXT NOT NULL,
        unit_id INTEGER NOT NULL REFERENCES units(id),
        PRIMARY KEY (book_id, name)
    );
    CREATE INDEX posts_book ON posts(book_id, id);
    INSERT OR IGNORE INTO decl_names (book_id, name, unit_id) SELECT book_id, decl_name, unit_id FROM atlas_entries;
    INSERT OR IGNORE INTO decl_names (book_id, name, unit_id)
        SELECT book_id, json_extract(data, '$.name'), unit_id FROM posts
        WHERE kind = 'lock' AND unit_id IS NOT NULL AND json_extract(data, '$.name') IS NOT NULL;
    """,
}


class StoreError(Exception):
    """The store cannot be opened or is from a newer autoform."""


class Book(BaseModel):
    id: int
    slug: str
    title: str
    source_path: str
    source_kind: str
    ingested_at: float
    warnings: list[str] = Field(default_factory=list)


class Unit(BaseModel):
    id: int
    book_id: int
    ident: str
    seq: int
    kind: str
    number: str = ""
    title: str = ""
    label: str = ""
    statement: str
    statement_raw: str = ""
    proof: str = ""
    chapter: str = ""
    section: str = ""
    source: str = ""
    refs: list[str] = Field(default_factory=list)
    present: bool = True
    status: str = "pending"

    @property
    def display(self) -> str:
        name = f"{self.kind.capitalize()} {self.number}".strip()
        return f"{name} ({self.title})" if self.title else name

    @property
    def location(self) -> str:
        return " / ".join(p for p in (self.chapter, self.section) if p)


class Post(BaseModel):
    id: int
    book_id: int
    unit_id: int | None
    job_id: int | None
    round: int
    author: str
    kind: str
    body: str
    data: dict[str, Any] = Field(default_factory=dict)
    refs: list[int] = Field(default_factory=list)
    pinned: bool = False
    created_at: float


class Attempt(BaseModel):
    id: int
    job_id: int
    unit_id: int
    n: int
    author: str
    stage: str
    lean_code: str
    admitted: bool
    reasons: list[dict[str, Any]] = Field(default_factory=list)
    messages: list[dict[str, Any]] = Field(default_factory=list)
    axioms: list[str] | None = None
    toolchain: str = ""
    elapsed_s: float = 0.0
    created_at: float
    elaborated_type: str = ""  # a statement attempt that elaborated: the type Lean gave it


class AtlasEntry(BaseModel):
    id: int
    unit_id: int
    book_id: int
    decl_name: str
    status: str
    statement_lean: str
    lean_code: str
    attempt_id: int | None
    job_id: int | None
    model: str = ""
    attempts: int = 0
    created_at: float


class Job(BaseModel):
    id: int
    book_id: int
    status: str
    params: dict[str, Any] = Field(default_factory=dict)
    started_at: float
    finished_at: float | None = None
    pid: int | None = None
    message: str = ""


_JSON_COLUMNS = {"warnings", "refs", "data", "reasons", "messages", "axioms", "params", "posts_used"}


def _row(model: type[BaseModel], row: sqlite3.Row) -> Any:
    d = dict(row)
    for k in _JSON_COLUMNS & d.keys():
        if d[k] is not None:
            d[k] = json.loads(d[k])
    return model.model_validate(d)


class Store:
    """Thread-safe access to the workspace database: one connection per thread, writes in transactions."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        # writers of this process queue here instead of in SQLite's busy handler, which sleeps up to 100 ms a
        # try when many threads want the write lock at once; other processes still meet SQLite's own lock
        self._write_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    # -- connection and transactions -------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA busy_timeout=30000")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.DatabaseError as e:
                raise StoreError(f"{self.path}: not an autoform store, or unreadable ({e})") from e
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: cannot open the store: {e}") from e
            self._local.conn = conn
        return conn

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT, rolled back on any exception)."""
        conn = self._conn()
        if conn.in_transaction:  # nested: join the outer transaction
            yield conn
            return
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:  # SQLite may already have rolled back (e.g. on a full disk)
                    conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    def in_transaction(self) -> bool:
        """Whether this thread's connection has a transaction open."""
        return self._conn().in_transaction

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        return self._conn().execute(sql, params).fetchall()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _migrate(self) -> None:
        conn = self._conn()
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not an autoform store ({e})") from e
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this autoform understands "
                f"({SCHEMA_VERSION}); upgrade autoform (pip install -U autoform) to open it."
            )
        for v in range(version + 1, SCHEMA_VERSION + 1):
            with self.tx() as c:
                # another process may have migrated since the version was read: read it again under the lock
                if c.execute("PRAGMA user_version").fetchone()[0] >= v:
                    continue
                for stmt in MIGRATIONS[v].split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.execute(f"PRAGMA user_version = {v}")

    @property
    def schema_version(self) -> int:
        return int(self._conn().execute("PRAGMA user_version").fetchone()[0])

    # -- books and units ---------------------------------------------------------------------------
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

    # -- posts -------------------------------------------------------------------------------------
    def add_post(
        self,
        *,
        book_id: int,
        author: str,
        kind: str,
        body: str,
        unit_id: int | None = None,
        job_id: int | None = None,
        round: int = 0,
        data: dict[str, Any] | None = None,
        refs: list[int] | None = None,
        pinned: bool = False,
    ) -> int:
        with self.tx() as c:
            cur = c.execute(
                "INSERT INTO posts (book_id, unit_id, job_id, round, author, kind, body, data, refs, pinned,"
                " created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (book_id, unit_id, job_id, round, author, kind, body, json.dumps(data or {}),
                 json.dumps(refs or []), int(pinned), time.time()),
            )
            return int(cur.lastrowid or 0)

    def posts(self, book_id: int, *, unit_id: int | None = None, kind: str | None = None) -> list[Post]:
        sql, params = "SELECT * FROM posts WHERE book_id = ?", [book_id]
        if unit_id is not None:
            sql += " AND unit_id = ?"
            params.append(unit_id)
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        return [_row(Post, r) for r in self.query(sql + " ORDER BY id", tuple(params))]

    def posts_since(self, book_id: int, after_id: int) -> list[Post]:
        """The book's posts with an id above ``after_id``, in id order (ids are given in commit order: SQLite
        has one writer at a time, so a reader that remembers its last id misses nothing)."""
        rows = self.query("SELECT * FROM posts WHERE book_id = ? AND id > ? ORDER BY id", (book_id, after_id))
        return [_row(Post, r) for r in rows]

    def reserve_name(self, book_id: int, unit_id: int, name: str) -> str:
        """``name``, or ``name_2``, ``name_3``, ... : the first that no other unit of the book has reserved,
        reserved for ``unit_id`` in one transaction (so two workers, threads or Ray nodes, never pick the same
        declaration name)."""
        with self.tx() as c:
            candidate, k = name, 2
            while True:
                c.execute("INSERT OR IGNORE INTO decl_names (book_id, name, unit_id) VALUES (?,?,?)",
                          (book_id, candidate, unit_id))
                owner = c.execute("SELECT unit_id FROM decl_names WHERE book_id = ? AND name = ?",
                                  (book_id, candidate)).fetchone()[0]
                taken = c.execute("SELECT 1 FROM atlas_entries WHERE book_id = ? AND decl_name = ? AND unit_id != ?",
                                  (book_id, candidate, unit_id)).fetchone()
                if owner == unit_id and taken is None:
                    return candidate
                candidate, k = f"{name}_{k}", k + 1

    # -- attempts and atlas ------------------------------------------------------------------------
    def attempts(self, unit_id: int, job_id: int | None = None) -> list[Attempt]:
        if job_id is None:
            rows = self.query("SELECT * FROM attempts WHERE unit_id = ? ORDER BY id", (unit_id,))
        else:
            rows = self.query(
                "SELECT * FROM attempts WHERE unit_id = ? AND job_id = ? ORDER BY id", (unit_id, job_id)
            )
        return [_row(Attempt, r) for r in rows]

    def atlas_entries(self, book_id: int) -> list[AtlasEntry]:
        rows = self.query(
            "SELECT a.* FROM atlas_entries a JOIN units u ON u.id = a.unit_id WHERE a.book_id = ? "
            "ORDER BY u.seq",
            (book_id,),
        )
        return [_row(AtlasEntry, r) for r in rows]

    def atlas_entry(self, unit_id: int) -> AtlasEntry | None:
        rows = self.query("SELECT * FROM atlas_entries WHERE unit_id = ?", (unit_id,))
        return _row(AtlasEntry, rows[0]) if rows else None

    # -- jobs --------------------------------------------------------------------------------------
    def job(self, job_id: int) -> Job:
        return _row(Job, self.query("SELECT * FROM jobs WHERE id = ?", (job_id,))[0])

    def jobs(self, book_id: int | None = None) -> list[Job]:
        if book_id is None:
            return [_row(Job, r) for r in self.query("SELECT * FROM jobs ORDER BY id")]
        return [_row(Job, r) for r in self.query("SELECT * FROM jobs WHERE book_id = ? ORDER BY id", (book_id,))]

    def llm_usage(self, book_id: int | None = None) -> dict[str, int]:
        sql = (
            "SELECT COUNT(*), SUM(cached), COALESCE(SUM(prompt_tokens),0), COALESCE(SUM(completion_tokens),0)"
            " FROM llm_calls c"
        )
        params: tuple = ()
        if book_id is not None:
            sql += " JOIN jobs j ON j.id = c.job_id WHERE j.book_id = ?"
            params = (book_id,)
        n, cached, pt, ct = self.query(sql, params)[0]
        return {"calls": n or 0, "cached": cached or 0, "prompt_tokens": pt, "completion_tokens": ct}


def open_store(path: Path) -> Store:
    return Store(path)
