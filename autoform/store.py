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

SCHEMA_VERSION = 5

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
    # an attempt made for a statement the book no longer has (re-ingest changed it): kept, no longer counted
    5: """
    ALTER TABLE attempts ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0;
    """,
}


class StoreError(Exception):
    """The store cannot be opened or is from a newer autoform."""


class StoreDamaged(StoreError):
    """The store file failed SQLite's integrity check (or is not a database): nothing is written into it."""


class StoreReadOnly(StoreError):
    """A write was asked of a store opened read-only."""


class StoreUnwritable(StoreError):
    """A command that writes met a store (or workspace directory) it may not write: a read-only disk, or
    permissions."""


def unwritable_reason(path: Path) -> str | None:
    """Why ``path`` (a store file) cannot be written, if it cannot: its directory or itself read-only."""
    import errno
    import os

    for target in (path, path.parent):
        if target.exists() and not os.access(target, os.W_OK):
            try:  # EROFS (a read-only file system) or EACCES (permissions): the fix differs
                ro = bool(os.statvfs(target).f_flag & os.ST_RDONLY)
            except OSError:
                ro = False
            what = "is on a read-only file system" if ro else "is not writable (permissions)"
            return f"{target} {what} [{errno.errorcode[errno.EROFS if ro else errno.EACCES]}]"
    return None


#: the first 16 bytes of every SQLite 3 database file
SQLITE_MAGIC = b"SQLite format 3\x00"


def damaged_message(path: Path, detail: str) -> str:
    """One line naming the store, what is wrong and what to do."""
    detail = " ".join(str(detail).split())[:200]
    return (
        f"{path}: the store is damaged ({detail}); nothing was written to it. Restore the last backup with "
        f"`autoform restore FILE` (backups are made by `autoform backup`), or move {path.name} aside and "
        "ingest again."
    )


