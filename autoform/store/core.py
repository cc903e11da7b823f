"""The store's connection: one SQLite database (WAL) per workspace, one connection per thread, every write in a
transaction (:meth:`StoreCore.tx`): either all of it lands or none of it does, so a ``kill -9`` at any moment
leaves the store as it was before or after a step, never in between.

The named operations that read and write the tables live beside this module, one mixin a subject (books,
board, proving, jobs, usage, reports), composed into :class:`autoform.store.Store`. No other module writes SQL
against the store.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autoform.store.errors import (
    SQLITE_MAGIC,
    StoreDamaged,
    StoreError,
    StoreReadOnly,
    StoreUnwritable,
    _busy,
    damaged_message,
    unwritable_reason,
)
from autoform.store.schema import MIGRATIONS, SCHEMA_VERSION


class StoreCore:
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
                type(self)(self.path, check=False).close()
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
