"""A Ray cluster a team can trust (issue 22), on a cluster of two nodes simulated on this machine
(``ray.cluster_utils.Cluster``: one raylet per node, so placement, node loss and joining nodes are Ray's own):
no node can stall the job (a silent transaction is rolled back, a stopped worker is replaced), one worker per
node with its REPL pool reserved, one toolchain everywhere, the driver's credentials and job-wide limits, and
the CLI's defaults and messages. Skipped when Ray is not installed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import autoform
from fake_llm import FakeLLM
from test_jobs import FINAL_UNITS, assert_consistent, assert_same_atlas, atlas_text, db, make_home, script

ray = pytest.importorskip(
    "ray",
    reason="Ray is not installed (pip install 'autoform[ray]'): the Ray executor is tested only where it is available",
)

from autoform.config import load_settings  # noqa: E402
from autoform.executors.node import Toolchain, driver_settings, local_toolchain, mismatch  # noqa: E402
from autoform.executors.ray_connect import join_error  # noqa: E402
from autoform.executors.ray_executor import RayExecutor, UnitWorker, WorkerSetup  # noqa: E402
from autoform.executors.ray_store import RemoteStore, StoreServer  # noqa: E402
from autoform.jobs import JobParams, JobRunner  # noqa: E402
from autoform.store import Store  # noqa: E402

pytestmark = pytest.mark.slow
NODE_KEY = "node-own-key"


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """Two nodes of one CPU each; the second node's processes have their own OPENAI_API_KEY (a node's
    environment, which must not override the driver's key)."""
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    old = os.environ.get("OPENAI_API_KEY")
    os.environ["OPENAI_API_KEY"] = NODE_KEY
    try:
        c.add_node(num_cpus=1)
    finally:
        os.environ.pop("OPENAI_API_KEY") if old is None else os.environ.__setitem__("OPENAI_API_KEY", old)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False, configure_logging=False)
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("ref")
    with FakeLLM(script()) as srv:
        home = make_home(tmp, srv)
        autoform(home, "run", "ent", "--jobs", "4", check=True)
        return atlas_text(home)


def _runner(home: Path, ex: RayExecutor) -> tuple[JobRunner, Store]:
    from autoform.llm import LLMClient

    s = load_settings(home)
    store = Store(s.db_path)
    book = store.book("ent")
    assert book is not None
    assert ex.preflight(s, store) == []
    params = JobParams(max_attempts=3, jobs=ex.slots, executor="ray", ray_workers=ex.n_workers)
    return JobRunner(s, store, book, None, LLMClient(s, store), params, executor=ex), store


def _in_thread(runner: JobRunner) -> tuple[threading.Thread, dict]:
    result: dict = {}
    t = threading.Thread(target=lambda: result.update(summary=runner.run()), daemon=True)
    t.start()
    return t, result


def _wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _admitted(store: Store) -> int:
    return int(store.query("SELECT COUNT(*) FROM atlas_entries")[0][0])


# ------------------------------------------------------------------------------- 1. no node stalls the job
def test_a_silent_transaction_is_rolled_back_and_lock_waits_are_retried(tmp_path: Path, cluster):
    head = Store(tmp_path / "s.sqlite")
    server = StoreServer.remote(str(head.path), 1.0)  # a lease of one second
    try:
        silent = RemoteStore(server, str(head.path), "silent")
        busy = RemoteStore(server, str(head.path), "busy")
        silent._conn().execute("BEGIN IMMEDIATE")  # a worker stops while holding the write lock
        silent._conn().execute("INSERT INTO builds (ok, command, output, created_at) VALUES (1, 'lost', '', 0)")
        t0 = time.monotonic()
        with busy.tx() as c:  # another worker: waits (retrying), then gets the lock once the lease expired
            c.execute("INSERT INTO builds (ok, command, output, created_at) VALUES (1, 'kept', '', 0)")
        with head.tx() as c:  # the driver's own writes go on too
            c.execute("INSERT INTO builds (ok, command, output, created_at) VALUES (1, 'driver', '', 0)")
        assert time.monotonic() - t0 < 8
        assert sorted(r[0] for r in head.query("SELECT command FROM builds")) == ["driver", "kept"]
        from autoform.executors import StepLost

        with pytest.raises(StepLost, match="rolled back"), silent.tx():  # it wakes up: its step is gone, said so
            silent.query("SELECT 1")
        with silent.tx() as c:  # and its next step works
            c.execute("INSERT INTO builds (ok, command, output, created_at) VALUES (1, 'later', '', 0)")
        assert ray.get(server.stats.remote())["reaped"] == 1
    finally:
        ray.kill(server)


