"""The oracle's production backends, driven through their real client code against stand-ins:
ReplPool (lean-interact -> stand-in lake -> REPL double or replay of real recorded Lean replies) and
LakeFileOracle (stand-in lake -> a fake `lean --json`)."""

from __future__ import annotations

import json
import stat
import sys
import time
from pathlib import Path

import pytest
from conftest import LAKE_STANDIN, SHARED, make_repl_dir

from autoform.config import LeanConfig, Settings
from autoform.lean import make_oracle
from autoform.lean.gate import Candidate, admit, build_module, check_statement, judge
from autoform.lean.lake import LakeFileOracle
from autoform.lean.oracle import OracleUnavailable, parse_lean_json_lines, parse_repl_reply
from autoform.lean.repl_pool import ReplPool

REPL_TESTS = SHARED / "lean-output" / "repl-tests" / "test"


def _settings(tmp_path: Path, repl_dir: Path | None = None, **lean: object) -> Settings:
    proj = tmp_path / "proj"
    proj.mkdir(exist_ok=True)
    (proj / "lean-toolchain").write_text("leanprover/lean4:v4.24.0\n")
    cfg = {
        "project_dir": str(proj),
        "lake_path": str(LAKE_STANDIN),
        "timeout_s": 3,
        "start_timeout_s": 10,
        "memory_mb": 2048,
        **lean,
    }
    if repl_dir is not None:
        cfg["repl_path"] = str(repl_dir)
    return Settings(home=tmp_path, lean=LeanConfig(**cfg))


def _oracle(tmp_path: Path, mode: str = "", **lean: object) -> ReplPool:
    env = {"FAKE_REPL_MODE": mode, "FAKE_REPL_FAULT_ON": "FAULT"}
    return ReplPool(_settings(tmp_path, make_repl_dir(tmp_path, env=env), **lean))


CAND = Candidate(kind="theorem", namespace="T", statement="theorem t (n : ℕ) : n + 0 = n", proof="simp")


def test_repl_oracle_checks_on_top_of_the_header(tmp_path):
    o = _oracle(tmp_path)
    try:
        o.start()
        st = check_statement(CAND, o)
        assert st.elaborates and st.elaborated_type == "@T.t : (n : ℕ) : n + 0 = n"
        v = admit(CAND.model_copy(update={"locked_type": st.elaborated_type}), o)
        assert v.admitted and v.axioms == ["propext"]
        bad = admit(CAND.model_copy(update={"locked_type": st.elaborated_type, "proof": "exact bogus"}), o)
        assert not bad.admitted and "unknown identifier 'bogus'" in bad.summary()
        assert o.toolchain == "v4.24.0"
    finally:
        o.close()


@pytest.mark.parametrize(
    ("mode", "expect"),
    [
        ("hang", "timed out"),
        ("die", "REPL"),
        ("garbage", "unparseable"),
        ("oom", "REPL"),
    ],
)
def test_misbehaving_repl_is_a_rejection_and_the_pool_recovers(tmp_path, mode, expect):
    import psutil

    o = _oracle(tmp_path, mode, memory_mb=400, timeout_s=5)
    try:
        o.start()
        pid = o.pids()[0]
        t0 = time.monotonic()
        chk = o.check("-- FAULT\ntheorem x : True := trivial")
        assert chk.failure is not None and expect in chk.failure, chk.failure
        assert time.monotonic() - t0 < 15
        # the faulty process (and its group) is gone ...
        time.sleep(0.2)
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        assert o.stats["failures"] == 1
        # ... and the pool is healthy: the next check is answered by a fresh process
        v = admit(CAND.model_copy(update={"locked_type": "@T.t : (n : ℕ) : n + 0 = n"}), o)
        assert v.admitted, v.reasons
        assert o.processes == 1
    finally:
        o.close()


