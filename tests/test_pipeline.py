"""The per-unit pipeline through the real CLI: k drafts judged by the back-translation critic, racing prover
attempts, automation before the gap-closer. Scripted LLM server + the oracle double."""

from __future__ import annotations

import json
import sqlite3
from types import SimpleNamespace

import pytest
from conftest import autoform, label_of, lean, make_repl_dir, role_of, write_config

from autoform.pipeline import AUTOMATION_TACTIC, automation_proof

BOOK = r"""\documentclass{article}
\newtheorem{theorem}{Theorem}
\newtheorem{lemma}[theorem]{Lemma}
\begin{document}
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

STATEMENT = {"lem:a": "theorem add_zero' (n : ℕ) : n + 0 = n", "thm:b": "theorem zero_add' (n : ℕ) : 0 + n = n"}


def _json(obj: dict) -> str:
    return "```json\n" + json.dumps(obj) + "\n```"


def _base(body: dict) -> str:
    role, label = role_of(body), label_of(body)
    if role == "reader":
        return _json({"statement": "s", "concepts": [], "conventions": [], "dependencies": []})
    if role == "drafter":
        return lean(STATEMENT[label])
    if role == "critic":
        return _json({"back_translation": "same", "faithful": True, "score": 9, "issues": []})
    return lean("  simp")


def _home(tmp_path, fake_llm_factory, script, job: str = "", automation: bool = False):
    srv = fake_llm_factory(script)
    home = tmp_path / "home"
    home.mkdir()
    write_config(home, base_url=srv.base_url, repl_dir=make_repl_dir(tmp_path), automation=automation, extra=job)
    book = tmp_path / "book.tex"
    book.write_text(BOOK)
    autoform(home, "ingest", str(book), "--book", "mini", check=True)
    return home, srv


def _db(home):
    conn = sqlite3.connect(home / "autoform.sqlite")
    conn.row_factory = sqlite3.Row
    return conn


def test_k_drafts_the_critic_picks_the_faithful_one(tmp_path, fake_llm_factory):
    def script(body):
        role, label = role_of(body), label_of(body)
        user = body["messages"][-1]["content"]
        if role == "drafter" and label == "lem:a":
            assert "Give 3 different candidate statements" in user
            return (
                lean("theorem weak_a (n : ℕ) : True")
                + lean("theorem bad_a (n : ℕ) : bogus_rel n")
                + lean(STATEMENT["lem:a"])
            )
        if role == "critic" and label == "lem:a":
            faithful = "add_zero'" in user
            return _json(
                {
                    "back_translation": "x",
                    "faithful": faithful,
                    "score": 9 if faithful else 2,
                    "issues": [] if faithful else ["the conclusion is True"],
                }
            )
        return _base(body)

    home, srv = _home(tmp_path, fake_llm_factory, script, job="drafts = 3\n")
    r = autoform(home, "run", "mini", "--json")
    assert r.returncode == 0, r.stderr
    conn = _db(home)
    uid = conn.execute("SELECT id FROM units WHERE label = 'lem:a'").fetchone()[0]
    stmt = conn.execute(
        "SELECT lean_code, admitted FROM attempts WHERE unit_id = ? AND stage = 'statement' ORDER BY id", (uid,)
    ).fetchall()
    assert [(s["lean_code"].split()[1], s["admitted"]) for s in stmt] == [
        ("weak_a", 1),
        ("bad_a", 0),
        ("add_zero'", 1),
    ]  # every draft checked by Lean with sorry
    lock = json.loads(conn.execute("SELECT data FROM posts WHERE kind = 'lock' AND unit_id = ?", (uid,)).fetchone()[0])
    assert lock["name"] == "add_zero'" and lock["fidelity"] == "faithful 9/10" and lock["drafts"] == 2
    critiques = [
        json.loads(x[0])
        for x in conn.execute("SELECT data FROM posts WHERE kind = 'critique' AND unit_id = ? ORDER BY id", (uid,))
    ]
    assert [c["fidelity"] for c in critiques] == ["unfaithful 2/10", "faithful 9/10"]  # only elaborating drafts
    assert conn.execute("SELECT decl_name FROM atlas_entries WHERE unit_id = ?", (uid,)).fetchone()[0] == "add_zero'"
    # the names of the drafts not locked are free again for other units
    assert [r[0] for r in conn.execute("SELECT name FROM decl_names WHERE unit_id = ?", (uid,))] == ["add_zero'"]


def test_racing_attempts_first_admitted_wins(tmp_path, fake_llm_factory):
    def script(body):
        if role_of(body) == "prover":
            user = body["messages"][-1]["content"]
            return lean("  simp") if "attempt 2 of 3" in user else lean("  exact bogus_lemma n")
        return _base(body)

    home, srv = _home(tmp_path, fake_llm_factory, script, job="race = 3\n")
    r = autoform(home, "run", "mini", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["units"] == {"proved": 2}
    conn = _db(home)
    for (uid,) in conn.execute("SELECT id FROM units").fetchall():
        att = conn.execute(
            "SELECT author, admitted FROM attempts WHERE unit_id = ? AND stage = 'proof'", (uid,)
        ).fetchall()
        assert 1 <= len(att) <= 3 and sum(a["admitted"] for a in att) == 1
        assert all(a["author"] == "prover" for a in att)
    assert conn.execute("SELECT COUNT(*) FROM atlas_entries").fetchone()[0] == 2
    provers = [b for b in srv.requests if role_of(b) == "prover"]
    assert len(provers) == 6  # three racing calls per unit, with distinct prompts (no cache collapse)
    assert not [b for b in srv.requests if role_of(b) == "gap_closer"]


def test_automation_closes_before_the_gap_closer_is_asked(tmp_path, fake_llm_factory):
    def script(body):
        if role_of(body) == "prover":
            return lean("  exact bogus_lemma n")
        return _base(body)

    home, srv = _home(tmp_path, fake_llm_factory, script, automation=True)
    r = autoform(home, "run", "mini", "--json")
    assert r.returncode == 0, r.stderr
    conn = _db(home)
    rows = conn.execute("SELECT author, admitted, lean_code FROM attempts WHERE stage = 'proof' ORDER BY id")
    rows = rows.fetchall()
    assert [(a["author"], a["admitted"]) for a in rows] == [("prover", 0), ("automation", 1)] * 2
    assert rows[1]["lean_code"] == AUTOMATION_TACTIC
    assert not [b for b in srv.requests if role_of(b) == "gap_closer"]  # no LLM call was needed
    code = conn.execute("SELECT lean_code FROM atlas_entries LIMIT 1").fetchone()[0]
    assert "first | (omega; done)" in code


@pytest.mark.parametrize(
    ("messages", "expected_prefix"),
    [
        (
            [{"text": "unsolved goals\nn : ℕ\n⊢ n + 0 = n", "severity": "error", "line": 3}],
            "  intro n\nall_goals first",
        ),
        ([{"text": "unknown identifier 'x'", "severity": "error", "line": 3}], "first | (omega; done)"),
    ],
)
def test_automation_proof(messages, expected_prefix):
    last = SimpleNamespace(lean_code="  intro n", messages=messages)
    assert automation_proof(last).startswith(expected_prefix)


def test_reader_found_dependencies_become_edges(tmp_path, fake_llm_factory):
    def script(body):
        if role_of(body) == "reader" and label_of(body) == "thm:b":
            return _json({"statement": "s", "concepts": [], "conventions": [], "dependencies": ["Lemma 1"]})
        if role_of(body) == "reader" and label_of(body) == "lem:a":
            return _json({"statement": "s", "dependencies": ["Theorem 7 (not in the book)"]})
        return _base(body)

    home, _ = _home(tmp_path, fake_llm_factory, script)
    conn = _db(home)
    conn.execute("DELETE FROM unit_deps")  # as if the parser had missed the \ref
    conn.commit()
    assert autoform(home, "run", "mini").returncode == 0
    edges = conn.execute(
        "SELECT u.label, d.label, e.via FROM unit_deps e JOIN units u ON u.id = e.unit_id "
        "JOIN units d ON d.id = e.dep_id"
    ).fetchall()
    assert [tuple(e) for e in edges] == [("thm:b", "lem:a", "reader")]


def test_a_failed_dependency_does_not_block_and_its_stated_form_reaches_the_dependent(tmp_path, fake_llm_factory):
    """lem:a's statement is locked but every proof of it fails: thm:b still runs, and its drafter and prover
    see lem:a's locked statement as stated-not-proved, outside the Lean prelude."""

    def script(body):
        role, label = role_of(body), label_of(body)
        if label == "lem:a" and role in ("prover", "gap_closer"):
            return lean("  exact bogus_lemma n")
        return _base(body)

    home, srv = _home(tmp_path, fake_llm_factory, script, job="max_attempts = 2\n")
    r = autoform(home, "run", "mini", "--json")
    assert r.returncode == 0, r.stderr  # the job finished; a unit that failed is a result, not an error
    assert json.loads(r.stdout)["units"] == {"failed": 1, "proved": 1}
    for role in ("drafter", "prover"):
        user = next(b for b in srv.requests if role_of(b) == role and label_of(b) == "thm:b")["messages"][-1]
        assert "Dependencies stated in Lean but not proved" in user["content"]
        assert f"add_zero' (not proved yet): `{STATEMENT['lem:a']}`" in user["content"]
    first = next(b for b in srv.requests if role_of(b) == "drafter" and label_of(b) == "lem:a")["messages"][-1]
    assert "stated in Lean but not proved" not in first["content"]
    # thm:b's admitted code does not rest on lem:a
    code = (
        _db(home)
        .execute("SELECT a.lean_code FROM atlas_entries a JOIN units u ON u.id = a.unit_id WHERE u.label = 'thm:b'")
        .fetchone()[0]
    )
    assert "add_zero'" not in code


def test_a_taken_name_is_renamed_in_the_declaration_not_in_the_first_match(tmp_path):
    """`em` is taken by another unit: `theorem em ...` becomes `theorem em_2 ...` (not `theorem_2 em`)."""
    from autoform.pipeline import UnitPipeline
    from autoform.store import Store

    store = Store(tmp_path / "s.sqlite")
    with store.tx() as c:
        bid = c.execute(
            "INSERT INTO books (slug, source_path, source_kind, ingested_at) VALUES ('b', '/x', 'latex', 0)"
        ).lastrowid
        a, b = (
            c.execute(
                "INSERT INTO units (book_id, ident, seq, kind, statement) VALUES (?,?,?,?,?)",
                (bid, f"u{i}", i, "theorem", "s"),
            ).lastrowid
            for i in (1, 2)
        )
    store.reserve_name(bid, a, "em")
    me = SimpleNamespace(store=store, book=SimpleNamespace(id=bid))
    unit = SimpleNamespace(id=b)
    got = UnitPipeline._unique_name(me, "theorem em (p : Prop) : p ∨ ¬p", unit)  # type: ignore[arg-type]
    assert got == "theorem em_2 (p : Prop) : p ∨ ¬p"
