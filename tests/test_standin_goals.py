"""The stand-in REPL's goals (tests/fake_lean_repl.py, tests/standin/repl_tactics.py) against Lean's own recorded
replies (../shared/data/lean-output/repl-tests): `unsolved goals` where real Lean reports it (severity, position at
the `by` or the bullet, the goals in Lean's printed form), and tactic mode in the REPL's reply shapes, also through
the real client stack (lean-interact -> ReplPool.session)."""

from __future__ import annotations

import json
from pathlib import Path

import fake_lean_repl
import pytest
from conftest import LAKE_STANDIN, SHARED, make_repl_dir

from autoform.config import LeanConfig, Settings
from autoform.lean import goals, library_search
from autoform.lean.oracle import LeanMessage, parse_repl_reply
from autoform.lean.repl_pool import ReplPool

REPL_TESTS = SHARED / "lean-output" / "repl-tests" / "test"
needs_recordings = pytest.mark.skipif(not REPL_TESTS.exists(), reason="../shared/data/lean-output is absent")


def _recorded(name: str) -> tuple[list[dict], list[dict]]:
    """(commands, replies) of a recorded REPL session."""

    def blocks(path: Path) -> list[dict]:
        return [json.loads(b) for b in path.read_text(encoding="utf-8").split("\n\n") if b.strip()]

    return blocks(REPL_TESTS / f"{name}.in"), blocks(REPL_TESTS / f"{name}.expected.out")


def _messages(reply: dict) -> list[tuple]:
    return [(m["severity"], m["pos"], m["endPos"], m["data"]) for m in reply.get("messages", [])]


