"""The admission gate: pre-screen, module construction, and judgement of what Lean said."""

from __future__ import annotations

import pytest

from autoform.lean.gate import (
    Candidate,
    build_module,
    check_file,
    declared_name,
    file_declarations,
    judge,
    lean_tokens,
    normalize_proof,
    parse_axioms,
    prescreen,
    screen_candidate,
)
from autoform.lean.oracle import LeanCheck, LeanMessage, SorryInfo

LOCK = "theorem add_comm' (a b : ℕ) : a + b = b + a"

# (proof or aux text, why it must be rejected by the pre-screen)
CHEATS = [
    ("sorry", "sorry"),
    ("  exact sorry", "sorry"),
    ("  admit", "admit"),
    ("  simp\n  all_goals sorry", "sorry"),
    ("  exact (sorryAx _ false)", "sorryAx"),
    ("  native_decide", "native_decide"),
    ("  exact Nat.add_comm a b |>.trans (by native_decide)", "native_decide"),
    ("  set_option debug.skipKernelTC true in\n  exact Nat.add_comm a b", "debug."),
    ("  exact Lean.ofReduceBool _ _ rfl", "ofReduceBool"),
    ("  run_tac Lean.Elab.Tactic.evalTactic (← `(tactic| rfl))", "run_tac"),
    ("  exact «sorry»", "sorry"),
    ("  exact s!\"{sorry}\".length.le_refl.elim", "sorry"),  # interpolation is code
    ("  exact (by sorry : a + b = b + a)", "sorry"),
    ("  exact @sorryAx _ false", "sorryAx"),
    ("  conv => lhs; sorry", "sorry"),
    ("  set_option backward.synthInstance.canonInstances false in omega", "backward."),
    ("  #check Nat.add_comm\n  omega", "#check"),
    ("  exact Nat.add_comm a b\n#exit", "#exit"),
    ("  simp\n  admit -- looks like a comment after", "admit"),
]
AUX_CHEATS = [
    ("axiom cheat : ∀ a b : ℕ, a + b = b + a", "axiom"),
    ("theorem helper : False := sorry", "sorry"),
    ("macro \"trust_me\" : tactic => `(tactic| sorry)", "macro"),
    ("syntax \"trust_me\" : tactic", "syntax"),
    ("macro_rules | `(tactic| trivial) => `(tactic| sorry)", "macro_rules"),
    ("elab \"trust_me\" : tactic => pure ()", "elab"),
    ("elab_rules : tactic | `(tactic| trivial) => pure ()", "elab_rules"),
    ("@[implemented_by foo] def bar : ℕ := 0", "implemented_by"),
    ("@[extern \"c_fn\"] opaque cfn : ℕ → ℕ", "extern"),
    ("unsafe def u : ℕ := 0", "unsafe"),
    ("@[csimp] theorem c : @id = @id := rfl", "csimp"),
    ("notation \"ℕ\" => Bool", "notation"),
    ("infixl:65 \" + \" => Nat.mul", "infixl"),
    ("local notation a \" + \" b => Nat.mul a b", "notation"),
    ("#eval Lean.Elab.Command.liftCoreM (Lean.addDecl default)", "#eval"),
    ("run_cmd Lean.Elab.Command.elabCommand (← `(axiom x : False))", "run_cmd"),
    ("import Mathlib.Tactic", "import"),
    ("set_option trace.Meta.synthInstance true", "trace."),
    ("#exit", "#exit"),
    ("opaque magic : False", "opaque"),
    ("def Nat.add (a b : ℕ) : ℕ := a * b", "redefines"),
    ("theorem HAdd.hAdd : True := trivial", "redefines"),
    ("/- a nested /- comment -/ still open -/ axiom x : False", "axiom"),
    ("private axiom hidden : False", "axiom"),
    ("noncomputable opaque choice' : ℕ", "opaque"),
    ("open Lean Elab in elab \"x\" : term => pure (mkConst ``True)", "elab"),
    ("initialize counter : IO.Ref ℕ ← IO.mkRef 0", "initialize"),
    ("theorem t (a b : ℕ) : True := trivial", "redefines"),  # a weakened copy of the locked theorem
    ("abbrev HAdd.hAdd := 0", "redefines"),
    ("-- harmless\n\"a string\" |> fun _ => 0\nlemma helper : False := by native_decide", "native_decide"),
]
HONEST = [
    "  exact Nat.add_comm a b",
    "  omega",
    "  -- sorry, this comment mentions sorry and axiom and native_decide\n  omega",
    "  /- admit? no: /- nested -/ sorry -/\n  simp [Nat.add_comm]",
    "  have h : \"sorry\".length = 5 := rfl\n  omega",
    "  have h' : 'a' ≠ 'b' := by decide\n  exact Nat.add_comm a b",
    "  induction a with\n  | zero => simp\n  | succ n ih => omega",
    "  simp only [Nat.add_comm]",
    "  exact (Nat.add_comm a b).trans rfl",
    "  rw [Nat.add_comm]",
    "  have sorry_free : a + b = b + a := Nat.add_comm a b\n  exact sorry_free",
    "  exact add_comm_axiomatically a b",  # an identifier containing a forbidden word is fine
    "  decide",
]


