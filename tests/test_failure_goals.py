"""The goals at a failing step (issue 16, point 1's third primitive; autoform/lean/goals.py): read from Lean's
recorded replies (../shared/data/lean-output/repl-tests), probed through the real client stack on the stand-in
REPL, shown to the gap-closer end to end; what the Kimina and lake backends say of goals."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import LAKE_STANDIN, SHARED, autoform, book_script, label_of, lean, make_repl_dir, role_of
from test_decompose import ATTEMPTS, mini_book
from test_kimina import _Kimina, _settings

from autoform.config import LeanConfig, Settings
from autoform.lean import goals, make_oracle
from autoform.lean.kimina import KiminaOracle
from autoform.lean.oracle import OracleUnavailable, parse_repl_reply
from autoform.lean.repl_pool import ReplPool

REPL_TESTS = SHARED / "lean-output" / "repl-tests" / "test"
needs_recordings = pytest.mark.skipif(not REPL_TESTS.exists(), reason="../shared/data/lean-output is absent")


def _replies(name: str) -> list[dict]:
    text = (REPL_TESTS / f"{name}.expected.out").read_text(encoding="utf-8")
    return [json.loads(b) for b in text.split("\n\n") if b.strip()]


@needs_recordings
def test_unsolved_goals_as_lean_wrote_them():
    # `have h : x = 1 := by sorry` and nothing after it: the main goal is left, with h among its hypotheses
    first = parse_repl_reply(_replies("have_by_sorry")[0])
    assert goals.error_goals(first.errors[0].text) == ["x : Int\nh : x = 1\n⊢ x = x"]
    # `induction'` leaves two cases, separated by a blank line in one message
    _, induction = _replies("Mathlib/test/H20231115_3")
    err = parse_repl_reply(induction).errors[0]
    assert goals.error_goals(err.text) == [
        "case zero\n⊢ 0 + 1 > 0",
        "case succ\nx : Nat\nhx : x + 1 > x\n⊢ x + 1 + 1 > x + 1",
    ]
    # `by_cases` with one branch closed: an error per open case; the first error's goals are the failure's
    _, cases = _replies("incomplete")
    chk = parse_repl_reply(cases)
    assert goals.error_goals(chk.errors[0].text) == ["case pos\nx : Bool\nh✝ : x = true\n⊢ Nat"]
    assert goals.error_goals(chk.errors[1].text) == ["case neg\nx : Bool\nh✝ : ¬x = true\n⊢ Nat"]
    # a placeholder Lean could not synthesize carries its context
    (placeholder,) = _replies("synthesize_placeholder")[:1]
    text = parse_repl_reply(placeholder).errors[0].text
    assert goals.error_goals(text) == ["⊢ Nat"]
    # tactic mode reports a failing `{ simp ... }` block with the same message shape, at line 0
    reply = _replies("name_generator")[-1]
    t = goals.parse_tactic_reply(reply)
    assert goals.error_goals(t.messages[0].text) == ["x : Int\nh0 : x > 0\n⊢ x > 0"]
    # an error that carries no goal: nothing parsed (the probe finds the state instead)
    _, unknown = _replies("invalid_tactic")
    assert goals.error_goals(goals.parse_tactic_reply(unknown).messages[0].text) == []


def test_the_probe_puts_a_hole_where_the_tactic_failed():
    text = "theorem t (n : ℕ) : n = n := by\n  induction n with\n  | zero => rfl\n  | succ k ih =>\n"
    text += "    simp\n    exact b"
    assert goals.probe_at(text, 6).splitlines()[-1] == "    sorry"
    # a tactic continued on deeper-indented lines goes with it; a bullet stays
    text = "theorem t : p := by\n  · nlinarith [a,\n      b]\n  · simp"
    assert goals.probe_at(text, 2) == "theorem t : p := by\n  · sorry\n  · simp"
    assert goals.probe_at(text, 1) is None  # the declaration's own line is no tactic


def _pool(tmp_path: Path) -> ReplPool:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "lean-toolchain").write_text("leanprover/lean4:v4.28.0\n")
    lean_cfg = LeanConfig(
        project_dir=str(proj), lake_path=str(LAKE_STANDIN), repl_path=str(make_repl_dir(tmp_path)), timeout_s=10
    )
    return ReplPool(Settings(home=tmp_path, lean=lean_cfg))


def test_the_state_where_a_tactic_failed_through_the_client_stack(tmp_path: Path):
    pool = _pool(tmp_path)
    try:
        text = "theorem t (x : Int) (h : x = 1) : x + 0 = 1 := by\n  have k : x = 1 := h\n  exact bogus_lemma k\n"
        chk = pool.check(text)
        assert chk.errors and chk.errors[0].line == 3  # "unknown identifier" carries no goal
        state = goals.failure_goals(pool, text, chk.messages)
        assert state == ["x : Int\nh k : x = 1\n⊢ x + 0 = 1"]  # hypotheses of one type grouped, as Lean prints them
        # a proof that fails at its first tactic broke on the statement itself: shown anyway, no check spent
        stmt = "theorem t (x : Int) (h : x = 1) : x + 0 = 1"
        one = f"{stmt} := by\n  exact bogus_lemma h\n"
        failed = pool.check(one)
        before = pool.stats["checks"]
        assert goals.failure_goals(pool, one, failed.messages, statement=stmt) == []
        assert pool.stats["checks"] == before
        assert goals.failure_goals(pool, text, chk.messages, statement=stmt)[0].endswith("⊢ x + 0 = 1")
    finally:
        pool.close()


def test_kimina_reports_holes_but_has_no_tactic_mode(tmp_path: Path):
    # Kimina wraps the REPL's own reply: the recorded `have_by_sorry` reply, served as Kimina serves it
    reply = _replies("have_by_sorry")[1] if REPL_TESTS.exists() else {}
    body = "theorem foo (x : Int) : x = x := by sorry"
    srv = _Kimina({body: {"error": None, "response": reply}})
    try:
        o = make_oracle(_settings(tmp_path, srv.url))
        if reply:
            assert [(h.goal, h.line) for h in goals.holes(o.check(body))] == [("x : Int\n⊢ x = x", 1)]
        assert isinstance(o, KiminaOracle)
        with pytest.raises(OracleUnavailable, match="has no tactic mode"):
            o.session()
    finally:
        srv.close()
    assert "no goals" in goals.goal_support("lake") and not goals.reports_goals("lake")
    assert goals.reports_goals("kimina") and "no tactic mode" in goals.goal_support("kimina")


@pytest.mark.slow
def test_the_gap_closer_sees_the_goals_where_the_proof_broke(workspace, tmp_path):
    base = book_script()
    prompts: list[str] = []

    def script(body: dict) -> str:
        if label_of(body) == "thm:sum-odd" and role_of(body) in ("prover", "gap_closer"):
            if role_of(body) == "gap_closer":
                prompts.append(body["messages"][-1]["content"])
            return lean("  have h : n * n = n ^ 2 := by ring\n  exact bogus_sum_odd n h")
        return base(body)

    ws = workspace(script, extra="decompose = false\n" + ATTEMPTS)
    autoform(ws.home, "ingest", str(mini_book(tmp_path)), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr
    assert len(prompts) == 1
    shown = prompts[0].split("The proof state where it broke")[1]
    assert "n : ℕ\nh : n * n = n ^ 2\n⊢ Finset.sum (Finset.range n) (fun i => 2 * i + 1) = n ^ 2" in shown
    conn = sqlite3.connect(ws.home / "autoform.sqlite")
    (status,) = conn.execute("SELECT status FROM units WHERE label = 'thm:sum-odd'").fetchone()
    assert status == "failed"
