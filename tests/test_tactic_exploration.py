"""Goal-level proof search end to end (issues 16 and 17), through the CLI, the real client stack and the stand-in
REPL: a sketch's holes explored in the REPL's tactic mode (closing tactics, then `exact?`) and the tactics that
close them spliced in, the whole text judged in command mode; without tactic mode, `exact?` on the holes in one
command-mode probe; `exact?` on the goals a failed proof left open; a subgoal's own budget."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Workspace, autoform, book_script, label_of, lean, make_repl_dir, role_of, write_config
from test_decompose import SKETCH, _decomposing, _subgoals, locked_of, mini_book

from autoform.pipeline.automation import AUTOMATION_TACTIC

#: `exact?` knows the first hole's goal (as Mathlib would); the closing tactics resist it (it mentions Finset)
EXACT = {"⊢ Finset.sum (Finset.range n) (fun i => 2 * i + 1) = n * n": "Finset.sum_range_id_mul_two_add_one n"}
RESISTS = "Finset"


def _workspace(
    tmp_path: Path,
    make_llm: Callable,
    script: Callable,
    *,
    job: str = "",
    prove: str = "",
    automation: bool = True,
    repl_env: dict[str, str] | None = None,
) -> Workspace:
    """A workspace on the stand-in REPL (``repl_env``), with the attempts strategy (two attempts) and automation
    on unless told otherwise; ``job`` and ``prove``: more lines of ``[job]`` and ``[prove]``."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    srv = make_llm(script)
    env = {"FAKE_REPL_LOG": str(tmp_path / "repl.log"), **(repl_env or {})}
    extra = f'max_attempts = 2\n{job}\n[prove]\nstrategy = "attempts"\n{prove}'
    repl = make_repl_dir(tmp_path, env=env)
    write_config(home, base_url=srv.base_url, repl_dir=repl, extra=extra, automation=automation)
    return Workspace(home, srv, tmp_path)


def _entry_and_authors(home: Path) -> tuple[str | None, list[str]]:
    conn = sqlite3.connect(home / "autoform.sqlite")
    row = conn.execute(
        "SELECT a.lean_code FROM atlas_entries a JOIN units u ON u.id = a.unit_id WHERE u.label = 'thm:sum-odd'"
    ).fetchone()
    authors = [
        a
        for (a,) in conn.execute(
            "SELECT a.author FROM attempts a JOIN units u ON u.id = a.unit_id "
            "WHERE u.label = 'thm:sum-odd' AND a.stage = 'proof' ORDER BY a.id"
        )
    ]
    conn.close()
    return (row[0] if row else None), authors


