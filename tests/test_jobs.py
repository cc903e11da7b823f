"""Batch jobs: the scheduler (dependency order, many units in flight, failed dependencies do not block), budgets
(USD, tokens, per unit), resume after SIGKILL at random moments and after SIGINT, the live view, status,
transcripts, and bad input and faults (unknown book, zero budget, newer store, full disk, 401).

Jobs run against the scripted OpenAI-compatible server and the scripted Lean REPL (tests/conftest.py), in
process (JobRunner) where the test inspects the scheduler, and through the real CLI in a subprocess otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import random
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import networkx as nx
import pytest
from conftest import SAMPLE_BOOK, autoform, book_script, make_repl_dir, write_config
from fake_llm import FakeLLM, Reply

from autoform.config import load_settings
from autoform.executors import UnitOutcome
from autoform.jobs import JobParams, JobRunner, dependency_plan, render_live
from autoform.store import Store, Unit

SORRY_LABEL = "lem:even-add"  # the prover first answers with `sorry`; the gap-closer repairs it
FAIL_LABEL = "thm:sum-odd"  # every proof uses an identifier the oracle double rejects
STATED_LABEL = "ex:five-divides"  # no proof in the book, none found: admitted as stated
FINAL_UNITS = {"defined": 5, "proved": 32, "failed": 1, "stated": 1}
ATLAS_FILES = ("Atlas.lean", "Atlas/Ent/ElementaryNumberTheory.lean", "AtlasStated/Ent/ElementaryNumberTheory.lean")


def _overrides() -> dict:
    from test_e2e import _overrides as e2e_overrides  # the same scripted formalizer as the end-to-end test

    return e2e_overrides()


def script(delay_s: float = 0.0):
    base = book_script(_overrides())

    def answer(body: dict) -> Reply | str:
        out = base(body)
        return Reply(text=out, delay_s=delay_s) if isinstance(out, str) and delay_s else out

    return answer


def make_home(tmp: Path, srv: FakeLLM, name: str = "home", extra: str = "") -> Path:
    home = tmp / name
    home.mkdir(parents=True, exist_ok=True)
    write_config(home, base_url=srv.base_url, repl_dir=make_repl_dir(tmp / f"{name}-repl"), extra=extra)
    autoform(home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    return home


def atlas_text(home: Path) -> dict[str, str]:
    return {rel: (home / "atlas" / rel).read_text() for rel in ATLAS_FILES}


def assert_same_atlas(home: Path, reference: dict[str, str], *, attempt_counts: bool = True) -> None:
    """The Atlas equals the reference byte for byte; with ``attempt_counts=False`` the provenance line's
    "N attempt(s)" may differ (see test_resume_does_not_redo_a_recorded_statement_attempt)."""
    import difflib
    import re

    got = atlas_text(home)
    for rel in ATLAS_FILES:
        want, have = reference[rel], got[rel]
        if not attempt_counts:
            want, have = (re.sub(r"\d+ attempt\(s\)", "N attempt(s)", x) for x in (want, have))
        diff = "\n".join(difflib.unified_diff(want.splitlines(), have.splitlines(), lineterm="", n=1))
        assert not diff, f"{rel} differs from the uninterrupted run:\n{diff[:3000]}"


def db(home: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(home / "autoform.sqlite", timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def store_digest(home: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(home.glob("autoform.sqlite*")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def assert_consistent(home: Path) -> None:
    """Nothing corrupted, nothing half-done: the store checks out, every admission is whole and once."""
    conn = db(home)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    entries = conn.execute("SELECT unit_id, status, attempt_id FROM atlas_entries").fetchall()
    assert len({e["unit_id"] for e in entries}) == len(entries)
    admissions = dict(
        conn.execute("SELECT unit_id, COUNT(*) FROM posts WHERE kind = 'admission' GROUP BY unit_id").fetchall()
    )
    for e in entries:
        assert admissions.get(e["unit_id"]) == 1
        status = conn.execute("SELECT status FROM units WHERE id = ?", (e["unit_id"],)).fetchone()[0]
        assert status == e["status"]
        if e["status"] != "stated":
            assert conn.execute("SELECT admitted FROM attempts WHERE id = ?", (e["attempt_id"],)).fetchone()[0] == 1
    assert all(n == 1 for n in admissions.values())
    assert conn.execute("SELECT COUNT(*) FROM units WHERE status = 'working'").fetchone()[0] == 0 or any(
        j["status"] == "running" for j in conn.execute("SELECT status FROM jobs")
    )


@pytest.fixture(scope="module")
def clean_atlas(tmp_path_factory) -> dict[str, str]:
    """The Atlas of one uninterrupted run (the reference every interrupted-and-resumed run must reproduce)."""
    tmp = tmp_path_factory.mktemp("clean")
    with FakeLLM(script()) as srv:
        home = make_home(tmp, srv)
        r = autoform(home, "run", "ent", "--json", "--jobs", "4")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["units"] == FINAL_UNITS
        return atlas_text(home)


def runner(home: Path, **params) -> tuple[JobRunner, Store]:
    from autoform.lean import make_oracle
    from autoform.llm import LLMClient

    s = load_settings(home)
    store = Store(s.db_path)
    book = store.book("ent")
    assert book is not None
    oracle = make_oracle(s, store)
    oracle.start()
    p = JobParams(**{"max_attempts": 3, "jobs": 4, **params})
    return JobRunner(s, store, book, oracle, LLMClient(s, store, retry_initial_s=0.01), p), store


# --------------------------------------------------------------------------------------- the scheduler
def test_dependency_plan_counts_heights_and_cuts_cycles():
    g = nx.DiGraph()
    for n in range(1, 7):
        g.add_node(n, seq=n)
    # 2 and 3 use 1; 4 uses 2 and 3; 5 uses 4; 6 is alone; 1 cites 5 (a cycle 1 <- 2 <- 4 <- 5 <- 1)
    g.add_edges_from([(2, 1), (3, 1), (4, 2), (4, 3), (5, 4), (1, 5)])
    from autoform import graph as graphs

    order = graphs.work_order(g)
    waiting, dependents, height = dependency_plan(g, order)
    assert waiting == {1: 0, 2: 1, 3: 1, 4: 2, 5: 1, 6: 0}
    assert sorted(dependents[1]) == [2, 3] and dependents[4] == [5]
    assert height == {1: 4, 2: 3, 3: 3, 4: 2, 5: 1, 6: 1}  # the chain 1-2-4-5 is the critical path


def test_the_plan_takes_up_reopened_units_after_their_open_dependencies():
    from autoform.jobs import ReadyQueue

    g = nx.DiGraph()
    for n in range(1, 6):
        g.add_node(n, seq=n)
    g.add_edges_from([(2, 1), (3, 2), (5, 1)])  # 3 uses 2 uses 1; 5 uses 1; 4 alone
    from autoform import graph as graphs

    q = ReadyQueue(g, graphs.work_order(g))
    assert q.pop() == 1
    q.conclude(1)  # 2 and 5 become ready
    assert q.pop() == 2
    q.conclude(2)  # 3 becomes ready; 3, 4 and 5 are ready, none started
    assert not q.is_open(1) and not q.is_open(2) and q.is_open(5)
    q.reopen([2, 1])  # a person re-opens 1 (and 2, re-checked with it): 2 waits on 1, 3 and 5 wait again
    assert q.is_open(1) and q.is_open(2)
    started = []
    while q.has_ready():
        started.append(q.pop())
    assert sorted(started) == [1, 4] and q.has_waiting()  # neither 3 nor 5 before 1 and 2 are done again
    q.conclude(1)
    assert sorted([q.pop(), q.pop()]) == [2, 5] and not q.has_ready()
    q.conclude(2)
    assert q.pop() == 3 and not q.has_waiting()
    q.reopen([3])  # re-opened while started (never concluded): nothing changes
    assert not q.has_ready()
    q.reopen([9])  # a unit outside the graph and the plan: ready at once
    assert q.pop() == 9


class ReopeningExecutor:
    """Completes units at once, each proved; when ``unit`` completes the first time, a person re-opens it (the
    store's operation the people commands use), as `autoform review --reject` would while the job runs."""

    def __init__(self, unit: int) -> None:
        self.slots, self.unit = 1, unit
        self.submitted: list[int] = []
        self.queue: list[int] = []

    def start(self, ctx) -> None:
        self.ctx = ctx

    def submit(self, unit: Unit) -> None:
        assert unit.status == "pending"  # a re-opened unit is handed over as it is now
        self.submitted.append(unit.id)
        self.queue.append(unit.id)

    def completed(self, timeout: float) -> list[UnitOutcome]:
        if not self.queue:
            return []
        uid = self.queue.pop(0)
        self.ctx.store.set_unit_status(uid, "proved")
        if uid == self.unit and self.submitted.count(uid) == 1:
            with self.ctx.store.tx():
                self.ctx.store.reopen_unit(uid, keep_lock=True, stages=("proof",), cause="reject")
        return [UnitOutcome(uid, events=[("proved", uid, "")])]

    def request_stop(self) -> None:
        pass

    def close(self, *, wait: bool = True) -> None:
        pass


def test_a_running_job_takes_up_units_reopened_during_its_run(tmp_path):
    from autoform import graph as graphs

    s = load_settings(tmp_path)
    store = Store(s.db_path)
    from autoform.ingest import read_book, store_book

    store_book(store, "ent", read_book(SAMPLE_BOOK))
    book = store.book("ent")
    assert book is not None
    g = graphs.book_graph(store, book.id)
    order = graphs.work_order(g)
    pos = {u: i for i, u in enumerate(order)}
    used = next(u for u in order if any(pos[w] > pos[u] for w in g.predecessors(u)))  # a unit others use
    users = {w for w in g.predecessors(used) if pos[w] > pos[used]}
    ex = ReopeningExecutor(used)
    r = JobRunner(s, store, book, object(), object(), JobParams(max_attempts=3, jobs=1), executor=ex)
    summary = r.run()
    assert summary.status == "done"
    assert ex.submitted.count(used) == 2 and len(ex.submitted) == len(order) + 1  # taken up again, once
    assert store.unit(used).status == "proved"
    # its users had not started when it was re-opened: they waited for it to end again
    again = len(ex.submitted) - 1 - ex.submitted[::-1].index(used)
    assert users and all(ex.submitted.index(w) > again for w in users)
    # the live counters count it once
    assert r.monitor is not None and r.monitor.snapshot()["admitted"] == len(order)
    assert len(store.jobs(book.id)) == 1


class ScriptedExecutor:
    """Completes units at once, in submission order, with fixed outcomes: the scheduler alone."""

    def __init__(self, slots: int, fatal_at: int | None = None) -> None:
        self.slots, self.fatal_at = slots, fatal_at  # the fatal_at-th completion says the job must stop
        self.submitted: list[int] = []
        self.queue: list[int] = []
        self.max_in_flight = 0
        self.stops = 0

    def start(self, ctx) -> None:
        self.ctx = ctx

    def submit(self, unit: Unit) -> None:
        self.submitted.append(unit.id)
        self.queue.append(unit.id)
        self.max_in_flight = max(self.max_in_flight, len(self.queue))

    def completed(self, timeout: float) -> list[UnitOutcome]:
        if not self.queue:
            return []
        uid = self.queue.pop(0)
        self.done = getattr(self, "done", 0) + 1
        if self.done == self.fatal_at:
            return [UnitOutcome(uid, fatal="endpoint gone", fatal_kind="llm")]
        self.ctx.store.set_unit_status(uid, "failed" if uid % 3 == 0 else "proved")
        return [UnitOutcome(uid)]

    def request_stop(self) -> None:
        self.stops += 1

    def close(self, *, wait: bool = True) -> None:
        pass


def _plain_runner(tmp_path: Path, executor, **params) -> tuple[JobRunner, Store]:
    s = load_settings(tmp_path)
    store = Store(s.db_path)
    from autoform.ingest import read_book, store_book

    store_book(store, "ent", read_book(SAMPLE_BOOK))
    book = store.book("ent")
    assert book is not None
    p = JobParams(**{"max_attempts": 3, "jobs": 3, **params})
    return JobRunner(s, store, book, object(), object(), p, executor=executor), store


def test_scheduler_releases_units_after_their_dependencies_even_failed_ones(tmp_path):
    ex = ScriptedExecutor(slots=3)
    r, store = _plain_runner(tmp_path, ex)
    summary = r.run()
    assert summary.status == "done"
    units = store.units(r.book.id)
    assert sorted(ex.submitted) == sorted(u.id for u in units)  # every unit once, failed deps block nothing
    assert any(u.status == "failed" for u in units)
    started = {uid: t for kind, uid, t in r.trace if kind == "start"}
    ended = {uid: t for kind, uid, t in r.trace if kind == "end"}
    for a, b in r.graph.edges:  # a uses b: b ended before a started
        if (a, b) not in _cut_edges(r):
            assert ended[b] <= started[a], (a, b)
    assert ex.max_in_flight == 3  # the slots were used
    assert r.sched_cpu_s < 0.5


def test_the_job_records_the_slots_its_executor_actually_uses(tmp_path):
    """Ray without --jobs uses the cluster's slots: the job's stored parameters say how many, not --jobs' 1."""
    ex = ScriptedExecutor(slots=4)  # as a Ray executor whose workers hold four units
    r, store = _plain_runner(tmp_path, ex, jobs=1)
    summary = r.run()
    assert summary.status == "done" and ex.max_in_flight == 4
    assert store.job(summary.job_id).params["jobs"] == 4


def _cut_edges(r: JobRunner) -> set[tuple[int, int]]:
    from autoform import graph as graphs

    pos = {u: i for i, u in enumerate(graphs.work_order(r.graph))}
    return {(a, b) for a, b in r.graph.edges if pos[b] > pos[a]}


def test_a_fatal_outcome_stops_new_work(tmp_path):
    ex = ScriptedExecutor(slots=2, fatal_at=6)
    r, store = _plain_runner(tmp_path, ex, jobs=2)
    summary = r.run()
    assert summary.status == "interrupted" and summary.stop_reason == "llm" and summary.message == "endpoint gone"
    assert len(ex.submitted) == 5 + 2  # five done, then the fatal one and the other in flight: nothing new
    assert ex.stops == 1
    assert store.job(summary.job_id).status == "interrupted"


def test_real_pipeline_respects_dependencies_with_many_in_flight(workspace):
    ws = workspace(script(delay_s=0.01))
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    r, store = runner(ws.home, jobs=6)
    try:
        summary = r.run()
    finally:
        r.oracle.close()
    assert summary.status == "done" and summary.units == FINAL_UNITS
    # from the store, not the scheduler's word: no unit called the LLM before its dependencies concluded
    conn = db(ws.home)
    first_call = dict(conn.execute("SELECT unit_id, MIN(created_at - elapsed_s) FROM llm_calls GROUP BY unit_id"))
    concluded = dict(conn.execute("SELECT unit_id, MAX(created_at) FROM posts GROUP BY unit_id"))
    cut = _cut_edges(r)
    checked = 0
    for a, b in r.graph.edges:
        if (a, b) not in cut and a in first_call and b in concluded:
            assert concluded[b] <= first_call[a] + 1e-3, (a, b)
            checked += 1
    assert checked >= 20
    # units really ran side by side
    events = sorted((t, +1 if k == "start" else -1) for k, _, t in r.trace)
    level = peak = 0
    for _, d in events:
        level += d
        peak = max(peak, level)
    assert peak >= 3


# ------------------------------------------------------------------------------------------------ budgets
def _used_per_unit(home: Path) -> list[tuple[int, int]]:
    """(unit, tokens) in the order units first called the LLM."""
    rows = (
        db(home)
        .execute(
            "SELECT unit_id, MIN(id), SUM(prompt_tokens + completion_tokens) FROM llm_calls GROUP BY unit_id "
            "ORDER BY MIN(id)"
        )
        .fetchall()
    )
    return [(r[0], r[2]) for r in rows]


def test_token_budget_stops_new_work_and_the_job_resumes(workspace, clean_atlas):
    ws = workspace(script())
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    budget = 20_000
    r = autoform(ws.home, "run", "ent", "--json", "--jobs", "1", "--budget-tokens", str(budget))
    assert r.returncode == 1, r.stderr
    s = json.loads(r.stdout)
    assert s["status"] == "interrupted" and s["stop_reason"] == "budget"
    assert "budget reached" in s["message"] and "--budget-tokens" in s["message"]
    used = _used_per_unit(ws.home)
    total = sum(t for _, t in used)
    assert total >= budget
    assert sum(t for _, t in used[:-1]) < budget  # no unit started once the budget was spent
    assert 1 <= len(used) < 39
    assert_consistent(ws.home)
    # a larger budget resumes the same job to the end, with the Atlas of an uninterrupted run
    r = autoform(ws.home, "run", "ent", "--json", "--jobs", "4", "--budget-tokens", "100000000")
    s2 = json.loads(r.stdout)
    assert r.returncode == 0 and s2["resumed"] and s2["job_id"] == s["job_id"] and s2["units"] == FINAL_UNITS
    assert_same_atlas(ws.home, clean_atlas)


def test_usd_budget_stops_new_work(workspace):
    ws = workspace(script(), extra='[llm.prices]\n"test-model" = [100.0, 100.0]\n')
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json", "--jobs", "2", "--budget-usd", "2.5")
    assert r.returncode == 1
    s = json.loads(r.stdout)
    assert s["status"] == "interrupted" and s["stop_reason"] == "budget" and "USD" in s["message"]
    assert s["cost_usd"] >= 2.5
    assert len(_used_per_unit(ws.home)) < 39
    st = json.loads(autoform(ws.home, "status", "ent", "--json", check=True).stdout)
    assert st["jobs"][-1]["status"] == "interrupted" and st["jobs"][-1]["cost_usd"] == pytest.approx(s["cost_usd"])
    assert_consistent(ws.home)


def test_unit_token_cap_fails_the_unit_not_the_job(workspace):
    ws = workspace(script())
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json", "--jobs", "4", "--unit-tokens", "1")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["status"] == "done" and s["units"] == {"failed": 39}
    calls = db(ws.home).execute("SELECT unit_id, COUNT(*) FROM llm_calls GROUP BY unit_id").fetchall()
    assert len(calls) == 39 and all(n == 1 for _, n in calls)  # the reader's call, then the cap
    t = json.loads(autoform(ws.home, "transcript", "ent", FAIL_LABEL, "--json", check=True).stdout)
    assert "token cap" in t["why"] and "--unit-tokens" in t["why"]


# ------------------------------------------------------------------------------------------------ resume
def _background(home: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AUTOFORM_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "autoform", "--home", str(home), "run", "ent", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def _admitted(home: Path) -> int:
    try:
        return (
            sqlite3.connect(home / "autoform.sqlite", timeout=5)
            .execute("SELECT COUNT(*) FROM atlas_entries")
            .fetchone()[0]
        )
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_atlas(workspace, clean_atlas):
    ws = workspace(script(delay_s=0.03))
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    rng = random.Random(6)
    kills = 0
    for _ in range(5):
        proc = _background(ws.home, "--jobs", "4")
        # a random moment once the job is under way (after its first admission)
        deadline = time.monotonic() + 60
        while _admitted(ws.home) == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.6))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.communicate()
        assert_consistent(ws.home)
    assert kills >= 3, "the job finished before it could be killed; slow the scripted server down"
    r = autoform(ws.home, "run", "ent", "--json", "--jobs", "4")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["resumed"] is True and s["units"] == FINAL_UNITS
    conn = db(ws.home)
    assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1
    per_unit = conn.execute(
        "SELECT unit_id, stage, COUNT(*) FROM attempts WHERE author NOT IN ('sketch', "
        "'decomposition') GROUP BY unit_id, stage"
    ).fetchall()
    assert max(n for *_, n in per_unit) <= 3  # attempt limits hold across kills
    sketches = conn.execute(
        "SELECT unit_id, COUNT(*) FROM attempts WHERE author IN ('sketch', 'decomposition') GROUP BY unit_id"
    ).fetchall()
    assert all(n == 1 for _, n in sketches)  # one sketch round per unit, across kills too
    assert_consistent(ws.home)
    assert_same_atlas(ws.home, clean_atlas, attempt_counts=False)


