"""The gate against a Lean that behaves like the real one, through the production client stack:
lean-interact -> stand-in lake -> REPL double (each command answered with its own messages, as the real REPL
does), and the `lake` backend -> stand-in `lean --json` (a compiled candidate imported by a second process).

These are the attacks the pre-screen is there to stop; here the pre-screen is bypassed on purpose, to show
that Lean's answers to the gate's queries cannot be forged even by a candidate that runs code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import LAKE_STANDIN, make_repl_dir

from autoform.config import LeanConfig, Settings
from autoform.lean.gate import Candidate, admit, build_module, check_statement, judge, screen_candidate
from autoform.lean.lake import LakeFileOracle
from autoform.lean.repl_pool import ReplPool

STANDIN_BIN = Path(__file__).resolve().parent / "standin"
LOCK = "theorem t (a b : ℕ) : a + b = b + a"
FORGED = "'N.t' does not depend on any axioms"


def _settings(tmp_path: Path, **lean: object) -> Settings:
    proj = tmp_path / "proj"
    proj.mkdir(exist_ok=True)
    (proj / "lean-toolchain").write_text("leanprover/lean4:v4.24.0\n")
    cfg = {
        "project_dir": str(proj),
        "lake_path": str(LAKE_STANDIN),
        "timeout_s": 10,
        "start_timeout_s": 10,
        "memory_mb": 4096,
        **lean,
    }
    return Settings(home=tmp_path, lean=LeanConfig(**cfg))


@pytest.fixture
def pool(tmp_path):
    o = ReplPool(_settings(tmp_path, repl_path=str(make_repl_dir(tmp_path))))
    yield o
    o.close()


@pytest.fixture
def lake(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{STANDIN_BIN}{os.pathsep}{os.environ['PATH']}")
    return LakeFileOracle(_settings(tmp_path, backend="lake"))


def _locked(oracle) -> str:
    st = check_statement(Candidate(kind="theorem", namespace="N", statement=LOCK), oracle)
    assert st.elaborates, st.reasons
    return st.elaborated_type or ""


def _smuggler(locked: str) -> Candidate:
    """A candidate that smuggles an axiom and logs what `#print axioms` would answer for an honest proof, at
    lines of its own choosing: right after its own text, where a gate that appends its queries to the
    candidate's text would read their answers."""
    cand = Candidate(
        kind="theorem",
        namespace="N",
        statement=LOCK,
        locked_type=locked,
        aux="axiom smuggled : ∀ a b : ℕ, a + b = b + a",
        proof="exact smuggled a b",
    )
    after = build_module(cand).text.count("\n") + 2  # the module grows by the lines added below
    forge = "".join(
        f"run_cmd do let p := (← getFileMap).ofPosition ⟨{after + k}, 0⟩; "
        f'logInfoAt (Syntax.atom (.synthetic p p) "") "{FORGED}"\n'
        for k in range(1, 4)
    )
    return cand.model_copy(update={"aux": cand.aux + "\n" + forge})


@pytest.mark.parametrize("backend", ["pool", "lake"])
def test_a_forged_axioms_answer_is_not_taken(backend, request):
    oracle = request.getfixturevalue(backend)
    cand = _smuggler(_locked(oracle))
    assert screen_candidate(cand)  # the pre-screen refuses it outright; below it is bypassed on purpose
    module = build_module(cand)
    # appended to the text, the query's answer would come after the forged one on the same line
    appended = oracle.check(module.text + "\n".join(module.queries) + "\n")
    query_line = module.text.count("\n") + 1
    at_query = [m.text for m in appended.messages if m.line == query_line]
    assert at_query[0] == FORGED and "N.smuggled" in at_query[1]
    check = oracle.check(module.text, queries=module.queries)
    assert any(m.text == FORGED for m in check.messages)  # the candidate did log the forged answer
    v = judge(cand, module, check)
    assert not v.admitted
    assert v.axioms is not None and "N.smuggled" in v.axioms
    assert "axioms" in {r.code for r in v.reasons}


@pytest.mark.parametrize("backend", ["pool", "lake"])
def test_an_honest_proof_is_admitted_and_a_wrong_one_refused(backend, request):
    oracle = request.getfixturevalue(backend)
    locked = _locked(oracle)
    good = Candidate(kind="theorem", namespace="N", statement=LOCK, proof="exact Nat.add_comm a b", locked_type=locked)
    v = admit(good, oracle)
    assert v.admitted, v.reasons
    assert v.axioms == ["propext"] and v.elaborated_type == locked
    bad = admit(good.model_copy(update={"proof": "exact bogus_lemma a b"}), oracle)
    assert not bad.admitted and "compile_error" in {r.code for r in bad.reasons}


def test_lake_backend_reads_information_severity(lake):
    """`lean --json` writes `information`, not `info`: the answer must still be found (else nothing locks)."""
    module = build_module(Candidate(kind="theorem", namespace="N", statement=LOCK, proof="omega"))
    check = lake.check(module.text, queries=module.queries)
    assert check.answers is not None and [a[0].severity for a in check.answers] == ["info", "info"]


def test_a_misspelled_identifier_is_not_locked_as_a_variable(pool):
    """With autoImplicit (Lean's default) `bogusSet` would be bound silently and the lock would record a
    statement about an arbitrary variable; every checked module turns autoImplicit off."""
    drafted = Candidate(kind="theorem", namespace="N", statement="theorem t (x : ℕ) (h : x ∈ bogusSet) : x = x")
    st = check_statement(drafted, pool)
    assert not st.elaborates
    assert any("unknown identifier 'bogusSet'" in r.message for r in st.reasons)
    # the same command without the option, as Lean's default would elaborate it
    module = build_module(drafted, sorry_proof=True)
    lax = module.text.replace("set_option autoImplicit false\n", "")
    check = pool.check(lax, queries=module.queries[1:])
    assert not check.errors and "{bogusSet : Sort u_1}" in check.answers[0][0].text


def test_a_long_statement_is_locked_whole(pool):
    """A type past the pretty printer's default budget prints with `⋯`; the gate's query raises the budget, and
    refuses any answer that still elides."""
    long_sum = " + ".join(f"(a{k} * b{k})" for k in range(60))
    binders = " ".join(f"(a{k} b{k} : ℕ)" for k in range(60))
    drafted = Candidate(kind="theorem", namespace="N", statement=f"theorem big {binders} : {long_sum} = {long_sum}")
    st = check_statement(drafted, pool)
    assert st.elaborates, st.reasons
    assert "⋯" not in (st.elaborated_type or "") and "(a59 * b59)" in (st.elaborated_type or "")
    # the default pretty-printer budget would have elided it, and such an answer is refused
    module = build_module(drafted, sorry_proof=True)
    short = module.queries[1].replace("set_option pp.maxSteps 100000000 in ", "")
    check = pool.check(module.text, queries=[module.queries[0], short])
    assert "⋯" in check.answers[1][0].text
    v = judge(drafted.model_copy(update={"locked_type": st.elaborated_type}), module, check)
    assert not v.admitted and any("⋯" in r.message for r in v.reasons)
