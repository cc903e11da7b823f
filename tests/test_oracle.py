"""The oracle's production backends, driven through their real client code against stand-ins:
ReplOracle (lean-interact -> stand-in lake -> REPL double or replay of real recorded Lean replies) and
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
from autoform.lean.gate import Candidate, admit, check_statement
from autoform.lean.oracle import (
    LakeFileOracle,
    OracleUnavailable,
    ReplOracle,
    make_oracle,
    parse_lean_json_lines,
    parse_repl_reply,
)

REPL_TESTS = SHARED / "lean-output" / "repl-tests" / "test"


def _settings(tmp_path: Path, repl_dir: Path | None = None, **lean: object) -> Settings:
    proj = tmp_path / "proj"
    proj.mkdir(exist_ok=True)
    (proj / "lean-toolchain").write_text("leanprover/lean4:v4.24.0\n")
    cfg = {"project_dir": str(proj), "lake_path": str(LAKE_STANDIN), "timeout_s": 3, "start_timeout_s": 10,
           "memory_mb": 2048, **lean}
    if repl_dir is not None:
        cfg["repl_path"] = str(repl_dir)
    return Settings(home=tmp_path, lean=LeanConfig(**cfg))


def _oracle(tmp_path: Path, mode: str = "") -> ReplOracle:
    return ReplOracle(_settings(tmp_path, make_repl_dir(tmp_path, env={"FAKE_REPL_MODE": mode})))


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


@pytest.mark.parametrize(("mode", "expect"), [
    ("hang", "timed out"),
    ("die", "REPL"),
    ("garbage", "unparseable"),
])
def test_misbehaving_repl_is_a_rejection_and_the_oracle_recovers(tmp_path, mode, expect):
    o = _oracle(tmp_path, mode)
    try:
        o.start()
        t0 = time.monotonic()
        chk = o.check("theorem x : True := trivial")
        assert chk.failure is not None and expect in chk.failure
        assert time.monotonic() - t0 < 10
        v = admit(CAND.model_copy(update={"locked_type": "x"}), o)
        assert not v.admitted and v.reasons[0].code == "lean_failure"
        # after the failure the process was killed; the next check starts a fresh one
        assert o._server is None or o._server.is_alive()
    finally:
        o.close()


def test_repl_killed_process_group_after_timeout(tmp_path):
    import psutil

    o = _oracle(tmp_path, "hang")
    o.start()
    pid = o._server._proc.pid
    o.check("theorem x : True := trivial")
    time.sleep(0.2)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    o.close()


def test_repl_out_of_memory_is_a_rejection(tmp_path):
    o = ReplOracle(_settings(tmp_path, make_repl_dir(tmp_path, env={"FAKE_REPL_MODE": "oom"}), memory_mb=400,
                             timeout_s=20))
    try:
        chk = o.check("theorem x : True := trivial")
        assert chk.failure is not None
    finally:
        o.close()


def test_missing_lake_is_unavailable_with_instructions(tmp_path):
    o = ReplOracle(_settings(tmp_path, None, lake_path=str(tmp_path / "nope" / "lake")))
    with pytest.raises(OracleUnavailable, match="elan"):
        o.start()
    chk = o.check("theorem x : True := trivial")
    assert chk.failure is not None and "elan" in chk.failure


def test_missing_repl_build_is_unavailable(tmp_path):
    o = ReplOracle(_settings(tmp_path, tmp_path / "no-repl"))
    with pytest.raises(OracleUnavailable, match="lake build"):
        o.start()


def test_header_that_does_not_elaborate(tmp_path):
    s = _settings(tmp_path, make_repl_dir(tmp_path), header="import bogus_Mathlib")
    o = ReplOracle(s)
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
                    raw["severity"], raw["pos"]["line"], raw["pos"]["column"], raw["data"])
            assert [s.goal for s in chk.sorries] == [s["goal"] for s in reply.get("sorries", [])]
            n_msgs += len(chk.messages)
            n_sorries += len(chk.sorries)
    assert n_msgs > 50 and n_sorries > 10


@pytest.mark.skipif(not REPL_TESTS.exists(), reason="../shared/data/lean-output is absent")
def test_repl_oracle_on_real_lean_replies(tmp_path):
    """ReplOracle through lean-interact against the replay of Lean's own recorded replies: the header is a
    recorded command, so is the candidate; the verdict comes from Lean's real bytes."""
    from lean_standin import REPLAY_PROGRAM

    repl = make_repl_dir(tmp_path, program=REPLAY_PROGRAM)
    o = ReplOracle(_settings(tmp_path, repl, header="import Lean"))
    try:
        o.start()  # recorded in pickle_proof_state_1: {"cmd": "import Lean"} -> {"env": 0}
        chk = o.check("def f : Nat := by sorry")  # recorded with env 0: Lean's sorry warning and goal
        assert chk.failure is None
        assert [(m.severity, m.line, m.column, m.text) for m in chk.messages] == [
            ("warning", 1, 4, "declaration uses `sorry`")]
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
    bindir = _fake_lean(tmp_path, """
path = sys.argv[-1]
assert sys.argv[1] == "--json"
src = open(path).read().splitlines()
for i, line in enumerate(src, 1):
    if "bogus" in line:
        print(json.dumps({"fileName": path, "pos": {"line": i, "column": 2}, "endPos": {"line": i, "column": 7},
                          "severity": "error", "caption": "", "data": "unknown identifier 'bogus'"}))
        sys.exit(1)
""")
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
