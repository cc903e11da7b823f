"""`autoform eval` against real Lean (skipped here without a Lean toolchain): three real ProofNet-Verified problems
end to end (with an LLM endpoint), and, without any LLM, Lean's own verdicts on their equivalence checks and on
their references under a shared header environment."""

from __future__ import annotations

import json
import os

import pytest
from conftest import ROOT, autoform, needs_lean
from test_eval import PROOFNET

from autoform.config import load_settings
from autoform.evaluation.bench import load
from autoform.evaluation.equivalence import decide
from autoform.evaluation.headers import HeaderOracles
from autoform.lean.gate import Candidate, check_statement
from autoform.lean.repl_pool import ReplPool
from autoform.people import clean_statement

pytestmark = [pytest.mark.lean, needs_lean, pytest.mark.skipif(not PROOFNET.is_file(), reason=f"{PROOFNET} is absent")]

#: three problems of different textbooks and headers (lines of the file, from 1)
LINES = (1, 15, 42)


def three() -> list:
    problems = load(PROOFNET)
    return [next(p for p in problems if p.line == n) for n in LINES]


def test_real_proofnet_three_end_to_end(tmp_path):
    """Three real problems through the pipeline with real Lean and the configured model, references proved too."""
    if not (os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL")):
        pytest.skip("needs an LLM endpoint (OPENAI_API_KEY or OPENAI_BASE_URL)")
    bench = tmp_path / "three.jsonl"
    lines = PROOFNET.read_text(encoding="utf-8").splitlines()
    bench.write_text("".join(lines[n - 1] + "\n" for n in LINES), encoding="utf-8")
    out = tmp_path / "ev"
    env = {k: v for k, v in os.environ.items() if k.startswith("OPENAI_")}
    p = autoform(ROOT, "eval", str(bench), "--out", str(out), "--json", "--prove-reference", timeout=7200, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    rep = json.loads(p.stdout)
    assert rep["finished"] == 3
    for r in rep["records"]:
        assert r["equivalence"] in ("equivalent", "not_equivalent", "undecided", "no_statement")
        assert r["reference"]["finished"] and not r["reference"]["refused"]  # ProofNet-Verified's references elaborate
    assert (out / "index.html").is_file()


def test_real_lean_references_equivalent_to_themselves_under_shared_headers():
    """Each reference elaborates under its header's rest shared on one `import Mathlib` process, and Lean proves
    it equivalent to itself in both directions; a reference with its conclusion negated is never equivalent."""
    s = load_settings(ROOT)
    oracles = HeaderOracles(s, ReplPool)
    try:
        for p in three():
            oracle = oracles.oracle(p.lean_header)
            text = clean_statement(p.formal, definition=False)
            chk = check_statement(Candidate(kind="theorem", namespace="Atlas.EvalTest", statement=text), oracle)
            assert chk.elaborates, (p.name, chk.reasons)
            same = decide(oracle, header=p.lean_header, namespace="Atlas.EvalTest", reference=p.formal, drafted=text)
            assert same.outcome == "equivalent", (p.name, same.reason)
            head, _, concl = text.rpartition(" :\n")
            negated = f"{head} :\n  ¬ ({concl.strip()})" if head else ""
            if negated:
                other = decide(
                    oracle, header=p.lean_header, namespace="Atlas.EvalTest", reference=p.formal, drafted=negated
                )
                assert other.outcome != "equivalent", p.name
        assert oracles.started == ["import Mathlib"]
    finally:
        oracles.close()
