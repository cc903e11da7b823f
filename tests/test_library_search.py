"""`exact?` before the LLM: a locked statement Mathlib already proves is closed by Lean's own suggestion (in
Lean's message format), never by `exact?` itself, with no prover call; the Atlas entry says which lemma."""

from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import SAMPLE_BOOK, autoform, book_script, label_of, role_of

from autoform.lean import library_search
from autoform.lean.oracle import LeanCheck, LeanMessage

pytestmark = pytest.mark.slow


def _info(text: str) -> LeanMessage:
    return LeanMessage(severity="info", line=3, column=2, text=text)


def test_suggestion_in_both_of_leans_formats():
    assert library_search.suggestion(LeanCheck(messages=[_info("Try this: exact Int.even_add.mpr h")])) == (
        "exact Int.even_add.mpr h"
    )
    assert (
        library_search.suggestion(LeanCheck(messages=[_info("Try this:\n  [apply] exact Nat.Prime.two_le hp")]))
        == "exact Nat.Prime.two_le hp"
    )
    assert library_search.mathlib_name("exact Nat.Prime.two_le hp") == "Nat.Prime.two_le"
    # no suggestion when exact? failed, left goals, or Lean did not answer
    err = LeanMessage(
        severity="error",
        line=3,
        column=2,
        text="`exact?` could not close the goal. Try `apply?` to see partial suggestions.",
    )
    assert library_search.suggestion(LeanCheck(messages=[err])) is None
    assert library_search.suggestion(LeanCheck(messages=[_info("Try this: refine foo ?_")])) is None
    assert library_search.suggestion(LeanCheck(failure="Lean timed out")) is None
    # a suggestion that cannot be read back as source: an inaccessible hypothesis, an elided term
    assert library_search.suggestion(LeanCheck(messages=[_info("Try this: exact Nat.le_of_lt h✝")])) is None
    assert library_search.suggestion(LeanCheck(messages=[_info("Try this: exact foo ⋯")])) is None


def test_the_search_itself_never_passes_the_pre_screen():
    """`exact?` and the other searches suggest a proof each time Lean checks one: a candidate holding them is
    refused (the gate admits what they suggest, never the search)."""
    from autoform.lean.prescreen import prescreen

    for search in ("exact?", "apply?", "rw?", "simp?", "simp_all?", "aesop?", "simp? says simp only [h]"):
        assert {r.code for r in prescreen(f"  {search}", role="proof")} == {"not_allowed"}, search
    assert prescreen("  exact List.find? p l |>.isSome_iff.mp h", role="proof") == []  # `find?` is a name


def test_a_statement_mathlib_proves_costs_no_prover_call(workspace):
    calls: list[tuple[str, str]] = []
    base = book_script()

    def script(body):
        calls.append((role_of(body), label_of(body)))
        return base(body)

    # the stand-in REPL's `exact?` knows one goal of the sample book, as Mathlib would
    exact = {"IsOdd (m * n)": "Int.odd_mul.mpr ⟨hm, hn⟩"}
    ws = workspace(script, repl_env={"FAKE_REPL_EXACT": json.dumps(exact)})
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr
    conn = sqlite3.connect(ws.home / "autoform.sqlite")
    row = conn.execute(
        "SELECT a.lean_code, a.model FROM atlas_entries a JOIN units u ON u.id = a.unit_id "
        "WHERE u.label = 'thm:odd-mul'"
    ).fetchone()
    assert row is not None
    code, model = row
    assert "exact Int.odd_mul.mpr ⟨hm, hn⟩" in code and "exact?" not in code and model == "lean exact?"
    proofs = conn.execute(
        "SELECT author FROM attempts t JOIN units u ON u.id = t.unit_id WHERE u.label = "
        "'thm:odd-mul' AND t.stage = 'proof'"
    ).fetchall()
    assert proofs == [("library_search",)]
    assert ("prover", "thm:odd-mul") not in calls and ("prover", "lem:even-mul") in calls
    post = conn.execute(
        "SELECT body, data FROM posts p JOIN units u ON u.id = p.unit_id WHERE p.kind = 'admission' "
        "AND u.label = 'thm:odd-mul'"
    ).fetchone()
    assert "in Mathlib as `Int.odd_mul.mpr`" in post[0] and json.loads(post[1])["note"]
    # the probe ran on the locked statement, and the suggestion was checked by the gate like any proof
    log = ws.repl_log
    assert any("exact?" in e["cmd"] and "isOdd_mul" in e["cmd"] for e in log)
    assert any("exact Int.odd_mul.mpr" in e["cmd"] and "exact?" not in e["cmd"] for e in log)

    # the unit's page says so
    site = ws.home / "site"
    r = autoform(ws.home, "atlas", "site", "--out", str(site))
    assert r.returncode == 0, r.stderr
    uid = conn.execute("SELECT id FROM units WHERE label = 'thm:odd-mul'").fetchone()[0]
    page = next(site.glob(f"*/{uid}.html")).read_text()
    assert "in Mathlib as `Int.odd_mul.mpr`" in page
