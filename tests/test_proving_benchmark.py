"""benchmarks/proving.py keeps running: started as a user would, small, its JSON report checked for consistency
(no timing asserted: the figures belong in the README)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


def test_proving_benchmark_compares_whole_proofs_with_decomposition_at_equal_budget() -> None:
    args = ["--units", "12", "--budget", "8", "--max-size", "5"]
    proc = subprocess.run(
        [sys.executable, "benchmarks/proving.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    whole, split = r["whole_proofs_only"], r["with_decomposition"]
    assert r["units"] == 12 and r["budget_llm_calls_per_unit"] == 8 and "p(s) = 0.9 x 0.5^(s-1)" in r["model"]
    for arm in (whole, split, r["automation_command_mode"], r["automation_tactic_mode"]):
        assert 0 < arm["closed"] <= 12 and arm["closed_share"] == round(arm["closed"] / 12, 3)
        # the budget holds for each unit's proof, decomposition included
        assert 0 < arm["max_proof_llm_calls_per_unit"] <= 8
        assert arm["llm_calls_per_closed"] == round(arm["llm_calls"] / arm["closed"], 2)
        assert arm["lean_checks"] > 0 and arm["sched_cpu_ms_per_unit"] > 0
        assert sum(int(v.split("/")[1]) for v in arm["closed_by_size"].values()) == 12
    # under this model, splitting a large goal into smaller ones closes more at the same budget
    assert split["closed"] >= whole["closed"]
    # tactic mode: the same units closed with fewer command-mode checks, the holes tried on their proof states
    command, tactic = r["automation_command_mode"], r["automation_tactic_mode"]
    assert tactic["closed"] == command["closed"] > 0
    assert command["tactic_steps"] == 0 < tactic["tactic_steps"]
    assert tactic["lean_checks"] < command["lean_checks"]
    assert "whole_proofs_only: closed" in proc.stdout and "automation_tactic_mode: closed" in proc.stdout
