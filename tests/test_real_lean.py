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