@pytest.mark.slow
def test_sigint_stops_gracefully_and_the_job_resumes(workspace, clean_atlas):
    ws = workspace(script(delay_s=0.05))
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    proc = _background(ws.home, "--jobs", "3")
    deadline = time.monotonic() + 60
    while _admitted(ws.home) < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the job finished before SIGINT; slow the scripted server down"
    # while it runs, status shows it alive with units in flight
    st = json.loads(autoform(ws.home, "status", "ent", "--json", check=True).stdout)
    job = st["jobs"][-1]
    assert job["alive"] and job["status"] == "running" and job["in_flight"] and st["in_flight"]
    assert job["attempts"] >= 5 and job["llm_calls"] > 0 and job["rate_units_per_min"] > 0
    assert job["eta_s"] is not None and {"id", "unit", "label"} <= set(job["in_flight"][0])
    # a second run of the same book is refused while the first one lives
    r = autoform(ws.home, "run", "ent")
    assert r.returncode == 2 and "already running" in " ".join(r.stderr.split())
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    s = json.loads(out)
    assert s["status"] == "interrupted" and s["stop_reason"] == "sigint"
    assert "stopping after the steps in flight" in err and "Traceback" not in err
    conn = db(ws.home)
    assert conn.execute("SELECT status FROM jobs").fetchone()[0] == "interrupted"
    assert conn.execute("SELECT COUNT(*) FROM units WHERE status = 'working'").fetchone()[0] == 0
    assert s["units"].get("pending", 0) > 0
    admitted_before = {r[0] for r in conn.execute("SELECT unit_id FROM atlas_entries")}
    assert_consistent(ws.home)
    st = json.loads(autoform(ws.home, "status", "ent", "--json", check=True).stdout)
    assert not st["jobs"][-1]["alive"] and st["in_flight"] == []
    r = autoform(ws.home, "run", "ent", "--json", "--jobs", "3")
    s2 = json.loads(r.stdout)
    assert r.returncode == 0 and s2["resumed"] and s2["job_id"] == s["job_id"] and s2["units"] == FINAL_UNITS
    assert admitted_before <= {r[0] for r in db(ws.home).execute("SELECT unit_id FROM atlas_entries")}
    assert_same_atlas(ws.home, clean_atlas)


