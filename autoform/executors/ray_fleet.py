"""The workers of a Ray job and where they run: the :class:`UnitWorker` actor (its node's toolchain and Lean
reported at start, then units worked with its own LLM client, Lean and pipeline), and the driver's
:class:`Fleet` of them: one worker per node (or ``--ray-workers`` spread evenly), each reserving on its node the
CPUs and memory of its REPL pool; a node whose toolchain differs from the driver's, or whose Lean does not
start, is refused with the reason; live workers are pinged, a silent one is killed, lost workers are replaced
and nodes that join get one."""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlparse

import networkx as nx
import ray
from ray import ObjectRef
from ray.actor import ActorHandle
from ray.exceptions import RayError

from autoform.config import Settings
from autoform.executors.base import CappedLLM, StepLost, UnitOutcome, run_unit
from autoform.executors.node import Toolchain, local_toolchain, mismatch
from autoform.executors.ray_store import RemoteStore
from autoform.store import Book, Job, Unit
from autoform.toolchain.memory import IMPORT_MATHLIB_RSS_MB

#: a worker that answers no ping for this long is lost: killed, its units redone on the others
SILENT_S = 30.0
#: how often the driver pings each worker
PING_S = 2.0
#: how often lost workers are replaced and nodes that joined get a worker
PLACE_S = 5.0
#: units in flight per REPL process of a worker when --jobs is not given (a unit mostly waits for the LLM)
UNITS_PER_REPL = 2
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")


@dataclass(frozen=True)
class WorkerSetup:
    """What the driver ships to a worker when it is placed: settings for its node (the driver's absolute Lean
    project, its share of the limits) and the driver's credentials (None: unset on the node)."""

    settings: Settings
    store_path: str
    env: dict[str, str | None]


@dataclass(frozen=True)
class JobSpec:
    """What a worker needs to build its pipeline for the job."""

    book: Book
    job: Job
    graph: nx.DiGraph
    max_attempts: int
    namespace: str
    unit_tokens: int | None


@dataclass(frozen=True)
class Hello:
    """A worker's report at start: its node's toolchain, and why its Lean did not start ("" when it did)."""

    toolchain: Toolchain
    lean_error: str
    pid: int


@ray.remote
class UnitWorker:
    """Works units sent by the driver, several at a time (threads), with its own LLM client and Lean."""

    def __init__(self, name: str, server: ActorHandle, setup: WorkerSetup) -> None:
        for key, value in setup.env.items():  # the driver's credentials, not the node's
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self.name, self.settings = name, setup.settings  # atlas/ is the driver's business: workers never write it
        self.store = RemoteStore(server, setup.store_path, name)
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.events: dict[int, list[tuple[str, int, str]]] = {}
        self.lock = threading.Lock()
        self.oracle: object | None = None
        self.pipeline: object | None = None

    def hello(self) -> Hello:
        """The node's toolchain, and its Lean started (the preflight of this node)."""
        from autoform.lean import make_oracle
        from autoform.lean.oracle import OracleUnavailable

        facts = local_toolchain(self.settings)
        if facts.problem:
            return Hello(facts, "", os.getpid())
        oracle = make_oracle(self.settings, self.store)
        self.oracle = oracle
        try:
            oracle.start()
        except OracleUnavailable as e:
            return Hello(facts, f"Ray node {facts.host} refused: Lean cannot start there: {e}", os.getpid())
        return Hello(facts, "", os.getpid())

    def begin(self, spec: JobSpec) -> None:
        from autoform.lean.cache import CachedOracle
        from autoform.llm import LLMClient
        from autoform.pipeline import UnitPipeline

        llm: LLMClient = LLMClient(self.settings, self.store)
        if spec.unit_tokens is not None:
            llm = CappedLLM(llm, self.store, spec.job.id, spec.unit_tokens)  # type: ignore[assignment]
        if isinstance(self.oracle, CachedOracle):  # the result cache counts checks per job
            self.oracle.job_id = spec.job.id
        self.pipeline = UnitPipeline(
            self.settings,
            self.store,
            spec.book,
            spec.job,
            self.oracle,  # type: ignore[arg-type]
            llm,
            max_attempts=spec.max_attempts,
            namespace=spec.namespace,
            graph=spec.graph,
            stop=self.stop,
            on_event=self._event,
        )
        self.ready.set()

    def _event(self, kind: str, unit: Unit, detail: str) -> None:
        with self.lock:
            self.events.setdefault(unit.id, []).append((kind, unit.id, detail))

    def work(self, unit: Unit) -> UnitOutcome:
        self.ready.wait()  # a threaded actor may run this before begin() has finished
        try:
            outcome = run_unit(self.pipeline, unit, self._event, stop=self.stop)  # type: ignore[arg-type]
        except StepLost:  # recording the unit's failure was itself taken away: redo the unit
            outcome = UnitOutcome(unit.id, retry=True)
        with self.lock:
            outcome.events = self.events.pop(unit.id, [])
        return outcome

    def ping(self) -> bool:
        return True

    def request_stop(self) -> None:
        self.stop.set()

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(Exception):
            self.oracle.close()  # type: ignore[union-attr]