@pytest.fixture(autouse=True)
def _fresh_standin(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_lean_repl.ENVS.clear()
    fake_lean_repl.STATES.clear()
    fake_lean_repl.answer.env = 0  # type: ignore[attr-defined]
    for var in ("FAKE_REPL_EXACT", "FAKE_REPL_LEAVES", "FAKE_REPL_RESISTS"):
        monkeypatch.delenv(var, raising=False)


@needs_recordings
@pytest.mark.parametrize(
    ("name", "k", "leaves"),
    [
        ("have_by_sorry", 0, {}),  # `have … := by sorry` and nothing after it: the main goal is left
        ("unfinished_tactic_block", 0, {}),  # `by` and no tactic
        ("incomplete", 0, {"apply Nat.succ": ["Nat"]}),  # a tactic that leaves a goal (Lean's `apply Nat.succ`)
    ],
)
def test_unsolved_goals_exactly_as_lean_reports_them(monkeypatch, name: str, k: int, leaves: dict) -> None:
    monkeypatch.setenv("FAKE_REPL_LEAVES", json.dumps(leaves))
    commands, replies = _recorded(name)
    got = fake_lean_repl.answer(commands[k]["cmd"])
    assert _messages(got) == _messages(replies[k])  # severity, position (the `by`), end, text: as Lean's
    want_holes = [(s["pos"], s["endPos"], s["goal"]) for s in replies[k].get("sorries", [])]
    assert [(s["pos"], s["endPos"], s["goal"]) for s in got.get("sorries", [])] == want_holes
    # and the client reads the goals from the error as from Lean's own reply
    err = parse_repl_reply(got).errors[0]
    assert goals.error_goals(err.text) == goals.error_goals(parse_repl_reply(replies[k]).errors[0].text)


def test_goals_left_by_cases_a_bullet_and_a_nested_block() -> None:
    # constructor splits a conjunction into Lean's `case left`/`case right` (repl-tests proof_branching's goals)
    text = "theorem t (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r := by\n  constructor\n  exact h1.left"
    (err,) = fake_lean_repl.answer(text)["messages"]
    by = text.splitlines()[0].index(":= by") + 3  # Lean's columns count codepoints, as Python's str does
    assert err["pos"] == {"line": 1, "column": by} and err["endPos"] == {"line": 3, "column": 15}
    assert err["data"] == "unsolved goals\ncase right\np q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ r"
    # a bullet that leaves its goal: the error is the bullet's (evalTacticCDot), the block goes on
    text = "theorem t (a b : Nat) : a = a ∧ b = b := by\n  constructor\n  · have h : a = b := by sorry\n  · rfl"
    reply = fake_lean_repl.answer(text)
    (err,) = [m for m in reply["messages"] if m["severity"] == "error"]
    end = len(text.splitlines()[2])
    assert err["pos"] == {"line": 3, "column": 2} and err["endPos"] == {"line": 3, "column": end}
    assert err["data"] == "unsolved goals\ncase left\na b : Nat\nh : a = b\n⊢ a = a"
    assert not any("declaration uses" in m["data"] for m in reply["messages"])  # an error: no sorry warning
    # a nested `have … := by` block that leaves its goal is reported at its own `by`
    text = "theorem t (n : Nat) : n = n := by\n  have h : n + 0 = n := by\n    skip\n  rfl"
    (err,) = fake_lean_repl.answer(text)["messages"]
    by = text.splitlines()[1].index("by")
    assert (err["pos"], err["endPos"]) == ({"line": 2, "column": by}, {"line": 3, "column": 8})
    assert err["data"] == "unsolved goals\nn : Nat\n⊢ n + 0 = n"
    # a failing tactic ends its block: its error, no `unsolved goals` after it (Lean's error recovery)
    text = "theorem t (n : Nat) : n = n ∧ n = n := by\n  constructor\n  exact bogus_x"
    assert [m["data"] for m in fake_lean_repl.answer(text)["messages"]] == ["unknown identifier 'bogus_x'"]


def test_closing_tactics_fail_on_a_goal_that_resists(monkeypatch) -> None:
    monkeypatch.setenv("FAKE_REPL_RESISTS", r"\^ 2")
    text = "theorem t (n : Nat) : n * n = n ^ 2 := by\n  first | (omega; done) | (simp; done)"
    (err,) = fake_lean_repl.answer(text)["messages"]
    assert err["severity"] == "error" and err["data"].startswith("simp failed")
    assert "messages" not in fake_lean_repl.answer(text.replace("n ^ 2", "n * n"))


@needs_recordings
def test_tactic_mode_in_the_recorded_shapes(monkeypatch) -> None:
    # repl-tests proof_step: `apply Int.natAbs` leaves `⊢ Int` (told to the stand-in), `have` adds a hypothesis
    monkeypatch.setenv("FAKE_REPL_LEAVES", json.dumps({"apply Int.natAbs": ["Int"]}))
    commands, replies = _recorded("proof_step")
    assert fake_lean_repl.answer(commands[0]["cmd"])["sorries"][0]["goal"] == replies[0]["sorries"][0]["goal"]
    for cmd, want in zip(commands[1:], replies[1:], strict=True):
        got = fake_lean_repl.run_tactic(cmd)
        assert {k: got[k] for k in ("proofStatus", "goals")} == {k: want[k] for k in ("proofStatus", "goals")}
    # repl-tests proof_branching, with `constructor` in place of `apply And.intro`: the same goals
    commands, replies = _recorded("proof_branching")
    ps = fake_lean_repl.answer(commands[0]["cmd"])["sorries"][0]["proofState"]
    assert fake_lean_repl.run_tactic({"proofState": ps, "tactic": "constructor"})["goals"] == replies[1]["goals"]
    # Mathlib/test/exact: `exact?` closes `⊢ 0 < 1` with Lean's suggestion; on `⊢ 3 = 7` the REPL's error reply
    monkeypatch.setenv("FAKE_REPL_EXACT", json.dumps({"0 < 1": "Nat.one_pos"}))
    commands, replies = _recorded("Mathlib/test/exact")
    ps = fake_lean_repl.answer(commands[1]["cmd"])["sorries"][0]["proofState"]
    got = fake_lean_repl.run_tactic({"tactic": "exact?", "proofState": ps})
    assert _messages(got) == _messages(replies[2]) and got["proofStatus"] == replies[2]["proofStatus"]
    ps = fake_lean_repl.answer(commands[3]["cmd"])["sorries"][0]["proofState"]
    assert fake_lean_repl.run_tactic({"tactic": "exact?", "proofState": ps}) == replies[4]


def test_tactic_mode_through_the_client_stack(tmp_path: Path) -> None:
    exact = json.dumps({"x + 0 = x": "Nat.add_zero x"})
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "lean-toolchain").write_text("leanprover/lean4:v4.28.0\n")
    repl = make_repl_dir(tmp_path, env={"FAKE_REPL_EXACT": exact, "FAKE_REPL_RESISTS": r"x \+ 0"})
    lean = LeanConfig(project_dir=str(proj), lake_path=str(LAKE_STANDIN), repl_path=str(repl), timeout_s=10)
    pool = ReplPool(Settings(home=tmp_path, lean=lean))
    try:
        assert goals.tactic_mode(pool) is pool
        with pool.session() as s:
            chk = s.check("theorem t (x : Nat) : x + 0 = x ∧ x = x := by\n  constructor\n  · sorry\n  · sorry")
            left, right = goals.holes(chk)
            assert left.goal == "case left\nx : Nat\n⊢ x + 0 = x"
            assert not s.tactic(left.proof_state, "first | (omega; done) | (simp; done)").solved
            found = s.tactic(left.proof_state, "exact?")
            assert found.solved and library_search.tactic_suggestion(found) == "exact Nat.add_zero x"
            assert s.tactic(right.proof_state, "rfl").solved
            missing = s.tactic(right.proof_state, "exact?")  # the REPL's own error reply: a failure, no suggestion
            assert missing.failure and "could not close the goal" in missing.failure
            assert library_search.tactic_suggestion(missing) is None
    finally:
        pool.close()


def test_the_goals_a_proof_left_get_one_bullet_each() -> None:
    text = "theorem t (a b : Nat) : a = a ∧ b = b := by\n  constructor\n  skip\nend"
    err = LeanMessage(
        severity="error",
        line=1,
        column=text.index(":= by") + 3,
        end_line=3,
        end_column=6,
        text="unsolved goals\ncase left\n⊢ a\n\ncase right\n⊢ b",
    )
    probe, first, count = goals.open_goals_probe(text, err, "exact?")
    assert (first, count) == (4, 2)
    assert probe == "theorem t (a b : Nat) : a = a ∧ b = b := by\n  constructor\n  skip\n  · exact?\n  · exact?\nend"
    assert goals.proof_of(probe, "theorem t (a b : Nat) : a = a ∧ b = b") == "constructor\nskip\n· exact?\n· exact?"
    # an error that is no `unsolved goals`, or a block on the line of its `by`: no probe
    assert goals.open_goals_probe(text, err.model_copy(update={"text": "unknown identifier 'x'"}), "exact?") is None
    inline = err.model_copy(update={"line": 1, "column": 17, "end_line": 1})
    assert goals.open_goals_probe("theorem t : p := by skip", inline, "exact?") is None
