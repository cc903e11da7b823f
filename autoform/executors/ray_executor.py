"""The Ray executor: the same job with its units spread over a Ray cluster.

Who does what.

* The **head** (the process running ``autoform run``, on the cluster's head node, next to the store) runs the
  job runner of :mod:`autoform.jobs`, unchanged: it releases units as their dependencies finish, enforces the
  budgets, writes ``atlas/`` and shows progress.
* A **store server** actor, pinned to the head's node, owns the SQLite store: it executes SQL sent by the
  workers, one SQLite connection per worker thread (session), so every ``Store.tx()`` of the pipeline is a
  real ``BEGIN IMMEDIATE ... COMMIT`` on the head. Sessions of a worker that dies are rolled back at once, and
  a transaction idle for two minutes is rolled back by a reaper, so a lost node never leaves the store locked.
* **Unit workers** (threaded actors, spread over the nodes) each hold an LLM client, a Lean oracle (their own
  REPL pool) and one :class:`~autoform.pipeline.UnitPipeline` whose store is a :class:`RemoteStore` that
  forwards every statement to the store server. They run ``work_unit`` exactly as the local executor does.

Why workers write through the head rather than return results: the pipeline reads and writes the store at
every step (the blackboard feeds the attention filter, attempts count against the limit, the LLM reply and
Lean result caches are shared), so "compute remotely, write at the end" would need a second pipeline and
would lose each unit's work on a crash. Proxying the store keeps one pipeline code path (hence the same Atlas
as a local run), keeps every step one transaction on the head (a kill loses at most the step in flight, as
locally), keeps the caches shared across nodes, and never puts SQLite on a network file system. The cost is
a round trip per statement (about a millisecond inside a cluster), small next to LLM and Lean latencies.

Nodes need autoform installed (with the same Lean project path) and the LLM endpoint reachable; the API key
is shipped with the job's settings.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import ray
from ray import ObjectRef
from ray.actor import ActorHandle
from ray.exceptions import GetTimeoutError, RayActorError, RayError

from autoform.config import Settings
from autoform.executors.base import CappedLLM, ExecContext, UnitOutcome, run_unit
from autoform.store import Book, Job, Store, Unit, UnitStatus

IDLE_TX_S = 120.0


# ------------------------------------------------------------------------------------------ the store server
@dataclass
class _Session:
    """A remote session's own connection, and when it was last used."""

    conn: sqlite3.Connection
    last_use: float


@ray.remote(num_cpus=0)
class StoreServer:
    """Executes SQL on the head's store for remote sessions (one SQLite connection per session)."""

    def __init__(self, path: str) -> None:
        self.store = Store(Path(path), check=False)  # the head checked it; its connections are set up alike
        self.sessions: dict[str, _Session] = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._reap, daemon=True).start()

    def _conn(self, session: str) -> sqlite3.Connection:
        with self.lock:
            entry = self.sessions.get(session)
            if entry is None:
                entry = self.sessions[session] = _Session(self.store.session_connection(), time.monotonic())
            entry.last_use = time.monotonic()
            return entry.conn

    def execute(self, session: str, sql: str, params: tuple | dict) -> tuple:
        conn = self._conn(session)
        try:
            cur = conn.execute(sql, params)
            rows = [tuple(r) for r in cur.fetchall()]
            cols = [d[0] for d in cur.description] if cur.description else []
            return ("ok", rows, cols, cur.lastrowid, cur.rowcount, conn.in_transaction)
        except sqlite3.Error as e:
            return ("err", type(e).__name__, str(e), conn.in_transaction)

    def drop(self, prefix: str) -> int:
        """Roll back and close the sessions of a worker (it died or finished)."""
        with self.lock:
            names = [s for s in self.sessions if s.startswith(prefix)]
            entries = [self.sessions.pop(s) for s in names]
        for entry in entries:
            with contextlib.suppress(sqlite3.Error):
                entry.conn.rollback()  # a no-op outside a transaction
                entry.conn.close()
        return len(entries)

    def _reap(self) -> None:
        while True:
            time.sleep(10)
            now = time.monotonic()
            with self.lock:
                stale = [e for e in self.sessions.values() if e.conn.in_transaction and now - e.last_use > IDLE_TX_S]
            for entry in stale:
                with contextlib.suppress(sqlite3.Error):
                    entry.conn.rollback()

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


