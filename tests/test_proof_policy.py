"""The proof search's order of moves (autoform/pipeline/policy.py): the rounds the default policy chooses from
a unit's proof attempts, as the `[job]` settings and `max_attempts` configure it."""

from __future__ import annotations

from autoform.config import JobConfig
from autoform.pipeline import Move, ProofPolicy, Round
from autoform.store import Attempt


def attempt(author: str, code: str = "simp") -> Attempt:
    return Attempt(
        id=1, job_id=1, unit_id=1, n=1, author=author, stage="proof", lean_code=code, admitted=False, created_at=0
    )


def test_default_policy_from_the_job_settings() -> None:
    policy = ProofPolicy.from_settings(JobConfig(), max_attempts=3, backend="repl")
    assert policy.next_round([]) == Round((Move.LIBRARY_SEARCH, Move.WHOLE_PROOF))
    prover = attempt("prover")
    assert policy.next_round([prover]) == Round((Move.RENAME, Move.AUTOMATION, Move.REPAIR))
    assert policy.next_round([prover, attempt("automation")]) == Round((Move.RENAME, Move.REPAIR))
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
