"""Proof by decomposition (autoform/pipeline/decompose.py) and the goal-level Lean primitives it rests on
(autoform/lean/goals.py, ReplPool.session): on the REPL's recorded replies, on the stand-in REPL through the
real client stack, and end to end with a scripted model whose whole proofs of a theorem always fail."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import LAKE_STANDIN, SAMPLE_BOOK, SHARED, autoform, book_script, label_of, lean, make_repl_dir, role_of

from autoform.config import LeanConfig, Settings
from autoform.lean import goals
from autoform.lean.oracle import parse_repl_reply
from autoform.lean.repl_pool import ReplPool
from autoform.pipeline.decompose import call_for, fill_holes

REPL_TESTS = SHARED / "lean-output" / "repl-tests" / "test"


def _replies(name: str) -> list[dict]:
    text = (REPL_TESTS / f"{name}.expected.out").read_text(encoding="utf-8")
    return [json.loads(b) for b in text.split("\n\n") if b.strip()]


@pytest.mark.skipif(not REPL_TESTS.exists(), reason="../shared/data/lean-output is absent")
def test_goals_and_tactic_replies_parse_as_lean_wrote_them():
    first, whole, step = _replies("have_by_sorry")
    hs = goals.holes(parse_repl_reply(first))
    assert [(h.goal, h.proof_state, h.line) for h in hs] == [("x : Int\n⊢ x = 1", 0, 2)]
    t = goals.parse_tactic_reply(step)
    assert t.proof_state == 3 and t.goals == ["x : Int\nh : x = 1\n⊢ x = 1"] and not t.solved
    *_, done = _replies("proof_step")
    assert goals.parse_tactic_reply(done).solved
    _, bad = _replies("invalid_tactic")
    t = goals.parse_tactic_reply(bad)  # an error closes the goal by error recovery: not solved
    assert t.goals == [] and not t.solved and "my_fake_premise" in t.messages[0].text


def test_a_goal_as_a_standalone_statement():
    goal = "G : Type u_1\ninst✝ : Group G\na b : G\nh✝ : a * b = b * a\nhab :\n  a = b\n⊢ a * b = b * a"
    assert goals.standalone(goal, "step1") == (
        "theorem step1 (G : Type u_1) [Group G] (a b : G) (h_1 : a * b = b * a) (hab : a = b) : a * b = b * a"
    )
    assert call_for("step1", goal) == "exact step1 G a b ‹a * b = b * a› hab"
    assert fill_holes("have h : p := by sorry\nhave k : q := sorry\nexact foo", ["exact A", "B"]) == (
        "have h : p := by exact A\nhave k : q := B\nexact foo"
    )


def test_a_session_reports_holes_and_runs_tactics_on_them(tmp_path: Path):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "lean-toolchain").write_text("leanprover/lean4:v4.28.0\n")
    s = Settings(
        home=tmp_path,
        lean=LeanConfig(
            project_dir=str(proj), lake_path=str(LAKE_STANDIN), repl_path=str(make_repl_dir(tmp_path)), timeout_s=10
        ),
    )
    pool = ReplPool(s)
    try:
        with pool.session() as sess:
            chk = sess.check("theorem foo (x : Int) : x = x := by\n  have h : x = 1 := by sorry\n  sorry")
            hs = goals.holes(chk)
            assert [h.goal for h in hs] == ["x : Int\n⊢ x = 1", "x : Int\nh : x = 1\n⊢ x = x"]
            assert hs[0].proof_state is not None
            step = sess.tactic(hs[1].proof_state, "have k : x = 2 := by sorry")
            assert step.goals == ["x : Int\nh : x = 1\nk : x = 2\n⊢ x = x"] and not step.solved
            assert sess.tactic(hs[0].proof_state, "omega").solved
            assert not sess.tactic(hs[0].proof_state, "exact bogus_lemma").solved
    finally:
        pool.close()


SKETCH = (
    "  have h1 : Finset.sum (Finset.range n) (fun i => 2 * i + 1) = n * n := by sorry\n"
    "  have h2 : n * n = n ^ 2 := by sorry\n"
    "  rw [h1, h2]"
)


@pytest.mark.slow
def test_whole_proofs_fail_and_a_sketch_closes_the_unit_step_by_step(workspace):
    base = book_script()
    sketches: list[str] = []

    def script(body):
        role, label = role_of(body), label_of(body)
        if label == "thm:sum-odd" and role in ("prover", "gap_closer"):
            last = body["messages"][-1]["content"]
            if "proof sketch" in last:
                sketches.append(last)
                return lean(SKETCH)
            return lean("  exact bogus_sum_odd n")  # every whole proof fails
        return base(body)

    ws = workspace(script, extra="max_attempts = 2\n")
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr
    conn = sqlite3.connect(ws.home / "autoform.sqlite")
    entry = conn.execute(
        "SELECT a.lean_code FROM atlas_entries a JOIN units u ON u.id = a.unit_id WHERE u.label = 'thm:sum-odd'"
    ).fetchone()
    assert entry is not None, "the unit was not closed by decomposition"
    code = entry[0]
    # each hole became a helper lemma proved on its own, the sketch calls them, nothing is left as sorry
    assert "theorem sum_odd_eq_sq_step1 (n : ℕ) : Finset.sum" in code and "theorem sum_odd_eq_sq_step2" in code
    assert "exact sum_odd_eq_sq_step1 n" in code and "sorry" not in code
    authors = [
        a
        for (a,) in conn.execute(
            "SELECT t.author FROM attempts t JOIN units u ON u.id = t.unit_id "
            "WHERE u.label = 'thm:sum-odd' AND t.stage = 'proof' ORDER BY t.id"
        )
    ]
    assert authors[-1] == "decomposition" and "prover" in authors
    subgoals = [json.loads(d) for (d,) in conn.execute("SELECT data FROM posts WHERE kind = 'subgoal' ORDER BY id")]
    assert [(g["name"], g["status"], g["depth"]) for g in subgoals] == [
        ("sum_odd_eq_sq_step1", "proved", 1),
        ("sum_odd_eq_sq_step2", "proved", 1),
    ]
    assert subgoals[0]["goal"].endswith("⊢ Finset.sum (Finset.range n) (fun i => 2 * i + 1) = n * n")
    assert len(sketches) == 1