def test_pool_runs_checks_in_parallel_and_reuses_processes(tmp_path):
    import threading

    o = ReplPool(_settings(tmp_path, make_repl_dir(tmp_path, env={"FAKE_REPL_LATENCY": "0.3"}), pool_size=3, prewarm=0))
    try:
        results = []

        def one(k: int) -> None:
            results.append(o.check(f"theorem t{k} : True := trivial"))

        t0 = time.monotonic()
        threads = [threading.Thread(target=one, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        assert all(r.failure is None for r in results)
        assert o.stats["started"] == 3 and o.processes == 3  # grew to its size, no more
        assert elapsed < 6 * 0.3  # not serial
    finally:
        o.close()


def test_pool_restarts_after_max_uses(tmp_path):
    o = _oracle(tmp_path, max_uses=2)
    try:
        for k in range(5):
            assert o.check(f"theorem t{k} : True := trivial").failure is None
        assert o.stats["retired"] == 2 and o.stats["started"] == 3
    finally:
        o.close()


def test_pool_keeps_a_process_for_the_memory_it_had_after_the_import(tmp_path):
    """An absolute limit below what a process held right after importing its header does not retire it after
    every check (tests/test_lean_setup.py retires one that grows past its baseline)."""
    o = _oracle(tmp_path, restart_memory_mb=1)  # any process is above 1 MB from the start
    try:
        assert o.check("theorem a : True := trivial").failure is None
        assert o.check("theorem b : True := trivial").failure is None
        assert o.stats["retired"] == 0 and o.stats["started"] == 1
    finally:
        o.close()


def test_pool_is_keyed_by_header(tmp_path):
    log = tmp_path / "log"
    o = ReplPool(_settings(tmp_path, make_repl_dir(tmp_path, env={"FAKE_REPL_LOG": str(log)}), pool_size=1))
    try:
        o.check("theorem a : True := trivial")
        o.check("theorem b : True := trivial")
        o.check("theorem c : True := trivial", header="import Lean")
        cmds = [json.loads(x)["cmd"] for x in log.read_text().splitlines()]
        assert cmds.count("import Mathlib") == 1  # imported once for two checks
        assert cmds.count("import Lean") == 1  # the full pool recycled its process for the other header
        assert o.processes == 1
    finally:
        o.close()


def test_pool_without_header_reuse_reports_positions_of_the_candidate(tmp_path):
    o = ReplPool(_settings(tmp_path, make_repl_dir(tmp_path)), reuse_header=False)
    try:
        chk = o.check("theorem a : True := by\n  exact bogus")
        assert chk.errors[0].line == 2
    finally:
        o.close()


def test_missing_lake_is_unavailable_with_instructions(tmp_path):
    o = ReplPool(_settings(tmp_path, None, lake_path=str(tmp_path / "nope" / "lake")))
    with pytest.raises(OracleUnavailable, match="elan"):
        o.start()
    chk = o.check("theorem x : True := trivial")
    assert chk.failure is not None and "elan" in chk.failure


def test_missing_repl_build_is_unavailable(tmp_path):
    o = ReplPool(_settings(tmp_path, tmp_path / "no-repl"))
    with pytest.raises(OracleUnavailable, match="lake build"):
        o.start()


def test_header_that_does_not_elaborate(tmp_path):
    s = _settings(tmp_path, make_repl_dir(tmp_path), header="import bogus_Mathlib")
    o = ReplPool(s)
    with pytest.raises(OracleUnavailable, match="cache get"):
        o.start()


@pytest.mark.skipif(not REPL_TESTS.exists(), reason="../shared/data/lean-output is absent")
def test_parse_real_recorded_replies():
    """Every reply Lean recorded in the REPL's own test-suite parses; positions, severities and sorries survive."""
    from lean_standin import read_expected

    n_msgs = n_sorries = 0
    for out in sorted(REPL_TESTS.glob("*.expected.out")):
        for reply in read_expected(out):
            chk = parse_repl_reply(reply)
            if "message" in reply and len(reply) == 1:
                assert chk.failure and reply["message"] in chk.failure
                continue
            assert chk.failure is None, (out.name, reply)
            assert len(chk.messages) == len(reply.get("messages", []))
            for m, raw in zip(chk.messages, reply.get("messages", []), strict=True):
                assert (m.severity, m.line, m.column, m.text) == (
                    raw["severity"],
                    raw["pos"]["line"],
                    raw["pos"]["column"],
                    raw["data"],
                )
            assert [s.goal for s in chk.sorries] == [s["goal"] for s in reply.get("sorries", [])]
            n_msgs += len(chk.messages)
            n_sorries += len(chk.sorries)
    assert n_msgs > 50 and n_sorries > 10


@pytest.mark.skipif(not REPL_TESTS.exists(), reason="../shared/data/lean-output is absent")
def test_repl_oracle_on_real_lean_replies(tmp_path):
    """ReplPool through lean-interact against the replay of Lean's own recorded replies: the header is a
    recorded command, so is the candidate; the verdict comes from Lean's real bytes."""
    from lean_standin import REPLAY_PROGRAM

    repl = make_repl_dir(tmp_path, program=REPLAY_PROGRAM)
    o = ReplPool(_settings(tmp_path, repl, header="import Lean"))
    try:
        o.start()  # recorded in pickle_proof_state_1: {"cmd": "import Lean"} -> {"env": 0}
        chk = o.check("def f : Nat := by sorry")  # recorded with env 0: Lean's sorry warning and goal
        assert chk.failure is None
        assert [(m.severity, m.line, m.column, m.text) for m in chk.messages] == [
            ("warning", 1, 4, "declaration uses `sorry`")
        ]
        assert [(s.line, s.column, s.goal) for s in chk.sorries] == [(1, 18, "⊢ Nat")]
        unknown = o.check("theorem never_recorded : True := trivial")
        assert unknown.failure and "no recorded reply" in unknown.failure  # the REPL's own error shape
    finally:
        o.close()


def _fake_lean(tmp_path: Path, body: str) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    lean = bindir / "lean"
    lean.write_text(f"#!{sys.executable}\nimport sys, json, time\n{body}\n")
    lean.chmod(lean.stat().st_mode | stat.S_IXUSR)
    return bindir


def test_lake_file_oracle_parses_lean_json(tmp_path, monkeypatch):
    bindir = _fake_lean(
        tmp_path,
        """
path = sys.argv[-1]
assert sys.argv[1] == "--json"
src = open(path).read().splitlines()
for i, line in enumerate(src, 1):
    if "bogus" in line:
        print(json.dumps({"fileName": path, "pos": {"line": i, "column": 2}, "endPos": {"line": i, "column": 7},
                          "severity": "error", "caption": "", "data": "unknown identifier 'bogus'"}))
        sys.exit(1)
""",
    )
    monkeypatch.setenv("PATH", f"{bindir}:{__import__('os').environ['PATH']}")
    o = make_oracle(_settings(tmp_path, None, backend="lake"))
    assert isinstance(o, LakeFileOracle)
    ok = o.check("theorem a : True := trivial")
    assert ok.failure is None and ok.messages == []
    bad = o.check("theorem a : True := by\n  exact bogus")
    assert bad.failure is None and bad.errors[0].line == 2 and "bogus" in bad.errors[0].text  # header lines removed
    assert not list((tmp_path / "proj").glob("autoform-*"))  # temporary files cleaned


def test_lake_file_oracle_crash_and_timeout(tmp_path, monkeypatch):
    import os

    bindir = _fake_lean(tmp_path, "import os\nif 'hang' in open(sys.argv[-1]).read(): time.sleep(60)\nos._exit(134)")
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    o = LakeFileOracle(_settings(tmp_path, None, backend="lake", timeout_s=1))
    crash = o.check("theorem a : True := trivial")
    assert crash.failure and "134" in crash.failure
    t0 = time.monotonic()
    hang = o.check("-- hang\ntheorem a : True := trivial")
    assert hang.failure and "timed out" in hang.failure and time.monotonic() - t0 < 10


def test_parse_lean_json_lines_garbage():
    chk = parse_lean_json_lines("not json\n")
    assert chk.failure and "unparseable" in chk.failure
    line = json.dumps({"pos": {"line": 3, "column": 0}, "severity": "warning", "data": "declaration uses 'sorry'"})
    assert parse_lean_json_lines(line, line_offset=1).messages[0].line == 2


# ------------------------------------------------------------------------------------- shared preludes
PRELUDE = "def d1 : ℕ := 1\n\ntheorem d2 (n : ℕ) : n + d1 = d1 + n := by\n  omega"


def _with_prelude(proof: str = "simp", prelude: str = PRELUDE) -> Candidate:
    return CAND.model_copy(update={"prelude": prelude, "proof": proof})


def _log_pool(tmp_path: Path, **lean: object) -> tuple[ReplPool, Path]:
    log = tmp_path / "log"
    return ReplPool(_settings(tmp_path, make_repl_dir(tmp_path, env={"FAKE_REPL_LOG": str(log)}), **lean)), log


def test_a_shared_prelude_is_elaborated_once_and_candidates_run_on_its_environment(tmp_path):
    o, log = _log_pool(tmp_path, pool_size=1)
    try:
        st = check_statement(_with_prelude(), o)
        assert st.elaborates and st.elaborated_type == "@T.t : (n : ℕ) : n + 0 = n"
        locked = {"locked_type": st.elaborated_type}
        assert admit(_with_prelude().model_copy(update=locked), o).admitted
        bad = admit(_with_prelude("exact bogus_x").model_copy(update=locked), o)
        assert not bad.admitted
        # Lean's error is reported at its line of the whole module, as without the reuse
        err = next(m for m in bad.messages if m.severity == "error")
        assert bad.module.splitlines()[err.line - 1].strip() == "exact bogus_x"
        reqs = [json.loads(x) for x in log.read_text().splitlines()]
        assert [r["cmd"] for r in reqs].count("import Mathlib") == 1
        preludes = [r for r in reqs if "def d1" in r["cmd"]]
        assert len(preludes) == 1 and preludes[0]["env"] == 0  # once, on the header's environment
        prelude_env = 1  # the REPL's next environment
        on_top = [r for r in reqs if "theorem t" in r["cmd"]]
        assert len(on_top) == 3 and all(r["env"] == prelude_env and "def d1" not in r["cmd"] for r in on_top)
        assert o.stats["context_builds"] == 1 and o.stats["context_hits"] == 2
    finally:
        o.close()


def test_the_verdict_with_the_reuse_is_the_verdict_without_it(tmp_path):
    """Same candidates through a pool that reuses the prelude and through the lake backend's way (the whole
    text at once): same admissions, same reasons, same messages at the same lines."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    o, _ = _log_pool(tmp_path / "a")
    plain, _ = _log_pool(tmp_path / "b")
    try:
        for proof in ("simp", "exact bogus_y", "omega\n  exact bogus_w"):
            cand = _with_prelude(proof).model_copy(update={"locked_type": "@T.t : (n : ℕ) : n + 0 = n"})
            reused = admit(cand, o)
            module = build_module(cand)
            whole = judge(cand, module, plain.check(module.text, queries=module.queries))  # the whole text
            assert reused.admitted == whole.admitted and reused.summary() == whole.summary()
            assert [(m.severity, m.line, m.text) for m in reused.messages] == [
                (m.severity, m.line, m.text) for m in whole.messages
            ]
        assert o.stats["context_hits"] == 2 and plain.stats["context_builds"] == 0
    finally:
        o.close()
        plain.close()


def test_a_prelude_that_does_not_elaborate_is_checked_whole_and_its_error_reported(tmp_path):
    o, log = _log_pool(tmp_path)
    try:
        v = admit(
            _with_prelude(prelude="def broken : ℕ := bogus_z").model_copy(
                update={"locked_type": "@T.t : (n : ℕ) : n + 0 = n"}
            ),
            o,
        )
        assert not v.admitted and "unknown identifier 'bogus_z'" in v.summary()
        err = next(m for m in v.messages if m.severity == "error")
        assert "bogus_z" in v.module.splitlines()[err.line - 1]
        assert o.stats["context_builds"] == 0  # never kept
        whole = [json.loads(x) for x in log.read_text().splitlines() if "theorem t" in json.loads(x)["cmd"]]
        assert len(whole) == 1 and "def broken" in whole[0]["cmd"]
    finally:
        o.close()


def test_a_repl_that_dies_on_the_prelude_is_a_rejection_and_the_next_check_gets_a_fresh_process(tmp_path):
    env = {"FAKE_REPL_MODE": "die", "FAKE_REPL_FAULT_ON": "def d1"}
    o = ReplPool(_settings(tmp_path, make_repl_dir(tmp_path, env=env)))
    try:
        v = admit(_with_prelude().model_copy(update={"locked_type": "@T.t : (n : ℕ) : n + 0 = n"}), o)
        assert not v.admitted and "REPL" in v.summary()
        ok = admit(CAND.model_copy(update={"locked_type": "@T.t : (n : ℕ) : n + 0 = n"}), o)
        assert ok.admitted
    finally:
        o.close()


def test_the_process_holding_a_prelude_is_preferred(tmp_path):
    o, log = _log_pool(tmp_path, pool_size=2, prewarm=2)
    try:
        o.start()
        other = "def e1 : ℕ := 2"
        # without the preference, the second `other` would go to the process holding only PRELUDE
        for prelude in (PRELUDE, other, other, PRELUDE):
            assert check_statement(_with_prelude(prelude=prelude), o).elaborates
        reqs = [json.loads(x)["cmd"] for x in log.read_text().splitlines()]
        assert sum("def d1" in c for c in reqs) == 1 and sum("def e1" in c for c in reqs) == 1
        assert o.stats["context_builds"] == 2 and o.stats["context_hits"] == 2
    finally:
        o.close()


def test_unknown_environment_is_the_repls_own_reply(tmp_path):
    o = _oracle(tmp_path)
    try:
        o.start()
        w = o._acquire(o.cfg.header)
        chk = w.run("theorem a : True := trivial", 5, env=99)
        assert chk.failure == "Lean REPL error: Unknown environment."
        o._release(w, failed=False)
    finally:
        o.close()


def test_a_prelude_with_a_warning_is_not_kept_and_its_warning_reaches_the_gate(tmp_path):
    o, _ = _log_pool(tmp_path)
    try:
        cand = _with_prelude(prelude="theorem w : True := by\n  sorry").model_copy(
            update={"locked_type": "@T.t : (n : ℕ) : n + 0 = n"}
        )
        v = admit(cand, o)
        assert not v.admitted and any("sorry" in m.text for m in v.messages)
        assert o.stats["context_builds"] == 0
    finally:
        o.close()