class RemoteConnection:
    """The part of ``sqlite3.Connection`` that :class:`autoform.store.Store` uses, over the store server."""

    def __init__(self, server: ActorHandle, session: str) -> None:
        self.server, self.session = server, session
        self.in_transaction = False

    def execute(self, sql: str, params: tuple | dict = ()) -> RemoteCursor:
        reply = ray.get(self.server.execute.remote(self.session, sql, params))
        if reply[0] == "err":
            self.in_transaction = reply[3]
            raise getattr(sqlite3, reply[1], sqlite3.OperationalError)(reply[2])
        _, rows, cols, lastrowid, rowcount, self.in_transaction = reply
        return RemoteCursor(rows, cols, lastrowid, rowcount)

    def close(self) -> None:
        pass


class RemoteStore(Store):
    """A :class:`Store` whose connections are sessions on the head's store server (same methods, same
    transactions; the schema is the head's)."""

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


# ------------------------------------------------------------------------------------------ a unit worker
@dataclass(frozen=True)
class WorkerSpec:
    """What the head ships to every unit worker to build its pipeline for the job."""

    settings: Settings  # with the API key in it: nodes need not have OPENAI_API_KEY set
    store_path: str
    book: Book
    job: Job
    graph: nx.DiGraph
    max_attempts: int
    namespace: str
    unit_tokens: int | None


@ray.remote
class UnitWorker:
    """Works units sent by the head, several at a time (threads), with its own LLM client and Lean."""

    def __init__(self, name: str, server: ActorHandle, spec: WorkerSpec) -> None:
        from autoform.lean import make_oracle
        from autoform.lean.cache import CachedOracle
        from autoform.llm import LLMClient
        from autoform.pipeline import UnitPipeline

        self.name = name
        self.settings = spec.settings  # atlas/ is the head's business: workers never write it
        self.store = RemoteStore(server, spec.store_path, name)
        self.stop = threading.Event()
        self.events: dict[int, list[tuple[str, int, str]]] = {}
        self.lock = threading.Lock()
        llm: Any = LLMClient(self.settings, self.store)  # or capped: the pipeline uses it as an LLMClient
        job = spec.job
        if spec.unit_tokens is not None:
            llm = CappedLLM(llm, self.store, job.id, spec.unit_tokens)
        self.oracle = make_oracle(self.settings, self.store)
        if isinstance(self.oracle, CachedOracle):  # the result cache counts checks per job
            self.oracle.job_id = job.id
        self.oracle_error: str | None = None
        self.oracle_started = False
        self.pipeline = UnitPipeline(
            self.settings,
            self.store,
            spec.book,
            job,
            self.oracle,
            llm,
            max_attempts=spec.max_attempts,
            namespace=spec.namespace,
            graph=spec.graph,
            stop=self.stop,
            on_event=self._event,
        )

    def _event(self, kind: str, unit: Unit, detail: str) -> None:
        with self.lock:
            self.events.setdefault(unit.id, []).append((kind, unit.id, detail))

    def _start_oracle(self) -> str | None:
        from autoform.lean.oracle import OracleUnavailable

        with self.lock:
            if not self.oracle_started and self.oracle_error is None:
                try:
                    self.oracle.start()
                    self.oracle_started = True
                except OracleUnavailable as e:
                    import socket

                    self.oracle_error = f"Lean cannot start on Ray node {socket.gethostname()}: {e}"
            return self.oracle_error

    def work(self, unit: Unit) -> UnitOutcome:
        problem = self._start_oracle()
        if problem:
            return UnitOutcome(unit.id, fatal=problem, fatal_kind="worker")
        outcome = run_unit(self.pipeline, unit, self._event, stop=self.stop)
        with self.lock:
            outcome.events = self.events.pop(unit.id, [])
        return outcome

    def request_stop(self) -> None:
        self.stop.set()

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(Exception):
            self.oracle.close()