def test_a_stop_between_reader_and_drafter_loses_nothing(workspace, clean_atlas):
    """Stopping right after a unit's reader (before its first statement draft) leaves the unit pending, not
    failed: the resumed job formalizes it."""
    base = script()
    holder: dict[str, JobRunner] = {}

    def answer(body: dict):
        from conftest import label_of, role_of

        if role_of(body) == "reader" and label_of(body) == "thm:bezout":
            holder["runner"].request_stop("sigint")
        return base(body)

    ws = workspace(answer)
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    r, store = runner(ws.home, jobs=1)
    holder["runner"] = r
    try:
        summary = r.run()
    finally:
        r.oracle.close()
    assert summary.status == "interrupted" and summary.stop_reason == "sigint"
    bezout = next(u for u in store.units(r.book.id) if u.label == "thm:bezout")
    assert bezout.status == "pending" and "failed" not in summary.units
    assert r.monitor is not None and r.monitor.counts["failed"] == 0
    s2 = json.loads(autoform(ws.home, "run", "ent", "--json", "--jobs", "4").stdout)
    assert s2["resumed"] and s2["units"] == FINAL_UNITS
    assert_same_atlas(ws.home, clean_atlas)


# ------------------------------------------------------------------------------------------- visibility
def test_live_view_in_a_terminal(workspace):
    ws = workspace(script(delay_s=0.01))
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AUTOFORM_"))}
    env.update(COLUMNS="160", TERM="xterm")
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoform", "--home", str(ws.home), "run", "ent", "--jobs", "4"],
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
        env=env,
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.communicate(timeout=60)
    os.close(master)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0
    for word in ("admitted", "stated", "failed", "in flight", "attempts", "units/min", "ETA", "$"):
        assert word in screen, word
    assert "37/39" in screen or "39/39" in screen  # the bar counts concluded units


