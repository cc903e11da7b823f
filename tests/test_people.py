"""People in the loop, end to end through the real CLI with the scripted server and the stand-in REPL: a hint
reaches the next prompt of its unit and no other; a person's statement is locked and proved; a rejected unit
leaves atlas/, is drafted again with the reason in its prompt, and its dependent is re-checked; ``retry
--failed`` re-opens exactly the failed units, and ``retry --budget`` gives a unit's next proof search its budget;
a running job takes up the units re-opened during its run, and a command run while a job runs changes nothing it
should not."""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import autoform, label_of, lean, make_repl_dir, role_of, write_config

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
\begin{theorem}\label{thm:c}
For every natural number $n$, $n \cdot 1 = n$.
\end{theorem}
\begin{proof}
Clear.
\end{proof}
\end{document}
"""

STATEMENT = {
    "lem:a": "theorem add_zero' (n : ℕ) : n + 0 = n",
    "thm:b": "theorem zero_add' (n : ℕ) : 0 + n = n",
    "thm:c": "theorem mul_one' (n : ℕ) : n * 1 = n",
}
#: the proof of thm:b uses lem:a's declaration, so its Atlas code rests on it
PROOF = {"thm:b": "  have h := add_zero' n\n  simp", "lem:a": "  simp", "thm:c": "  simp"}
HINT = "Mind the order of the summands: the book adds zero on the right."
REASON = "the book means 0 + n, not n + 0"


def _json(obj: dict) -> str:
    return "```json\n" + json.dumps(obj) + "\n```"


def script_for(overrides: dict | None = None):
    overrides = overrides or {}

    def script(body: dict) -> str:
        role, label = role_of(body), label_of(body)
        if (role, label) in overrides:
            return overrides[(role, label)](body)
        if role == "reader":
            return _json({"statement": "s", "concepts": [], "conventions": [], "dependencies": []})
        if role == "drafter":
            return lean(STATEMENT[label])
        if role == "critic":
            return _json({"back_translation": "same", "faithful": True, "score": 9, "issues": []})
        return lean(PROOF[label])

    return script


def _home(tmp_path: Path, fake_llm_factory, script=None, extra: str = ""):
    srv = fake_llm_factory(script or script_for())
    home = tmp_path / "home"
    home.mkdir()
    write_config(home, base_url=srv.base_url, repl_dir=make_repl_dir(tmp_path), extra=extra)
    book = tmp_path / "book.tex"
    book.write_text(BOOK)
    autoform(home, "ingest", str(book), "--book", "mini", check=True)
    return home, srv


def _db(home: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(home / "autoform.sqlite")
    conn.row_factory = sqlite3.Row
    return conn


def _uid(conn: sqlite3.Connection, label: str) -> int:
    return conn.execute("SELECT id FROM units WHERE label = ?", (label,)).fetchone()[0]


def _status(conn: sqlite3.Connection, label: str) -> str:
    return conn.execute("SELECT status FROM units WHERE label = ?", (label,)).fetchone()[0]


def _prompts(srv, label: str, role: str | None = None) -> list[str]:
    return [
        b["messages"][-1]["content"] + b["messages"][0]["content"]
        for b in srv.requests
        if label_of(b) == label and (role is None or role_of(b) == role)
    ]


def _atlas_text(home: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((home / "atlas").rglob("*.lean")))


def test_a_hint_reaches_the_next_prompt_of_its_unit_and_no_other(tmp_path, fake_llm_factory):
    home, srv = _home(tmp_path, fake_llm_factory)
    r = autoform(home, "hint", "mini", "lem:a", HINT, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["units"][0]["label"] == "lem:a"
    r = autoform(home, "run", "mini", "--json")
    assert r.returncode == 0, r.stderr
    own = _prompts(srv, "lem:a", "drafter") + _prompts(srv, "lem:a", "prover")
    assert own and all(HINT in p for p in own)
    others = _prompts(srv, "thm:b") + _prompts(srv, "thm:c")
    assert others and not any(HINT in p for p in others)
    post = _db(home).execute("SELECT * FROM posts WHERE kind = 'hint'").fetchone()
    assert post["author"] == "person" and post["pinned"] == 1
    # shown in the transcript and on the unit's page
    t = autoform(home, "transcript", "mini", "lem:a", check=True).stdout
    assert "hint by a person" in t and HINT in t
    autoform(home, "atlas", "site", "--out", str(tmp_path / "site"), check=True)
    pages = [p.read_text() for p in (tmp_path / "site").rglob("*.html")]
    assert sum("Mind the order of the summands" in p for p in pages) == 1


def test_bad_references_are_one_line_errors(tmp_path, fake_llm_factory):
    home, _ = _home(tmp_path, fake_llm_factory)
    r = autoform(home, "hint", "mini", "thm:nope", "x")
    assert r.returncode == 2 and "no unit 'thm:nope' in mini" in r.stderr and "Traceback" not in r.stderr
    r = autoform(home, "review", "mini", "lem:a", "--approve")
    assert r.returncode == 2 and "not in the Atlas" in r.stderr
    r = autoform(home, "retry", "mini")
    assert r.returncode == 2 and "--failed" in r.stderr
    r = autoform(home, "retry", "mini", "--failed", "--budget", "nonsense=3")
    assert r.returncode == 2 and "--budget: 'nonsense=3'" in r.stderr
    assert _db(home).execute("SELECT COUNT(*) FROM posts").fetchone()[0] == 0


def test_a_persons_statement_is_locked_and_proved(tmp_path, fake_llm_factory):
    home, srv = _home(tmp_path, fake_llm_factory)
    f = tmp_path / "a.lean"
    f.write_text("import Mathlib\n\ntheorem person_add_zero (n : ℕ) : n + 0 = n := by sorry\n")
    r = autoform(home, "state", "mini", "Lemma 1", str(f), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    conn = _db(home)
    lock = conn.execute("SELECT * FROM posts WHERE kind = 'lock'").fetchone()
    data = json.loads(lock["data"])
    assert lock["author"] == "person" and data["stated_by"] == "person"
    assert data["statement"] == "theorem person_add_zero (n : ℕ) : n + 0 = n" and data["elaborated_type"]
    r = autoform(home, "run", "mini", "--json")
    assert r.returncode == 0, r.stderr
    assert not _prompts(srv, "lem:a", "drafter")  # used instead of drafting
    assert _prompts(srv, "lem:a", "prover")
    entry = conn.execute("SELECT * FROM atlas_entries WHERE unit_id = ?", (_uid(conn, "lem:a"),)).fetchone()
    assert entry["status"] == "proved" and entry["decl_name"] == "person_add_zero"
    assert "theorem person_add_zero" in _atlas_text(home)
    # the unit's page says who stated it
    autoform(home, "atlas", "site", "--out", str(tmp_path / "site"), check=True)
    assert any("stated by a person" in p.read_text() for p in (tmp_path / "site").rglob("*.html"))


def test_a_statement_lean_refuses_or_without_lean_changes_nothing(tmp_path, fake_llm_factory):
    home, _ = _home(tmp_path, fake_llm_factory)
    bad = tmp_path / "bad.lean"
    bad.write_text("theorem t (n : ℕ) : bogus_rel n\n")
    r = autoform(home, "state", "mini", "lem:a", str(bad))
    assert r.returncode == 1 and "Lean refused the statement" in r.stderr
    cheat = tmp_path / "cheat.lean"
    cheat.write_text("theorem t (n : ℕ) : n + 0 = n := by native_decide\n")
    r = autoform(home, "state", "mini", "lem:a", str(cheat))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    toml = home / "autoform.toml"
    toml.write_text(toml.read_text().replace('repl_path = "', 'repl_path = "/no/such/repl'))
    good = tmp_path / "good.lean"
    good.write_text("theorem t (n : ℕ) : n + 0 = n\n")
    r = autoform(home, "state", "mini", "lem:a", str(good))
    assert r.returncode == 3 and "Lean is needed" in r.stderr and "nothing was changed" in r.stderr
    conn = _db(home)
    assert conn.execute("SELECT COUNT(*) FROM posts").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM decl_names").fetchone()[0] == 0


def test_a_rejected_unit_leaves_the_atlas_is_redrafted_and_its_dependent_rechecked(tmp_path, fake_llm_factory):
    def drafter_a(body: dict) -> str:
        return lean("theorem zero_add_a (n : ℕ) : 0 + n = n" if REASON in str(body) else STATEMENT["lem:a"])

    home, srv = _home(tmp_path, fake_llm_factory, script_for({("drafter", "lem:a"): drafter_a}))
    autoform(home, "run", "mini", check=True)
    conn = _db(home)
    assert {_status(conn, x) for x in STATEMENT} == {"proved"}
    queue = json.loads(autoform(home, "review", "mini", "--json", check=True).stdout)
    assert [q["label"] for q in queue] == ["lem:a", "thm:b", "thm:c"]
    assert all(q["critic"] == "faithful 9/10" and q["review"] == "unreviewed" for q in queue)
    shown = autoform(home, "review", "mini", "--next", check=True).stdout  # the book and the Lean side by side
    assert "lem:a" in shown and "add_zero'" in shown and "faithful 9/10" in shown and "thm:b" not in shown
    autoform(home, "review", "mini", "thm:c", "--approve", check=True)
    assert [q["label"] for q in json.loads(autoform(home, "review", "mini", "--json").stdout)] == ["lem:a", "thm:b"]
    # the site shows each unit's review state and the share of the Atlas reviewed; the Blueprint carries it
    autoform(home, "atlas", "site", "--out", str(tmp_path / "site"), check=True)
    book_page = next((tmp_path / "site").glob("*/index.html")).read_text()
    assert "Reviewed by a person: 1 of 3 Atlas entries (33%)" in book_page
    assert book_page.count("review-approved") == 1 and book_page.count("review-unreviewed") == 2
    autoform(home, "atlas", "blueprint", "--out", str(tmp_path / "bp"), check=True)
    tex = (tmp_path / "bp" / "src" / "content.tex").read_text()
    assert tex.count("\\leanok\n% review: approved") == 1 and tex.count("\\leanok\n% review: unreviewed") == 2

    r = autoform(home, "review", "mini", "lem:a", "--reject", REASON, "--json")
    assert r.returncode == 0, r.stderr
    change = json.loads(r.stdout)
    assert [u["label"] for u in change["rechecked"]] == ["thm:b"]
    assert _status(conn, "lem:a") == "pending" and _status(conn, "thm:b") == "pending"
    assert _status(conn, "thm:c") == "proved"
    atlas = _atlas_text(home)
    assert "add_zero'" not in atlas and "zero_add'" not in atlas and "mul_one'" in atlas
    hist = conn.execute("SELECT decl_name, reason FROM atlas_history ORDER BY id").fetchall()
    assert [h[0] for h in hist] == ["add_zero'", "zero_add'"] and REASON in hist[0][1]
    hint = conn.execute("SELECT * FROM posts WHERE kind = 'hint'").fetchone()
    assert hint["pinned"] == 1 and REASON in hint["body"] and hint["unit_id"] == _uid(conn, "lem:a")
    status = json.loads(autoform(home, "status", "mini", "--json", check=True).stdout)["people"]
    assert status["rejections"] == 1 and status["approvals"] == 1 and status["withdrawn"] == 2
    assert status["reviewed"] == 1 and status["atlas_entries"] == 1

    before = len(srv.requests)
    autoform(home, "run", "mini", check=True)
    assert any(REASON in p for p in _prompts(srv, "lem:a", "drafter"))
    new = srv.requests[before:]
    assert {label_of(b) for b in new if role_of(b) == "prover"} == {"lem:a", "thm:b"}  # thm:b re-checked
    entries = {r["unit_id"]: r for r in conn.execute("SELECT * FROM atlas_entries")}
    assert entries[_uid(conn, "lem:a")]["decl_name"] == "zero_add_a"
    assert entries[_uid(conn, "thm:b")]["status"] == "proved"
    assert "zero_add_a" in _atlas_text(home)
    # the approval of thm:c still holds; the new lem:a awaits review
    states = {q["label"]: q["review"] for q in json.loads(autoform(home, "review", "mini", "--json").stdout)}
    assert states == {"lem:a": "unreviewed", "thm:b": "unreviewed"}


def test_retry_failed_reopens_exactly_the_failed_units(tmp_path, fake_llm_factory):
    fails = {"thm:b", "thm:c"}
    bad = {("prover", x): (lambda body: lean("  exact bogus_p n")) for x in fails}
    bad.update({("gap_closer", x): (lambda body: lean("  exact bogus_q n")) for x in fails})
    script = script_for(bad)
    home, srv = _home(tmp_path, fake_llm_factory, script, extra="decompose = false\nmax_attempts = 2")
    autoform(home, "run", "mini")
    conn = _db(home)
    assert [_status(conn, x) for x in ("lem:a", "thm:b", "thm:c")] == ["proved", "failed", "failed"]
    r = autoform(home, "retry", "mini", "lem:a")
    assert r.returncode == 2 and "in the Atlas" in r.stderr
    r = autoform(home, "retry", "mini", "--failed", "--json")
    assert r.returncode == 0, r.stderr
    assert sorted(u["label"] for u in json.loads(r.stdout)["units"]) == ["thm:b", "thm:c"]
    assert [_status(conn, x) for x in ("lem:a", "thm:b", "thm:c")] == ["proved", "pending", "pending"]
    # history kept, no longer counted: a note of how each ended is pinned for its agents
    assert conn.execute("SELECT COUNT(*) FROM attempts WHERE superseded = 1").fetchone()[0] >= 4
    notes = conn.execute("SELECT body FROM posts WHERE kind = 'hint' AND pinned = 1").fetchall()
    assert len(notes) == 2 and all("bogus" in n[0] for n in notes)
    before = len(srv.requests)
    autoform(home, "run", "mini")
    again = [b for b in srv.requests[before:] if role_of(b) == "prover"]
    assert {label_of(b) for b in again} == {"thm:b", "thm:c"}  # fresh attempts, and only for those
    assert any("Retried by a person" in b["messages"][-1]["content"] for b in again)


def test_commands_while_a_job_works_on_the_unit_change_nothing_they_should_not(tmp_path, fake_llm_factory):
    asked, release = threading.Event(), threading.Event()

    def slow_prover(body: dict) -> str:
        asked.set()
        release.wait(60)
        return lean("  exact bogus_first n")

    home, srv = _home(tmp_path, fake_llm_factory, script_for({("prover", "thm:c"): slow_prover}))
    conn = _db(home)
    job = subprocess.Popen(
        [sys.executable, "-m", "autoform", "--home", str(home), "run", "mini", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=home,
    )
    try:
        assert asked.wait(60), "the job never asked the prover"
        deadline = time.monotonic() + 20
        while _status(conn, "thm:c") != "working" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _status(conn, "lem:a") == "proved" and _status(conn, "thm:b") == "proved"
        posts = "SELECT id, kind, unit_id FROM posts ORDER BY id"
        snapshot = [tuple(r) for r in conn.execute(posts)]
        f = tmp_path / "c.lean"
        f.write_text("theorem person_mul_one (n : ℕ) : n * 1 = n\n")
        r = autoform(home, "state", "mini", "thm:c", str(f))
        assert r.returncode == 1 and "in work by job" in r.stderr and "nothing was changed" in r.stderr
        r = autoform(home, "retry", "mini", "thm:c")
        assert r.returncode == 2 and "a job works on it already" in r.stderr
        assert [tuple(r) for r in conn.execute(posts)] == snapshot
        r = autoform(home, "review", "mini", "lem:a", "--reject", REASON)  # thm:b rests on it: not in work
        assert r.returncode == 0, r.stderr
        assert not conn.execute(
            "SELECT 1 FROM posts WHERE author = 'person' AND kind = 'lock' AND unit_id = ?", (_uid(conn, "thm:c"),)
        ).fetchone()
        r = autoform(home, "hint", "mini", "thm:c", HINT)
        assert r.returncode == 0, r.stderr
    finally:
        release.set()
        out, err = job.communicate(timeout=120)
    assert job.returncode in (0, 1), err
    # the hint reached the unit's next prompt in the running job (the gap-closer's repair)
    repair = [b for b in srv.requests if role_of(b) == "gap_closer" and label_of(b) == "thm:c"]
    assert repair and HINT in repair[-1]["messages"][-1]["content"]
    assert not any(HINT in p for p in _prompts(srv, "lem:a") + _prompts(srv, "thm:b"))  # and no other unit's
    # the job took up the units re-opened during its run: lem:a re-drafted with the reason, thm:b re-checked
    assert any(REASON in p for p in _prompts(srv, "lem:a", "drafter"))
    assert len(_prompts(srv, "thm:b", "prover")) == 2
    assert {_status(conn, x) for x in STATEMENT} == {"proved"} and "add_zero'" in _atlas_text(home)
    assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1
    hist = conn.execute("SELECT decl_name FROM atlas_history ORDER BY id").fetchall()
    assert [h[0] for h in hist] == ["add_zero'", "zero_add'"]
    # the rejection left thm:c's work (in flight meanwhile) untouched: its attempts, its lock
    c = _uid(conn, "thm:c")
    assert conn.execute("SELECT COUNT(*) FROM attempts WHERE unit_id = ? AND superseded = 1", (c,)).fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM attempts WHERE unit_id = ? AND stage = 'proof'", (c,)).fetchone()[0] == 2
    assert [r[0] for r in conn.execute("SELECT kind FROM posts WHERE unit_id = ? AND kind LIKE 'lock%'", (c,))] == [
        "lock"
    ]


@pytest.mark.parametrize("ref", ["lem:a", "Lemma 1", "1"])
def test_units_are_named_by_label_number_or_id(tmp_path, fake_llm_factory, ref):
    home, _ = _home(tmp_path, fake_llm_factory)
    conn = _db(home)
    if ref.isdigit():
        ref = str(_uid(conn, "lem:a"))
    autoform(home, "hint", "mini", ref, "h", check=True)
    assert conn.execute("SELECT unit_id FROM posts").fetchone()[0] == _uid(conn, "lem:a")


DEF_BOOK = r"""\documentclass{article}
\newtheorem{definition}{Definition}
\begin{document}
\begin{definition}\label{def:even}
An integer $n$ is even if $n = 2k$ for some integer $k$.
\end{definition}
\end{document}
"""


def test_a_persons_definition_is_admitted_without_drafting(tmp_path, fake_llm_factory):
    srv = fake_llm_factory(script_for())
    home = tmp_path / "home"
    home.mkdir()
    write_config(home, base_url=srv.base_url, repl_dir=make_repl_dir(tmp_path))
    (tmp_path / "book.tex").write_text(DEF_BOOK)
    autoform(home, "ingest", str(tmp_path / "book.tex"), "--book", "defs", check=True)
    f = tmp_path / "even.lean"
    f.write_text("def PersonEven (n : ℤ) : Prop := ∃ k : ℤ, n = 2 * k\n")
    autoform(home, "state", "defs", "def:even", str(f), check=True)
    autoform(home, "run", "defs", check=True)
    assert not _prompts(srv, "def:even", "drafter")
    entry = _db(home).execute("SELECT * FROM atlas_entries").fetchone()
    assert entry["status"] == "defined" and entry["decl_name"] == "PersonEven"
    assert "def PersonEven" in _atlas_text(home)


# -- retry --budget, and units re-opened while a job runs -------------------------------------------------------
BUDGET = "llm_calls=5,stall_rounds=50"  # the budget is what stops the search, not a stall
#: the proofs of these tests fail; Lean's `exact?` (no LLM call) is off, so no suggestion of the stand-in proves them
FAILING = 'decompose = false\nmax_attempts = 2\nlibrary_search = false\n[prove]\nstrategy = "attempts"'


def _failing(*labels: str) -> dict:
    """Provers and gap-closers of these units that never prove them, each reply new (no cache answers it)."""
    n = itertools.count()
    out: dict = {}
    for x in labels:
        out[("prover", x)] = lambda body: lean(f"  exact bogus_p{next(n)} n")
        out[("gap_closer", x)] = lambda body: lean(f"  exact bogus_q{next(n)} n")
    return out


def _proof_calls(srv, label: str, since: int = 0) -> list[dict]:
    return [b for b in srv.requests[since:] if label_of(b) == label and role_of(b) in ("prover", "gap_closer")]


def test_retry_budget_is_what_stops_the_next_search_and_other_units_keep_the_defaults(tmp_path, fake_llm_factory):
    script = script_for(_failing("thm:b", "thm:c"))
    home, srv = _home(tmp_path, fake_llm_factory, script, extra=FAILING)
    autoform(home, "run", "mini")
    conn = _db(home)
    assert [_status(conn, x) for x in ("thm:b", "thm:c")] == ["failed", "failed"]
    assert len(_proof_calls(srv, "thm:b")) == 2  # [job] max_attempts
    r = autoform(home, "retry", "mini", "thm:b", "--budget", BUDGET, "--json")
    assert r.returncode == 0, r.stderr
    assert "autoform run mini` works on them" in json.loads(r.stdout)["message"]
    autoform(home, "retry", "mini", "thm:c", check=True)  # no budget: the defaults
    before = len(srv.requests)
    r = autoform(home, "run", "mini")
    assert r.returncode in (0, 1), r.stderr
    assert len(_proof_calls(srv, "thm:b", before)) == 5  # its own budget, under the "attempts" strategy
    assert "budget spent: 5 LLM calls (budget 5)" in r.stderr
    assert len(_proof_calls(srv, "thm:c", before)) == 2  # [job] max_attempts, as before
    assert [_status(conn, x) for x in ("thm:b", "thm:c")] == ["failed", "failed"]
    reopened = conn.execute("SELECT cause, limits FROM reopenings ORDER BY id").fetchall()
    assert [(c, json.loads(lim)) for c, lim in reopened] == [
        ("retry", {"llm_calls": 5, "stall_rounds": 50}),
        ("retry", {}),
    ]


def test_a_running_job_takes_up_a_unit_retried_during_its_run_with_its_budget(tmp_path, fake_llm_factory):
    """thm:b fails in the job; while thm:c is in work, a person retries thm:b with a budget and hints it: the
    same job works thm:b again before it ends, its spend counted from the retry on (five calls, not five less
    the two it had), the hint in thm:b's prompts and in no other unit's."""
    asked, release = threading.Event(), threading.Event()

    def slow_prover(body: dict) -> str:
        asked.set()
        release.wait(60)
        return lean("  exact bogus_first n")

    overrides = _failing("thm:b") | {("prover", "thm:c"): slow_prover}
    home, srv = _home(tmp_path, fake_llm_factory, script_for(overrides), extra=FAILING)
    conn = _db(home)
    job = subprocess.Popen(
        [sys.executable, "-m", "autoform", "--home", str(home), "run", "mini", "--jobs", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=home,
    )
    try:
        assert asked.wait(60), "the job never asked the prover of thm:c"
        assert _status(conn, "thm:b") == "failed" and len(_proof_calls(srv, "thm:b")) == 2
        mark = len(srv.requests)
        r = autoform(home, "retry", "mini", "thm:b", "--budget", BUDGET, "--json")
        assert r.returncode == 0, r.stderr
        assert "(running) works on them" in json.loads(r.stdout)["message"]
        autoform(home, "hint", "mini", "thm:b", HINT, check=True)
    finally:
        release.set()
        out, err = job.communicate(timeout=120)
    assert job.returncode in (0, 1), err
    again = _proof_calls(srv, "thm:b", mark)
    assert len(again) == 5 and "budget spent: 5 LLM calls (budget 5)" in err
    assert all(HINT in b["messages"][-1]["content"] for b in again)
    assert "Retried by a person" in again[0]["messages"][-1]["content"]
    assert not any(HINT in p for p in _prompts(srv, "thm:c") + _prompts(srv, "lem:a"))
    assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1
    assert [_status(conn, x) for x in ("lem:a", "thm:b", "thm:c")] == ["proved", "failed", "proved"]
    # thm:c, in work meanwhile, kept its attempts
    c = _uid(conn, "thm:c")
    assert conn.execute("SELECT COUNT(*) FROM attempts WHERE unit_id = ? AND superseded = 1", (c,)).fetchone()[0] == 0