# --------------------------------------------------------------------------------------- the head's side
class RayExecutor:
    def __init__(self, slots: int, *, address: str | None = None, workers: int | None = None) -> None:
        self.slots, self.address, self.n_workers = slots, address, workers
        self._owns_ray = False
        self.workers: list[ActorHandle] = []
        self.live: list[bool] = []
        self.load: list[int] = []
        self.pending: dict[ObjectRef, tuple[Unit, int]] = {}  # object ref -> (unit, worker index)
        self.retries: dict[int, int] = {}
        self.server: ActorHandle | None = None
        self._stopped = False
        self.immediate: list[UnitOutcome] = []

    def connect(self) -> None:
        """Join the cluster (``--address``; without it, a Ray already started by this process, else a local
        one). Raises ExecutorUnavailable with the reason."""
        from autoform.executors import ExecutorUnavailable

        if ray.is_initialized():
            return
        try:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        except Exception as e:  # ConnectionError, RuntimeError, ValueError, depending on what is wrong
            where = self.address or "a new local Ray instance"
            raise ExecutorUnavailable(f"cannot join the Ray cluster at {where}: {e}") from e
        self._owns_ray = True

    def start(self, ctx: ExecContext) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.connect()
        self.ctx = ctx
        head = ray.get_runtime_context().get_node_id()
        self.server = StoreServer.options(  # type: ignore[attr-defined]
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=head, soft=False),
            max_concurrency=max(64, 4 * self.slots),
        ).remote(str(ctx.store.path))
        ray.get(self.server.ping.remote())
        n = self.n_workers or max(1, sum(1 for node in ray.nodes() if node.get("Alive")))
        n = min(n, self.slots)
        per = math.ceil(self.slots / n)
        settings = ctx.settings
        key = settings.api_key
        if key:  # nodes need not have OPENAI_API_KEY set
            settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"api_key": key})})
        spec = WorkerSpec(
            settings=settings,
            store_path=str(ctx.store.path),
            book=ctx.book,
            job=ctx.job,
            graph=ctx.graph,
            max_attempts=ctx.max_attempts,
            namespace=ctx.namespace,
            unit_tokens=ctx.unit_tokens,
        )
        self.workers = [
            UnitWorker.options(  # type: ignore[attr-defined]
                max_concurrency=per + 2, scheduling_strategy="SPREAD", num_cpus=0
            ).remote(f"w{i}", self.server, spec)
            for i in range(n)
        ]
        self.live = [True] * n
        self.load = [0] * n

    def submit(self, unit: Unit) -> None:
        choices = [i for i in range(len(self.workers)) if self.live[i]]
        if not choices:
            self.immediate.append(UnitOutcome(unit.id, fatal="no Ray worker is alive", fatal_kind="worker"))
            return
        i = min(choices, key=lambda k: self.load[k])
        self.load[i] += 1
        self.pending[self.workers[i].work.remote(unit)] = (unit, i)

    def completed(self, timeout: float) -> list[UnitOutcome]:
        out, self.immediate = self.immediate, []
        if not self.pending:
            if not out:
                time.sleep(min(timeout, 0.05))
            return out
        refs = list(self.pending)
        ready, rest = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready and rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        for ref in ready:
            unit, i = self.pending.pop(ref)
            self.load[i] -= 1
            try:
                out.append(ray.get(ref))
            except RayActorError as e:  # the worker (or its node) died: its sessions roll back, retry elsewhere
                self._lost(i)
                if self.retries.get(unit.id, 0) < 2 and any(self.live):
                    self.retries[unit.id] = self.retries.get(unit.id, 0) + 1
                    with contextlib.suppress(Exception):
                        self.ctx.store.set_unit_status(unit.id, UnitStatus.PENDING)
                    self.submit(unit)
                else:
                    out.append(UnitOutcome(unit.id, fatal=f"Ray workers lost: {e}", fatal_kind="worker"))
            except RayError as e:
                out.append(UnitOutcome(unit.id, fatal=f"Ray worker error: {e}", fatal_kind="worker"))
        return out  # the head's scheduler replays their events; its atlas writer keeps atlas/ current

    def _lost(self, i: int) -> None:
        if i >= 0 and self.live[i]:
            self.live[i] = False
            with contextlib.suppress(RayError):
                ray.get(self.server.drop.remote(f"w{i}:"), timeout=30)

    def request_stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for i, w in enumerate(self.workers):
            if self.live[i]:
                w.request_stop.remote()

    def close(self, *, wait: bool = True) -> None:
        if wait and self.pending:
            with contextlib.suppress(RayError):
                ray.wait(list(self.pending), num_returns=len(self.pending), timeout=600)
        closing = [w.close.remote() for i, w in enumerate(self.workers) if self.live[i]]
        with contextlib.suppress(RayError, GetTimeoutError):
            ray.get(closing, timeout=60)
        for w in self.workers:
            with contextlib.suppress(Exception):
                ray.kill(w)
        if self.server is not None:
            with contextlib.suppress(RayError):
                ray.get(self.server.drop.remote(""), timeout=30)
            with contextlib.suppress(Exception):
                ray.kill(self.server)
        self.workers, self.server = [], None
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False
