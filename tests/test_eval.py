"""`autoform eval`: benchmarks through the real pipeline, Lean (here the stand-in REPL) deciding equivalence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED, autoform, label_of, lean, role_of

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
    # one import block, so one header environment: `import Mathlib` once; the rest of und_prob's header (`open
    # Nat`) elaborated once on it, and every check of und_prob run in that environment
    log = ws.repl_log
    assert [r["cmd"] for r in log if "import" in r.get("cmd", "")] == ["import Mathlib"]
    opened = [i for i, r in enumerate(log) if r.get("cmd", "").strip() == "open Nat"]
    assert len(opened) == 1
    env_open = sum("cmd" in r for r in log[: opened[0]])  # the stand-in numbers environments by command
    checks = [r for r in log if r.get("cmd", "").startswith("set_option autoImplicit") and "und_prob" in r["cmd"]]
    assert checks and all(r.get("env") == env_open for r in checks)
    assert any(r.get("env") == env_open and "autoform_eval_fwd" in r.get("cmd", "") for r in log)
    assert not [b for b in ws.llm.requests if role_of(b) == "reader"]  # the statement is given: no reader call
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
    bad.write_bytes(json.dumps(TINY[0]).encode() + b"\n" + b'{"name": "\xff"}\n')
    with pytest.raises(BenchError, match=r"bad\.jsonl:2: not UTF-8 text"):
        load(bad)
    bad.write_text(json.dumps(dict(TINY[0], prove_reference="yes")) + "\n")
    with pytest.raises(BenchError, match=r"bad\.jsonl:1: prove_reference must be true or false"):
        load(bad)
    # a JSON array is read too; a name met again (ProofNet-Verified's Rudin_exercise_4_8a) is told apart by its line
    arr = tmp_path / "arr.json"
    arr.write_text(json.dumps([TINY[0], dict(TINY[1], name="eq_prob"), dict(TINY[2], prove_reference=True)]))
    ps = load(arr)
    assert [p.name for p in ps] == ["eq_prob", "eq_prob@line2", "und_prob"] and ps[2].prove_reference
    arr.write_text(json.dumps([TINY[0], ["not", "an", "object"]]))
    with pytest.raises(BenchError, match=r"arr\.json: item 2: expected a JSON object, found list"):
        load(arr)


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
    """A slice of ProofNet-Verified over three headers (one with helper definitions), every outcome class: the
    reference drafted back (equivalent, proved), a changed one (undecided, failed), one whose drafts never
    elaborate (no statement), a false one Lean refutes (not equivalent). One header environment (all three share
    `import Mathlib`); each header's rest elaborated once."""
    lines = PROOFNET.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(lines[i]) for i in (0, 1, 2, 14, 41)]
    assert rows[4]["helper"].strip() and len({r["header"] + r["helper"] for r in rows}) == 3

    def drafted(r: dict) -> str:
        return r["formal_stmt"].split(":= by")[0].rstrip()

    names = [r["name"] for r in rows]
    drafts = {
        names[0]: drafted(rows[0]),
        names[1]: drafted(rows[1]).replace("= 2", "= 3"),
        names[2]: "theorem nope : bogus_x",
        names[3]: "theorem false_claim : (2:ℕ) + 2 = 5",
        names[4]: drafted(rows[4]),
    }
    proofs = {names[0]: "simp", names[4]: "simp"}

    def s(body: dict) -> str:
        role, label = role_of(body), label_of(body)
        if role == "drafter":
            return lean(drafts[label])
        if role in ("reader", "critic"):
            return script(body)
        return lean(proofs.get(label, "exact bogus_fact"))

    ws = workspace(s, extra=EXTRA + '\n\n[prove]\nstrategy = "attempts"')
    bench = write_bench(tmp_path / "pn.jsonl", rows)
    p = autoform(ws.home, "eval", str(bench), "--out", str(tmp_path / "ev"), "--json", timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    rep = json.loads(p.stdout)
    by = {r["name"]: r for r in rep["records"]}
    assert [by[n]["equivalence"] for n in names] == [
        "equivalent",
        "undecided",
        "no_statement",
        "not_equivalent",
        "equivalent",
    ]
    assert [by[n]["proved"] for n in names] == [True, False, False, False, True]
    assert {k for k in ("equivalent", "not_equivalent", "undecided", "proved", "failed") if rep["counts"][k]} == {
        "equivalent",
        "not_equivalent",
        "undecided",
        "proved",
        "failed",
    }
    cmds = [r.get("cmd", "") for r in ws.repl_log]
    assert [c for c in cmds if c.startswith("import")] == ["import Mathlib"]
    assert sum(c.startswith("open Fintype Subgroup Set Polynomial Ideal") and "relindex" in c for c in cmds) == 1


# the tests with real Lean (three real ProofNet-Verified problems end to end): tests/test_eval_lean.py


def test_budget_is_the_whole_evaluation_s(workspace, tmp_path):
    """--budget-usd holds for the evaluation, not for each header's job: the first book's job (3 problems, about
    $3.12 here) finishes under $3.20, then und_prob's job starts with what is left and stops at the budget (a job
    of its own with the whole budget would have finished it, about $1.10); a larger budget resumes."""
    from fake_llm import Reply

    def slow(body: dict) -> Reply:  # und_prob's replies take a while: the job's budget check sees each one
        return Reply(script(body), delay_s=0.6 if label_of(body) == "und_prob" else 0)

    ws = workspace(slow, extra=EXTRA + '\n\n[llm.prices]\n"test-model" = [1000.0, 1000.0]')
    bench = write_bench(tmp_path / "tiny.jsonl", TINY)
    out = tmp_path / "ev"
    p = autoform(ws.home, "eval", str(bench), "--out", str(out), "--json", "--budget-usd", "3.2", timeout=300)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "budget reached" in p.stderr
    rep = json.loads(p.stdout)
    by = {r["name"]: r for r in rep["records"]}
    assert rep["finished"] == 3 and not by["und_prob"]["finished"]
    assert 3.2 <= rep["cost_usd"] < 3.2 + 0.7  # stopped after the step in flight
    p = autoform(ws.home, "eval", str(bench), "--out", str(out), "--json", "--budget-usd", "1000", timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["finished"] == 4
