"""Agents grounded in the Mathlib index: retrieval posts for the drafter (notions) and the prover (lemmas), a
deprecated name replaced with no LLM call, the nearest names of an unknown one shown to the gap-closer."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from conftest import SAMPLE_BOOK, SHARED, autoform, book_script, lean

pytestmark = pytest.mark.slow

MINI_MATHLIB = {
    "Mathlib/Algebra/Group/Even.lean": """/-- An element `a` is even if `a = r + r` for some `r`. -/
def Even {α : Type*} [Add α] (a : α) : Prop := ∃ r, a = r + r

/-- An element `a` is odd if `a = 2 * k + 1` for some `k`. -/
def Odd {α : Type*} [Semiring α] (a : α) : Prop := ∃ k, a = 2 * k + 1

namespace Int

theorem even_add {m n : ℤ} : Even (m + n) ↔ (Even m ↔ Even n) := sorry

theorem odd_mul {m n : ℤ} : Odd (m * n) ↔ Odd m ∧ Odd n := sorry

theorem even_mul {m n : ℤ} : Even (m * n) ↔ Even m ∨ Even n := sorry

end Int

@[deprecated Int.even_mul (since := "2025-01-01")]
theorem bogus_old_even_mul {m n : ℤ} : Even (m * n) ↔ Even m ∨ Even n := Int.even_mul
""",
}


def test_agents_read_what_the_index_retrieves(workspace, tmp_path):
    src = tmp_path / "mini-mathlib"
    for rel, text in MINI_MATHLIB.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text, encoding="utf-8")
    base = book_script()
    gap_prompts: list[str] = []

    def script(body):
        from conftest import label_of, role_of

        role, label = role_of(body), label_of(body)
        if role == "prover" and label == "lem:even-mul":
            return lean("  exact (bogus_old_even_mul.mpr (Or.inl hm))")  # a name Mathlib deprecated
        if role == "prover" and label == "lem:even-or-odd":
            return lean("  exact bogus_evn_or_odd n")  # a name that never existed
        if role == "gap_closer":
            gap_prompts.append(body["messages"][-1]["content"])
        return base(body)

    ws = workspace(script)
    r = autoform(ws.home, "mathlib", "index", "--source", str(src), "--workers", "1")
    assert r.returncode == 0, r.stderr
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr

    conn = sqlite3.connect(ws.home / "autoform.sqlite")
    posts = [
        (lbl, json.loads(d), b)
        for lbl, d, b in conn.execute(
            "SELECT u.label, p.data, p.body FROM posts p JOIN units u ON u.id = p.unit_id WHERE p.kind = 'retrieval'"
        )
    ]
    notions = {lbl: d["names"] for lbl, d, _ in posts if d["purpose"] == "notions"}
    lemmas = {lbl: d["names"] for lbl, d, _ in posts if d["purpose"] == "lemmas"}
    assert "Even" in notions["lem:even-mul"] and "Odd" in notions["thm:odd-mul"]
    assert "Int.odd_mul" in lemmas["thm:odd-mul"]
    # the drafter's prompt carried the notions, the prover's the lemmas (within their budgets)
    requests = [json.loads(r[0]) for r in conn.execute("SELECT request FROM llm_calls")]
    drafter = [q for q in requests if q["role"] == "drafter"]
    assert any("Mathlib declarations for the notions" in m["content"] for q in drafter for m in q["messages"])
    prover = [q for q in requests if q["role"] == "prover"]
    assert any("`Int.odd_mul`" in m["content"] for q in prover for m in q["messages"])

    # the deprecated name was replaced by its current one and admitted, with no gap-closer call
    rows = conn.execute(
        "SELECT t.author, t.admitted, t.lean_code FROM attempts t JOIN units u ON u.id = t.unit_id "
        "WHERE u.label = 'lem:even-mul' AND t.stage = 'proof' ORDER BY t.id"
    ).fetchall()
    assert [(a, ok) for a, ok, _ in rows] == [("prover", 0), ("mathlib_rename", 1)]
    assert "Int.even_mul.mpr" in rows[1][2] and "bogus_old_even_mul" not in rows[1][2]
    # an unknown name: its nearest existing names reach the gap-closer
    assert any("bogus_evn_or_odd" in p and "nearest names" in p for p in gap_prompts)

    # the Atlas is indexed with Mathlib: a later book's agents find what this one proved
    r = autoform(ws.home, "mathlib", "index", "--source", str(src), "--workers", "1", "--json")
    assert json.loads(r.stdout)["atlas_declarations"] >= 30
    r = autoform(ws.home, "mathlib", "name", "Atlas.Ent.isOdd_mul", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "exists"


@pytest.mark.skipif(not (SHARED / "lean-output" / "repl-tests").exists(), reason="../shared/data/lean-output is absent")
def test_unknown_names_are_read_in_leans_recorded_spelling(tmp_path):
    """The REPL's recorded reply (v4.33) says "Unknown identifier `x`"; older Lean "unknown identifier 'x'"."""
    from autoform.mathlib.grounding import Grounding

    reply = (SHARED / "lean-output" / "repl-tests" / "test" / "invalid_tactic.expected.out").read_text()
    recorded = next(json.loads(b) for b in reply.split("\n\n") if "Unknown identifier" in b)["messages"][0]["data"]
    src = tmp_path / "src" / "Mathlib"
    src.mkdir(parents=True)
    (src / "A.lean").write_text("theorem my_real_premise : True := trivial\n")
    from autoform.mathlib.index import MathlibIndex, build

    build(MathlibIndex(tmp_path / "i.sqlite"), tmp_path / "src", workers=1)
    g = Grounding(tmp_path / "i.sqlite")
    try:
        for text in (recorded, "unknown identifier 'my_fake_premise'"):
            _, nearest = g.repairs(f"- error at line 1: {text}")
            assert nearest == {"my_fake_premise": ["my_real_premise"]}
    finally:
        g.close()