def test_render_live_shows_counts_cost_rate_and_units_in_flight(tmp_path):
    from rich.console import Console

    ex = ScriptedExecutor(slots=3)
    r, store = _plain_runner(tmp_path, ex)
    r.run()
    assert r.monitor is not None
    r.monitor.started(store.units(r.book.id)[0])
    r.monitor.usd, r.monitor.attempts = 1.25, 7
    con = Console(record=True, width=200, force_terminal=True)
    con.print(render_live(r, "ent"))
    text = con.export_text()
    snap = r.monitor.snapshot()
    assert f"admitted {snap['admitted']}" in text and f"failed {snap['failed']}" in text
    assert "in flight 1" in text and "attempts 7" in text and "$1.2500" in text and "units/min" in text
    assert "working on: Definition" in text


def test_transcript_shows_prompts_replies_and_verdicts_in_order(workspace):
    ws = workspace(script())
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    autoform(ws.home, "run", "ent", "--jobs", "2", check=False)
    r = autoform(ws.home, "transcript", "ent", FAIL_LABEL, "--json")
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)
    assert t["status"] == "failed" and t["label"] == FAIL_LABEL
    assert "unknown identifier 'bogus" in t["why"]
    types = [e["type"] for e in t["entries"]]
    roles = [e["role"] for e in t["entries"] if e["type"] == "prompt"]
    assert types.count("prompt") == types.count("reply") == len(roles) >= 5
    # reader, drafter, (critics), prover, gap-closer twice, then the prover's sketch
    assert roles[:2] == ["reader", "drafter"] and roles[-4:] == ["prover", "gap_closer", "gap_closer", "prover"]
    verdicts = [e for e in t["entries"] if e["type"] == "verdict"]
    assert [(v["stage"], v["admitted"]) for v in verdicts] == [("statement", True)] + [("proof", False)] * 4
    assert any("bogus_sum_odd" in m["text"] for m in verdicts[1]["lean_messages"])
    assert [e["at"] for e in t["entries"]] == sorted(e["at"] for e in t["entries"])
    # the prover's prompt, then its reply, then Lean's verdict on that proof
    entries = t["entries"]
    i_prompt = next(i for i, e in enumerate(entries) if e["type"] == "prompt" and e["role"] == "prover")
    i_reply = next(i for i, e in enumerate(entries) if e["type"] == "reply" and e["role"] == "prover")
    i_verdict = next(i for i, e in enumerate(entries) if e["type"] == "verdict" and e["stage"] == "proof")
    assert i_prompt < i_reply < i_verdict
    assert any(e["type"] == "post" and e["kind"] == "lock" for e in t["entries"])
    prover_prompt = next(e for e in t["entries"] if e["type"] == "prompt" and e["role"] == "prover")
    assert any("You are the prover" in m["content"] for m in prover_prompt["messages"])
    # text, and the unit by id and by number
    txt = autoform(ws.home, "transcript", "ent", str(t["unit_id"])).stdout
    assert "REJECTED" in txt and "prompt to the prover" in txt and "unknown identifier 'bogus_sum_odd'" in txt
    assert txt.index("prompt to the reader") < txt.index("prompt to the prover") < txt.rindex("REJECTED")
    r = autoform(ws.home, "transcript", "ent", "no-such-unit")
    assert r.returncode == 2 and "no unit 'no-such-unit'" in r.stderr