@pytest.mark.parametrize(("proof", "why"), CHEATS)
def test_prescreen_rejects_cheating_proofs(proof, why):
    c = Candidate(kind="theorem", namespace="N", statement=LOCK, proof=proof, locked_type="T")
    reasons = screen_candidate(c)
    assert reasons, f"not caught: {proof!r}"
    assert any(why in r.message for r in reasons), [r.message for r in reasons]


@pytest.mark.parametrize(("aux", "why"), AUX_CHEATS)
def test_prescreen_rejects_cheating_auxiliaries(aux, why):
    c = Candidate(kind="theorem", namespace="N", statement="theorem t (a b : ℕ) : Nat.add a b = HAdd.hAdd b a",
                  proof="  omega", aux=aux, locked_type="T")
    reasons = screen_candidate(c)
    assert any(why in r.message for r in reasons), [r.message for r in reasons]


@pytest.mark.parametrize("proof", HONEST)
def test_prescreen_passes_honest_proofs(proof):
    c = Candidate(kind="theorem", namespace="N", statement=LOCK, proof=proof, locked_type="T")
    assert screen_candidate(c) == []


def test_prescreen_reports_lines():
    reasons = prescreen("theorem a : True := by\n  trivial\n\ntheorem b : True := by\n  sorry\n")
    assert [(r.code, r.line) for r in reasons] == [("forbidden", 5)]


def test_tokens_skip_comments_strings_and_chars():
    toks = [t.text for t in lean_tokens('-- sorry\n/- /- sorry -/ admit -/ x "sorry \\" admit" \'s\' y r#"sorry"# z')]
    assert toks == ["x", "y", "z"]
    assert [t.text for t in lean_tokens("h' h₁ Nat.succ_le_iff #eval")] == ["h'", "h₁", "Nat.succ_le_iff", "#eval"]


def test_declared_name_and_file_declarations():
    assert declared_name("theorem foo_bar (n : ℕ) : n = n") == "foo_bar"
    assert declared_name("@[simp] noncomputable def Foo.bar : ℕ := 0") == "Foo.bar"
    assert declared_name("  lemma x : True") == "x"
    assert declared_name("example : True") is None
    text = ("namespace A\ndef f := 1\nsection\ntheorem g : f = 1 := rfl\nend\nnamespace B\n"
            "lemma h : True := trivial\nend B\nend A\ntheorem k : True := trivial")
    assert file_declarations(text) == ["A.f", "A.g", "A.B.h", "k"]


def test_normalize_proof():
    assert normalize_proof(":= by\n  simp\n  omega") == "simp\nomega"
    assert normalize_proof("by simp") == "simp"
    assert normalize_proof("  induction n with\n  | zero => rfl\n  | succ n ih => simp") == (
        "induction n with\n| zero => rfl\n| succ n ih => simp")
    assert normalize_proof("bysimp") == "bysimp"  # not the keyword