def test_a_stopped_worker_holding_a_transaction_does_not_stall_the_job(tmp_path: Path, cluster, reference):
    with FakeLLM(script(delay_s=0.05)) as srv:
        home = make_home(tmp_path, srv, "ray")
        ex = RayExecutor(4, workers=2)
        ex.lease_s = 1.0  # a transaction idle for a second is rolled back
        runner, store = _runner(home, ex)
        ex.fleet.silent_s = 6.0  # a worker silent for six seconds is lost
        t, result = _in_thread(runner)
        victim = None
        try:
            _wait(lambda: _admitted(store) >= 3, 120, "the first admissions")
            victim = next(w for w in ex.workers if w.state == "live")
            session = f"{victim.name}:stopped"  # the victim's own session, inside a transaction
            assert ray.get(ex.server.execute.remote(session, "BEGIN IMMEDIATE", ()))[0] == "ok"
            os.kill(victim.pid, signal.SIGSTOP)
            stopped_at, before = time.monotonic(), _admitted(store)
            _wait(lambda: _admitted(store) > before, 30, "an admission while the worker is stopped")
            assert time.monotonic() - stopped_at < 20  # the others went on (the lease freed the store)
            t.join(timeout=240)
            assert not t.is_alive(), "the job stalled behind the stopped worker"
        finally:
            if victim is not None and victim.state != "lost":
                os.kill(victim.pid, signal.SIGCONT)
        s = result["summary"]
        assert s.status == "done" and s.units == FINAL_UNITS, s
        assert victim.state == "lost"
        assert_same_atlas(home, reference, attempt_counts=False)
        assert_consistent(home)


# ------------------------------------------------------------------------------------------- 2. placement
def test_one_worker_per_node_with_its_repl_pool_reserved_and_the_cluster_slots(tmp_path: Path, cluster):
    with FakeLLM(script()) as srv:
        home = make_home(tmp_path, srv, "place")
        cfg = home / "autoform.toml"  # four REPL processes a node at most; each node has one CPU
        cfg.write_text(cfg.read_text().replace("memory_mb = 4096", "memory_mb = 4096\npool_size = 4"))
        s = load_settings(home)
        store = Store(s.db_path)
        ex = RayExecutor(None)  # the CLI's default: no --jobs, no --ray-workers
        try:
            assert ex.preflight(s, store) == []
            live = [w for w in ex.workers if w.state == "live"]
            nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
            assert len(live) == len(nodes) == 2 and {w.node for w in live} == nodes  # one on each node
            # each reserved its node's CPU for its REPL pool (one CPU a node here): nothing else can take it
            _wait(lambda: ray.available_resources().get("CPU", 0) == 0, 20, "the reservations")
            pools = [ray.get(w.handle.__ray_call__.remote(lambda self: self.settings.lean.pool_size)) for w in live]
            assert pools == [1, 1]
            # the slots are the cluster's, not --jobs' default of one
            assert ex.slots == sum(w.slots for w in live) == 4
            # [llm] concurrency is job-wide: the workers' shares do not add up to more
            shares = [ray.get(w.handle.__ray_call__.remote(lambda self: self.settings.llm.concurrency)) for w in live]
            assert sum(shares) <= s.llm.concurrency and min(shares) >= 1
        finally:
            ex.close(wait=False)


def test_a_lost_worker_is_replaced_and_a_joining_node_gets_one(tmp_path: Path, cluster, reference):
    with FakeLLM(script(delay_s=0.05)) as srv:
        home = make_home(tmp_path, srv, "join")
        ex = RayExecutor(None)
        runner, store = _runner(home, ex)
        ex.fleet.place_s = 1.0
        t, result = _in_thread(runner)
        node = None
        try:
            _wait(lambda: _admitted(store) >= 3, 120, "the first admissions")
            first = next(w for w in ex.workers if w.state == "live")
            ray.kill(first.handle, no_restart=True)
            _wait(
                lambda: any(w.node == first.node and w.state == "live" and w is not first for w in ex.workers),
                60,
                "a replacement on the lost worker's node",
            )
            node = cluster.add_node(num_cpus=1)
            _wait(
                lambda: any(w.node == node.node_id and w.state == "live" for w in ex.workers),
                60,
                "a worker on the joining node",
            )
            t.join(timeout=240)
            assert not t.is_alive()
        finally:
            if node is not None:
                t.join(timeout=240)
                cluster.remove_node(node)
        s = result["summary"]
        assert s.status == "done" and s.units == FINAL_UNITS
        assert_same_atlas(home, reference, attempt_counts=False)
        assert_consistent(home)


