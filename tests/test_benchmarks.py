"""The benchmarks keep running: each is started as a user would, at a small size, and its JSON report is
checked for consistency (no timing is asserted here; the numbers belong in the notes and the README)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, SAMPLE_BOOK


def _run(*args: str) -> dict:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_jobs_benchmark_admits_every_unit_with_the_real_pipeline() -> None:
    r = _run(
        "benchmarks/jobs.py",
        "--units",
        "60",
        "--chapters",
        "3",
        "--jobs",
        "8",
        "--llm-latency",
        "0.01",
        "--lean-latency",
        "0.02",
    )
    assert r["status"] == "done" and r["admitted"] == 60 and r["pipeline"] == "real"
    # a theorem: 3 Lean checks (statement, `exact?`, proof) and 3 LLM calls (reader, drafter, prover); a
    # definition: 1 and 2
    assert (r["lean_checks"] - 60) % 2 == 0
    theorems = (r["lean_checks"] - 60) // 2
    assert 0 < theorems < 60 and r["llm_calls"] == 3 * theorems + 2 * (60 - theorems)
    assert 0 < r["throughput_share"] <= 1.05 and r["peak_mb"] > 0
    assert {"throughput_share", "sched_cpu_ms_per_unit", "peak_mb"} <= r.keys()


def test_attention_benchmark_compares_the_neighbourhood_with_the_whole_board() -> None:
    r = _run("benchmarks/attention.py", str(SAMPLE_BOOK))
    assert r["prompts"] > 0 and r["dep_recall"] is not None
    assert r["candidates_per_prompt"] <= r["whole_board"]["candidates_per_prompt"]
    assert r["dep_recall"] >= r["whole_board"]["dep_recall"] - 0.05
