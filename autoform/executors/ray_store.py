"""The store on a Ray cluster: a store server actor on the driver's node owns the SQLite file; workers reach it
through :class:`RemoteStore`, a :class:`~autoform.store.Store` whose connections are sessions on the server.

Transactions through the server are short and bounded, so no node can stall the job:

* **a lease**: a session inside a transaction that sends no statement for ``lease_s`` seconds (its worker
  stopped, hung, or lost its node) is rolled back by the server's reaper, which frees the write lock for the
  others; the worker's next statement in that session raises :class:`~autoform.executors.base.StepLost`, and
  the unit goes back to the queue and is redone (every step is one transaction: nothing half-written);
* **short lock waits, retried**: a session waits at most ``BUSY_MS`` for the write lock inside SQLite (the
  server's threads stay free), and the worker retries a statement that found the store locked outside a
  transaction, with backoff, for up to ``LOCK_WAIT_S`` seconds; only then the job stops, with that reason;
* the pipeline's transactions hold no LLM call or Lean check (they are the few statements of one step).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayError

from autoform.executors.base import StepLost, StoreWriteFailed
from autoform.store import Store

#: a transaction idle this long (no statement from its worker) is rolled back
TX_LEASE_S = 10.0
#: how long one statement waits for the write lock inside SQLite before the worker retries it
BUSY_MS = 2000
#: how long a worker retries a statement that found the store locked, in all
LOCK_WAIT_S = 300.0

Reply = tuple  # ("ok", rows, cols, lastrowid, rowcount, in_tx) | ("err", kind, text, in_tx)


@dataclass
class _Session:
    """A remote session's own connection, when it was last used, and why its transaction was taken away."""

    conn: sqlite3.Connection
    last_use: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    lost: str = ""


@ray.remote(num_cpus=0)
class StoreServer:
    """Executes SQL on the driver's store for remote sessions (one SQLite connection per session)."""

    def __init__(self, path: str, lease_s: float = TX_LEASE_S) -> None:
        self.store = Store(Path(path), check=False)  # the driver checked it; its connections are set up alike
        self.sessions: dict[str, _Session] = {}
        self.lock = threading.Lock()
        self.lease_s = lease_s
        self.reaped = 0
        threading.Thread(target=self._reap_forever, daemon=True).start()

    def _session(self, name: str) -> _Session:
        with self.lock:
            entry = self.sessions.get(name)
            if entry is None:
                entry = self.sessions[name] = _Session(self.store.session_connection(BUSY_MS), time.monotonic())
            return entry

    def execute(self, session: str, sql: str, params: tuple | dict) -> Reply:
        entry = self._session(session)
        with entry.lock:
            entry.last_use = time.monotonic()
            if entry.lost:  # the reaper rolled this session's transaction back: say so once
                why, entry.lost = entry.lost, ""
                if sql.strip().upper() == "ROLLBACK":
                    return ("ok", [], [], None, -1, False)
                return ("err", "StepLost", why, False)
            try:
                cur = entry.conn.execute(sql, params)
                rows = [tuple(r) for r in cur.fetchall()]
                cols = [d[0] for d in cur.description] if cur.description else []
                return ("ok", rows, cols, cur.lastrowid, cur.rowcount, entry.conn.in_transaction)
            except sqlite3.Error as e:
                return ("err", type(e).__name__, str(e), entry.conn.in_transaction)
            finally:
                entry.last_use = time.monotonic()

    def drop(self, prefix: str) -> int:
        """Roll back and close the sessions of a worker (it died, went silent or finished)."""
        with self.lock:
            names = [s for s in self.sessions if s.startswith(prefix)]
            entries = [self.sessions.pop(s) for s in names]
        for entry in entries:
            with contextlib.suppress(sqlite3.Error):
                entry.conn.rollback()  # a no-op outside a transaction
                entry.conn.close()
        return len(entries)

    def reap(self) -> int:
        """Roll back every transaction idle past the lease; returns how many."""
        now = time.monotonic()
        with self.lock:
            entries = list(self.sessions.values())
        n = 0
        for entry in entries:
            if not entry.lock.acquire(blocking=False):
                continue  # a statement is running in it: not idle
            try:
                if entry.conn.in_transaction and now - entry.last_use > self.lease_s:
                    with contextlib.suppress(sqlite3.Error):
                        entry.conn.rollback()
                    entry.lost = (
                        f"the step's transaction was rolled back: its worker sent nothing for {self.lease_s:.0f} s "
                        "(stopped, hung or cut off) while others waited for the store"
                    )
                    n += 1
            finally:
                entry.lock.release()
        self.reaped += n
        return n

    def _reap_forever(self) -> None:
        while True:
            time.sleep(min(1.0, self.lease_s / 4))
            self.reap()

    def stats(self) -> dict[str, int]:
        return {"sessions": len(self.sessions), "reaped": self.reaped}

    def ping(self) -> bool:
        return True


