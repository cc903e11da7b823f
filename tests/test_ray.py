"""The Ray executor against a local Ray cluster started by the test: the same job spread over Ray workers
gives the same Atlas as the local executor, the store stays on the head, budgets and resume still hold.
Skipped (with the reason) when Ray is not installed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import autoform
from fake_llm import FakeLLM
from test_jobs import FINAL_UNITS, assert_consistent, assert_same_atlas, make_home, script

ray = pytest.importorskip(
    "ray",
    reason="Ray is not installed (pip install 'autoform[ray]'): the Ray executor is tested only where it is available",
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> str:
    """A local Ray cluster of its own (2 CPUs, no dashboard; ``address="local"``: never one that `ray start` left
    running on the machine); the CLI joins it by its address, as it would a real one."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def test_ray_executor_gives_the_same_atlas_as_the_local_one(tmp_path: Path, cluster: str):
    with FakeLLM(script()) as srv:
        local = make_home(tmp_path, srv, "local")
        r = autoform(local, "run", "ent", "--json", "--jobs", "4")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["units"] == FINAL_UNITS
        reference = {
            p: (local / "atlas" / p).read_text()
            for p in (
                "Atlas.lean",
                "Atlas/Ent/ElementaryNumberTheory.lean",
                "AtlasStated/Ent/ElementaryNumberTheory.lean",
            )
        }

        home = make_home(tmp_path, srv, "ray")
        r = autoform(
            home,
            "run",
            "ent",
            "--json",
            "--executor",
            "ray",
            "--address",
            cluster,
            "--jobs",
            "4",
            "--ray-workers",
            "2",
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        s = json.loads(r.stdout)
        assert s["status"] == "done" and s["units"] == FINAL_UNITS
        assert_same_atlas(home, reference)
        assert_consistent(home)
        conn = sqlite3.connect(home / "autoform.sqlite")
        # the workers' LLM calls and Lean checks were recorded on the head's store, for this job
        assert conn.execute("SELECT COUNT(*) FROM llm_calls WHERE job_id = 1").fetchone()[0] == s["llm_calls"] > 100
        assert conn.execute("SELECT COUNT(*) FROM lean_checks WHERE job_id = 1").fetchone()[0] >= s["attempts"]
        # the same job again: nothing left to do, nothing changes
        before = (home / "atlas" / "Atlas/Ent/ElementaryNumberTheory.lean").read_text()
        r = autoform(home, "run", "ent", "--json", "--executor", "ray", "--address", cluster, timeout=300)
        assert json.loads(r.stdout)["admitted_this_job"] == 0
        assert (home / "atlas" / "Atlas/Ent/ElementaryNumberTheory.lean").read_text() == before


def test_ray_budget_stops_and_the_job_resumes_locally(tmp_path: Path, cluster: str):
    with FakeLLM(script()) as srv:
        reference_home = make_home(tmp_path, srv, "ref")
        autoform(reference_home, "run", "ent", "--jobs", "4", check=True)
        reference = {
            p: (reference_home / "atlas" / p).read_text()
            for p in (
                "Atlas.lean",
                "Atlas/Ent/ElementaryNumberTheory.lean",
                "AtlasStated/Ent/ElementaryNumberTheory.lean",
            )
        }
        home = make_home(tmp_path, srv, "ray")
        r = autoform(
            home,
            "run",
            "ent",
            "--json",
            "--executor",
            "ray",
            "--address",
            cluster,
            "--jobs",
            "2",
            "--budget-tokens",
            "60000",
            timeout=300,
        )
        assert r.returncode == 1, r.stderr
        s = json.loads(r.stdout)
        assert s["status"] == "interrupted" and s["stop_reason"] == "budget"
        assert s["prompt_tokens"] + s["completion_tokens"] >= 60000 and s["units"].get("pending", 0) > 0
        assert_consistent(home)
        # the store is the job: the local executor resumes what the cluster began
        r = autoform(home, "run", "ent", "--json", "--jobs", "4")
        assert r.stdout, r.stderr
        s2 = json.loads(r.stdout)
        assert r.returncode == 0 and s2["resumed"] and s2["job_id"] == s["job_id"] and s2["units"] == FINAL_UNITS
        assert_same_atlas(home, reference)


def test_remote_store_speaks_the_store_api(tmp_path: Path, cluster: str):
    """RemoteStore (what workers use) reads and writes the head's store with Store's own methods, with real
    transactions: a failed transaction leaves nothing behind."""
    from autoform.executors.ray_executor import RemoteStore, StoreServer
    from autoform.store import Store

    head = Store(tmp_path / "s.sqlite")
    with head.tx() as c:
        c.execute(
            "INSERT INTO books (slug, title, source_path, source_kind, ingested_at) VALUES ('b', 'B', '/x', 'latex', 0)"
        )
    server = StoreServer.remote(str(head.path))
    remote = RemoteStore(server, str(head.path), "t")
    book = remote.book("b")
    assert book is not None and book.title == "B"
    pid = remote.add_post(book_id=book.id, author="a", kind="hint", body="hello", data={"k": 1})
    assert [p.body for p in head.posts(book.id)] == ["hello"] and head.posts(book.id)[0].data == {"k": 1}
    with pytest.raises(RuntimeError), remote.tx():
        remote.add_post(book_id=book.id, author="a", kind="hint", body="rolled back")
        raise RuntimeError("boom")
    assert [p.id for p in head.posts(book.id)] == [pid]
    with pytest.raises(sqlite3.IntegrityError):
        remote.query(
            "INSERT INTO books (slug, title, source_path, source_kind, ingested_at) VALUES "
            "('b', 'again', '/x', 'latex', 0)"
        )
    rows = remote.query("SELECT slug, title FROM books")
    assert rows[0]["title"] == "B" and rows[0][0] == "b" and dict(rows[0]) == {"slug": "b", "title": "B"}
    # a worker that dies inside a transaction: its session is rolled back, the store is not left locked
    remote._conn().execute("BEGIN IMMEDIATE")
    remote._conn().execute("INSERT INTO builds (ok, command, output, created_at) VALUES (1, 'x', '', 0)")
    assert ray.get(server.drop.remote("t:")) == 1
    with head.tx() as c:  # would wait for the lock (and fail after 30 s) if the session still held it
        c.execute("INSERT INTO builds (ok, command, output, created_at) VALUES (1, 'y', '', 0)")
    assert [r[0] for r in head.query("SELECT command FROM builds")] == ["y"]
    # a declaration name reserved on the head is not given to another unit by a worker, and back
    with head.tx() as c:
        u1, u2 = (
            int(
                c.execute(
                    "INSERT INTO units (book_id, ident, seq, kind, statement) VALUES (?,?,?,?,?)",
                    (book.id, f"u{i}", i, "theorem", "s"),
                ).lastrowid
            )
            for i in (1, 2)
        )
    assert head.reserve_name(book.id, u1, "gcd_comm") == "gcd_comm"
    assert remote.reserve_name(book.id, u2, "gcd_comm") == "gcd_comm_2"
    # the blackboard's cache reads a worker's posts incrementally through the server
    from autoform.blackboard import Blackboard

    board = Blackboard(remote, book.id)
    assert [p.body for p in board.read()] == ["hello"]
    head.add_post(book_id=book.id, unit_id=u1, author="gate", kind="verdict", body="from the head")
    assert [p.body for p in board.read()] == ["hello", "from the head"]
    assert board.latest(u1, "verdict").body == "from the head"
    ray.kill(server)
