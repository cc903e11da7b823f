"""A budget per unit instead of a fixed number of attempts (issue 16, point 3): `autoform run --unit-budget`,
end to end through the CLI with the scripted model and the stand-in REPL. A theorem whose every proof fails
goes on past the three shots of the attempts policy, and stops when its budget is spent or it stalls."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import SAMPLE_BOOK, autoform, book_script, label_of, lean, role_of

TARGET = "thm:sum-odd"


def _hopeless(body: dict) -> dict:
    """Every whole proof and repair of the target names an identifier Lean does not know (one error each)."""
    if label_of(body) == TARGET and role_of(body) in ("prover", "gap_closer"):
        return lean("  exact bogus_sum_odd n")
    return book_script()(body)


def _proof_calls(home) -> int:
    conn = sqlite3.connect(home / "autoform.sqlite")
    (n,) = conn.execute(
        "SELECT COUNT(*) FROM llm_calls c JOIN units u ON u.id = c.unit_id "
        "WHERE u.label = ? AND c.role IN ('prover', 'gap_closer') AND c.cached = 0",
        (TARGET,),
    ).fetchone()
    (status,) = conn.execute("SELECT status FROM units WHERE label = ?", (TARGET,)).fetchone()
    conn.close()
    return n if status == "failed" else -1


@pytest.mark.slow
def test_the_budget_stops_a_hopeless_unit(workspace):
    ws = workspace(_hopeless, extra="decompose = false\n")
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--unit-budget", "llm_calls=5,stall_rounds=50")
    assert r.returncode == 0, r.stderr  # the job ran; the unit failed
    assert _proof_calls(ws.home) == 5  # more than the attempts policy's three shots, and not one more
    assert "budget spent: 5 LLM calls (budget 5)" in r.stderr


@pytest.mark.slow
def test_a_stalled_search_ends_before_its_budget(workspace):
    ws = workspace(_hopeless, extra="decompose = false\n")
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--unit-budget", "llm_calls=40,stall_rounds=3")
    assert r.returncode == 0, r.stderr
    calls = _proof_calls(ws.home)
    assert 0 < calls < 40
    assert "no progress in 3 attempts" in r.stderr


def test_a_malformed_unit_budget_is_a_usage_error(tmp_path):
    r = autoform(tmp_path, "run", "ent", "--unit-budget", "calls=3")
    assert r.returncode == 2 and "--unit-budget: 'calls=3' is not NAME=VALUE" in r.stderr
    r = autoform(tmp_path, "run", "ent", "--unit-budget", "llm_calls=0")
    assert r.returncode == 2 and "llm_calls: Input should be greater than or equal to 1" in r.stderr
