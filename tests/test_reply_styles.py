"""End to end with the scripted server: jobs whose model answers only in the DeepSeek-Prover-V2 style, only in
Kimina-Prover's (<think>, one proof thinking past the default budget), only in a chat style with prose, prove the
sample book's units as well as the well-formed script does (same outcome, about as many LLM calls).
benchmarks/reply_styles.py prints the calls per admitted unit of each."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import SAMPLE_BOOK, autoform, book_script, make_repl_dir, write_config
from fake_llm import FakeLLM
from reply_styles import CONFIG, LONG_THINK_LABEL, styled_script

pytestmark = pytest.mark.slow

FINAL_UNITS = {"defined": 5, "proved": 32, "failed": 1, "stated": 1}  # as tests/test_e2e.py's job


def run_style_job(tmp: Path, style: str) -> dict:
    """Ingest the sample book and run one job whose model answers in ``style``; what the store says after."""
    from test_e2e import _overrides

    script = book_script(_overrides()) if style == "wellformed" else styled_script(style, _overrides())
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    with FakeLLM(script, honour_max_tokens=True) as srv:
        write_config(home, base_url=srv.base_url, repl_dir=make_repl_dir(tmp), extra=CONFIG[style])
        autoform(home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
        r = autoform(home, "run", "ent", "--json", timeout=300)
        assert r.returncode == 0, r.stderr
        summary = json.loads(r.stdout)
        requests = srv.requests
    conn = sqlite3.connect(home / "autoform.sqlite")
    calls = conn.execute("SELECT COUNT(*) FROM llm_calls WHERE cached = 0").fetchone()[0]
    truncated = conn.execute("SELECT COUNT(*) FROM llm_calls WHERE cache_key LIKE '%:truncated'").fetchone()[0]
    admitted = conn.execute("SELECT COUNT(*) FROM atlas_entries").fetchone()[0]
    codes = {
        row[0]: row[1]
        for row in conn.execute("SELECT u.label, a.lean_code FROM atlas_entries a JOIN units u ON u.id = a.unit_id")
    }
    conn.close()
    return {
        "units": summary["units"],
        "calls": calls,
        "admitted": admitted,
        "truncated": truncated,
        "requests": requests,
        "codes": codes,
        "home": home,
    }


@pytest.fixture(scope="module")
def wellformed(tmp_path_factory) -> dict:
    return run_style_job(tmp_path_factory.mktemp("wellformed"), "wellformed")


@pytest.mark.parametrize("style", ["deepseek", "kimina", "chat"])
def test_a_job_in_each_style_proves_what_the_wellformed_script_proves(tmp_path, wellformed, style):
    got = run_style_job(tmp_path, style)
    assert wellformed["units"] == FINAL_UNITS
    assert got["units"] == FINAL_UNITS
    # the same Lean admitted, whatever the packaging (the whole-file answers keep their `open … in`)
    for label, code in wellformed["codes"].items():
        theirs = got["codes"][label].replace("  open BigOperators Real Nat Topology Rat in\n", "")
        assert theirs == code, f"{style}: {label} admitted as\n{got['codes'][label]}\nnot\n{code}"
    # about as many calls: a style costs at most the one truncated-and-asked-again call of the long thinker
    assert got["calls"] <= wellformed["calls"] + got["truncated"]
    assert got["calls"] / got["admitted"] <= 1.05 * wellformed["calls"] / wellformed["admitted"]
    if style == "kimina":
        assert got["truncated"] == 1  # the long thinker was cut off once, then asked with a larger budget
        budgets = [
            b.get("max_tokens")
            for b in got["requests"]
            if f"[label: {LONG_THINK_LABEL}]" in b["messages"][-1]["content"]
            and "You are the prover" in b["messages"][0]["content"]
        ]
        assert budgets == [16384, 32768]
    if style == "deepseek":
        prover = [b for b in got["requests"] if "You are the prover" in b["messages"][0]["content"]]
        assert prover and all("Complete the following Lean 4 code" in b["messages"][-1]["content"] for b in prover)