# --------------------------------------------------------------------------------------- the driver's side
@dataclass(eq=False)
class Worker:
    """The driver's view of one worker."""

    handle: ActorHandle
    name: str
    node: str
    slots: int
    address: str = ""
    state: str = "starting"  # starting -> live | refused; live -> lost
    hello: ObjectRef | None = None
    host: str = ""
    ping: ObjectRef | None = None
    ping_at: float = 0.0
    load: int = 0
    pid: int = 0


def _node_resources(node: dict) -> tuple[float, float]:
    res = node.get("Resources", {})
    return float(res.get("CPU", 0.0)), float(res.get("memory", 0.0))


class Fleet:
    """The job's workers on the cluster's nodes, as the driver sees and keeps them."""

    silent_s = SILENT_S
    ping_s = PING_S
    place_s = PLACE_S

    def __init__(self, setup: WorkerSetup, expected: Toolchain, server: ActorHandle, n_workers: int | None) -> None:
        self.setup, self.expected, self.server, self.n_workers = setup, expected, server, n_workers
        self.workers: list[Worker] = []
        self.refused: dict[str, str] = {}  # node id -> why
        self.notices: list[str] = []  # what the user is to be told about nodes
        self.spec: JobSpec | None = None  # set when the job starts: live workers are told it
        self.max_slots = 0  # units one worker may be sent at once (--jobs), beyond its own slots
        self.placed_at = 0.0
        self._seq = 0
        self._driver_ip = ray.util.get_node_ip_address()

    def live(self) -> list[Worker]:
        return [w for w in self.workers if w.state == "live"]

    def starting(self) -> bool:
        return any(w.state == "starting" for w in self.workers)

    # -- placement ----------------------------------------------------------------------------------
    def _targets(self, nodes: list[dict]) -> list[dict]:
        """The nodes that get a new worker now: every usable node without one (default), or, with
        ``--ray-workers N``, the missing workers spread over the nodes with the fewest."""
        active: dict[str, int] = {}
        for w in self.workers:
            if w.state in ("starting", "live"):
                active[w.node] = active.get(w.node, 0) + 1
        usable = [n for n in nodes if n["NodeID"] not in self.refused]
        if self.n_workers is None:
            return [n for n in usable if n["NodeID"] not in active]
        out: list[dict] = []
        for _ in range(max(0, self.n_workers - sum(active.values()))):
            if not usable:
                break
            best = min(usable, key=lambda n: active.get(n["NodeID"], 0))
            active[best["NodeID"]] = active.get(best["NodeID"], 0) + 1
            out.append(best)
        return out

    def place(self) -> None:
        """Start workers where they are missing (at the start, after a loss, on nodes that joined)."""
        self.placed_at = time.monotonic()
        nodes = [n for n in ray.nodes() if n.get("Alive") and _node_resources(n)[0] > 0]
        targets = self._targets(nodes)
        per_node = 1 if self.n_workers is None else max(1, math.ceil(self.n_workers / max(1, len(nodes))))
        n = sum(1 for w in self.workers if w.state in ("starting", "live")) + len(targets)
        share = max(1, self.setup.settings.llm.concurrency // max(1, n))  # [llm] concurrency is job-wide
        for node in targets:
            self._start_worker(node, per_node, share)

    def _start_worker(self, node: dict, per_node: int, llm_share: int) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        s = self.setup.settings
        cpus, memory = _node_resources(node)
        reserve_cpu = min(float(s.lean.pool_size), cpus / per_node)  # [lean] pool_size is per node
        pool = max(1, min(int(reserve_cpu), int(memory / per_node // (IMPORT_MATHLIB_RSS_MB * 2**20))))
        reserve_mem = int(min(pool * IMPORT_MATHLIB_RSS_MB * 2**20, memory / per_node))
        lean = s.lean.model_copy(update={"pool_size": pool, "prewarm": min(s.lean.prewarm, pool)})
        settings = s.model_copy(update={"lean": lean, "llm": s.llm.model_copy(update={"concurrency": llm_share})})
        slots = UNITS_PER_REPL * pool
        self._seq += 1
        handle = UnitWorker.options(  # type: ignore[attr-defined]
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False),
            num_cpus=reserve_cpu,
            memory=reserve_mem or None,
            max_concurrency=max(slots, self.max_slots) + 4,
        ).remote(f"w{self._seq}", self.server, WorkerSetup(settings, self.setup.store_path, self.setup.env))
        w = Worker(handle, f"w{self._seq}", node["NodeID"], slots, address=node.get("NodeManagerAddress", ""))
        w.host = node.get("NodeManagerHostname", "")
        w.hello = handle.hello.remote()
        self.workers.append(w)

    # -- reports ------------------------------------------------------------------------------------
    def settle(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the starting workers' reports (0: take the ready ones only)."""
        deadline = time.monotonic() + timeout
        while True:
            starting = [w for w in self.workers if w.state == "starting" and w.hello is not None]
            if not starting:
                return
            left = max(0.0, deadline - time.monotonic())
            ready, _ = ray.wait([w.hello for w in starting], num_returns=len(starting), timeout=min(left, 1.0))
            for w in starting:
                if w.hello in ready:
                    self._welcome(w)
            if time.monotonic() >= deadline:
                for w in starting:
                    if w.state == "starting" and timeout > 0:
                        why = (
                            f"its worker did not start in {timeout:.0f} s (its CPUs or memory are taken, or Lean hangs)"
                        )
                        self._refuse(w, f"Ray node {w.host or w.node[:8]} refused: {why}")
                return

    def _welcome(self, w: Worker) -> None:
        """A worker reported: it is live (and told the job, if it runs) or its node is refused."""
        try:
            hello: Hello = ray.get(w.hello)
        except RayError as e:
            self._refuse(w, f"Ray node {w.host or w.node[:8]} refused: its worker failed to start ({type(e).__name__})")
            return
        w.host, w.pid = hello.toolchain.host, hello.pid
        why = mismatch(self.expected, hello.toolchain) or hello.lean_error
        if why:
            self._refuse(w, why)
            return
        w.state, w.hello = "live", None
        self._check_llm_reach(w)
        if self.spec is not None:
            w.handle.begin.remote(self.spec)

    def _check_llm_reach(self, w: Worker) -> None:
        url = self.setup.settings.llm.base_url
        if w.address and w.address != self._driver_ip and (urlparse(url).hostname or "") in LOCAL_HOSTS:
            self.notices.append(
                f"the LLM endpoint {url} is this machine's own address: Ray node {w.host} calls its own "
                "localhost, not the driver's (set OPENAI_BASE_URL to an address every node can reach)"
            )

    def _refuse(self, w: Worker, why: str) -> None:
        w.state, w.hello = "refused", None
        self.refused[w.node] = why
        self.notices.append(why)
        with contextlib.suppress(Exception):
            ray.kill(w.handle)

    # -- liveness -----------------------------------------------------------------------------------
    def lose(self, w: Worker, why: str) -> None:
        """The worker is gone (died, or silent): killed, its store sessions rolled back."""
        if w.state != "live":
            return
        w.state = "lost"
        self.notices.append(why)
        with contextlib.suppress(Exception):
            ray.kill(w.handle, no_restart=True)
        with contextlib.suppress(RayError):
            ray.get(self.server.drop.remote(f"{w.name}:"), timeout=30)

    def ping(self, now: float) -> None:
        """Ping every live worker; one that answered nothing for ``silent_s`` is lost."""
        for w in self.live():
            if w.ping is None:
                if now - w.ping_at >= self.ping_s:
                    w.ping, w.ping_at = w.handle.ping.remote(), now
                continue
            ready, _ = ray.wait([w.ping], timeout=0)
            if ready:
                w.ping = None
            elif now - w.ping_at > self.silent_s:
                self.lose(
                    w,
                    f"the Ray worker on {w.host or 'a node'} answered nothing for {self.silent_s:.0f} s "
                    "(hung or stopped): killed, its units are redone on the other workers",
                )