# -------------------------------------------------------------------------------------- bad input, faults
def test_unknown_book_zero_budget_and_bad_parameters_change_nothing(workspace):
    ws = workspace(script())
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    before = store_digest(ws.home)
    cases = [
        (("nosuch",), "no book 'nosuch'"),
        (("ent", "--budget-usd", "0"), "budget must be positive"),
        (("ent", "--budget-tokens", "0"), "budget must be positive"),
        (("ent", "--unit-tokens", "0"), "cap must be positive"),
        (("ent", "--jobs", "0"), "at least 1"),
        (("ent", "--executor", "slurm"), "local or ray"),
        (("ent", "--address", "x:1"), "--executor ray"),
    ]
    for args, message in cases:
        r = autoform(ws.home, "run", *args)
        assert r.returncode == 2, (args, r.stderr)
        assert message in " ".join(r.stderr.split()) and "Traceback" not in r.stderr, (args, r.stderr)
    assert store_digest(ws.home) == before and ws.llm.requests == []


def test_store_from_a_newer_schema_is_refused_by_run(workspace):
    ws = workspace(script())
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    conn = sqlite3.connect(ws.home / "autoform.sqlite")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    before = store_digest(ws.home)
    r = autoform(ws.home, "run", "ent")
    msg = " ".join(r.stderr.split())
    assert r.returncode == 2 and "newer" in msg and "upgrade autoform" in msg and "Traceback" not in msg
    assert store_digest(ws.home) == before and ws.llm.requests == []


