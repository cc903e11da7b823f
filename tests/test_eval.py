"""`autoform eval`: benchmarks through the real pipeline, Lean (here the stand-in REPL) deciding equivalence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED, autoform, label_of, lean, needs_lean, role_of

from autoform.evaluation.bench import BenchError, load
from autoform.evaluation.equivalence import split_statement
from autoform.evaluation.report import wilson

PROOFNET = SHARED / "benchmarks" / "proofnet-verified" / "proofnet-verified.jsonl"

TINY = [
    {
        "name": "eq_prob",
        "informal_stmt": "For every natural number n, n + 0 = n.",
        "formal_stmt": "theorem eq_prob (n : ℕ) : n + 0 = n := by\n  sorry",
        "header": "import Mathlib",
    },
    {
        "name": "neq_prob",
        "informal_statement": "Two plus two is four.",
        "formal_statement": "theorem neq_prob : (2:ℕ) + 2 = 4 := by sorry",
        "header": "import Mathlib",
    },
    {
        "name": "und_prob",
        "nl_statement": "Addition of natural numbers is commutative.",
        "formal_stmt": "theorem und_prob (a b : ℕ) : a + b = b + a := by sorry",
        "header": "import Mathlib\n\nopen Nat",
    },
    {
        "name": "nostmt",
        "informal_stmt": "Something no draft elaborates.",
        "formal_stmt": "theorem nostmt : True := by sorry",
        "header": "import Mathlib",
    },
]
DRAFTS = {
    "eq_prob": "theorem eq_prob (n : ℕ) : n + 0 = n",
    "neq_prob": "theorem neq_prob : (2:ℕ) + 2 = 5",
    "und_prob": "theorem und_prob (a b : ℕ) : b + a = a + b",
    "nostmt": "theorem nostmt : bogus_claim",
}
PROOFS = {"eq_prob": "simp", "neq_prob": "exact bogus_fact", "und_prob": "omega"}
EXTRA = "max_attempts = 1\ndecompose = false\nlibrary_search = false\ngrounding = false"


def script(body: dict) -> str:
    role, label = role_of(body), label_of(body)
    if role == "reader":
        return (
            "```json\n"
            + json.dumps({"statement": "restated", "concepts": [], "conventions": [], "dependencies": []})
            + "\n```"
        )
    if role == "critic":
        return (
            "```json\n"
            + json.dumps({"back_translation": "same", "faithful": label != "neq_prob", "score": 8, "issues": []})
            + "\n```"
        )
    if role == "drafter":
        return lean(DRAFTS[label])
    return lean(PROOFS.get(label, "exact bogus_fact"))


def write_bench(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def recompute(db: Path) -> dict:
    """The figures, straight from the store with SQL (not through autoform.evaluation)."""
    import sqlite3

    c = sqlite3.connect(db)
    rows = c.execute(
        "SELECT u.label, u.status, p.data FROM units u JOIN posts p ON p.unit_id = u.id AND p.kind = 'eval_result'"
    ).fetchall()
    eq = {label: json.loads(data)["equivalence"] for label, _, data in rows}
    proved = {label for label, status, _ in rows if status == "proved"}
    calls = c.execute("SELECT COUNT(*) FROM llm_calls WHERE unit_id IS NOT NULL").fetchone()[0]
    attempts = c.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    return {"eq": eq, "proved": proved, "calls": calls, "attempts": attempts}


def test_tiny_benchmark_every_outcome_resume_and_report(workspace, tmp_path):
    ws = workspace(script, extra=EXTRA)
    bench = write_bench(tmp_path / "tiny.jsonl", TINY)
    out = tmp_path / "ev"
    p = autoform(ws.home, "eval", str(bench), "--out", str(out), "--json", timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    rep = json.loads(p.stdout)
    by = {r["name"]: r for r in rep["records"]}
    assert by["eq_prob"]["equivalence"] == "equivalent" and by["eq_prob"]["proved"]
    assert by["neq_prob"]["equivalence"] == "not_equivalent" and not by["neq_prob"]["proved"]
    assert by["und_prob"]["equivalence"] == "undecided" and by["und_prob"]["proved"]
    assert by["nostmt"]["equivalence"] == "no_statement" and not by["nostmt"]["statement_elaborated"]
    assert by["neq_prob"]["faithful"] is False and by["eq_prob"]["faithful"] is True  # the badge, not the judge
    # the equivalence verdicts came from Lean: the checks were sent to the REPL with the problem's own header
    cmds = [r.get("cmd", "") for r in ws.repl_log]
    assert any("theorem autoform_eval_fwd" in c and "axiom autoform_eval_ref" in c for c in cmds)
    assert any(c.startswith("import Mathlib\n\nopen Nat") for c in cmds)
    assert any("#print axioms" in c and "autoform_eval_fwd" in c for c in cmds)
    # the figures equal those recomputed from the store
    db = recompute(out / "autoform.sqlite")
    assert db["eq"] == {r["name"]: r["equivalence"] for r in rep["records"]}
    assert db["proved"] == {n for n, r in by.items() if r["proved"]} == {"eq_prob", "und_prob"}
    assert rep["llm_calls"] == db["calls"] and sum(r["attempts"] for r in rep["records"]) == db["attempts"]
    assert rep["counts"]["proved"] == 2 and rep["counts"]["failed"] == 2 and rep["finished"] == 4
    assert rep["rates"]["equivalent"]["k"] == 1 and rep["rates"]["equivalent"]["n"] == 4
    low, high = wilson(1, 4)
    assert rep["rates"]["equivalent"]["low"] == pytest.approx(low) and rep["rates"]["equivalent"]["high"] == high
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "eq_prob" in page and "not equivalent" in page and "transcripts/eq_prob.txt" in page
    assert (out / "transcripts" / "eq_prob.txt").is_file()
    assert "<link" not in page.replace('<link rel="icon"', "")  # offline: styles inlined
    # resumed: finished problems are skipped (no LLM call, no new attempt)
    calls = len(ws.llm.requests)
    p2 = autoform(ws.home, "eval", str(bench), "--out", str(out), "--json", timeout=300)
    assert p2.returncode == 0, p2.stdout + p2.stderr
    assert len(ws.llm.requests) == calls
    assert recompute(out / "autoform.sqlite")["attempts"] == db["attempts"]
    assert json.loads(p2.stdout)["counts"] == rep["counts"]
    # compare two runs
    p3 = autoform(ws.home, "eval", "compare", str(out), str(out), "--json")
    assert p3.returncode == 0, p3.stderr
    cmp = json.loads(p3.stdout)
    assert len(cmp["problems"]) == 4 and not any(x["differs"] for x in cmp["problems"])


def test_limit_then_more_skips_finished(workspace, tmp_path):
    ws = workspace(script, extra=EXTRA)
    bench = write_bench(tmp_path / "tiny.jsonl", TINY)
    out = tmp_path / "ev"
    assert autoform(ws.home, "eval", str(bench), "--out", str(out), "--limit", "1", "--json").returncode == 0
    first = [r for r in ws.llm.requests if label_of(r) == "eq_prob"]
    p = autoform(ws.home, "eval", str(bench), "--out", str(out), "--limit", "2", "--json")
    assert p.returncode == 0, p.stderr
    assert [r for r in ws.llm.requests if label_of(r) == "eq_prob"] == first
    assert json.loads(p.stdout)["finished"] == 2


def test_input_formats_and_errors(tmp_path):
    ok = write_bench(tmp_path / "ok.jsonl", TINY)
    ps = load(ok)
    assert [p.name for p in ps] == ["eq_prob", "neq_prob", "und_prob", "nostmt"]
    assert ps[1].informal == "Two plus two is four." and ps[2].header.endswith("open Nat")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(TINY[0]) + "\n" + json.dumps({"name": "x", "question": "?"}) + "\n")
    with pytest.raises(BenchError, match=r"bad\.jsonl:2: expected an informal statement .* and a reference Lean"):
        load(bad)
    bad.write_text("{not json\n")
    with pytest.raises(BenchError, match=r"bad\.jsonl:1: not a JSON object"):
        load(bad)


def test_cli_reports_bad_benchmark(workspace, tmp_path):
    ws = workspace(script, extra=EXTRA)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"name": "x", "informal_stmt": "s"}) + "\n")
    p = autoform(ws.home, "eval", str(bad))
    assert p.returncode == 2 and "bad.jsonl:1" in p.stderr and "Traceback" not in p.stderr


def test_split_statement_binders():
    s = split_statement(
        "theorem T {G : Type*} [Group G] {a b : G}\n  (h : a * b = b * a) :\n"
        "  ∀ x y : closure {x | x = a ∨ x = b}, x * y = y * x := by\n  sorry"
    )
    assert s is not None and s.binders.startswith("{G : Type*} [Group G]") and s.type.startswith("∀ x y : closure")
    assert s.as_prop().startswith("∀ {G : Type*}")
    assert split_statement("theorem t : (2:ℕ) + 2 = 4").type == "(2:ℕ) + 2 = 4"


@pytest.mark.skipif(not PROOFNET.is_file(), reason=f"{PROOFNET} is absent")
def test_proofnet_slice(workspace, tmp_path):
    """Three ProofNet-Verified problems: the reference drafted back (equivalent), a changed one (undecided),
    and one whose drafts never elaborate; the header of each problem is its checks' header."""
    rows = [json.loads(x) for x in PROOFNET.read_text(encoding="utf-8").splitlines()[:3]]

    def drafted(r: dict) -> str:
        return r["formal_stmt"].split(":= by")[0].rstrip()

    drafts = {
        rows[0]["name"]: drafted(rows[0]),
        rows[1]["name"]: drafted(rows[1]).replace("= 2", "= 3"),
        rows[2]["name"]: "theorem nope : bogus_x",
    }

    def s(body: dict) -> str:
        role, label = role_of(body), label_of(body)
        if role == "drafter":
            return lean(drafts[label])
        return script(body) if role in ("reader", "critic") else lean("exact bogus_fact")

    ws = workspace(s, extra=EXTRA)
    bench = write_bench(tmp_path / "pn.jsonl", rows)
    p = autoform(ws.home, "eval", str(bench), "--out", str(tmp_path / "ev"), "--json", timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    by = {r["name"]: r for r in json.loads(p.stdout)["records"]}
    assert [by[r["name"]]["equivalence"] for r in rows] == ["equivalent", "undecided", "no_statement"]
    assert not any(r["proved"] for r in by.values())


@pytest.mark.lean
@needs_lean
def test_real_proofnet_three(tmp_path):
    """Three real ProofNet-Verified problems end to end with real Lean (and the configured model)."""
    import os

    if not (os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL")):
        pytest.skip("needs an LLM endpoint (OPENAI_API_KEY or OPENAI_BASE_URL)")
    if not PROOFNET.is_file():
        pytest.skip(f"{PROOFNET} is absent")
    from conftest import ROOT

    out = tmp_path / "ev"
    p = autoform(
        ROOT,
        "eval",
        str(PROOFNET),
        "--limit",
        "3",
        "--out",
        str(out),
        "--json",
        timeout=7200,
        env={k: v for k, v in os.environ.items() if k.startswith("OPENAI_")},
    )
    assert p.returncode == 0, p.stdout + p.stderr
    rep = json.loads(p.stdout)
    assert rep["finished"] == 3
    for r in rep["records"]:
        assert r["equivalence"] in ("equivalent", "not_equivalent", "undecided", "no_statement")