def test_module_splices_proof_into_locked_statement():
    c = Candidate(kind="theorem", namespace="Atlas.B", statement=LOCK, proof="by\n  omega",
                  aux="theorem helper : True := trivial", prelude="def D : ℕ := 1")
    m = build_module(c)
    lines = m.text.splitlines()
    assert lines[0] == "namespace Atlas.B"
    assert "def D : ℕ := 1" in m.text and m.text.index("def D") < m.text.index("theorem helper")
    assert f"{LOCK} := by\n  omega\nend Atlas.B\n" in m.text
    assert lines[m.axioms_line - 1] == "#print axioms Atlas.B.add_comm'"
    assert lines[m.check_line - 1] == "set_option pp.all true in #check @Atlas.B.add_comm'"
    # the prelude is a block of its own that an oracle may elaborate once: namespace, prelude, end
    assert lines[:m.context_lines] == ["namespace Atlas.B", "def D : ℕ := 1", "end Atlas.B"]
    assert lines[m.context_lines] == "namespace Atlas.B"
    assert lines[m.body_start - 1] == "theorem helper : True := trivial"
    assert build_module(c.model_copy(update={"prelude": ""})).context_lines == 0


def _check(m, *, axioms="'N.add_comm'' depends on axioms: [propext, Quot.sound]", ty="@N.add_comm' : T",
           extra=(), sorries=()):
    msgs = list(extra)
    if axioms is not None:
        msgs.append(LeanMessage(severity="info", line=m.axioms_line, column=0, text=axioms))
    if ty is not None:
        msgs.append(LeanMessage(severity="info", line=m.check_line, column=0, text=ty))
    return LeanCheck(messages=msgs, sorries=list(sorries))


@pytest.fixture
def cand():
    return Candidate(kind="theorem", namespace="N", statement=LOCK, proof="omega", locked_type="@N.add_comm' : T")


def test_judge_admits_only_what_lean_confirms(cand):
    m = build_module(cand)
    v = judge(cand, m, _check(m))
    assert v.admitted and v.axioms == ["propext", "Quot.sound"]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"extra": [LeanMessage(severity="error", line=3, column=2, text="unsolved goals")]}, "compile_error"),
        ({"extra": [LeanMessage(severity="warning", line=2, column=0, text="declaration uses 'sorry'")]}, "sorry"),
        ({"extra": [LeanMessage(severity="warning", line=2, column=0, text="declaration uses `sorry`")]}, "sorry"),
        ({"sorries": [SorryInfo(line=3, column=2, goal="⊢ False")]}, "sorry"),
        ({"axioms": "'N.add_comm'' depends on axioms: [propext, sorryAx]"}, "axioms"),
        ({"axioms": "'N.add_comm'' depends on axioms: [propext,\n Classical.choice,\n cheat]"}, "axioms"),
        ({"axioms": None}, "axioms_unconfirmed"),  # Lean did not answer: never a pass
        ({"ty": None}, "type_unconfirmed"),
        ({"ty": "@N.add_comm' : T'"}, "statement_changed"),
    ],
)
def test_judge_rejections(cand, kwargs, code):
    m = build_module(cand)
    v = judge(cand, m, _check(m, **kwargs))
    assert not v.admitted
    assert code in {r.code for r in v.reasons}


def test_judge_failure_is_rejection(cand):
    m = build_module(cand)
    v = judge(cand, m, LeanCheck(failure="Lean timed out after 300 s"))
    assert not v.admitted and v.reasons[0].code == "lean_failure" and "timed out" in v.summary()


def test_judge_ignores_spoofed_messages_away_from_query_lines(cand):
    """A candidate cannot fake the answer to the gate's queries with messages of its own."""
    m = build_module(cand)
    fake = LeanMessage(severity="info", line=m.body_start, column=0,
                       text="'N.add_comm'' depends on axioms: [propext]")
    v = judge(cand, m, _check(m, axioms=None, extra=[fake]))
    assert not v.admitted and "axioms_unconfirmed" in {r.code for r in v.reasons}