# ------------------------------------------------------------------------------------- 3. one toolchain
def test_a_node_with_another_toolchain_is_refused(tmp_path: Path, cluster, monkeypatch):
    import autoform.executors.ray_executor as rx

    with FakeLLM(script()) as srv:
        home = make_home(tmp_path, srv, "tc")
        s = load_settings(home)
        store = Store(s.db_path)
        real = local_toolchain(driver_settings(s))
        assert real.lean == "leanprover/lean4:v4.24.0" and real.repl and not real.problem
        # the driver runs another Lean than the nodes (read on each node by its worker)
        monkeypatch.setattr(
            rx, "local_toolchain", lambda st: Toolchain(real.host, real.project, "v4.28.0", "", real.repl)
        )
        ex = RayExecutor(None)
        try:
            problems = ex.preflight(s, store)
            refused = dict(ex.fleet.refused)
        finally:
            ex.close(wait=False)
        assert len(refused) == 2  # both nodes, each with the reason (one line here: both are this machine)
        assert problems and all("refused" in p and "lean-toolchain" in p for p in problems), problems
        assert "'leanprover/lean4:v4.24.0', the driver's is 'v4.28.0'" in problems[0]
        assert store.jobs() == []


def test_a_relative_project_missing_on_a_node_is_refused_not_replaced(tmp_path: Path, cluster):
    with FakeLLM(script()) as srv:
        home = make_home(tmp_path, srv, "rel")
        cfg = home / "autoform.toml"
        cfg.write_text(
            cfg.read_text().replace(f'project_dir = "{home / "lean_project"}"', 'project_dir = "lean_project"')
        )
        s = load_settings(home)
        shipped = driver_settings(s)
        assert shipped.lean.project_dir == str(home / "lean_project")  # the driver's path, absolute
        (home / "lean_project").rename(home / "elsewhere")  # this "node" lacks it
        server = StoreServer.remote(str(s.db_path))
        worker = UnitWorker.remote("w", server, WorkerSetup(shipped, str(s.db_path), {}))
        try:
            hello = ray.get(worker.hello.remote(), timeout=60)
        finally:
            ray.kill(worker)
            ray.kill(server)
        assert hello.toolchain.problem.startswith(f"the Lean project {home / 'lean_project'} does not exist")
        why = mismatch(local_toolchain(driver_settings(s)), hello.toolchain)
        assert why is not None and "refused" in why and "driver's path" in why


# ----------------------------------------------------------------------------- 4. credentials and limits
def test_workers_use_the_drivers_credentials_not_their_nodes(tmp_path: Path, cluster):
    with FakeLLM(script()) as srv:
        home = make_home(tmp_path, srv, "keys")
        s = load_settings(home)
        server = StoreServer.remote(str(s.db_path))
        node_env = {"OPENAI_API_KEY": NODE_KEY, "KIMINA_API_KEY": "node-kimina"}
        setup = WorkerSetup(s, str(s.db_path), {"OPENAI_API_KEY": "driver-key", "KIMINA_API_KEY": "driver-kimina"})
        worker = UnitWorker.options(runtime_env={"env_vars": node_env}).remote("w", server, setup)
        try:
            seen = ray.get(
                worker.__ray_call__.remote(
                    lambda self: (
                        os.environ.get("OPENAI_API_KEY"),
                        os.environ.get("KIMINA_API_KEY"),
                        self.settings.api_key,
                    )
                )
            )
        finally:
            ray.kill(worker)
            ray.kill(server)
        assert seen == ("driver-key", "driver-kimina", "driver-key")


# ----------------------------------------------------------------------------------- 5. the command line
def test_a_ray_job_from_the_command_line(tmp_path: Path, cluster, reference):
    """Without --jobs the cluster's slots are used; the node with its own OPENAI_API_KEY calls with the driver's;
    a stopped job's resume hint keeps --executor ray --address; it resumes there to the same Atlas."""
    with FakeLLM(script()) as srv:
        home = make_home(tmp_path, srv, "cli")
        args = ("run", "ent", "--executor", "ray", "--address", cluster.address)
        r = autoform(home, *args, "--budget-tokens", "60000", timeout=300)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert f"resume with: autoform run ent --executor ray --address {cluster.address}" in r.stderr
        r = autoform(home, *args, "--json", timeout=300)
        assert r.returncode == 0, r.stderr
        s = json.loads(r.stdout)
        assert s["status"] == "done" and s["units"] == FINAL_UNITS and s["resumed"]
        assert_same_atlas(home, reference, attempt_counts=False)
        keys = {h.get("authorization") for h in srv.request_headers}
        assert keys == {"Bearer test-key"}, keys  # never the node's own key
        params = json.loads(db(home).execute("SELECT params FROM jobs").fetchone()[0])
        assert params["executor"] == "ray"
        assert params["jobs"] == 4  # the slots used: two workers of one REPL process each, not --jobs' default