# ------------------------------------------------------------------------ the model proposes, the index checks
def grounder_reply(names: list[str], concepts: list[str] | None = None) -> str:
    """A reasoning model's reply to the grounder: thoughts, then the JSON in a fence with a trailing comma."""
    body = json.dumps({"concepts": concepts or ["even integer"], "names": names})
    return f"<think>The statement is about parity.</think>\nHere:\n```json\n{body[:-1]},}}\n```\n"


#: ``[job] propose_names`` on; the proof strategy fixed (these tests are about the drafter's side)
PROPOSING = 'propose_names = true\n\n[prove]\nstrategy = "attempts"\n'


def is_grounder(body: dict) -> bool:
    return body["messages"][0]["content"].startswith("You are the Mathlib grounder")


def test_proposed_names_are_checked_before_the_drafter_reads_them(workspace, tmp_path):
    """With ``[job] propose_names``: the model proposes Mathlib names for each unit (one LLM call, role
    ``grounder``, counted like every call); a deprecated name reaches the drafter as its current name with its
    signature, an invented one never as a declaration (only as a name that does not exist, with the nearest
    existing ones)."""
    from conftest import label_of

    src = tmp_path / "mini-mathlib"
    for rel, text in MINI_MATHLIB.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text, encoding="utf-8")
    base = book_script()

    def script(body):
        if is_grounder(body):
            if label_of(body) == "lem:even-mul":
                return grounder_reply(["`bogus_old_even_mul`", "Int.even_mul_of_both_halves : Prop", "Even"])
            return grounder_reply(["Odd"])
        return base(body)

    ws = workspace(script, extra=PROPOSING)
    autoform(ws.home, "mathlib", "index", "--source", str(src), "--workers", "1", check=True)
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr

    conn = sqlite3.connect(ws.home / "autoform.sqlite")
    calls = conn.execute("SELECT u.label, c.request FROM llm_calls c JOIN units u ON u.id = c.unit_id").fetchall()
    grounder = [lbl for lbl, req in calls if json.loads(req)["role"] == "grounder"]
    drafted = {lbl for lbl, req in calls if json.loads(req)["role"] == "drafter"}
    assert sorted(grounder) == sorted(drafted)  # one call a drafted unit, recorded with its unit
    assert len([b for b in ws.llm.requests if is_grounder(b)]) == len(grounder)  # every one sent and recorded
    status = json.loads(autoform(ws.home, "status", "ent", "--json", check=True).stdout)
    assert status["llm"]["calls"] == len(calls)  # the grounder's calls count in the usage like every call

    (data,) = [
        json.loads(d)
        for (d,) in conn.execute(
            "SELECT p.data FROM posts p JOIN units u ON u.id = p.unit_id WHERE p.kind = 'retrieval' "
            "AND u.label = 'lem:even-mul' AND json_extract(p.data, '$.purpose') = 'proposed'"
        )
    ]
    assert data["proposed"] == ["bogus_old_even_mul", "Int.even_mul_of_both_halves", "Even"]
    assert data["deprecated"] == {"bogus_old_even_mul": "Int.even_mul"}
    assert "Int.even_mul_of_both_halves" in data["unknown"]
    assert data["names"][:2] == ["Int.even_mul", "Even"] and "Int.even_mul_of_both_halves" not in data["names"]

    prompts = [
        m["content"]
        for (req,) in conn.execute(
            "SELECT c.request FROM llm_calls c JOIN units u ON u.id = c.unit_id WHERE u.label = 'lem:even-mul'"
        )
        if (q := json.loads(req))["role"] == "drafter"
        for m in q["messages"]
    ]
    text = "\n".join(prompts)
    # the deprecated name arrives as its current one, with its signature
    assert "- `Int.even_mul` (theorem) {m n : ℤ} : Even (m * n) ↔ Even m ∨ Even n" in text
    assert "replaces the deprecated `bogus_old_even_mul`" in text
    # the invented name is never listed as a declaration: only said not to exist
    assert "- `Int.even_mul_of_both_halves`" not in text
    assert "Not in Mathlib's index (invented or misspelt: do not use them): `Int.even_mul_of_both_halves`" in text