def test_judge_needs_a_lock(cand):
    c = cand.model_copy(update={"locked_type": None})
    m = build_module(c)
    v = judge(c, m, _check(m))
    assert not v.admitted and v.reasons[0].code == "no_lock"


def test_parse_axioms_forms():
    assert parse_axioms("'a.b' depends on axioms: [propext, Classical.choice, Quot.sound]") == [
        "propext", "Classical.choice", "Quot.sound"]
    assert parse_axioms("'a' depends on axioms: [propext,\n Classical.choice]") == ["propext", "Classical.choice"]
    assert parse_axioms("'a' does not depend on any axioms") == []
    assert parse_axioms("`a` depends on axioms: [propext]") == ["propext"]
    assert parse_axioms("something else") is None


class _ScriptedOracle:
    backend, toolchain = "scripted", "test"

    def __init__(self, reply):
        self.reply, self.seen = reply, []

    def start(self):
        pass

    def check(self, code, *, timeout_s=None, context_lines=0):
        self.seen.append(code)
        return self.reply(code)

    def close(self):
        pass


def test_check_file_queries_every_declaration():
    text = "import Mathlib\nnamespace X\ntheorem a : True := trivial\ndef b : ℕ := 1\nend X\n"

    def reply(code):
        lines = code.splitlines()
        msgs = [LeanMessage(severity="info", line=i + 1, column=0,
                            text=f"'{ln.split()[-1]}' depends on axioms: [propext]")
                for i, ln in enumerate(lines) if ln.startswith("#print axioms")]
        return LeanCheck(messages=msgs)

    o = _ScriptedOracle(reply)
    v = check_file(text, o, header="import Mathlib")
    assert v.admitted, v.reasons
    assert "#print axioms X.a" in o.seen[0] and "#print axioms X.b" in o.seen[0]
    v = check_file(text.replace("import Mathlib", "import Other"), o, header="import Mathlib")
    assert not v.admitted and v.reasons[0].code == "header"


def test_corpus_size():
    assert len(CHEATS) + len(AUX_CHEATS) >= 40 and len(HONEST) >= 10


def test_admit_stated():
    from autoform.lean.gate import admit_stated

    c = Candidate(kind="theorem", namespace="N", statement=LOCK, locked_type="@N.add_comm' : T")
    m = build_module(c, sorry_proof=True)
    sorry_line = m.body_end - 1

    def reply_with(sorry_lines, axioms="[propext, sorryAx]", ty="@N.add_comm' : T"):
        def reply(code):
            msgs = [LeanMessage(severity="warning", line=m.body_start, column=0, text="declaration uses `sorry`"),
                    LeanMessage(severity="info", line=m.axioms_line, column=0,
                                text=f"'N.add_comm'' depends on axioms: {axioms}"),
                    LeanMessage(severity="info", line=m.check_line, column=0, text=ty)]
            return LeanCheck(messages=msgs, sorries=[SorryInfo(line=x, column=2) for x in sorry_lines])
        return reply

    assert admit_stated(c, _ScriptedOracle(reply_with([sorry_line]))).admitted
    assert not admit_stated(c, _ScriptedOracle(reply_with([sorry_line], ty="@N.add_comm' : U"))).admitted
    assert not admit_stated(c, _ScriptedOracle(reply_with([sorry_line], axioms="[sorryAx, cheat]"))).admitted
    assert not admit_stated(c, _ScriptedOracle(reply_with([sorry_line, 1]))).admitted
    err = _ScriptedOracle(lambda code: LeanCheck(messages=[LeanMessage(severity="error", line=2, column=0,
                                                                         text="unknown identifier")]))
    assert not admit_stated(c, err).admitted
    assert not admit_stated(c, _ScriptedOracle(lambda code: LeanCheck(failure="Lean timed out"))).admitted