def test_ray_missing_names_the_install_command(workspace, tmp_path):
    ws = workspace(script())
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    blocker = tmp_path / "noray"
    (blocker / "ray").mkdir(parents=True)
    (blocker / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    before = store_digest(ws.home)
    r = autoform(ws.home, "run", "ent", "--executor", "ray", env={"PYTHONPATH": str(blocker)})
    msg = " ".join(r.stderr.split())
    assert r.returncode == 3 and "pip install 'autoform[ray]'" in msg and "Traceback" not in msg
    assert store_digest(ws.home) == before


def test_rejected_key_stops_the_job_cleanly_and_it_resumes(workspace, clean_atlas):
    ws = workspace(lambda body: Reply(status=401, text="Incorrect API key provided"))
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json", "--jobs", "4")
    assert r.returncode == 3 and "Traceback" not in r.stderr
    s = json.loads(r.stdout)
    assert s["status"] == "interrupted" and s["stop_reason"] == "llm" and "401" in s["message"]
    conn = db(ws.home)
    assert conn.execute("SELECT COUNT(*) FROM units WHERE status NOT IN ('pending', 'skipped')").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 0
    assert_consistent(ws.home)
    ws.llm.script = script()  # the key is fixed
    r = autoform(ws.home, "run", "ent", "--json", "--jobs", "4")
    s2 = json.loads(r.stdout)
    assert r.returncode == 0 and s2["resumed"] and s2["units"] == FINAL_UNITS
    assert_same_atlas(ws.home, clean_atlas)


class FullDiskStore(Store):
    """A store whose file cannot grow past a few pages more than it has: SQLite itself answers
    'database or disk is full' (SQLITE_FULL), as on a full disk."""

    headroom_pages = 12

    def _conn(self) -> sqlite3.Connection:
        fresh = getattr(self._local, "conn", None) is None
        conn = super()._conn()
        if fresh:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages + self.headroom_pages}")
        return conn


