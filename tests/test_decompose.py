"""Proof by decomposition (autoform/pipeline/decompose.py) and the goal-level Lean primitives it rests on
(autoform/lean/goals.py, ReplPool.session): on the REPL's recorded replies, on the stand-in REPL through the
real client stack, and end to end with a scripted model whose whole proofs of a theorem always fail."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import LAKE_STANDIN, SHARED, autoform, book_script, label_of, lean, make_repl_dir, role_of
from fake_llm import Reply

from autoform.config import LeanConfig, Settings
from autoform.lean import goals
from autoform.lean.oracle import parse_repl_reply
from autoform.lean.repl_pool import ReplPool
from autoform.pipeline.decompose import call_for, fill_holes

REPL_TESTS = SHARED / "lean-output" / "repl-tests" / "test"
#: two whole-proof attempts, then the sketch (the attempts strategy, set explicitly: the default is the budget)
ATTEMPTS = 'max_attempts = 2\n\n[prove]\nstrategy = "attempts"\n'


def _replies(name: str) -> list[dict]:
    text = (REPL_TESTS / f"{name}.expected.out").read_text(encoding="utf-8")
    return [json.loads(b) for b in text.split("\n\n") if b.strip()]


@pytest.mark.skipif(not REPL_TESTS.exists(), reason="../shared/data/lean-output is absent")
def test_goals_and_tactic_replies_parse_as_lean_wrote_them():
    first, whole, step = _replies("have_by_sorry")
    hs = goals.holes(parse_repl_reply(first))
    assert [(h.goal, h.proof_state, h.line) for h in hs] == [("x : Int\n⊢ x = 1", 0, 2)]
    t = goals.parse_tactic_reply(step)
    assert t.proof_state == 3 and t.goals == ["x : Int\nh : x = 1\n⊢ x = 1"] and not t.solved
    *_, done = _replies("proof_step")
    assert goals.parse_tactic_reply(done).solved
    _, bad = _replies("invalid_tactic")
    t = goals.parse_tactic_reply(bad)  # an error closes the goal by error recovery: not solved
    assert t.goals == [] and not t.solved and "my_fake_premise" in t.messages[0].text


def test_a_goal_as_a_standalone_statement():
    goal = "G : Type u_1\ninst✝ : Group G\na b : G\nh✝ : a * b = b * a\nhab :\n  a = b\n⊢ a * b = b * a"
    assert goals.standalone(goal, "step1") == (
        "theorem step1 (G : Type u_1) [Group G] (a b : G) (h_1 : a * b = b * a) (hab : a = b) : a * b = b * a"
    )
    assert call_for("step1", goal) == "exact step1 G a b ‹a * b = b * a› hab"
    assert fill_holes("have h : p := by sorry\nhave k : q := sorry\nexact foo", ["exact A", "B"]) == (
        "have h : p := by exact A\nhave k : q := B\nexact foo"
    )


def test_a_session_reports_holes_and_runs_tactics_on_them(tmp_path: Path):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "lean-toolchain").write_text("leanprover/lean4:v4.28.0\n")
    s = Settings(
        home=tmp_path,
        lean=LeanConfig(
            project_dir=str(proj), lake_path=str(LAKE_STANDIN), repl_path=str(make_repl_dir(tmp_path)), timeout_s=10
        ),
    )
    pool = ReplPool(s)
    try:
        with pool.session() as sess:
            chk = sess.check("theorem foo (x : Int) : x = x := by\n  have h : x = 1 := by sorry\n  sorry")
            hs = goals.holes(chk)
            assert [h.goal for h in hs] == ["x : Int\n⊢ x = 1", "x : Int\nh : x = 1\n⊢ x = x"]
            assert hs[0].proof_state is not None
            step = sess.tactic(hs[1].proof_state, "have k : x = 2 := by sorry")
            assert step.goals == ["x : Int\nh : x = 1\nk : x = 2\n⊢ x = x"] and not step.solved
            assert sess.tactic(hs[0].proof_state, "omega").solved
            assert not sess.tactic(hs[0].proof_state, "exact bogus_lemma").solved
    finally:
        pool.close()


MINI_BOOK = r"""\documentclass{book}
\newtheorem{theorem}{Theorem}[chapter]
\newcommand{\N}{\mathbb{N}}
\begin{document}
\chapter{Induction}
\begin{theorem}[Sum of odd numbers]\label{thm:sum-odd}
For every $n \in \N$ we have $\sum_{i=0}^{n-1} (2i + 1) = n^2$; that is, the
sum of the first $n$ odd natural numbers is $n^2$.
\end{theorem}
\begin{proof}
We argue by induction on $n$. For $n = 0$ the sum is empty, so it equals
$0 = 0^2$. Assume the formula holds for $n$. Then
$\sum_{i=0}^{n} (2i + 1) = n^2 + (2n + 1) = (n + 1)^2$, which is the formula
for $n + 1$.
\end{proof}
\end{document}
"""

SKETCH = (
    "  have h1 : Finset.sum (Finset.range n) (fun i => 2 * i + 1) = n * n := by sorry\n"
    "  have h2 : n * n = n ^ 2 := by sorry\n"
    "  rw [h1, h2]"
)
#: the sketch of the first hole when it is split again (depth 2)
SUB_SKETCH = (
    "  have a : Finset.sum (Finset.range n) (fun i => 2 * i + 1) = n + n * (n - 1) := by sorry\n"
    "  have b : n + n * (n - 1) = n * n := by sorry\n"
    "  rw [a, b]"
)


#: a second theorem with the same content, drafted under another name (its sketch's holes are the first's)
AGAIN = "theorem sum_odd_again (n : ℕ) : Finset.sum (Finset.range n) (fun i => 2 * i + 1) = n ^ 2"
UNITS = ("sum_odd_eq_sq", "sum_odd_again")


def mini_book(tmp: Path, *, twice: bool = False) -> Path:
    book = tmp / "mini" / "main.tex"
    book.parent.mkdir(parents=True, exist_ok=True)
    text = MINI_BOOK
    if twice:
        thm = text[text.index("\\begin{theorem}") : text.index("\\end{document}")]
        text = text.replace("\\end{document}", thm.replace("thm:sum-odd", "thm:sum-odd-2") + "\\end{document}")
    book.write_text(text, encoding="utf-8")
    return book


def locked_of(body: dict) -> str:
    """The name of the statement a prompt asks about (the locked statement's, the unit's or a subgoal's)."""
    m = re.search(r"```lean\s*\n\s*theorem (\S+)", body["messages"][-1]["content"].split("Locked statement:")[-1])
    return m.group(1) if m else ""


def _decomposing(resists: set[str], delay: dict[str, float] | None = None) -> tuple[Callable, list[str]]:
    """A script whose whole proofs of thm:sum-odd always fail; the unit's sketch is SKETCH, a subgoal's sketch is
    SUB_SKETCH, and a subgoal's proof is `omega` unless its lemma is in ``resists`` (then it names an unknown
    identifier). ``delay``: seconds before answering the first request about a lemma (for a kill)."""
    base = book_script()
    asked: list[str] = []
    delay = dict(delay or {})

    def script(body: dict) -> str | Reply:
        role, label = role_of(body), label_of(body)
        if label == "thm:sum-odd-2" and role == "drafter":
            return lean(AGAIN)
        if label not in ("thm:sum-odd", "thm:sum-odd-2") or role not in ("prover", "gap_closer"):
            return base(body)
        name = locked_of(body)
        sketch = "proof sketch" in body["messages"][-1]["content"]
        asked.append(f"{role}:{'sketch:' if sketch else ''}{name}")
        if sketch:
            text = lean(SKETCH if name in UNITS else SUB_SKETCH)
        elif name in UNITS or name in resists:
            text = lean("  exact bogus_sum_odd n")
        else:
            text = lean("  omega")
        wait = delay.pop(name, 0.0)
        return Reply(text=text, delay_s=wait) if wait else text

    return script, asked


def _subgoals(home: Path) -> list[dict]:
    conn = sqlite3.connect(home / "autoform.sqlite")
    rows = conn.execute("SELECT data FROM posts WHERE kind = 'subgoal' ORDER BY id").fetchall()
    conn.close()
    return [json.loads(d) for (d,) in rows]


def _entry(home: Path) -> str | None:
    conn = sqlite3.connect(home / "autoform.sqlite")
    row = conn.execute(
        "SELECT a.lean_code FROM atlas_entries a JOIN units u ON u.id = a.unit_id WHERE u.label = 'thm:sum-odd'"
    ).fetchone()
    conn.close()
    return row[0] if row else None


@pytest.mark.slow
def test_whole_proofs_fail_and_a_sketch_closes_the_unit_step_by_step(workspace, tmp_path):
    script, asked = _decomposing(resists=set())
    ws = workspace(script, extra=ATTEMPTS)
    autoform(ws.home, "ingest", str(mini_book(tmp_path)), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr
    code = _entry(ws.home)
    assert code is not None, "the unit was not closed by decomposition"
    # each hole became a helper lemma proved on its own, the sketch calls them, nothing is left as sorry
    assert "theorem sum_odd_eq_sq_step1 (n : ℕ) : Finset.sum" in code and "theorem sum_odd_eq_sq_step2" in code
    assert "exact sum_odd_eq_sq_step1 n" in code and "sorry" not in code
    conn = sqlite3.connect(ws.home / "autoform.sqlite")
    authors = [a for (a,) in conn.execute("SELECT author FROM attempts WHERE stage = 'proof' ORDER BY id")]
    assert authors[-1] == "decomposition" and "prover" in authors
    done = [(g["name"], g["by"], g["depth"]) for g in _subgoals(ws.home) if g["status"] == "proved"]
    assert done == [("sum_odd_eq_sq_step1", "prover", 1), ("sum_odd_eq_sq_step2", "prover", 1)]
    assert _subgoals(ws.home)[0]["goal"].endswith("⊢ Finset.sum (Finset.range n) (fun i => 2 * i + 1) = n * n")
    assert asked.count("prover:sketch:sum_odd_eq_sq") == 1


@pytest.mark.slow
def test_a_hole_that_resists_is_split_again_and_the_unit_closes(workspace, tmp_path):
    script, asked = _decomposing(resists={"sum_odd_eq_sq_step1"})
    ws = workspace(script, extra=ATTEMPTS)
    autoform(ws.home, "ingest", str(mini_book(tmp_path)), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr
    code = _entry(ws.home)
    assert code is not None, "the unit was not closed by a second split"
    # step1 resisted the prover and the repair, was sketched itself, and its two holes were proved at depth 2
    assert asked.index("prover:sum_odd_eq_sq_step1") < asked.index("gap_closer:sum_odd_eq_sq_step1")
    assert asked.index("gap_closer:sum_odd_eq_sq_step1") < asked.index("prover:sketch:sum_odd_eq_sq_step1")
    proved = {g["name"]: g for g in _subgoals(ws.home) if g["status"] == "proved"}
    assert set(proved) == {
        "sum_odd_eq_sq_step1",
        "sum_odd_eq_sq_step1_1",
        "sum_odd_eq_sq_step1_2",
        "sum_odd_eq_sq_step2",
    }
    assert proved["sum_odd_eq_sq_step1"]["by"] == "split" and proved["sum_odd_eq_sq_step1"]["depth"] == 1
    assert proved["sum_odd_eq_sq_step1_1"]["depth"] == 2
    assert proved["sum_odd_eq_sq_step1_1"]["parent_name"] == "sum_odd_eq_sq_step1"
    # the solved holes spliced back: the depth-2 lemmas come before the lemma that calls them, all in the entry
    assert code.index("theorem sum_odd_eq_sq_step1_1") < code.index("theorem sum_odd_eq_sq_step1 ")
    assert "exact sum_odd_eq_sq_step1_1 n" in code and "exact sum_odd_eq_sq_step1 n" in code
    assert "sorry" not in code
    # the tree the lead wires into the site, status and transcript
    from autoform.store import Store
    from autoform.subgoals import subgoal_tree

    store = Store(ws.home / "autoform.sqlite")
    uid = (
        sqlite3.connect(ws.home / "autoform.sqlite")
        .execute("SELECT id FROM units WHERE label = 'thm:sum-odd'")
        .fetchone()[0]
    )
    tree = subgoal_tree(store, uid)
    assert [(n.name, n.status, n.by) for n in tree] == [
        ("sum_odd_eq_sq_step1", "proved", "split"),
        ("sum_odd_eq_sq_step2", "proved", "prover"),
    ]
    assert [(c.name, c.depth, c.status) for c in tree[0].children] == [
        ("sum_odd_eq_sq_step1_1", 2, "proved"),
        ("sum_odd_eq_sq_step1_2", 2, "proved"),
    ]
    # it shows: in the transcript (text and JSON) and on the unit's page, nested as it was split
    r = autoform(ws.home, "transcript", "ent", "thm:sum-odd", check=True)
    assert "subgoals (the decomposition's tree):" in r.stdout
    assert "\n  sum_odd_eq_sq_step1: proved by split" in r.stdout
    assert "\n    sum_odd_eq_sq_step1_1: proved by" in r.stdout  # one level deeper
    data = json.loads(autoform(ws.home, "transcript", "ent", "thm:sum-odd", "--json", check=True).stdout)
    assert [c["name"] for c in data["subgoals"][0]["children"]] == ["sum_odd_eq_sq_step1_1", "sum_odd_eq_sq_step1_2"]
    autoform(ws.home, "atlas", "site", "--out", str(tmp_path / "site"), check=True)
    page = next((tmp_path / "site").rglob(f"{uid}.html")).read_text()
    tree_html = page[page.index('<section class="subgoals">') :]
    assert tree_html.index("sum_odd_eq_sq_step1</code>") < tree_html.index("sum_odd_eq_sq_step1_1</code>")
    assert tree_html.index("<ul>") < tree_html.index("sum_odd_eq_sq_step1_1</code>")  # nested under its parent
    status = json.loads(autoform(ws.home, "status", "ent", "--json", check=True).stdout)
    report = status[0] if isinstance(status, list) else status
    assert report["closed_by"] == {"decomposition": 1}  # how the unit was closed


@pytest.mark.slow
def test_max_depth_one_does_not_split_a_hole_again(workspace, tmp_path):
    script, asked = _decomposing(resists={"sum_odd_eq_sq_step1"})
    ws = workspace(script, extra=ATTEMPTS + "max_depth = 1\n")
    autoform(ws.home, "ingest", str(mini_book(tmp_path)), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr
    assert _entry(ws.home) is None
    assert "prover:sketch:sum_odd_eq_sq_step1" not in asked
    failed = [g["name"] for g in _subgoals(ws.home) if g["status"] == "failed"]
    assert failed == ["sum_odd_eq_sq_step1"]


def _background(home: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AUTOFORM_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "autoform", "--home", str(home), "run", "ent", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


@pytest.mark.slow
def test_a_resumed_job_does_not_prove_solved_subgoals_again(workspace, tmp_path):
    # the prover's reply on the second depth-2 hole is slow the first time: the job is killed while it waits,
    # after step1_1 was proved
    script, asked = _decomposing(resists={"sum_odd_eq_sq_step1"}, delay={"sum_odd_eq_sq_step1_2": 30.0})
    ws = workspace(script, extra=ATTEMPTS)
    autoform(ws.home, "ingest", str(mini_book(tmp_path)), "--book", "ent", check=True)
    proc = _background(ws.home)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if "prover:sum_odd_eq_sq_step1_2" in asked:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the job ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    before = [g["name"] for g in _subgoals(ws.home) if g["status"] == "proved"]
    assert before == ["sum_odd_eq_sq_step1_1"]  # killed while the prover thought about step1_2
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["resumed"] is True
    assert _entry(ws.home) is not None
    proved = [g["name"] for g in _subgoals(ws.home) if g["status"] == "proved"]
    # every subgoal proved exactly once across the kill: the resumed job reused what was proved before it (a
    # second proof would post a second `proved`, even where the reply cache spared the server the request)
    assert sorted(proved) == sorted({f"sum_odd_eq_sq_step{k}" for k in ("1", "1_1", "1_2", "2")})
    assert asked.count("prover:sum_odd_eq_sq_step1_1") == 1


@pytest.mark.slow
def test_a_subgoal_proved_for_one_unit_is_not_proved_again_for_another(workspace, tmp_path):
    script, asked = _decomposing(resists=set())
    ws = workspace(script, extra=ATTEMPTS)
    autoform(ws.home, "ingest", str(mini_book(tmp_path, twice=True)), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["units"] == {"proved": 2}
    # the second unit sketched the same steps: their lemmas were reused, no prover call for them
    assert "prover:sketch:sum_odd_again" in asked
    assert asked.count("prover:sum_odd_eq_sq_step1") == 1 and asked.count("prover:sum_odd_eq_sq_step2") == 1
    assert not any(a.startswith("prover:sum_odd_again_step") for a in asked)
    posts = _subgoals(ws.home)
    assert [p["by"] for p in posts if p["status"] == "proved"] == ["prover", "prover", "reused", "reused"]
    # in the Atlas, each helper lemma says whose helper it is
    text = "".join(f.read_text() for f in (ws.home / "atlas" / "Atlas" / "Ent").glob("*.lean"))
    for step in ("sum_odd_eq_sq_step1", "sum_odd_eq_sq_step2"):
        before = text[: text.index(f"theorem {step} ")].rstrip()
        assert before.endswith("proved by autoform for its proof. -/") and "/-- A helper of Theorem" in before[-200:]
    conn = sqlite3.connect(ws.home / "autoform.sqlite")
    (code,) = conn.execute(
        "SELECT a.lean_code FROM atlas_entries a JOIN units u ON u.id = a.unit_id WHERE u.label = 'thm:sum-odd-2'"
    ).fetchone()
    # the copy has a name of its own in the Atlas (the first unit holds the original's)
    assert "theorem sum_odd_eq_sq_step1_2 (n : ℕ)" in code and "exact sum_odd_eq_sq_step1_2 n" in code
    from autoform.store import Store
    from autoform.subgoals import subgoal_tree

    (uid,) = conn.execute("SELECT id FROM units WHERE label = 'thm:sum-odd-2'").fetchone()
    tree = subgoal_tree(Store(ws.home / "autoform.sqlite"), uid)
    assert [(n.name, n.depth, n.status, n.by) for n in tree] == [
        ("sum_odd_eq_sq_step1", 1, "proved", "reused"),
        ("sum_odd_eq_sq_step2", 1, "proved", "reused"),
    ]
    atlas = (ws.home / "atlas" / "Atlas" / "Ent").glob("*.lean")
    text = "".join(f.read_text() for f in atlas)
    assert text.count("theorem sum_odd_eq_sq_step1 ") == 1 and text.count("theorem sum_odd_eq_sq_step1_2 ") == 1