def test_an_unusable_grounder_reply_leaves_the_index_grounding(workspace, tmp_path):
    """A grounder that never answers in the format asked is asked again ([llm] format_retries), then the unit goes
    on with the index's own notions; the failure is on the board. Off by default: no grounder call at all."""
    src = tmp_path / "mini-mathlib"
    for rel, text in MINI_MATHLIB.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text, encoding="utf-8")
    base = book_script()

    def script(body):
        if is_grounder(body):
            return '```json\n{"names": ["the evenness predicate"]}\n```'
        return base(body)

    ws = workspace(script, extra=PROPOSING)
    autoform(ws.home, "mathlib", "index", "--source", str(src), "--workers", "1", check=True)
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr
    conn = sqlite3.connect(ws.home / "autoform.sqlite")
    critiques = [b for (b,) in conn.execute("SELECT body FROM posts WHERE author = 'grounder' AND kind = 'critique'")]
    assert critiques and all("not a Lean name" in c for c in critiques)
    proved = conn.execute("SELECT COUNT(*) FROM units WHERE status = 'proved'").fetchone()[0]
    assert proved > 0
    purposes = [json.loads(d)["purpose"] for (d,) in conn.execute("SELECT data FROM posts WHERE kind = 'retrieval'")]
    assert "notions" in purposes and "proposed" not in purposes


def test_grounder_replies_are_read_strictly():
    from autoform.llm import MalformedReply
    from autoform.replies import parse_name_proposals

    got = parse_name_proposals(
        grounder_reply(["`Nat.Prime`", "@orderOf", "Subgroup.index : Subgroup G → ℕ", "Nat.Prime"])
    )
    assert got.names == ["Nat.Prime", "orderOf", "Subgroup.index"] and got.concepts == ["even integer"]
    assert parse_name_proposals('{"names": "Module.finrank"}').names == ["Module.finrank"]  # a lone string is one
    assert len(parse_name_proposals(json.dumps({"names": [f"A.n{i}" for i in range(30)]}), max_names=12).names) == 12
    for bad, why in (
        ('{"names": ["greatest common divisor"]}', "not a Lean name"),
        ('{"lemmas": ["Nat.Prime"]}', "lacks the field(s) 'names'"),
        ('{"names": {"a": ["Nat.Prime"]}}', "must be a list of strings"),
        ("<think>Nat.Prime</think>", "no final answer"),
    ):
        with pytest.raises(MalformedReply, match=re.escape(why)):
            parse_name_proposals(bad)