def test_full_disk_stops_the_job_with_a_clear_message_and_nothing_corrupted(workspace, clean_atlas):
    ws = workspace(script())
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    s = load_settings(ws.home)
    from autoform.lean import make_oracle
    from autoform.llm import LLMClient

    store = FullDiskStore(s.db_path)
    oracle = make_oracle(s, store)
    oracle.start()
    book = store.book("ent")
    assert book is not None
    r = JobRunner(s, store, book, oracle, LLMClient(s, store), JobParams(max_attempts=3, jobs=4))
    try:
        summary = r.run()
    finally:
        oracle.close()
    assert summary.status == "interrupted" and summary.stop_reason == "store"
    assert "database or disk is full" in summary.message and "run the same command again" in summary.message
    assert summary.units.get("pending", 0) > 0
    assert_consistent(ws.home)
    # space freed: the same command resumes and finishes with the Atlas of an uninterrupted run
    r2 = autoform(ws.home, "run", "ent", "--json", "--jobs", "4")
    s2 = json.loads(r2.stdout)
    assert r2.returncode == 0 and s2["resumed"] and s2["units"] == FINAL_UNITS
    assert_consistent(ws.home)
    assert_same_atlas(ws.home, clean_atlas, attempt_counts=False)


def test_full_disk_through_the_cli_exit_code_and_message(workspace, tmp_path):
    ws = workspace(script())
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    shim = tmp_path / "fulldisk.py"
    shim.write_text(
        "import sqlite3, sys\n"
        "import autoform.store as st\n"
        "orig = st.Store._conn\n"
        "def _conn(self):\n"
        "    fresh = getattr(self._local, 'conn', None) is None\n"
        "    c = orig(self)\n"
        "    if fresh:\n"
        "        c.execute(f'PRAGMA max_page_count = {c.execute(\"PRAGMA page_count\").fetchone()[0] + 12}')\n"
        "    return c\n"
        "st.Store._conn = _conn\n"
        "from autoform.cli import main\n"
        "sys.argv = ['autoform', *sys.argv[1:]]\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AUTOFORM_"))}
    r = subprocess.run(
        [sys.executable, str(shim), "--home", str(ws.home), "run", "ent", "--jobs", "4"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 3, r.stderr
    assert "database or disk is full" in " ".join(r.stderr.split()) and "Traceback" not in r.stderr
    assert "resume with: autoform run ent" in r.stderr
    assert_consistent(ws.home)


def test_status_json_reports_jobs_with_attempts_cost_and_rate(workspace):
    ws = workspace(script(), extra='[llm.prices]\n"test-model" = [1.0, 2.0]\n')
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    s = json.loads(autoform(ws.home, "run", "ent", "--json", "--jobs", "4", check=True).stdout)
    st = json.loads(autoform(ws.home, "status", "ent", "--json", check=True).stdout)
    job = st["jobs"][0]
    assert job["status"] == "done" and not job["alive"] and job["in_flight"] == []
    assert job["attempts"] == s["attempts"] and job["admitted"] == 38 and job["failed"] == 1
    expected = (s["prompt_tokens"] * 1.0 + s["completion_tokens"] * 2.0) / 1e6
    assert job["cost_usd"] == pytest.approx(expected, rel=1e-6) == pytest.approx(s["cost_usd"], rel=1e-6)
    assert job["tokens"] == s["prompt_tokens"] + s["completion_tokens"]
    assert job["rate_units_per_min"] > 0 and job["eta_s"] is None
    assert st["attempts"] == s["attempts"] and st["atlas_entries"] == 38
    txt = autoform(ws.home, "status", env={"COLUMNS": "250"}, check=True).stdout
    assert "ent" in txt and "rate" in txt


def test_spend_is_incremental(workspace):
    from autoform.jobs import Spend, job_cost

    ws = workspace(script(), extra='[llm.prices]\n"test-model" = [3.0, 5.0]\n')
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    autoform(ws.home, "run", "ent", "--jobs", "4", check=False)
    s = load_settings(ws.home)
    store = Store(s.db_path)
    spend = Spend(store, s, 1)
    spend.refresh()
    assert spend.usd == pytest.approx(job_cost(store, s, 1))
    last = spend.last_id
    spend.refresh()  # nothing new: nothing added
    assert spend.last_id == last and spend.usd == pytest.approx(job_cost(store, s, 1))


def test_runner_threads_do_not_outlive_the_job(workspace):
    ws = workspace(script())
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    before = {t.name for t in threading.enumerate()}
    r, _ = runner(ws.home, jobs=4)
    try:
        assert r.run().status == "done"
    finally:
        r.oracle.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("unit") and t.name not in before]


def test_resume_does_not_redo_a_recorded_statement_attempt(workspace, clean_atlas):
    """The state a kill leaves between a statement attempt and its lock, made on purpose: the resumed job
    must not record a second statement attempt for that unit."""
    ws = workspace(script())
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    autoform(ws.home, "run", "ent", "--json", "--jobs", "4", check=True)
    conn = db(ws.home)
    uid = conn.execute("SELECT id FROM units WHERE label = 'thm:bezout'").fetchone()[0]
    with conn:
        conn.execute("DELETE FROM atlas_entries WHERE unit_id = ?", (uid,))
        conn.execute("DELETE FROM attempts WHERE unit_id = ? AND stage = 'proof'", (uid,))
        first = conn.execute("SELECT MIN(id) FROM attempts WHERE unit_id = ?", (uid,)).fetchone()[0]
        conn.execute(
            "DELETE FROM posts WHERE unit_id = ? AND id > (SELECT MAX(id) FROM posts WHERE unit_id = ? "
            "AND kind = 'verdict' AND json_extract(data, '$.attempt') = ?)",
            (uid, uid, first),
        )
        conn.execute("UPDATE units SET status = 'working' WHERE id = ?", (uid,))
        conn.execute("UPDATE jobs SET status = 'running', finished_at = NULL")
    r = autoform(ws.home, "run", "ent", "--json", "--jobs", "4")
    assert r.returncode == 0 and json.loads(r.stdout)["resumed"]
    n = db(ws.home).execute("SELECT COUNT(*) FROM attempts WHERE unit_id = ? AND stage = 'statement'", (uid,))
    assert n.fetchone()[0] == 1
    assert_same_atlas(ws.home, clean_atlas)


def test_two_jobs_on_two_books_of_one_workspace_run_at_once(workspace):
    """A team's way to run many textbooks: one `autoform run` per book, at the same time, on one store. Both
    finish, neither corrupts the other, and atlas/ ends with both books (its writers take turns)."""
    ws = workspace(script(delay_s=0.01))
    for slug in ("ent", "ent2"):
        autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", slug, check=True)
    e = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AUTOFORM_"))}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "autoform", "--home", str(ws.home), "run", slug, "--json", "--jobs", "4"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=e,
            cwd=ws.home,
        )
        for slug in ("ent", "ent2")
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (stdout, stderr) in zip(procs, results, strict=True):
        assert p.returncode == 0, stderr
        assert json.loads(stdout)["units"] == FINAL_UNITS
    root = ws.home / "atlas"
    roots = (root / "Atlas.lean").read_text()
    assert "import Atlas.Ent.ElementaryNumberTheory" in roots and "import Atlas.Ent2.ElementaryNumberTheory" in roots

    def decls(slug: str) -> list[str]:
        text = (root / "Atlas" / slug / "ElementaryNumberTheory.lean").read_text()
        return [ln for ln in text.splitlines() if ln.startswith(("theorem ", "def "))]

    assert len(decls("Ent")) == FINAL_UNITS["proved"] + FINAL_UNITS["defined"] and decls("Ent") == decls("Ent2")
    assert_consistent(ws.home)
