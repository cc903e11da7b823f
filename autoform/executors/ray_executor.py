"""The Ray executor: the same job with its units spread over a Ray cluster.

Who does what.

* The **driver** (the process running ``autoform run``, on a node of the cluster, next to the store) runs the
  job runner of :mod:`autoform.jobs`, unchanged: it releases units as their dependencies finish, enforces the
  budgets, writes ``atlas/`` and shows progress.
* A **store server** actor, pinned to the driver's node, owns the SQLite store (:mod:`.ray_store`): workers'
  transactions are real ``BEGIN IMMEDIATE ... COMMIT`` there, short and bounded (a lease rolls back the
  transaction of a worker that goes silent; lock waits are retried), so no node can stall the job.
* **Unit workers** (:mod:`.ray_fleet`), one per node (``--ray-workers N`` spreads N evenly instead), each
  reserving the CPUs and memory of its REPL pool on its node, hold an LLM client, a Lean oracle and one
  :class:`~autoform.pipeline.UnitPipeline` whose store is a :class:`~.ray_store.RemoteStore`. Before the job
  row is written, every worker reports its node's toolchain (``lean-toolchain``, Mathlib's revision in
  ``lake-manifest.json``, the REPL binary) and starts its Lean; a node that differs from the driver, or whose
  Lean does not start, is refused with the reason. During the job the driver pings every worker: one silent
  for ``SILENT_S`` is killed and its units redone elsewhere; lost workers are replaced and nodes that join get
  a worker.

Limits: ``[llm] concurrency`` is job-wide (split among the workers, at least one call each); ``[lean]
pool_size`` is per node (each worker runs at most that many REPL processes, and no more than the CPUs it could
reserve). Credentials (``OPENAI_API_KEY``, ``KIMINA_API_KEY``) are the driver's, shipped to the workers: a node's
own environment never overrides them. Without ``--jobs``, the cluster's slots are used (``UNITS_PER_REPL`` units
per REPL process of every worker).

Why workers write through the driver rather than return results: the pipeline reads and writes the store at
every step (the blackboard feeds the attention filter, attempts count against the limit, the LLM reply and
Lean result caches are shared), so proxying the store keeps one pipeline code path (hence the same Atlas as a
local run), every step one transaction (a kill loses at most the step in flight), and SQLite off any network
file system.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

import ray
from ray import ObjectRef
from ray.actor import ActorHandle
from ray.exceptions import GetTimeoutError, RayActorError, RayError

from autoform.config import Settings
from autoform.executors.base import ExecContext, UnitOutcome
from autoform.executors.node import driver_settings, local_toolchain
from autoform.executors.ray_connect import join_cluster
from autoform.executors.ray_fleet import Fleet, JobSpec, UnitWorker, Worker, WorkerSetup
from autoform.executors.ray_store import TX_LEASE_S, RemoteStore, StoreServer
from autoform.store import Store, Unit, UnitStatus

__all__ = ["RayExecutor", "RemoteStore", "StoreServer", "UnitWorker", "WorkerSetup"]

#: times a unit is sent again after its worker was lost or its step was taken away
MAX_RETRIES = 3


class RayExecutor:
    lease_s = TX_LEASE_S

    def __init__(self, slots: int | None, *, address: str | None = None, workers: int | None = None) -> None:
        self.fixed_slots, self.address, self.n_workers = slots, address, workers
        self.slots = slots or 1
        self._owns_ray = False
        self.fleet: Fleet | None = None
        self.pending: dict[ObjectRef, tuple[Unit, Worker]] = {}
        self.retries: dict[int, int] = {}
        self.parked: list[Unit] = []
        self.server: ActorHandle | None = None
        self._stopped = False
        self.immediate: list[UnitOutcome] = []

    @property
    def workers(self) -> list[Worker]:
        return self.fleet.workers if self.fleet is not None else []

    # -- before the job: the cluster, its nodes, their toolchains --------------------------------------
    def connect(self) -> None:
        """Join the cluster (``--address``; without it, a Ray already started by this process, else a local
        one). Raises ExecutorUnavailable with the reason, never Ray's own output."""
        if ray.is_initialized():
            return
        join_cluster(self.address)
        self._owns_ray = True

    def preflight(self, settings: Settings, store: Store) -> list[str]:
        """Place the workers and have each report its node's toolchain and start its Lean, before anything
        is written; returns the problems that leave no node usable (refused nodes are told on stderr)."""
        self.connect()
        fleet = self.fleet = self._fleet(settings, store)
        fleet.place()
        fleet.settle(timeout=settings.lean.start_timeout_s + 60)
        self._update_slots()
        if fleet.live():
            self._tell()  # the nodes refused, while others work
            return []
        fleet.notices.clear()  # no node is usable: the refusals are the problems
        return list(dict.fromkeys(fleet.refused.values())) or ["no node of the Ray cluster has a CPU for a worker"]

    def _fleet(self, settings: Settings, store: Store) -> Fleet:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        node_settings = driver_settings(settings)
        kimina = os.environ.get("KIMINA_API_KEY") or settings.lean.kimina_api_key
        env = {"OPENAI_API_KEY": settings.api_key, "KIMINA_API_KEY": kimina}
        head = ray.get_runtime_context().get_node_id()
        self.server = StoreServer.options(  # type: ignore[attr-defined]
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=head, soft=False),
            max_concurrency=256,
        ).remote(str(store.path), self.lease_s)
        ray.get(self.server.ping.remote(), timeout=60)
        setup = WorkerSetup(settings=node_settings, store_path=str(store.path), env=env)
        fleet = Fleet(setup, local_toolchain(node_settings), self.server, self.n_workers)
        fleet.max_slots = self.fixed_slots or 0
        return fleet

    def _tell(self) -> None:
        if self.fleet is not None:
            for note in self.fleet.notices:
                sys.stderr.write(f"warning: {note}\n")
            self.fleet.notices.clear()

    # -- the job ---------------------------------------------------------------------------------------
    def start(self, ctx: ExecContext) -> None:
        from autoform.executors import ExecutorUnavailable

        if self.fleet is None:  # not prepared by the CLI's preflight
            problems = self.preflight(ctx.settings, ctx.store)
            if problems:
                raise ExecutorUnavailable("; ".join(problems))
        assert self.fleet is not None
        self.ctx = ctx
        spec = JobSpec(ctx.book, ctx.job, ctx.graph, ctx.max_attempts, ctx.namespace, ctx.unit_tokens)
        self.fleet.spec = spec
        ray.get([w.handle.begin.remote(spec) for w in self.fleet.live()], timeout=120)
        self._update_slots()

    def _update_slots(self) -> None:
        if self.fixed_slots is None and self.fleet is not None:
            self.slots = max(1, sum(w.slots for w in self.fleet.live()))

    def submit(self, unit: Unit) -> None:
        assert self.fleet is not None, "start() first"
        live = self.fleet.live()
        if not live:
            if self.fleet.starting():
                self.parked.append(unit)
                return
            self.immediate.append(UnitOutcome(unit.id, fatal=self._none_left(), fatal_kind="worker"))
            return
        w = min(live, key=lambda k: k.load / k.slots)
        w.load += 1
        self.pending[w.handle.work.remote(unit)] = (unit, w)

    def _none_left(self) -> str:
        refused = "; ".join(dict.fromkeys(self.fleet.refused.values())) if self.fleet else ""
        return "no Ray worker is left (their nodes died or were refused)" + (f": {refused}" if refused else "")

    def completed(self, timeout: float) -> list[UnitOutcome]:
        self._tick()
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
            unit, w = self.pending.pop(ref)
            w.load -= 1
            self._collect(ref, unit, w, out)
        return out  # the driver's scheduler replays their events; its atlas writer keeps atlas/ current

    def _collect(self, ref: ObjectRef, unit: Unit, w: Worker, out: list[UnitOutcome]) -> None:
        assert self.fleet is not None
        try:
            outcome: UnitOutcome = ray.get(ref)
        except RayActorError:  # the worker (or its node) died: its sessions roll back, the unit is redone
            self.fleet.lose(w, f"the Ray worker on {w.host or 'a node'} died (its node left, or it was killed)")
            self._update_slots()
            self._retry(unit, out)
            return
        except RayError as e:
            why = f"the Ray worker on {w.host or 'a node'} failed: {type(e).__name__}"
            out.append(UnitOutcome(unit.id, fatal=why, fatal_kind="worker"))
            return
        if outcome.retry:
            self._retry(unit, out)
        else:
            out.append(outcome)

    def _retry(self, unit: Unit, out: list[UnitOutcome]) -> None:
        n = self.retries[unit.id] = self.retries.get(unit.id, 0) + 1
        if n > MAX_RETRIES:
            why = f"{unit.display}: its worker was lost {n} times; the job stopped, the unit is pending"
            out.append(UnitOutcome(unit.id, fatal=why, fatal_kind="worker"))
            return
        with contextlib.suppress(Exception):
            self.ctx.store.set_unit_status(unit.id, UnitStatus.PENDING)
        self.submit(unit)

    def _tick(self) -> None:
        """Between completions: take starting workers' reports, ping the live ones (a silent one is lost),
        now and then replace lost workers and give nodes that joined a worker; units parked while no worker
        was live go out again."""
        fleet = self.fleet
        assert fleet is not None
        now = time.monotonic()
        if fleet.starting():
            fleet.settle(timeout=0)
        fleet.ping(now)
        if not self._stopped and now - fleet.placed_at > fleet.place_s:
            fleet.place()
        self._update_slots()
        if self.parked and fleet.live():
            parked, self.parked = self.parked, []
            for unit in parked:
                self.submit(unit)
        self._tell()

    def request_stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for w in self.workers:
            if w.state == "live":
                w.handle.request_stop.remote()

    def close(self, *, wait: bool = True) -> None:
        if wait and self.pending:
            with contextlib.suppress(RayError):
                ray.wait(list(self.pending), num_returns=len(self.pending), timeout=600)
        closing = [w.handle.close.remote() for w in self.workers if w.state == "live"]
        with contextlib.suppress(RayError, GetTimeoutError):
            ray.get(closing, timeout=60)
        for w in self.workers:
            with contextlib.suppress(Exception):
                ray.kill(w.handle)
        if self.server is not None:
            with contextlib.suppress(RayError):
                ray.get(self.server.drop.remote(""), timeout=30)
            with contextlib.suppress(Exception):
                ray.kill(self.server)
        self.fleet, self.server = None, None
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False