def test_ray_faults_are_one_line_and_write_nothing(tmp_path: Path, cluster):
    with FakeLLM(script()) as srv:
        home = make_home(tmp_path, srv, "faults")
        base = ("run", "ent", "--executor", "ray")
        r = autoform(home, *base, "--address", "ray://10.0.0.1:10001")
        msg = " ".join(r.stderr.split())
        assert r.returncode == 3 and "Ray Client (ray://) addresses are not supported" in msg
        assert "node of the cluster" in msg and "Traceback" not in msg
        # Lean does not start on the nodes: refused before any job row is written
        cfg = home / "autoform.toml"
        good = cfg.read_text()
        cfg.write_text(good.replace("repl_path = ", 'repl_path = "/nonexistent/repl"\n# '))
        r = autoform(home, *base, "--address", cluster.address, timeout=300)
        msg = " ".join(r.stderr.split())
        assert r.returncode == 3 and "refused" in msg and "Lean cannot start" in msg and "Traceback" not in msg, msg
        cfg.write_text(good)
        assert db(home).execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0


@pytest.fixture
def token_cluster(tmp_path: Path) -> Iterator[str]:
    """A one-node cluster started with `ray start --head` under token authentication (its own temp dir, so
    that only its processes are stopped afterwards)."""
    import socket
    import subprocess
    import sys

    temp = Path("/tmp") / f"af-ray-token-{os.getpid()}"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "a" * 32}
    ray_cli = Path(sys.executable).with_name("ray")
    start = [str(ray_cli), "start", "--head", "--port", str(port), "--num-cpus", "1", "--temp-dir", str(temp)]
    subprocess.run(
        [*start, "--include-dashboard=false", "--disable-usage-stats"], env=env, check=True, capture_output=True
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        pids = subprocess.run(["pgrep", "-f", str(temp)], capture_output=True, text=True).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def test_a_wrong_token_is_named_and_rays_log_kept_away(tmp_path: Path, token_cluster: str):
    with FakeLLM(script()) as srv:
        home = make_home(tmp_path, srv, "token")
        env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "x" * 32}
        r = autoform(home, "run", "ent", "--executor", "ray", "--address", token_cluster, env=env, timeout=300)
        msg = " ".join(r.stderr.split())
        assert r.returncode == 3 and "token authentication" in msg and "RAY_AUTH_TOKEN" in msg, msg
        assert "gcs_client" not in r.stderr and "Traceback" not in msg
        assert db(home).execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0


def test_join_error_names_the_cause():
    refused = "gcs_client.cc:210: Failed to get cluster ID from GCS server: Unauthenticated: RPC error"
    assert "token authentication" in join_error("h:6379", ConnectionError("Failed to connect"), refused)
    assert "nothing answered" in join_error("h:6379", ConnectionError("Failed to connect to Ray cluster"), "")
    odd = join_error("h:6379", RuntimeError("line one\nline two"), "")
    assert odd.endswith("RuntimeError: line one") and "\n" not in odd


def test_sqlite_lock_errors_outside_a_transaction_are_retried_inside_are_not(tmp_path: Path, cluster):
    """The retry is safe: a statement that found the store locked outside a transaction changed nothing."""
    head = Store(tmp_path / "s.sqlite")
    server = StoreServer.remote(str(head.path), 60.0)
    try:
        holder = RemoteStore(server, str(head.path), "holder")
        holder._conn().execute("BEGIN IMMEDIATE")
        waiter = RemoteStore(server, str(head.path), "waiter")
        conn = waiter._conn()
        conn.lock_wait_s = 3.0
        from autoform.executors import StoreWriteFailed

        t0 = time.monotonic()
        with pytest.raises(StoreWriteFailed, match="stayed locked"):
            conn.execute("BEGIN IMMEDIATE")
        assert 3.0 <= time.monotonic() - t0 < 10 and not conn.in_transaction
        holder._conn().execute("ROLLBACK")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    finally:
        ray.kill(server)
    assert sqlite3.sqlite_version
