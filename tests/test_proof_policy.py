"""The proof search's order of moves (autoform/pipeline/policy.py): the rounds the default policy chooses from
a unit's proof attempts, as the `[job]` settings and `max_attempts` configure it."""

from __future__ import annotations

from autoform.config import JobConfig
from autoform.pipeline import Move, ProofPolicy, Round
from autoform.pipeline.policy import BudgetPolicy, UnitSpend, errors_of, stalled_for
from autoform.store import Attempt


def attempt(author: str, code: str = "simp") -> Attempt:
    return Attempt(
        id=1, job_id=1, unit_id=1, n=1, author=author, stage="proof", lean_code=code, admitted=False, created_at=0
    )


def test_default_policy_from_the_job_settings() -> None:
    policy = ProofPolicy.from_settings(JobConfig(), max_attempts=3, backend="repl")
    assert policy.next_round([]) == Round((Move.LIBRARY_SEARCH, Move.WHOLE_PROOF))
    prover = attempt("prover")
    # exact? on the goals the prover's proof left open, then automation on them, then the gap-closer
    assert policy.next_round([prover]) == Round((Move.RENAME, Move.GOAL_SEARCH, Move.AUTOMATION, Move.REPAIR))
    assert policy.next_round([prover, attempt("automation")]) == Round((Move.RENAME, Move.GOAL_SEARCH, Move.REPAIR))
    four = ProofPolicy.from_settings(JobConfig(), max_attempts=4, backend="repl")
    assert four.next_round([prover, attempt("goal_search"), attempt("automation")]) == Round((Move.RENAME, Move.REPAIR))
    # a renaming is not renamed again; a failure without code gets no automation
    assert policy.next_round([attempt("prover", ""), attempt("mathlib_rename", "")]) == Round((Move.REPAIR,))
    spent = [prover, attempt("automation"), attempt("gap_closer")]
    assert policy.next_round(spent) == Round((Move.SKETCH,), spent=True)
    assert policy.next_round([*spent, attempt("sketch")]) == Round((Move.STATED, Move.GIVE_UP), spent=True)


def test_policy_switches() -> None:
    job = JobConfig(library_search=False, automation=False, decompose=False, race=4)
    policy = ProofPolicy.from_settings(job, max_attempts=2, backend="repl")
    assert policy.racers == 2  # never more racers than attempts
    assert policy.next_round([]) == Round((Move.WHOLE_PROOF,))
    assert policy.next_round([attempt("prover")]) == Round((Move.RENAME, Move.REPAIR))
    two = [attempt("prover"), attempt("gap_closer")]
    assert policy.next_round(two) == Round((Move.STATED, Move.GIVE_UP), spent=True)
    # the lake backend reports no goals: no sketch round
    lake = ProofPolicy.from_settings(JobConfig(), max_attempts=2, backend="lake")
    assert lake.next_round(two) == Round((Move.STATED, Move.GIVE_UP), spent=True)


# ------------------------------------------------------------------------------------ a budget per unit
def failed(author: str, errors: int, code: str = "simp") -> Attempt:
    msgs = [{"severity": "error", "line": 1, "column": 0, "text": "x"}] * errors
    return attempt(author, code).model_copy(update={"messages": msgs})


def budget_policy(spent: UnitSpend, **limits: float) -> BudgetPolicy:
    from autoform.config import ProveConfig

    prove = ProveConfig(strategy="budget", **limits)
    return BudgetPolicy.from_prove(JobConfig(), prove, backend="repl", spend=lambda unit_id: spent)


def test_budget_policy_repairs_while_there_is_progress_and_budget() -> None:
    policy = budget_policy(UnitSpend(llm_calls=5), llm_calls=16, stall_rounds=3)
    history = [failed("prover", 5), failed("gap_closer", 3), failed("gap_closer", 2), failed("gap_closer", 1)]
    assert len(history) > 3  # more than the three shots of the attempts policy
    assert policy.next_round(history) == Round((Move.RENAME, Move.GOAL_SEARCH, Move.AUTOMATION, Move.REPAIR))
    # three attempts in a row no better than the best before: the search stalls, then decomposition
    stalled = [*history, failed("gap_closer", 1), failed("gap_closer", 2), failed("gap_closer", 4)]
    assert stalled_for(stalled) == 3
    r = policy.next_round(stalled)
    assert r.moves == (Move.SKETCH,) and r.spent and "no progress in 3 attempts" in r.why
    r = policy.next_round([*stalled, attempt("sketch")])
    assert r.moves == (Move.STATED, Move.GIVE_UP) and r.spent


def test_budget_policy_stops_when_any_limit_is_spent() -> None:
    one = [failed("prover", 2)]
    cases = [
        (UnitSpend(llm_calls=4), {"llm_calls": 4}, "4 LLM calls (budget 4)"),
        (UnitSpend(tokens=9_000), {"tokens": 8_000}, "9000 tokens (budget 8000)"),
        (UnitSpend(lean_checks=7), {"lean_checks": 7}, "7 Lean checks (budget 7)"),
        (UnitSpend(seconds=61.0), {"wall_s": 60.0}, "61 s (budget 60 s)"),
    ]
    for spent, limits, what in cases:
        r = budget_policy(spent, **limits).next_round(one)
        assert r.spent and r.why == f"budget spent: {what}", (limits, r)
    assert budget_policy(UnitSpend(), llm_calls=1).next_round([]) == Round((Move.LIBRARY_SEARCH, Move.WHOLE_PROOF))
    # an attempt Lean never saw (a malformed reply) is no progress
    assert errors_of(attempt("prover", "")) > errors_of(failed("prover", 50))


def test_each_subgoal_has_a_budget_of_its_own() -> None:
    from autoform.config import ProveConfig
    from autoform.pipeline.policy import SubgoalBudget

    prove = ProveConfig(strategy="attempts", subgoal_llm_calls=2, subgoal_lean_checks=3)
    policy = ProofPolicy.from_settings(JobConfig(), max_attempts=3, backend="repl", prove=prove)
    assert policy.subgoal_budget(1) == SubgoalBudget(llm_calls=2, lean_checks=3)
    assert ProofPolicy.from_settings(JobConfig(), max_attempts=3, backend="repl").subgoal_budget(1) == SubgoalBudget(
        llm_calls=ProveConfig().subgoal_llm_calls, lean_checks=ProveConfig().subgoal_lean_checks
    )
    # under a budget, a unit's own limits (a person's `retry --budget`) give its subgoals' budgets too
    own = ProveConfig(strategy="budget", subgoal_llm_calls=1)
    budget = BudgetPolicy.from_prove(
        JobConfig(), prove, backend="repl", spend=lambda _u: UnitSpend(), limits=lambda u: own if u == 7 else prove
    )
    assert budget.subgoal_budget(7).llm_calls == 1 and budget.subgoal_budget(8).llm_calls == 2
