"""Tests against a real Lean 4 toolchain with Mathlib (scripts/setup.sh installs it where the network
allows). Skipped, with the reason, when `lake` is not on PATH."""

from __future__ import annotations

import subprocess

import pytest
from conftest import ROOT, TESTS, needs_lean

from autoform.config import load_settings
from autoform.lean.gate import Candidate, admit, check_statement
from autoform.lean.oracle import LakeFileOracle
from autoform.lean.repl_pool import ReplPool

pytestmark = [pytest.mark.lean, needs_lean]


def test_sample_formalization_compiles_with_lake():
    """The fixture the end-to-end test scripts the LLM with is real Lean that Mathlib accepts."""
    r = subprocess.run(["lake", "env", "lean", str(TESTS / "fixtures" / "sample_formalization.lean")],
                       cwd=ROOT / "lean_project", capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sorry" not in r.stdout


@pytest.mark.parametrize("oracle_cls", [ReplPool, LakeFileOracle])
def test_gate_on_real_lean(oracle_cls):
    oracle = oracle_cls(load_settings(ROOT))
    try:
        c = Candidate(kind="theorem", namespace="Atlas.Test", statement="theorem t (n : ℕ) : n + 0 = n")
        st = check_statement(c, oracle)
        assert st.elaborates, st.reasons
        ok = admit(c.model_copy(update={"proof": "simp", "locked_type": st.elaborated_type}), oracle)
        assert ok.admitted, ok.reasons
        assert set(ok.axioms or []) <= {"propext", "Classical.choice", "Quot.sound"}
        bad = admit(c.model_copy(update={"proof": "exact Nat.succ_ne_zero n", "locked_type": st.elaborated_type}),
                    oracle)
        assert not bad.admitted and bad.reasons[0].code == "compile_error"
    finally:
        oracle.close()


def test_prelude_reuse_gives_the_verdicts_of_whole_texts_on_real_lean():
    """The REPL pool elaborates a candidate's prelude once and checks on top of its environment: Lean must
    see the prelude's declarations in the namespace, and the verdicts must match the lake backend's (which
    always checks the whole text)."""
    settings = load_settings(ROOT)
    prelude = ("def double (n : ℕ) : ℕ := 2 * n\n\n"
               "theorem double_eq (n : ℕ) : double n = n + n := by\n  unfold double; omega")
    base = Candidate(kind="theorem", namespace="Atlas.Test", prelude=prelude,
                     statement="theorem double_add (a b : ℕ) : double (a + b) = double a + double b")
    pool, lake = ReplPool(settings), LakeFileOracle(settings)
    try:
        st = check_statement(base, pool)
        assert st.elaborates, st.reasons
        for proof in ("simp only [double_eq]; omega", "exact rfl_bogus"):
            cand = base.model_copy(update={"proof": proof, "locked_type": st.elaborated_type})
            a, b = admit(cand, pool), admit(cand, lake)
            assert a.admitted == b.admitted and [r.code for r in a.reasons] == [r.code for r in b.reasons]
        assert pool.stats["context_hits"] >= 2
    finally:
        pool.close()
        lake.close()
