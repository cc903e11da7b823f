"""With a real Lean (skipped without `lake`; needs the workspace's Mathlib built by scripts/setup.sh): a sketch with
two holes closed by automation through the real pipeline (`autoform run`: scripted model, REPL pool, gate), with
the holes explored in the REPL's tactic mode and without it (each hole a lemma of its own); the same steps piece
by piece; Lean's own `unsolved goals`, and the goals where a failing tactic broke."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import ROOT, autoform, book_script, label_of, lean, needs_lean, role_of

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


BOOK = r"""\documentclass{book}
\newtheorem{theorem}{Theorem}[chapter]
\begin{document}
\chapter{Steps}
\begin{theorem}\label{thm:two-steps}
For natural numbers $a = b$ we have $a + 0 = b$ and $b \le a + 1$.
\end{theorem}
\begin{proof}
The first holds since adding zero changes nothing, the second since $b = a \le a + 1$.
\end{proof}
\end{document}
"""


def _script(body: dict) -> str:
    """Whole proofs of the theorem fail (an unknown lemma); asked for a sketch, the model writes SKETCH."""
    if label_of(body) != "thm:two-steps":
        return book_script()(body)
    role = role_of(body)
    if role == "drafter":
        return lean(STATEMENT)
    if role in ("prover", "gap_closer"):
        sketch = "proof sketch" in body["messages"][-1]["content"]
        return lean("\n".join("  " + ln for ln in SKETCH.splitlines())) if sketch else lean("  exact no_such_lemma a b")
    return book_script()(body)


@pytest.mark.lean
@needs_lean
@pytest.mark.parametrize("tactic_mode", [True, False])
def test_the_real_pipeline_closes_a_sketch_with_two_holes_by_automation(tmp_path, fake_llm_factory, tactic_mode):
    srv = fake_llm_factory(_script)
    home = tmp_path / "ws"
    home.mkdir()
    autoform(home, "init", check=True)  # a workspace sharing the repository's Mathlib
    (home / "autoform.toml").write_text(
        f"""[llm]
base_url = "{srv.base_url}"
model = "test-model"
api_key = "test-key"

[job]
max_attempts = 1
automation = true
library_search = false
critique = false

[prove]
strategy = "attempts"
tactic_mode = {"true" if tactic_mode else "false"}
"""
    )
    book = tmp_path / "steps.tex"
    book.write_text(BOOK)
    autoform(home, "ingest", str(book), "--book", "steps", check=True)
    r = autoform(home, "run", "steps", "--json", timeout=3 * 3600)
    assert r.returncode == 0, r.stdout + r.stderr
    conn = sqlite3.connect(home / "autoform.sqlite")
    row = conn.execute(
        "SELECT a.lean_code FROM atlas_entries a JOIN units u ON u.id = a.unit_id WHERE u.label = 'thm:two-steps'"
    ).fetchone()
    assert row is not None, "the sketch's holes were not closed by automation"
    code = row[0]
    authors = [a for (a,) in conn.execute("SELECT author FROM attempts WHERE stage = 'proof' ORDER BY id")]
    posts = [json.loads(d) for (d,) in conn.execute("SELECT data FROM posts WHERE kind = 'subgoal' ORDER BY id")]
    conn.close()
    assert authors[-1] == "decomposition" and "sorry" not in code
    assert [p["by"] for p in posts if p.get("status") == "proved"] == ["automation", "automation"]
    if tactic_mode:  # the closing tactics spliced into the holes: no lemma
        assert code.count("first | (omega; done)") == 2 and "two_steps_step" not in code
    else:  # each hole a lemma of its own, proved by automation through the gate
        assert "theorem two_steps_step1" in code and "exact two_steps_step2" in code


@pytest.mark.lean
@needs_lean
def test_real_lean_reports_unsolved_goals_where_the_stand_in_does(tmp_path: Path):
    pool = ReplPool(Settings(home=ROOT))
    try:
        text = "theorem foo (x : Int) : x = x := by\n  have h : x = 1 := by sorry"
        chk = pool.check(text)
        (err,) = chk.errors
        assert (err.line, err.column, err.end_line) == (1, 33, 2)
        assert goals.error_goals(err.text) == ["x : Int\nh : x = 1\n⊢ x = x"]
    finally:
        pool.close()
