"""Tests against a real Lean 4 toolchain with Mathlib (scripts/setup.sh installs it where the network
allows). Skipped, with the reason, when `lake` is neither on PATH nor in ~/.elan/bin."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from conftest import ROOT, TESTS, autoform, label_of, lean, needs_lean, role_of

from autoform.config import load_settings
from autoform.lean.gate import Candidate, admit, check_statement
from autoform.lean.lake import LakeFileOracle
from autoform.lean.repl_pool import ReplPool
from autoform.toolchain.workspace import build_targets, find_lake

pytestmark = [pytest.mark.lean, needs_lean]


def test_sample_formalization_compiles_with_lake():
    """The fixture the end-to-end test scripts the LLM with is real Lean that Mathlib accepts."""
    r = subprocess.run(
        [find_lake()[0], "env", "lean", str(TESTS / "fixtures" / "sample_formalization.lean")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
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
        bad = admit(
            c.model_copy(update={"proof": "exact Nat.succ_ne_zero n", "locked_type": st.elaborated_type}), oracle
        )
        assert not bad.admitted and bad.reasons[0].code == "compile_error"
    finally:
        oracle.close()


def test_prelude_reuse_gives_the_verdicts_of_whole_texts_on_real_lean():
    """The REPL pool elaborates a candidate's prelude once and checks on top of its environment: Lean must
    see the prelude's declarations in the namespace, and the verdicts must match the lake backend's (which
    always checks the whole text)."""
    settings = load_settings(ROOT)
    prelude = (
        "def double (n : ℕ) : ℕ := 2 * n\n\ntheorem double_eq (n : ℕ) : double n = n + n := by\n  unfold double; omega"
    )
    base = Candidate(
        kind="theorem",
        namespace="Atlas.Test",
        prelude=prelude,
        statement="theorem double_add (a b : ℕ) : double (a + b) = double a + double b",
    )
    pool, lake = ReplPool(settings), LakeFileOracle(settings)
    try:
        st = check_statement(base, pool)
        assert st.elaborates, st.reasons
        for proof in ("simp only [double_eq]; omega", "exact rfl_bogus"):
            cand = base.model_copy(update={"proof": proof, "locked_type": st.elaborated_type})
            a, b = admit(cand, pool), admit(cand, lake)
            assert a.admitted == b.admitted and [r.code for r in a.reasons] == [r.code for r in b.reasons]
        assert pool.stats["context_hits"] >= 2
    finally:
        pool.close()
        lake.close()


TINY_BOOK = r"""\documentclass{article}
\newtheorem{theorem}{Theorem}
\newtheorem{lemma}[theorem]{Lemma}
\begin{document}
\section{Sums}
\begin{lemma}\label{lem:a}
For every natural number $n$, $n + 0 = n$.
\end{lemma}
\begin{proof}
Immediate.
\end{proof}
\begin{theorem}\label{thm:b}
For every natural number $n$, $0 + n = n$, by Lemma~\ref{lem:a}.
\end{theorem}
\begin{proof}
Induction.
\end{proof}
\end{document}
"""
TINY = {"lem:a": "theorem tiny_add_zero (n : ℕ) : n + 0 = n", "thm:b": "theorem tiny_zero_add (n : ℕ) : 0 + n = n"}


def _tiny_script(body: dict) -> str:
    role, label = role_of(body), label_of(body)
    if role in ("reader", "critic"):
        return (
            "```json\n"
            + json.dumps(
                {"statement": "s", "concepts": [], "conventions": [], "dependencies": []}
                if role == "reader"
                else {"back_translation": "same", "faithful": True, "score": 9, "issues": []}
            )
            + "\n```"
        )
    return lean(TINY[label]) if role == "drafter" else lean("  simp")


def test_setup_to_built_atlas_without_rebuilding_mathlib(tmp_path, fake_llm_factory):
    """The whole path on a real toolchain: setup's Lean steps in the one workspace, a tiny book through `run`
    (REPL pool, real Lean), `atlas build` in a --home workspace that shares the repository's Mathlib; Mathlib
    is fetched and built once: afterwards nothing of it needs building (`lake build --no-build` exits 0)."""
    lake = find_lake()[0]
    settings = load_settings(ROOT)
    timings: dict[str, float] = {}

    def step(name: str, cmd: list[str], cwd, timeout: float = 6 * 3600) -> subprocess.CompletedProcess:
        t0 = time.monotonic()
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        timings[name] = time.monotonic() - t0
        assert r.returncode == 0, f"{name}: {r.stdout[-3000:]}{r.stderr[-3000:]}"
        return r

    step("cache get", [lake, "exe", "cache", "get"], ROOT)
    step("build imports", [lake, "build", *build_targets(settings.lean.header)], ROOT)
    # nothing of Mathlib is left to build: the checks and the Atlas use the cached build as it is
    step("no rebuild", [lake, "build", "--no-build", *build_targets(settings.lean.header)], ROOT, timeout=600)

    srv = fake_llm_factory(_tiny_script)
    home = tmp_path / "ws"
    home.mkdir()
    autoform(home, "init", check=True)
    (home / "autoform.toml").write_text(f'''[llm]
base_url = "{srv.base_url}"
model = "test-model"
api_key = "test-key"

[job]
automation = false
''')
    (tmp_path / "book.tex").write_text(TINY_BOOK)
    autoform(home, "ingest", str(tmp_path / "book.tex"), "--book", "tiny", check=True)
    t0 = time.monotonic()
    autoform(home, "run", "tiny", timeout=3 * 3600, check=True)
    timings["run"] = time.monotonic() - t0
    status = json.loads(autoform(home, "status", "tiny", "--json", check=True).stdout)
    assert "proved" in json.dumps(status)
    t0 = time.monotonic()
    built = autoform(home, "atlas", "build", timeout=3 * 3600)
    timings["atlas build"] = time.monotonic() - t0
    assert built.returncode == 0, built.stdout + built.stderr
    assert "audit clean" in built.stdout  # atlas build ends with the audit in a fresh Lean process
    audit = json.loads(autoform(home, "atlas", "audit", "--json", check=True).stdout)
    assert audit["ok"] and audit["checked"] == 2 and audit["findings"] == []
    # the --home workspace used the repository's Mathlib build as it was: still nothing of it to build there
    step(
        "no rebuild from --home", [lake, "build", "--no-build", *build_targets(settings.lean.header)], home, timeout=600
    )
    chapter = next((home / "atlas" / "Atlas").rglob("*.lean")).read_text()
    assert "theorem tiny_add_zero" in chapter and "section" in chapter
    print("timings (s):", json.dumps({k: round(v, 1) for k, v in timings.items()}))
    assert timings["atlas build"] < 1800, "the Atlas build took as long as building Mathlib from source"
