"""`autoform eval --prove-reference`: the prover and gap-closer on the benchmark's own statements, locked exactly
as given (the gate admits only a proof of the reference's type), with their effort in the report and compare."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from conftest import autoform, label_of, lean, role_of
from test_eval import DRAFTS, EXTRA, TINY, script, write_bench

REFUSED_REF = {
    "name": "badref",
    "informal_stmt": "A statement whose reference Lean refuses.",
    "formal_stmt": "theorem badref : bogus_thing := by sorry",
    "header": "import Mathlib",
    "prove_reference": True,
}
ROWS = [*TINY, REFUSED_REF]
#: the reference statements of TINY, as the prover sees them locked
REF_TEXT = {
    "eq_prob": "n + 0 = n",
    "neq_prob": "(2:ℕ) + 2 = 4",
    "und_prob": "a + b = b + a",
    "nostmt": ": True",
}
#: proofs of the references; und_prob's prover answers a whole theorem of an easier statement, which the lock
#: refuses (so its reference is not proved)
REF_PROOFS = {
    "eq_prob": "simp",
    "neq_prob": "norm_num",
    "und_prob": "theorem und_prob (a b : ℕ) : a + b = a + b := by\n  rfl",
    "nostmt": "trivial",
}


def is_reference(body: dict) -> bool:
    """A prover's or gap-closer's call on a reference unit: its prompt holds the reference's locked text."""
    label, text = label_of(body), body["messages"][-1]["content"]
    return label in REF_TEXT and REF_TEXT[label] in text and DRAFTS[label].split(" : ", 1)[-1] not in text


def ref_script(body: dict) -> str:
    if role_of(body) in ("prover", "gap_closer") and is_reference(body):
        return lean(REF_PROOFS[label_of(body)])
    if label_of(body) == "badref":
        return lean("theorem badref : bogus_x") if role_of(body) == "drafter" else script(body)
    return script(body)