def _busy(e: BaseException) -> bool:
    return isinstance(e, sqlite3.OperationalError) and ("locked" in str(e) or "busy" in str(e))


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
    superseded: bool = False  # made for a statement that re-ingest changed: history only


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
    """Thread-safe access to the workspace database: one connection per thread, writes in transactions.

    Opening checks the file first (its SQLite header, then ``PRAGMA quick_check``, about 0.2 s for 200 MB): a
    damaged store raises :class:`StoreDamaged` and is never written. ``readonly`` opens it for reading only
    (``mode=ro``; in a directory nobody can write, ``immutable=1``, as SQLite's WAL mode would otherwise need to
    create its ``-shm`` file there), for the commands that only read."""

    readonly: bool = False
    #: how long an open waits for another process's lock (SQLite's busy timeout does not cover every case)
    lock_wait_s: float = 30.0

    def __init__(self, path: Path, *, readonly: bool = False, check: bool = True) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._immutable = False
        self._local = threading.local()
        # writers of this process queue here instead of in SQLite's busy handler, which sleeps up to 100 ms a
        # try when many threads want the write lock at once; other processes still meet SQLite's own lock
        self._write_lock = threading.Lock()
        if readonly:
            if not self.path.exists():
                raise StoreError(f"{self.path}: no such store")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if check:
            self._check_header()
        try:
            self._migrate()
            if check:
                self.check_integrity()
        except StoreError:
            self.close()
            raise

    # -- connection and transactions -------------------------------------------------------------
    def _check_header(self) -> None:
        """A non-empty file must start with SQLite's magic string (cheap; before SQLite touches it)."""
        try:
            with open(self.path, "rb") as f:
                head = f.read(len(SQLITE_MAGIC))
        except FileNotFoundError:
            return
        except OSError as e:
            raise StoreError(f"{self.path}: cannot read the store: {e.strerror or e}") from e
        if head and head != SQLITE_MAGIC:
            raise StoreDamaged(damaged_message(self.path, "not an SQLite database: the file header is wrong"))

    def check_integrity(self) -> None:
        """``PRAGMA quick_check`` (b-trees, pages, records; not the slower index cross-check); raises
        :class:`StoreDamaged` naming the first problem."""
        try:
            rows = self._conn().execute("PRAGMA quick_check(5)").fetchall()
        except sqlite3.DatabaseError as e:
            if _busy(e):
                raise StoreError(f"{self.path}: the store is locked by another process ({e}); try again") from e
            raise StoreDamaged(damaged_message(self.path, str(e))) from e
        problems = [str(r[0]) for r in rows]
        if problems != ["ok"]:
            raise StoreDamaged(damaged_message(self.path, "; ".join(problems)))

    def _uri(self) -> str:
        from urllib.parse import quote

        mode = "immutable=1" if self._immutable else "mode=ro"
        return f"file:{quote(str(self.path.resolve()))}?{mode}"

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            conn = sqlite3.connect(
                self._uri(), uri=True, timeout=self.lock_wait_s, isolation_level=None, check_same_thread=False
            )
        else:
            conn = sqlite3.connect(self.path, timeout=self.lock_wait_s, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={int(self.lock_wait_s * 1000)}")
        if not self.readonly:
            # Switching a rollback-journal file to WAL needs an exclusive lock, and SQLite does not call the busy
            # handler when a reader holds its shared lock (it would deadlock): wait for it here, like any write.
            deadline = time.monotonic() + self.lock_wait_s
            while True:
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError as e:
                    if not _busy(e) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        if self.readonly:  # reading a WAL store: fails here when its -shm file cannot be made
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                try:
                    conn = self._connect()
                except sqlite3.OperationalError as e:
                    # a read-only directory (or file): SQLite cannot make the -shm file WAL reading needs, and no
                    # process can be writing the store there, so it is read as an immutable file
                    if (
                        not self.readonly
                        or self._immutable
                        or "unable to open" not in str(e)
                        and "readonly" not in str(e)
                    ):
                        raise
                    self._immutable = True
                    conn = self._connect()
            except sqlite3.DatabaseError as e:
                if _busy(e):
                    raise StoreError(
                        f"{self.path}: the store stayed locked by another process for "
                        f"{self.lock_wait_s:.0f} s ({e}); try again when it is done"
                    ) from e
                if isinstance(e, sqlite3.OperationalError):
                    why = None if self.readonly else unwritable_reason(self.path)
                    if why is not None:
                        raise StoreUnwritable(
                            f"{self.path}: this command writes to the store, but {why}; make it "
                            "writable (read-only commands such as `autoform status` and "
                            "`autoform units` work as it is)"
                        ) from e
                    raise StoreError(f"{self.path}: cannot open the store: {e}") from e
                raise StoreDamaged(damaged_message(self.path, str(e))) from e
            self._local.conn = conn
        return conn

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT, rolled back on any exception)."""
        if self.readonly:
            raise StoreReadOnly(f"{self.path}: opened read-only; this command cannot write to it")
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

    def backup(self, target: Path) -> None:
        """A consistent copy of the store at ``target`` through SQLite's online backup API (other processes may
        go on writing meanwhile); the copy is written beside ``target`` and renamed into place when whole."""
        target = Path(target)
        tmp = target.with_name(target.name + ".part")
        tmp.unlink(missing_ok=True)
        dst = sqlite3.connect(tmp)
        try:
            self._conn().backup(dst, pages=1024)
            dst.execute("PRAGMA journal_mode=DELETE")
            dst.close()
            tmp.replace(target)
        except BaseException:
            dst.close()
            tmp.unlink(missing_ok=True)
            raise

    def _migrate(self) -> None:
        conn = self._conn()
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise StoreDamaged(damaged_message(self.path, f"not an autoform store: {e}")) from e
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this autoform understands "
                f"({SCHEMA_VERSION}); upgrade autoform (pip install -U autoform) to open it."
            )
        if version < SCHEMA_VERSION and self.readonly:  # upgrade it first through a writing connection
            try:
                Store(self.path, check=False).close()
            except StoreError as e:
                raise StoreError(
                    f"{self.path}: the store is from an older autoform (schema v{version}) and "
                    f"cannot be upgraded here ({e}); run autoform where it can be written"
                ) from e
            self.close()
            return
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
                (
                    book_id,
                    unit_id,
                    job_id,
                    round,
                    author,
                    kind,
                    body,
                    json.dumps(data or {}),
                    json.dumps(refs or []),
                    int(pinned),
                    time.time(),
                ),
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
                c.execute(
                    "INSERT OR IGNORE INTO decl_names (book_id, name, unit_id) VALUES (?,?,?)",
                    (book_id, candidate, unit_id),
                )
                owner = c.execute(
                    "SELECT unit_id FROM decl_names WHERE book_id = ? AND name = ?", (book_id, candidate)
                ).fetchone()[0]
                taken = c.execute(
                    "SELECT 1 FROM atlas_entries WHERE book_id = ? AND decl_name = ? AND unit_id != ?",
                    (book_id, candidate, unit_id),
                ).fetchone()
                if owner == unit_id and taken is None:
                    return candidate
                candidate, k = f"{name}_{k}", k + 1

    # -- attempts and atlas ------------------------------------------------------------------------
    def attempts(self, unit_id: int, job_id: int | None = None, *, superseded: bool = False) -> list[Attempt]:
        """The unit's attempts (of one job), oldest first; ``superseded``: also those made for a statement that
        re-ingest has since changed (history only, never counted or reused)."""
        cond = "" if superseded else " AND superseded = 0"
        if job_id is None:
            rows = self.query(f"SELECT * FROM attempts WHERE unit_id = ?{cond} ORDER BY id", (unit_id,))
        else:
            rows = self.query(
                f"SELECT * FROM attempts WHERE unit_id = ? AND job_id = ?{cond} ORDER BY id", (unit_id, job_id)
            )
        return [_row(Attempt, r) for r in rows]

    def atlas_entries(self, book_id: int) -> list[AtlasEntry]:
        rows = self.query(
            "SELECT a.* FROM atlas_entries a JOIN units u ON u.id = a.unit_id WHERE a.book_id = ? ORDER BY u.seq",
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