@pytest.mark.slow
def test_holes_closed_in_tactic_mode_are_spliced_and_the_whole_text_is_judged(tmp_path, fake_llm_factory):
    script, asked = _decomposing(resists=set())
    ws = _workspace(
        tmp_path,
        fake_llm_factory,
        script,
        repl_env={"FAKE_REPL_EXACT": json.dumps(EXACT), "FAKE_REPL_RESISTS": RESISTS},
    )
    autoform(ws.home, "ingest", str(mini_book(tmp_path)), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr
    code, authors = _entry_and_authors(ws.home)
    assert code is not None and authors[-1] == "decomposition"
    # the first hole by exact?'s suggestion (never `exact?` itself), the second by the closing tactics: no lemma,
    # no prover call for either hole
    assert "have h1 : Finset.sum (Finset.range n) (fun i => 2 * i + 1) = n * n := by exact Finset.sum_range_id" in code
    assert "have h2 : n * n = n ^ 2 := by first | (omega; done)" in code
    assert "exact?" not in code and "sorry" not in code and "_step" not in code
    assert not any(a.startswith("prover:sum_odd_eq_sq_step") for a in asked)
    closed = [(g["name"], g["by"], g["status"]) for g in _subgoals(ws.home)]
    assert closed == [
        ("sum_odd_eq_sq_step1", "library_search", "proved"),
        ("sum_odd_eq_sq_step2", "automation", "proved"),
    ]
    # tactic mode on the sketch's proof states; admission by a whole-text command, never from tactic mode
    log = ws.repl_log
    tactics = [e for e in log if "tactic" in e]
    assert [t["tactic"] for t in tactics] == [AUTOMATION_TACTIC, "exact?", AUTOMATION_TACTIC]
    assert all(isinstance(t["proofState"], int) for t in tactics)
    final = [e for e in log if "cmd" in e and "by exact Finset.sum_range_id_mul_two_add_one n" in e["cmd"]]
    assert final and all("sorry" not in e["cmd"] for e in final)
    # the tree shows how each hole was closed
    r = autoform(ws.home, "transcript", "ent", "thm:sum-odd", check=True)
    assert "sum_odd_eq_sq_step1: proved by library_search" in r.stdout


@pytest.mark.slow
def test_a_tactic_that_fails_in_the_whole_text_is_withdrawn_and_its_hole_proved_as_a_lemma(tmp_path, fake_llm_factory):
    """Tactic mode is for exploring: `exact?` there suggests a term that the whole text, checked in command mode,
    refuses (here a name Lean does not know). The suggestion is withdrawn, not reused, and the hole goes the
    lemma route; the unit is admitted only through the gate."""
    decomposing, asked = _decomposing(resists=set())

    def script(body: dict) -> object:
        """The prover proves the first hole's lemma by a Mathlib term (the closing tactics resist its goal)."""
        sketch = "proof sketch" in body["messages"][-1]["content"]
        if role_of(body) == "prover" and locked_of(body) == "sum_odd_eq_sq_step1" and not sketch:
            asked.append("prover:sum_odd_eq_sq_step1")
            return lean("  exact Finset.sum_range_id_mul_two_add_one n")
        return decomposing(body)

    bad = {goal: "bogus_sum_odd_lemma n" for goal in EXACT}
    ws = _workspace(
        tmp_path,
        fake_llm_factory,
        script,
        repl_env={"FAKE_REPL_EXACT": json.dumps(bad), "FAKE_REPL_RESISTS": RESISTS},
    )
    autoform(ws.home, "ingest", str(mini_book(tmp_path)), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr
    code, authors = _entry_and_authors(ws.home)
    assert code is not None and authors[-2:] == ["decomposition", "decomposition"]  # refused, then admitted
    assert "bogus" not in code and "theorem sum_odd_eq_sq_step1" in code and "exact sum_odd_eq_sq_step1 n" in code
    assert "prover:sum_odd_eq_sq_step1" in asked  # the hole was proved as a lemma after all
    states = [(g["name"], g["status"], g.get("by", "")) for g in _subgoals(ws.home)]
    assert ("sum_odd_eq_sq_step1", "withdrawn", "") in states and ("sum_odd_eq_sq_step1", "proved", "prover") in states
    assert states.index(("sum_odd_eq_sq_step1", "withdrawn", "")) < states.index(
        ("sum_odd_eq_sq_step1", "proved", "prover")
    )
    r = autoform(ws.home, "transcript", "ent", "thm:sum-odd", check=True)
    assert "sum_odd_eq_sq_step1: proved by prover" in r.stdout


@pytest.mark.slow
def test_without_tactic_mode_exact_runs_on_the_holes_in_one_command(tmp_path, fake_llm_factory):
    script, asked = _decomposing(resists=set())
    ws = _workspace(
        tmp_path,
        fake_llm_factory,
        script,
        prove="tactic_mode = false\n",
        repl_env={"FAKE_REPL_EXACT": json.dumps(EXACT), "FAKE_REPL_RESISTS": RESISTS},
    )
    autoform(ws.home, "ingest", str(mini_book(tmp_path)), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr
    code, _ = _entry_and_authors(ws.home)
    assert code is not None and "by exact Finset.sum_range_id_mul_two_add_one n" in code
    assert not any("tactic" in e for e in ws.repl_log)  # no tactic mode at all
    probes = [e for e in ws.repl_log if "cmd" in e and "exact?" in e["cmd"] and "have h1" in e["cmd"]]
    assert len(probes) == 1 and probes[0]["cmd"].count("exact?") == 2  # both holes in one probe
    # the second hole: the closing tactics as a subgoal's lemma (command mode), no prover call
    by = {g["name"]: g["by"] for g in _subgoals(ws.home) if g["status"] == "proved"}
    assert by == {"sum_odd_eq_sq_step1": "library_search", "sum_odd_eq_sq_step2": "automation"}
    assert "theorem sum_odd_eq_sq_step2 (n : ℕ)" in code and not any(
        a.startswith("prover:sum_odd_eq_sq_") for a in asked
    )


def _leaves_a_goal() -> tuple[Callable, list[tuple[str, str]]]:
    """The prover's proof of thm:sum-odd states a step and stops: Lean's `unsolved goals` is left."""
    base = book_script()
    calls: list[tuple[str, str]] = []

    def script(body: dict) -> str:
        role = role_of(body)
        if label_of(body) == "thm:sum-odd" and role in ("prover", "gap_closer"):
            calls.append((role, body["messages"][-1]["content"]))
            return lean("  have h : n * n = n ^ 2 := by ring")
        return base(body)

    return script, calls


GOAL = "n : ℕ\nh : n * n = n ^ 2\n⊢ Finset.sum (Finset.range n) (fun i => 2 * i + 1) = n ^ 2"


@pytest.mark.slow
def test_exact_on_the_goals_a_failed_proof_left_open(tmp_path, fake_llm_factory):
    script, calls = _leaves_a_goal()
    # Mathlib knows the goal the proof left (with its step `h`), not the locked statement itself
    exact = {"h : n * n = n ^ 2\n⊢ Finset.sum (Finset.range n)": "Finset.sum_range_odd n h"}
    ws = _workspace(
        tmp_path,
        fake_llm_factory,
        script,
        job="decompose = false\n",
        automation=False,
        repl_env={"FAKE_REPL_EXACT": json.dumps(exact)},
    )
    autoform(ws.home, "ingest", str(mini_book(tmp_path)), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr
    code, authors = _entry_and_authors(ws.home)
    # exact? on the locked statement had nothing (its goal has no `h`); the prover's proof left the goal; the
    # suggestion for that goal became a bullet of the proof, admitted with no gap-closer call
    assert authors == ["prover", "goal_search"], authors
    assert code is not None and "have h : n * n = n ^ 2 := by ring\n  · exact Finset.sum_range_odd n h" in code
    assert "exact?" not in code and [role for role, _ in calls] == ["prover"]
    probe = [e["cmd"] for e in ws.repl_log if "cmd" in e and "· exact?" in e["cmd"]]
    assert len(probe) == 1
    conn = sqlite3.connect(ws.home / "autoform.sqlite")
    (model,) = conn.execute("SELECT model FROM atlas_entries").fetchone()
    assert model == "lean exact?"  # no LLM wrote the closing step


@pytest.mark.slow
def test_the_gap_closer_sees_the_goals_of_lean_s_unsolved_goals_error(tmp_path, fake_llm_factory):
    script, calls = _leaves_a_goal()
    ws = _workspace(tmp_path, fake_llm_factory, script, job="decompose = false\n", automation=False)
    autoform(ws.home, "ingest", str(mini_book(tmp_path)), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr
    _, authors = _entry_and_authors(ws.home)
    assert authors == ["prover", "gap_closer"], authors  # exact? on the goal found nothing: no attempt of its own
    (prompt,) = [text for role, text in calls if role == "gap_closer"] or [""]
    # read from Lean's `unsolved goals` error: the goal with the step the proof made, not only the error's text
    assert GOAL in prompt.split("The proof state where it broke")[1]
    # no probe was needed for the goals: no check of the proof with a `sorry` in place of a tactic
    assert not any("cmd" in e and "sorry" in e["cmd"] and "have h : n * n" in e["cmd"] for e in ws.repl_log)


@pytest.mark.slow
def test_a_subgoal_stops_when_its_own_budget_is_spent(tmp_path, fake_llm_factory):
    script, asked = _decomposing(resists={"sum_odd_eq_sq_step1"})
    ws = _workspace(
        tmp_path, fake_llm_factory, script, prove="subgoal_llm_calls = 1\n", repl_env={"FAKE_REPL_RESISTS": RESISTS}
    )
    autoform(ws.home, "ingest", str(mini_book(tmp_path)), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr
    code, _ = _entry_and_authors(ws.home)
    assert code is None
    # one LLM call on the resisting subgoal (its prover); no repair, no split: its budget was spent
    assert asked.count("prover:sum_odd_eq_sq_step1") == 1
    assert "gap_closer:sum_odd_eq_sq_step1" not in asked and "prover:sketch:sum_odd_eq_sq_step1" not in asked
    (failed,) = [g for g in _subgoals(ws.home) if g["status"] == "failed"]
    assert failed["name"] == "sum_odd_eq_sq_step1" and failed["spent"] == {"llm_calls": 1, "lean_checks": 1}
    # tactic mode had seen the closing tactics fail on it: no command-mode automation move was played on it
    assert not any(
        "theorem sum_odd_eq_sq_step1" in e.get("cmd", "") and "omega" in e.get("cmd", "") for e in ws.repl_log
    )


def test_a_tactic_goes_where_the_hole_was() -> None:
    from autoform.pipeline.decompose import Proved, spliced
    from autoform.pipeline.explore import splice

    sketch = "have a : p := by sorry\nhave b : q := sorry\nsorry"
    assert splice(sketch, ["simp", "exact foo", "omega"]) == (
        "have a : p := by simp\nhave b : q := (by exact foo)\nomega"  # a term hole gets `(by …)`
    )
    # tactic holes (a bullet, a case, after `;`, all_goals) take the tactic in place; term holes, also after a
    # line break, get `(by …)`
    assert splice("constructor\n· sorry\n· sorry", ["exact foo", "simp"]) == "constructor\n· exact foo\n· simp"
    assert splice("cases h with\n| inl h => sorry\n| inr h => sorry", ["simp", "omega"]).endswith(
        "=> simp\n| inr h => omega"
    )
    assert splice("case a => sorry", ["simp"]) == "case a => simp"
    assert splice("simp; sorry", ["omega"]) == "simp; omega" and splice("all_goals sorry", ["simp"]) == "all_goals simp"
    assert splice("have h : p :=\n    sorry", ["simp"]) == "have h : p :=\n    (by simp)"
    assert splice("exact ⟨sorry, sorry⟩", ["simp", "omega"]) == "exact ⟨(by simp), (by omega)⟩"
    assert splice("exact fun x => sorry", ["simp"]) == "exact fun x => (by simp)"
    # a hole closed in tactic mode takes its tactic, another the call of its lemma
    from autoform.lean.goals import Hole

    holes = [Hole(index=0, goal="n : ℕ\n⊢ p"), Hole(index=1, goal="n : ℕ\n⊢ q")]
    got = spliced(
        "have a : p := by sorry\nhave b : q := by sorry\nexact ⟨a, b⟩", [Proved("s1", (), "omega"), Proved("s2")], holes
    )
    assert got == "have a : p := by omega\nhave b : q := by exact s2 n\nexact ⟨a, b⟩"


def test_a_subgoal_budget_counts_its_own_llm_calls_and_checks() -> None:
    from autoform.pipeline.decompose import _Subgoal
    from autoform.pipeline.policy import SubgoalBudget

    sg = _Subgoal(None, None, None, None, "s", 1, {}, SubgoalBudget(llm_calls=2, lean_checks=3))  # type: ignore[arg-type]
    assert sg.over(True) == "" and sg.over(False) == ""
    sg.llm_calls = 2
    assert sg.over(True) == "subgoal budget spent: 2 LLM calls (budget 2)" and sg.over(False) == ""
    sg.lean_checks = 3
    assert sg.over(False) == "subgoal budget spent: 3 Lean checks (budget 3)"


@pytest.mark.slow
def test_exact_on_the_goals_a_subgoal_s_proof_left_open(tmp_path, fake_llm_factory):
    # whole proofs of the unit fail; the sketch's first hole gets a proof that states a step and stops: Lean's
    # `unsolved goals`, whose goal (with the step) `exact?` knows; the second hole is proved by the prover
    base = book_script()
    asked: list[str] = []

    def script(body: dict) -> str:
        role, label = role_of(body), label_of(body)
        if label != "thm:sum-odd" or role not in ("prover", "gap_closer"):
            return base(body)
        content = body["messages"][-1]["content"]
        asked.append(f"{role}:{locked_of(body)}")
        if "proof sketch" in content:
            return lean(SKETCH)
        if locked_of(body) == "sum_odd_eq_sq_step1":
            return lean("  have k : n * n = n * n := rfl")
        return lean("  exact bogus_whole n") if locked_of(body) == "sum_odd_eq_sq" else lean("  ring")

    exact = {"k : n * n = n * n\n⊢ Finset.sum": "Finset.sum_range_id_mul_two_add_one n"}
    ws = _workspace(
        tmp_path, fake_llm_factory, script, automation=False, repl_env={"FAKE_REPL_EXACT": json.dumps(exact)}
    )
    autoform(ws.home, "ingest", str(mini_book(tmp_path)), "--book", "ent", check=True)
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr
    code, authors = _entry_and_authors(ws.home)
    assert code is not None and authors[-1] == "decomposition"
    by = {g["name"]: g["by"] for g in _subgoals(ws.home) if g["status"] == "proved"}
    assert by == {"sum_odd_eq_sq_step1": "library_search", "sum_odd_eq_sq_step2": "prover"}
    # the subgoal's lemma: the prover's step, then the suggestion for the goal it left; no gap-closer call
    assert "have k : n * n = n * n := rfl\n  · exact Finset.sum_range_id_mul_two_add_one n" in code
    assert "gap_closer:sum_odd_eq_sq_step1" not in asked and "exact?" not in code