def ref_units(db: Path) -> dict[str, tuple[str, int, int, str]]:
    """label -> (status, attempts, LLM calls, admitted statement) of the reference books' units, by SQL."""
    c = sqlite3.connect(db)
    rows = c.execute(
        "SELECT u.label, u.status, (SELECT COUNT(*) FROM attempts a WHERE a.unit_id = u.id AND a.superseded = 0), "
        "(SELECT COUNT(*) FROM llm_calls l WHERE l.unit_id = u.id), "
        "COALESCE((SELECT e.statement_lean FROM atlas_entries e WHERE e.unit_id = u.id), '') "
        "FROM units u JOIN books b ON b.id = u.book_id WHERE b.slug LIKE '%-ref'"
    ).fetchall()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def test_prove_reference_locked_as_given(workspace, tmp_path):
    ws = workspace(ref_script, extra=EXTRA + '\n\n[prove]\nstrategy = "attempts"')
    bench = write_bench(tmp_path / "tiny.jsonl", ROWS)
    out = tmp_path / "ev"
    p = autoform(ws.home, "eval", str(bench), "--out", str(out), "--json", "--prove-reference", timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    rep = json.loads(p.stdout)
    by = {r["name"]: r for r in rep["records"]}
    ref = {n: r["reference"] for n, r in by.items()}
    assert all(x is not None and x["finished"] for x in ref.values())
    assert {n for n, x in ref.items() if x["proved"]} == {"eq_prob", "neq_prob", "nostmt"}
    assert not ref["und_prob"]["proved"] and not ref["und_prob"]["refused"]
    assert not ref["badref"]["proved"] and "bogus_thing" in ref["badref"]["refused"]
    # the drafted side is unchanged: neq_prob's drafted statement (2 + 2 = 5) is not proved, its reference is
    assert by["neq_prob"]["equivalence"] == "not_equivalent" and not by["neq_prob"]["proved"]
    # the reference was locked exactly as given: the admitted statement is the benchmark's text
    units = ref_units(out / "autoform.sqlite")
    assert units["neq_prob"][0] == "proved" and units["neq_prob"][3] == "theorem neq_prob : (2:ℕ) + 2 = 4"
    assert units["und_prob"][0] == "stated" and units["badref"][0] == "failed" and units["badref"][2] == 0
    # und_prob's prover restated an easier theorem: refused, the lock is the reference as given
    told = [m["content"] for b in ws.llm.requests for m in b["messages"] if m["role"] == "user"]
    assert any("is not the locked `theorem und_prob (a b : ℕ) : a + b = b + a`" in t for t in told)
    # effort per reference, equal to the store's
    for name, (_, attempts, calls, _) in units.items():
        assert ref[name]["attempts"] == attempts and ref[name]["llm_calls"] == calls
    assert ref["neq_prob"]["lean_s"] > 0 and ref["neq_prob"]["llm_calls"] >= 1 and ref["neq_prob"]["tokens"] > 0
    assert rep["counts"]["reference_proved"] == 3 and rep["counts"]["reference_failed"] == 2
    assert rep["counts"]["reference_refused"] == 1
    assert rep["rates"]["reference_proved"]["k"] == 3 and rep["rates"]["reference_proved"]["n"] == 5
    all_calls = sqlite3.connect(out / "autoform.sqlite").execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0]
    assert rep["llm_calls"] == all_calls
    assert rep["cost_per_reference_proved_usd"] == round(rep["reference_cost_usd"] / 3, 8)
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "reference proof" in page and "refused by Lean" in page
    assert (out / "transcripts" / "neq_prob.reference.txt").is_file()
    # resumed: nothing is asked again
    n = len(ws.llm.requests)
    p2 = autoform(ws.home, "eval", str(bench), "--out", str(out), "--json", "--prove-reference", timeout=300)
    assert p2.returncode == 0, p2.stderr
    assert len(ws.llm.requests) == n and json.loads(p2.stdout)["counts"] == rep["counts"]
    # compared with a run without reference proofs
    out_b = tmp_path / "ev_b"
    assert autoform(ws.home, "eval", str(bench), "--out", str(out_b), "--json", timeout=300).returncode == 0
    p3 = autoform(ws.home, "eval", "compare", str(out), str(out_b), "--json")
    assert p3.returncode == 0, p3.stderr
    cmp = json.loads(p3.stdout)
    rows = {x["name"]: x for x in cmp["problems"]}
    assert rows["neq_prob"]["a"]["reference_proved"] is True and rows["neq_prob"]["b"]["reference_proved"] is None
    assert rows["neq_prob"]["differs"]
    a_rate, b_rate = cmp["rates"]["reference_proved"]
    assert (a_rate["k"], a_rate["n"]) == (3, 5) and (b_rate["k"], b_rate["n"]) == (0, 1)  # B: badref's own field


def test_prove_reference_field_in_the_file(workspace, tmp_path):
    """Only the problem whose line asks for it gets a reference proof."""
    ws = workspace(ref_script, extra=EXTRA + '\n\n[prove]\nstrategy = "attempts"')
    rows = [dict(TINY[0], prove_reference=True), TINY[1]]
    bench = write_bench(tmp_path / "two.jsonl", rows)
    p = autoform(ws.home, "eval", str(bench), "--out", str(tmp_path / "ev"), "--json", timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    by = {r["name"]: r for r in json.loads(p.stdout)["records"]}
    assert by["eq_prob"]["reference"]["proved"] and by["neq_prob"]["reference"] is None


def test_a_reference_given_without_its_proof_is_read_as_a_statement():
    """Benchmarks give a statement ending in `:=`, `:= by` or `:= by sorry`: each is the same statement."""
    from autoform.people import clean_statement

    base = "theorem a (x : ℕ) : x = x"
    for end in ("", " :=", " := by", " := sorry", " := by sorry", " := by\n  sorry"):
        assert clean_statement(base + end, definition=False) == base, end
    assert clean_statement("theorem byx : p", definition=False) == "theorem byx : p"
