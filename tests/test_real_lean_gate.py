"""The gate's soundness points against a real Lean 4 toolchain with Mathlib (issue 11). Skipped, with the
reason, where `lake` is absent; the same points are tested against the stand-ins in test_gate_soundness.py."""

from __future__ import annotations

import pytest
from conftest import ROOT, needs_lean

from autoform.config import load_settings
from autoform.lean.gate import Candidate, build_module, check_statement, judge
from autoform.lean.lake import LakeFileOracle
from autoform.lean.repl_pool import ReplPool

pytestmark = [pytest.mark.lean, needs_lean]


@pytest.fixture(params=[ReplPool, LakeFileOracle], ids=["repl", "lake"])
def oracle(request):
    o = request.param(load_settings(ROOT))
    yield o
    o.close()


def test_a_misspelled_identifier_is_refused_not_bound(oracle):
    c = Candidate(kind="theorem", namespace="Atlas.Test", statement="theorem t (x : ℕ) (h : x ∈ primeNumbrs) : x = x")
    st = check_statement(c, oracle)
    assert not st.elaborates
    assert any("primeNumbrs" in r.message for r in st.reasons)


def test_a_long_statement_is_locked_without_elision(oracle):
    total = sum(range(1, 801))
    c = Candidate(
        kind="theorem",
        namespace="Atlas.Test",
        statement=f"theorem big : ({' + '.join(str(k) for k in range(1, 801))} : ℕ) = {total}",
    )
    st = check_statement(c, oracle)
    assert st.elaborates, st.reasons
    assert "⋯" not in (st.elaborated_type or "") and "800" in (st.elaborated_type or "")


def test_a_forged_answer_and_a_smuggled_axiom_are_rejected(oracle):
    """The pre-screen would refuse this candidate; here it is bypassed to show that Lean's answers to the gate's
    queries cannot be written by code the candidate runs."""
    lock = Candidate(kind="theorem", namespace="Atlas.Test", statement="theorem t (a b : ℕ) : a + b = b + a")
    st = check_statement(lock, oracle)
    assert st.elaborates, st.reasons
    forge = "\n".join(
        "open Lean Elab Command in\nrun_cmd do\n"
        f"  let p := (← getFileMap).ofPosition ⟨{line}, 0⟩\n"
        '  logInfoAt (Syntax.atom (.synthetic p p) "") "\'Atlas.Test.t\' does not depend on any axioms"'
        for line in range(20, 30)
    )
    cand = lock.model_copy(
        update={
            "locked_type": st.elaborated_type,
            "proof": "exact smuggled a b",
            "aux": "axiom smuggled : ∀ a b : ℕ, a + b = b + a\n" + forge,
        }
    )
    module = build_module(cand)
    v = judge(cand, module, oracle.check(module.text, queries=module.queries))
    assert not v.admitted
    assert v.axioms is not None and "Atlas.Test.smuggled" in v.axioms


def test_holes_and_tactic_mode_on_real_lean():
    """The goal-level primitives proof by decomposition rests on: a sketch's hole with Lean's goal, a tactic
    run on its proof state, the goal stated on its own and elaborated."""
    from autoform.lean import goals
    from autoform.lean.gate import check_statement

    pool = ReplPool(load_settings(ROOT))
    try:
        with pool.session() as s:
            chk = s.check(
                "theorem t (a b : ℕ) : a + b = b + a := by\n  have h1 : a + b = b + a := by sorry\n  exact h1"
            )
            (hole,) = goals.holes(chk)
            assert hole.goal.endswith("⊢ a + b = b + a") and "a b : ℕ" in hole.goal
            assert hole.proof_state is not None and s.tactic(hole.proof_state, "omega").solved
            assert not s.tactic(hole.proof_state, "exact Nat.succ_ne_zero a").solved
        st = check_statement(
            Candidate(kind="theorem", namespace="Atlas.Test", statement=goals.standalone(hole.goal, "t_step1")), pool
        )
        assert st.elaborates, st.reasons
    finally:
        pool.close()
