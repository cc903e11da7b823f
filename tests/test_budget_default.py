"""The budget is the default strategy of the proof search (issue 16, point 3): a workspace that says nothing of
``[prove]`` gets the budget policy; ``autoform run --max-attempts N`` alone asks for the attempts strategy.

The other scripted jobs pin ``strategy = "attempts"`` (tests/conftest.py) because they count attempts; these
tests take the pin out again, so the product's own default is what runs."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import PINNED_STRATEGY, SAMPLE_BOOK, autoform
from test_proof_budget import TARGET, _hopeless

from autoform.config import ProveConfig, Settings


def _unpinned(home) -> None:
    """The workspace's autoform.toml without the tests' pinned strategy: the product's default applies."""
    toml = home / "autoform.toml"
    text = toml.read_text(encoding="utf-8")
    assert PINNED_STRATEGY in text
    toml.write_text(text.replace(PINNED_STRATEGY, ""), encoding="utf-8")


def _proof_attempts(home) -> tuple[str, int]:
    conn = sqlite3.connect(home / "autoform.sqlite")
    status, n = conn.execute(
        "SELECT u.status, COUNT(a.id) FROM units u LEFT JOIN attempts a ON a.unit_id = u.id AND a.stage = 'proof' "
        "WHERE u.label = ? GROUP BY u.id",
        (TARGET,),
    ).fetchone()
    conn.close()
    return status, n


def test_the_default_strategy_is_the_budget() -> None:
    assert Settings().prove.strategy == "budget" == ProveConfig().strategy


@pytest.mark.slow
def test_a_workspace_without_prove_settings_searches_by_budget(workspace):
    ws = workspace(_hopeless, extra="decompose = false\n")
    _unpinned(ws.home)
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent")
    assert r.returncode == 0, r.stderr
    status, attempts = _proof_attempts(ws.home)
    # past the three shots of [job] max_attempts, ended by the stall rule (3 attempts without fewer errors)
    assert status == "failed" and attempts > 3
    assert "no progress in 3 attempts" in r.stderr


@pytest.mark.slow
def test_max_attempts_alone_asks_for_the_attempts_strategy(workspace):
    ws = workspace(_hopeless, extra="decompose = false\n")
    _unpinned(ws.home)
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--max-attempts", "2")
    assert r.returncode == 0, r.stderr
    assert _proof_attempts(ws.home) == ("failed", 2)
    assert "no progress" not in r.stderr and "budget spent" not in r.stderr


def test_run_help_names_the_prove_section(tmp_path):
    """Rich reads ``[prove]`` as markup unless it is escaped: the help must show it."""
    out = " ".join(autoform(tmp_path, "run", "--help", env={"COLUMNS": "200"}, check=True).stdout.split())
    assert "replaces the [prove] budget" in out and "per-unit proof budget ([prove])" in out


def test_the_resume_hint_keeps_the_proof_strategy(workspace):
    """A job stopped by its budget is resumed as it ran: the hint repeats --unit-budget and --max-attempts."""
    ws = workspace(_hopeless, extra="decompose = false\n")
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--unit-budget", "llm_calls=5", "--budget-tokens", "1")
    assert r.returncode == 1 and "resume with: autoform run ent --unit-budget 'llm_calls=5'" in r.stderr, r.stderr
    r = autoform(ws.home, "run", "ent", "--max-attempts", "2", "--budget-tokens", "1")
    assert r.returncode == 1 and "resume with: autoform run ent --max-attempts 2" in r.stderr, r.stderr


def test_a_budget_names_its_own_option_and_takes_subgoal_limits(tmp_path):
    r = autoform(tmp_path, "retry", "ent", "--failed", "--budget", "calls=3")
    assert r.returncode == 2 and "--budget: 'calls=3' is not NAME=VALUE" in r.stderr and "--unit-budget" not in r.stderr
    from autoform.config import parse_unit_budget

    got = parse_unit_budget(ProveConfig(), "subgoal_llm_calls=2,subgoal_lean_checks=3")
    assert (got.strategy, got.subgoal_llm_calls, got.subgoal_lean_checks) == ("budget", 2, 3)
