"""The subgoal tree a unit's decomposition leaves (autoform/subgoals.py: subgoal_tree, for the site,
`status` and the transcript) and the policy's moves on subgoals (autoform/pipeline/policy.py)."""

from __future__ import annotations

from pathlib import Path

from test_decompose import mini_book

from autoform.blackboard import Blackboard
from autoform.config import JobConfig, ProveConfig
from autoform.ingest import ingest
from autoform.pipeline.decompose import Proved, goal_key, merged
from autoform.pipeline.policy import BudgetPolicy, Move, ProofPolicy, SubgoalMove, UnitSpend
from autoform.store import Attempt, Store
from autoform.subgoals import subgoal_tree


def _node(name: str, status: str, depth: int, parent: str = "", by: str = "") -> dict:
    return {"name": name, "goal": f"n : ℕ\n⊢ {name}", "depth": depth, "parent_name": parent, "status": status, "by": by}


def test_the_tree_of_a_unit_with_each_node_state(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    ingest(store, mini_book(tmp_path), "ent")
    book = store.books()[0]
    (unit,) = store.units(book.id)
    job = store.start_job(book.id, "{}", 1)
    board = Blackboard(store, book.id, job)
    assert subgoal_tree(store, unit.id) == []
    for data in [
        _node("t_step1", "open", 1),
        _node("t_step2", "open", 1),
        _node("t_step1", "failed", 1),  # the prover and the repair failed ... then the split (a later post)
        _node("t_step2", "proved", 1, by="prover"),
        _node("t_step1_1", "open", 2, "t_step1"),
        _node("t_step1_1", "proved", 2, "t_step1", by="automation"),
        _node("t_step1_2", "open", 2, "t_step1"),
        _node("t_step1_2", "failed", 2, "t_step1"),
        _node("t_step2", "proved", 1, by="reused"),  # reused on a resume: still proved by the prover
    ]:
        board.post("decomposer", "subgoal", data["name"], unit_id=unit.id, data=data)
    board.post("decomposer", "subgoal", "no decomposition", unit_id=unit.id, data={"status": "unavailable"})
    tree = subgoal_tree(store, unit.id)
    assert [(n.name, n.depth, n.status, n.by) for n in tree] == [
        ("t_step1", 1, "failed", ""),
        ("t_step2", 1, "proved", "prover"),
    ]
    assert [(c.name, c.status, c.by) for c in tree[0].children] == [
        ("t_step1_1", "proved", "automation"),
        ("t_step1_2", "failed", ""),
    ]
    assert tree[0].children[0].goal == "n : ℕ\n⊢ t_step1_1" and tree[1].children == []
    assert subgoal_tree(store, unit.id, job_id=job + 1) == []  # another job's tree is its own
    assert tree[0].model_dump()["children"][1]["name"] == "t_step1_2"  # typed, and JSON-ready


def test_goals_are_keyed_without_whitespace_and_lemmas_merge_once() -> None:
    assert goal_key("x : ℕ\n⊢  x = x ") == goal_key("x : ℕ ⊢ x = x")
    a = Proved("a", (("a_1", "theorem a_1 : p := by\n  simp"), ("a", "theorem a : q := by\n  exact a_1")))
    b = Proved("b", (("a_1", "theorem a_1 : p := by\n  simp"), ("b", "theorem b : r := by\n  simp")))
    text = merged([a, b], "theorem helper : s := by\n  simp")
    assert text.count("theorem a_1") == 1 and text.index("helper") < text.index("a_1") < text.index("theorem b")
    assert merged([Proved("c")]) == ""  # a lemma already in the prelude: nothing to include


def _attempt(author: str) -> Attempt:
    msgs = [{"severity": "error", "line": 1, "column": 0, "text": "x"}]
    return Attempt(
        id=1, job_id=1, unit_id=1, n=1, stage="proof", author=author, lean_code="simp", admitted=False,
        reasons=[], messages=msgs, created_at=0.0,
    )  # fmt: skip


def test_the_moves_on_a_subgoal_follow_the_settings() -> None:
    policy = ProofPolicy.from_settings(JobConfig(), max_attempts=3, backend="repl", prove=ProveConfig(max_depth=3))
    every = (SubgoalMove.AUTOMATION, SubgoalMove.PROVER, SubgoalMove.REPAIR, SubgoalMove.SPLIT)
    assert policy.subgoal_moves(1) == every and policy.subgoal_moves(2) == every
    assert policy.subgoal_moves(3) == every[:3]  # the deepest level is not split again
    off = ProofPolicy.from_settings(JobConfig(automation=False), max_attempts=3, backend="repl")
    assert off.max_depth == 2 and off.subgoal_moves(1) == every[1:] and off.subgoal_moves(2) == every[1:3]
    assert policy.spent(1) == ""  # the attempts policy bounds a sketch by its depth


def test_a_spent_budget_ends_the_unit_without_a_sketch_and_stops_subgoals() -> None:
    def policy(spent: UnitSpend) -> BudgetPolicy:
        prove = ProveConfig(strategy="budget", llm_calls=6, stall_rounds=2)
        return BudgetPolicy.from_prove(JobConfig(), prove, backend="repl", spend=lambda _unit: spent)

    stalled = [_attempt("prover"), _attempt("gap_closer"), _attempt("gap_closer")]
    r = policy(UnitSpend(llm_calls=3)).next_round(stalled)
    assert r.moves == (Move.SKETCH,) and "no progress" in r.why  # budget left: the sketch is played
    r = policy(UnitSpend(llm_calls=6)).next_round(stalled)
    assert r.moves == (Move.STATED, Move.GIVE_UP) and r.why == "budget spent: 6 LLM calls (budget 6)"
    assert policy(UnitSpend(llm_calls=6)).spent(1) == "budget spent: 6 LLM calls (budget 6)"
    assert policy(UnitSpend(llm_calls=5)).spent(1) == ""
