"""LLM calls per admitted unit of the sample book's job when the model answers in the DeepSeek-Prover-V2 style,
the Kimina-Prover style (<think>) and a chat style with prose, against the well-formed script; and the share of
the reply corpus (tests/fixtures/replies) read right per role.

Each job runs the real CLI (`autoform run`) against the scripted OpenAI-compatible server (tests/fake_llm.py,
cutting replies at the request's budget) and the scripted Lean REPL (tests/fake_lean_repl.py), as the
end-to-end tests do (tests/test_reply_styles.py).

Usage: ``python benchmarks/reply_styles.py``; the last line is JSON.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from reply_corpus import ROLES, check, load  # noqa: E402
from test_reply_styles import run_style_job  # noqa: E402


def main() -> int:
    corpus = {}
    for role in ROLES:
        cases = load(role)
        right = sum(check(role, c) is None for c in cases)
        corpus[role] = {"cases": len(cases), "right": right, "share": round(right / len(cases), 4)}
        print(f"corpus {role:<11} {right}/{len(cases)} read right")
    jobs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for style in ("wellformed", "deepseek", "kimina", "chat"):
            r = run_style_job(Path(tmp) / style, style)
            jobs[style] = {
                "units": r["units"],
                "llm_calls": r["calls"],
                "admitted": r["admitted"],
                "calls_per_admitted_unit": round(r["calls"] / r["admitted"], 3),
                "truncated_calls": r["truncated"],
            }
            print(
                f"job {style:<10} units {r['units']} calls {r['calls']} admitted {r['admitted']} "
                f"-> {r['calls'] / r['admitted']:.3f} calls per admitted unit ({r['truncated']} truncated)"
            )
    print(json.dumps({"corpus": corpus, "jobs": jobs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