# ------------------------------------------------------------------------------------- the worker's store
class RemoteRow(tuple):
    """A result row like ``sqlite3.Row``: by index or by column name, and ``dict(row)``."""

    _cols: dict[str, int]

    def __new__(cls, values: tuple, cols: dict[str, int]) -> RemoteRow:
        row = super().__new__(cls, values)
        row._cols = cols
        return row

    def keys(self) -> list[str]:
        return list(self._cols)

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._cols[key])
        return tuple.__getitem__(self, key)


class RemoteCursor:
    def __init__(self, rows: list[tuple], cols: list[str], lastrowid: int | None, rowcount: int) -> None:
        index = {c: i for i, c in enumerate(cols)}
        self._rows = [RemoteRow(r, index) for r in rows]
        self.lastrowid, self.rowcount = lastrowid, rowcount

    def fetchall(self) -> list[RemoteRow]:
        return list(self._rows)

    def fetchone(self) -> RemoteRow | None:
        return self._rows[0] if self._rows else None

    def __iter__(self) -> Iterator[RemoteRow]:
        return iter(self._rows)


def _busy(text: str) -> bool:
    return "locked" in text or "busy" in text


class RemoteConnection:
    """The part of ``sqlite3.Connection`` that :class:`autoform.store.Store` uses, over the store server. A
    statement that found the store locked outside a transaction (it changed nothing) is sent again."""

    lock_wait_s: float = LOCK_WAIT_S

    def __init__(self, server: ActorHandle, session: str) -> None:
        self.server, self.session = server, session
        self.in_transaction = False

    def _send(self, sql: str, params: tuple | dict) -> Reply:
        try:
            reply: Reply = ray.get(self.server.execute.remote(self.session, sql, params))
        except RayError as e:
            raise StoreWriteFailed(
                f"the store server on the driver's node is gone ({type(e).__name__}); nothing was half-written. "
                "Run the same command again to resume."
            ) from None
        return reply

    def execute(self, sql: str, params: tuple | dict = ()) -> RemoteCursor:
        deadline = time.monotonic() + self.lock_wait_s
        pause = 0.05
        while True:
            reply = self._send(sql, params)
            if reply[0] == "ok":
                _, rows, cols, lastrowid, rowcount, self.in_transaction = reply
                return RemoteCursor(rows, cols, lastrowid, rowcount)
            _, kind, text, self.in_transaction = reply
            if kind == "StepLost":
                raise StepLost(text)
            if self.in_transaction or not _busy(text):
                raise getattr(sqlite3, kind, sqlite3.OperationalError)(text)
            if time.monotonic() > deadline:
                raise StoreWriteFailed(
                    f"the store stayed locked for {self.lock_wait_s:.0f} s ({text}); nothing was half-written. "
                    "Run the same command again to resume."
                )
            time.sleep(pause)
            pause = min(1.0, pause * 2)

    def close(self) -> None:
        pass


class RemoteStore(Store):
    """A :class:`Store` whose connections are sessions on the driver's store server (same methods, same
    transactions; the schema is the driver's)."""

    def __init__(self, server: ActorHandle, path: str, name: str) -> None:  # no super().__init__: nothing to migrate
        self.path = Path(path)
        self._local = threading.local()
        self.server, self.name = server, name
        self._write_lock = threading.Lock()

    def _conn(self) -> Any:  # a RemoteConnection, which speaks the part of sqlite3.Connection the store uses
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = RemoteConnection(self.server, f"{self.name}:{threading.get_ident()}")
        return conn
