"""With a real Lean (skipped without `lake`; needs the workspace's Mathlib built by scripts/setup.sh): a sketch with
two holes whose goals the REPL reports, each written as a standalone lemma and closed by automation through the
gate, spliced back and admitted whole; and the goals where a failing tactic broke."""

from __future__ import annotations

import pytest
from conftest import ROOT, needs_lean

from autoform.config import Settings
from autoform.lean import goals
from autoform.lean.gate import Candidate, admit, build_module, check_statement
from autoform.lean.repl_pool import ReplPool
from autoform.pipeline.automation import AUTOMATION_TACTIC
from autoform.pipeline.decompose import call_for, fill_holes
from autoform.pipeline.gatekeeper import theorem_code

STATEMENT = "theorem two_steps (a b : ℕ) (h : a = b) : a + 0 = b ∧ b ≤ a + 1"
SKETCH = "have h1 : a + 0 = b := by sorry\nhave h2 : b ≤ a + 1 := by sorry\nexact ⟨h1, h2⟩"


@pytest.mark.lean
@needs_lean
def test_a_real_sketch_with_two_holes_closed_by_automation(tmp_path):
    pool = ReplPool(Settings(home=ROOT))
    try:
        base = Candidate(kind="theorem", namespace="T", statement=STATEMENT)
        base = base.model_copy(update={"locked_type": check_statement(base, pool).elaborated_type})
        check = pool.check(build_module(base.model_copy(update={"proof": SKETCH})).text)
        holes = goals.holes(check)
        assert not check.errors and [h.goal.splitlines()[-1] for h in holes] == ["⊢ a + 0 = b", "⊢ b ≤ a + 1"]
        lemmas, calls = [], []
        for h in holes:
            name = f"two_steps_step{h.index + 1}"
            lemma = base.model_copy(update={"statement": goals.standalone(h.goal, name), "locked_type": None})
            lemma = lemma.model_copy(update={"locked_type": check_statement(lemma, pool).elaborated_type})
            assert admit(lemma.model_copy(update={"proof": AUTOMATION_TACTIC}), pool).admitted, h.goal
            lemmas.append(theorem_code(lemma.statement, AUTOMATION_TACTIC))
            calls.append(call_for(name, h.goal))
        whole = base.model_copy(update={"proof": fill_holes(SKETCH, calls), "aux": "\n\n".join(lemmas)})
        assert admit(whole, pool).admitted
        # a failing tactic: the probe finds the state it ran on
        text = build_module(base.model_copy(update={"proof": "constructor\nexact nonexistent_lemma"})).text
        failed = pool.check(text)
        assert goals.failure_goals(pool, text, failed.messages)[0].endswith("⊢ a + 0 = b")
    finally:
        pool.close()
