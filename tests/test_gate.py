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
    screen_file,
)
from autoform.lean.oracle import LeanCheck, LeanMessage, SorryInfo

LOCK = "theorem add_comm' (a b : ℕ) : a + b = b + a"

# (proof or aux text, why it must be rejected by the pre-screen): each a realistic attempt, not a keyword
CHEATS = [
    ("sorry", "sorry"),
    # a search Lean runs again on every build: what it suggests goes in the Atlas, never the search itself
    ("  exact?", "exact?"),
    ("  simp?\n  omega", "simp?"),
    ("  exact sorry", "sorry"),
    ("  admit", "admit"),
    ("  simp\n  all_goals sorry", "sorry"),
    ("  exact (sorryAx _ false)", "sorryAx"),
    ("  native_decide", "native_decide"),
    ("  exact Nat.add_comm a b |>.trans (by native_decide)", "native_decide"),
    ("  set_option debug.skipKernelTC true in\n  exact Nat.add_comm a b", "debug.skipKernelTC"),
    ("  exact Lean.ofReduceBool _ _ rfl", "ofReduceBool"),
    ("  run_tac Lean.Elab.Tactic.evalTactic (← `(tactic| rfl))", "run_tac"),
    ("  exact «sorry»", "sorry"),
    ('  exact s!"{sorry}".length.le_refl.elim', "sorry"),  # interpolation is code
    ("  exact (by sorry : a + b = b + a)", "sorry"),
    ("  exact @sorryAx _ false", "sorryAx"),
    ("  conv => lhs; sorry", "sorry"),
    ("  set_option backward.synthInstance.canonInstances false in omega", "backward."),
    ("  #check Nat.add_comm\n  omega", "#check"),
    ("  exact Nat.add_comm a b\n#exit", "#exit"),
    ("  simp\n  admit -- looks like a comment after", "admit"),
    # code that runs while Lean elaborates, written the ways Lean and Mathlib allow
    ("  exact Nat.add_comm a b\n#eval! Lean.Elab.Command.liftCoreM (pure ())", "#eval!"),
    ("  exact by_elab do Lean.Elab.Term.elabTerm (← `(Nat.add_comm a b)) none", "by_elab"),
    ("  have : (2 : ℕ) + 2 = 4 := eval% (2 + 2 = 4)\n  omega", "eval%"),
    ("  decide +native", "native"),
    ("  exact of_decide_eq_true (by decide +native)", "native"),
    ("  decide (config := { native := true })", "native"),
    ("  set_option «debug».skipKernelTC true in\n  exact Nat.add_comm a b", "debug.skipKernelTC"),
    ("  set_option debug.«skipKernelTC» true in\n  exact Nat.add_comm a b", "debug.skipKernelTC"),
    ("  set_option «debug.skipKernelTC» true in\n  exact Nat.add_comm a b", "debug.skipKernelTC"),
    ("  set_option pp.proofs false in\n  omega", "pp.proofs"),
    ("  set_option trace.Meta.Tactic.simp true in simp [Nat.add_comm]", "trace."),
    ("  set_option autoImplicit true in\n  omega", "autoImplicit"),
    ("  omega\n#print axioms N.add_comm'", "#print"),
    ("  omega\n#print \"'N.add_comm'' depends on axioms: [propext]\"", "#print"),
    ("  run_elab Lean.logInfo \"'N.add_comm'' does not depend on any axioms\"\n  omega", "run_elab"),
    ('  run_meta Lean.logInfo m!"ok"\n  omega', "run_meta"),
    ("  omega\ntheorem extra : False := by omega", "theorem"),
    ("  omega\nend N\naxiom leak : False", "axiom"),
    ("  omega\nend N\nnamespace N", "end"),
    ("  exact Nat.add_comm a b\ninstance : Inhabited False := ⟨by omega⟩", "instance"),
    ("  omega\n#guard_msgs in #check 1", "#guard_msgs"),
    ("  exact Lean.reduceBool true", "reduceBool"),
    ("  exact (unsafeBaseIO (pure (Nat.add_comm a b)))", "unsafeBaseIO"),
    # the scanner must read quotes as Lean does, or code hides in what it takes for a string: a character literal
    # after `!` (an identifier character for the scanner, a token for Lean), an interpolated string
    ("  have : (!'\"'.isDigit) = true := rfl\n  exact by_elab pure (Lean.mkConst ``True.intro)\n  -- \"", "by_elab"),
    ('  have : s!"a".length = 1 := rfl\n  exact by_elab pure (Lean.mkConst ``True.intro)', "by_elab"),
    ('  have : String := s! "{(by_elab pure (Lean.mkNatLit 0) : ℕ)}"\n  omega', "by_elab"),
    ('  exact (fun _ => Nat.add_comm a b) (dbg_trace "{(by_elab pure (Lean.mkNatLit 0) : ℕ)}"; ())', "by_elab"),
    ("  first | exact (Unit×'\"') | skip\n  run_tac pure ()\n  -- \"", "run_tac"),  # `×` is not part of a name
    ("  first | exact (Unit ×' '\"') | skip\n  run_tac pure ()\n  -- \"", "symbol"),
    # a literal Lean cannot read: its error recovery reads the rest as commands, which run (rejected, but run)
    ('  omega\n  have : String := "\\q #eval IO.println 1"', "string literal Lean cannot read"),
    ("  omega\n  have := '\\q #eval IO.println 1'", "character literal Lean cannot read"),
    ('  have : String := "{" ++ "}"\n  exact by_elab pure (Lean.mkConst ``True.intro)\n  -- "', "interpolated"),
    # a tactic's configuration is compiled and run while Lean elaborates (`declare_config_elab`)
    ("  linarith (config := { discharger := fakeDischarger })", "config"),
    ("  nlinarith (discharger := pure ())", "passes code"),
    ("  solve_by_elim (config := { proc := fun _ _ => pure none })", "config"),
    ("  simp (config := myConfig) [Nat.add_comm]", "config"),
    ("  simp (maxSteps := do return 5)", "`do`"),
    ("  aesop (add safe tactic fakeTactic)", "tactic"),
    ("  plausible", "plausible"),
    ("  linarith (config := { Lean.Elab.Tactic.TacticM with })", "Lean.Elab"),
    # commands after the tactic block, under names the block-list did not know
    ('  exact Nat.add_comm a b\n  binder_predicate x " ≫ " y:term => `($x > $y)', "binder_predicate"),
    ("  exact Nat.add_comm a b\n  add_aesop_rules safe tactic fakeTactic", "add_aesop_rules"),
    ("  exact Nat.add_comm a b\n  set_premise_selector fun _ _ => pure #[]", "set_premise_selector"),
]
AUX_CHEATS = [
    ("axiom cheat : ∀ a b : ℕ, a + b = b + a", "axiom"),
    ("theorem helper : False := sorry", "sorry"),
    ('macro "trust_me" : tactic => `(tactic| sorry)', "macro"),
    ('syntax "trust_me" : tactic', "syntax"),
    ("macro_rules | `(tactic| trivial) => `(tactic| sorry)", "macro_rules"),
    ('elab "trust_me" : tactic => pure ()', "elab"),
    ("elab_rules : tactic | `(tactic| trivial) => pure ()", "elab_rules"),
    ("@[implemented_by foo] def bar : ℕ := 0", "implemented_by"),
    ('@[extern "c_fn"] opaque cfn : ℕ → ℕ', "extern"),
    ("unsafe def u : ℕ := 0", "unsafe"),
    ("@[csimp] theorem c : @id = @id := rfl", "csimp"),
    ('notation "ℕ" => Bool', "notation"),
    ('infixl:65 " + " => Nat.mul', "infixl"),
    ('local notation a " + " b => Nat.mul a b', "notation"),
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
    ('open Lean Elab in elab "x" : term => pure (mkConst ``True)', "elab"),
    ("initialize counter : IO.Ref ℕ ← IO.mkRef 0", "initialize"),
    ("theorem t (a b : ℕ) : True := trivial", "redefines"),  # a weakened copy of the locked theorem
    ("abbrev HAdd.hAdd := 0", "redefines"),
    ('-- harmless\n"a string" |> fun _ => 0\nlemma helper : False := by native_decide', "native_decide"),
    # registering code that runs while Lean elaborates
    ("#eval! (pure () : IO Unit)", "#eval!"),
    ("builtin_initialize registerTraceClass `x", "builtin_initialize"),
    ("simproc trustMe (Nat.add _ _) := fun _ => return .done { expr := mkConst ``True }", "simproc"),
    ("dsimproc reduceAll (_) := fun e => return .done e", "dsimproc"),
    (
        "open Lean Elab Command in\n"
        "@[command_elab Lean.Parser.Command.exit] def myExit : CommandElab := fun _ => pure ()",
        "command_elab",
    ),
    (
        "open Lean Elab Term in\n@[term_elab Lean.Parser.Term.sorry] def noSorry : TermElab :=\n"
        "  fun _ _ => pure (mkConst ``True)",
        "term_elab",
    ),
    (
        "open Lean Elab Tactic in\n@[tactic Lean.Parser.Tactic.omega] def fakeOmega : Tactic := fun _ => pure ()",
        "tactic",
    ),
    ("@[macro Lean.Parser.Tactic.decide] def fakeDecide : Lean.Macro := fun _ => `(tactic| sorry)", "macro"),
    ("@[delab app.Nat.add] def hideAdd : Lean.PrettyPrinter.Delaborator.Delab := failure", "delab"),
    ("@[app_unexpander Nat.add] def unexp : Lean.PrettyPrinter.Unexpander := fun _ => throw ()", "app_unexpander"),
    ("attribute [tactic Lean.Parser.Tactic.omega] myTactic", "tactic"),
    ("@[to_additive (attr := command_elab Lean.Parser.Command.exit)] def f : ℕ := 0", "command_elab"),
    ("@[positivity _ + _] def evalAdd' : Mathlib.Meta.Positivity.PositivityExt := sorry", "positivity"),
    ("@[norm_num _ + _] def evalAdd' : Mathlib.Meta.NormNum.NormNumExt := ⟨fun _ => failure⟩", "norm_num"),
    ("@[init] def setup : IO Unit := pure ()", "init"),
    ("set_option «debug».skipKernelTC true\ntheorem h : 1 = 1 := rfl", "debug.skipKernelTC"),
    ("set_option autoImplicit true\ntheorem h : x = x := rfl", "autoImplicit"),
    ("register_simp_attr trust_simps", "register_simp_attr"),
    ("declare_syntax_cat trusted", "declare_syntax_cat"),
    ('notation3 "ℕ\'" => Bool', "notation3"),
    ("export Nat (add)", "export"),
    ("Lean.Elab.Command.elabCommand stx", "line 1 starts with"),  # not a declaration
    ("theorem h : True := by\n  trivial\nrun_tac pure ()", "run_tac"),
    ("@[simp, aesop safe tactic] def step : Lean.Elab.Tactic.TacticM Unit := pure ()", "aesop"),
    # a command hidden behind `open ... in` (the line-start rule read only column 0), or on an indented line
    ("open Nat in add_aesop_rules safe tactic fakeTactic", "add_aesop_rules"),
    ('open Nat in binder_predicate x " >>> " y:term => `($x > $y)', "binder_predicate"),
    ("set_option maxHeartbeats 400000 in set_library_suggestions fun _ _ => pure #[]", "set_library_suggestions"),
    ("theorem h : True := trivial\n  test_extern Nat.add 1 2", "test_extern"),
    ("open Nat in whatsnew in theorem w : True := trivial", "may follow `in`"),
    # meta-level code a configuration or an Aesop rule could run
    ("def fakeTactic : Lean.Elab.Tactic.TacticM Unit := pure ()", "meta-programming"),
    ("open Lean Elab Tactic in\ndef fakeTactic : TacticM Unit := do\n  modifyEnv id", "meta-programming"),
    ("def _root_.IO.trustMe : ℕ := 0", "meta-programming"),
    ("@[simps (config := myCfg)] def pr : ℕ × ℕ := (1, 2)", "config"),
    # quotes read differently by the scanner and by Lean
    ('theorem h : s!"x".length = 1 := rfl\n#eval IO.println 1 -- "', "#eval"),
    ("theorem h : True := by\n  first | exact (Unit×'\"') | trivial\nrun_cmd pure ()\n-- \"", "run_cmd"),
    (
        "theorem h : 'é' = 'é' := rfl\ntheorem k : True := by\n  have := λ'\"'\n  trivial\nrun_cmd pure () -- \"",
        "run_cmd",
    ),
    # a name the locked statement uses, declared by a keyword other than `def`/`theorem`
    ("alias t := Nat.add_comm", "redefines"),
]
HONEST = [
    "  exact Nat.add_comm a b",
    "  omega",
    "  -- sorry, this comment mentions sorry and axiom and native_decide\n  omega",
    "  /- admit? no: /- nested -/ sorry -/\n  simp [Nat.add_comm]",
    '  have h : "sorry".length = 5 := rfl\n  omega',
    "  have h' : 'a' ≠ 'b' := by decide\n  exact Nat.add_comm a b",
    "  induction a with\n  | zero => simp\n  | succ n ih => omega",
    "  simp only [Nat.add_comm]",
    "  exact (Nat.add_comm a b).trans rfl",
    "  rw [Nat.add_comm]",
    "  have sorry_free : a + b = b + a := Nat.add_comm a b\n  exact sorry_free",
    "  exact add_comm_axiomatically a b",  # an identifier containing a forbidden word is fine
    "  decide",
    "  decide +kernel",
    "  set_option maxHeartbeats 400000 in\n  omega",
    "  set_option linter.unusedVariables false in\n  omega",
    '  have h : "#eval" ≠ "#print" := by decide\n  omega',
    "  -- `#print axioms` is what the gate asks; a comment may say so\n  omega",
    "  open Nat in\n  exact add_comm a b",
    "  exact Nat.le_antisymm\n    (by omega) (by omega)",
    "  calc a + b = b + a := Nat.add_comm a b\n    _ = b + a := rfl",
    "  exact (elab_helper_free a b).symm.symm",
    "  simp [eval_add, Nat.add_comm]",
    "  simp (config := { contextual := true }) [Nat.add_comm]",
    "  rw (config := { occs := .pos [1] }) [Nat.add_comm]",
    "  simp +contextual [Nat.add_comm]",
    "  decide (config := { kernel := true })",
    "  exact Nat.add_comm (n := a) b",
    "  exact Nat.add_comm (n := a) (m := (fun x => x) b)",
    "  nlinarith [sq_nonneg (a - b), sq_nonneg (a + b)]",
    "  linarith",
    "  aesop",
    "  norm_num [Nat.add_comm]",
    "  have h2 : (2.5 : ℚ) = 5 / 2 := by norm_num\n  omega",
    "  have : (λ x : ℕ => x) a = a := rfl\n  omega",
    "  have : ((1, 2) : ℕ × ℕ).1 = 1 := rfl\n  omega",
    "  exact List.find? p l |>.isSome",  # `find?` is a name, not a search
]
HONEST_AUX = [
    "instance : Fact (1 < 2) := ⟨by norm_num⟩",
    "@[simp] lemma my_add_zero (n : ℕ) : n + 0 = n := rfl",
    "/-- A docstring that mentions `#eval`, `sorry` and `axiom`. -/\ntheorem documented : True := trivial",
    "def twice (n : ℕ) : ℕ :=\n  2 * n\n\n@[simp] theorem twice_eq (n : ℕ) : twice n = 2 * n := rfl",
    "open Nat in\ntheorem helper (a b : ℕ) : a + b = b + a := Nat.add_comm a b",
    "attribute [local simp] Nat.add_comm in\ntheorem helper2 (a b : ℕ) : a + b = b + a := by simp",
    "set_option maxHeartbeats 400000 in\ntheorem heavy : True := trivial",
    "section\nvariable (n : ℕ)\ntheorem use_var : n = n := rfl\nend",
    "@[to_additive (attr := simp)] theorem mul_one' (n : ℕ) : n * 1 = n := Nat.mul_one n",
    "noncomputable def pick : ℕ := Classical.choice ⟨0⟩",
    "instance (priority := 100) instFactTwo : Fact (Nat.Prime 2) := ⟨Nat.prime_two⟩",
    "theorem syntax_free : True := trivial",  # a name that contains a forbidden word
    "lemma elaborate_macro_notation (n : ℕ) : n = n := rfl",
    "@[ext] structure Pt where\n  x : ℕ\n  y : ℕ",
    "@[simp, norm_cast] theorem cast_ok (n : ℕ) : ((n : ℤ) : ℤ) = n := rfl",
    "open Finset in\ntheorem s_in (n : ℕ) : ∑ i ∈ range n, i = ∑ i ∈ range n, i := rfl",
    "theorem s_old (n : ℕ) : ∑ i in Finset.range n, i = ∑ i in Finset.range n, i := rfl",
    "variable (n : ℕ)\ntheorem s_var : ∑ i in Finset.range n, i = ∑ i in Finset.range n, i := rfl",
    "theorem pre (f : ℕ → ℕ) (s : Set ℕ) : f ⁻¹' s = f ⁻¹' s ∧ f '' s = f '' s := ⟨rfl, rfl⟩",
    "theorem tsum_ok (f : ℕ → ℝ) : ∑' i, f i = ∑' i, f i := rfl",
    "theorem chars : 'a' ≠ 'b' ∧ '\\n' ≠ '\\'' ∧ \"x{y}\".length = 6 := by decide",
    "theorem café : True := trivial",
    "@[simps (config := .asFn)] def pr : ℕ × ℕ := (1, 2)",
    '@[deprecated Nat.add_comm (since := "2024-01-01")] theorem old_comm (a b : ℕ) : a + b = b + a :=\n'
    "  Nat.add_comm a b",
]


@pytest.mark.parametrize(("proof", "why"), CHEATS)
def test_prescreen_rejects_cheating_proofs(proof, why):
    c = Candidate(kind="theorem", namespace="N", statement=LOCK, proof=proof, locked_type="T")
    reasons = screen_candidate(c)
    assert reasons, f"not caught: {proof!r}"
    assert any(why in r.message for r in reasons), [r.message for r in reasons]


@pytest.mark.parametrize(("aux", "why"), AUX_CHEATS)
def test_prescreen_rejects_cheating_auxiliaries(aux, why):
    c = Candidate(
        kind="theorem",
        namespace="N",
        statement="theorem t (a b : ℕ) : Nat.add a b = HAdd.hAdd b a",
        proof="  omega",
        aux=aux,
        locked_type="T",
    )
    reasons = screen_candidate(c)
    assert any(why in r.message for r in reasons), [r.message for r in reasons]


@pytest.mark.parametrize("proof", HONEST)
def test_prescreen_passes_honest_proofs(proof):
    c = Candidate(kind="theorem", namespace="N", statement=LOCK, proof=proof, locked_type="T")
    assert screen_candidate(c) == []


@pytest.mark.parametrize("aux", HONEST_AUX)
def test_prescreen_passes_honest_helpers(aux):
    c = Candidate(kind="theorem", namespace="N", statement=LOCK, proof="  omega", aux=aux, locked_type="T")
    assert screen_candidate(c) == []


def test_an_anonymous_instance_is_not_a_redefinition():
    """`instance : Fintype X` declares no name, so it redefines nothing the statement uses."""
    stmt = "theorem card_ok (X : Type) [Fintype X] [DecidableEq X] : Fintype.card X = Fintype.card X"
    aux = "instance : Fintype Bool := inferInstance\ninstance [Fintype α] : Nonempty (Option α) := ⟨none⟩"
    c = Candidate(kind="theorem", namespace="N", statement=stmt, proof="rfl", aux=aux, locked_type="T")
    assert screen_candidate(c) == []
    named = c.model_copy(update={"aux": "instance Fintype : Inhabited ℕ := ⟨0⟩"})
    assert [r.code for r in screen_candidate(named)] == ["redefinition"]


def test_a_statement_is_one_theorem():
    """A drafted statement that brings its own instance (or a second declaration) locks something other than
    what it appears to say: `a + b = a * b` with `+` redefined."""
    stmt = "instance (priority := high) hm : Add ℕ := ⟨Nat.mul⟩\ntheorem t (a b : ℕ) : a + b = a * b"
    assert "not_allowed" in {r.code for r in prescreen(stmt, role="statement")}
    two = "theorem t : 1 = 1 := rfl\ntheorem t2 (a b : ℕ) : a + b = b + a"
    assert "not_allowed" in {r.code for r in prescreen(two, role="statement")}
    assert prescreen("open Finset in\ntheorem t (n : ℕ) : ∑ i ∈ range n, i ≤ n * n", role="statement") == []


def test_tokens_read_quotes_as_lean_does():
    """`×`, `λ`, `Π`, `Σ` and superscripts are not identifier characters for Lean; `!'x'` is `!` then a
    character literal; a string's `{...}` may be code."""
    assert [t.text for t in lean_tokens("Unit×'\"' x λ'\"' y")] == ["Unit", "x", "y"]
    assert [t.text for t in lean_tokens("(!'\"'.isDigit) z")] == ["isDigit", "z"]
    assert [t.text for t in lean_tokens('s! "{by_elab}" w')] == ["s!", "by_elab", "w"]
    assert [t.text for t in lean_tokens("x⁻¹ ∑' i, f i")] == ["x", "i", "f", "i"]


def test_option_names_are_normalised_before_the_check():
    assert [t.text for t in lean_tokens("set_option «debug».skipKernelTC debug.«skipKernelTC» «a.b»")] == [
        "set_option",
        "debug.skipKernelTC",
        "debug.skipKernelTC",
        "a.b",
    ]


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
    text = (
        "namespace A\ndef f := 1\nsection\ntheorem g : f = 1 := rfl\nend\nnamespace B\n"
        "lemma h : True := trivial\nend B\nend A\ntheorem k : True := trivial"
    )
    assert file_declarations(text) == ["A.f", "A.g", "A.B.h", "k"]


def test_normalize_proof():
    assert normalize_proof(":= by\n  simp\n  omega") == "simp\nomega"
    assert normalize_proof("by simp") == "simp"
    assert normalize_proof("  induction n with\n  | zero => rfl\n  | succ n ih => simp") == (
        "induction n with\n| zero => rfl\n| succ n ih => simp"
    )
    assert normalize_proof("bysimp") == "bysimp"  # not the keyword
    assert normalize_proof("by simp\n  omega") == "simp\nomega"  # tactics on the line of `by`


def test_normalize_proof_keeps_continuation_lines_in_place():
    """The block is dedented as a whole: a continuation line stays deeper than the line it continues."""
    assert normalize_proof("  exact Nat.le_trans\n    h1 h2") == "exact Nat.le_trans\n  h1 h2"
    assert normalize_proof("  have h : a ≤ b :=\n    le_of_lt hab\n  exact h") == (
        "have h : a ≤ b :=\n  le_of_lt hab\nexact h"
    )


def test_normalize_proof_whitespace():
    assert normalize_proof("\u00a0\u00a0simp\n\u00a0\u00a0omega") == "simp\nomega"  # no-break spaces
    assert normalize_proof("\tconstructor\n\t\u00b7 simp\n\t\u00b7 omega") == "constructor\n· simp\n· omega"
    assert normalize_proof("\tinduction n with\n\t| zero => rfl\n\t| succ n ih =>\n\t\tsimp") == (
        "induction n with\n| zero => rfl\n| succ n ih =>\n  simp"
    )
    c = Candidate(kind="theorem", namespace="N", statement=LOCK, proof="  constructor\n\t· simp", locked_type="T")
    assert [r.code for r in screen_candidate(c)] == ["format"]  # tabs and spaces mixed: refused with the reason
    assert "\t" not in build_module(c.model_copy(update={"proof": "\tsimp\n\tomega"})).text


def test_module_splices_proof_into_locked_statement():
    c = Candidate(
        kind="theorem",
        namespace="Atlas.B",
        statement=LOCK,
        proof="by\n  omega",
        aux="theorem helper : True := trivial",
        prelude="def D : ℕ := 1",
    )
    m = build_module(c)
    lines = m.text.splitlines()
    strict = ["set_option autoImplicit false", "set_option relaxedAutoImplicit false"]
    assert "def D : ℕ := 1" in m.text and m.text.index("def D") < m.text.index("theorem helper")
    assert f"{LOCK} := by\n  omega\nend Atlas.B\n" in m.text
    assert lines[m.proof_line - 1] == "  omega"
    # the gate's queries are not in the text: they are commands of their own
    assert "#print" not in m.text and "#check" not in m.text
    assert m.queries == [
        "#print axioms Atlas.B.add_comm'",
        "set_option pp.all true in set_option pp.maxSteps 100000000 in set_option pp.deepTerms true "
        "in set_option pp.proofs true in #check @Atlas.B.add_comm'",
    ]
    # the prelude is a block of its own that an oracle may elaborate once; each block sets the strict options
    assert lines[: m.context_lines] == [*strict, "namespace Atlas.B", "def D : ℕ := 1", "end Atlas.B"]
    assert lines[m.context_lines : m.context_lines + 3] == [*strict, "namespace Atlas.B"]
    assert lines[m.body_start - 1] == "theorem helper : True := trivial"
    plain = build_module(c.model_copy(update={"prelude": ""}))
    assert plain.context_lines == 0 and plain.text.splitlines()[:2] == strict


def _check(
    m,
    *,
    axioms="'N.add_comm'' depends on axioms: [propext, Quot.sound]",
    ty="@N.add_comm' : T",
    extra=(),
    sorries=(),
    more_answers=(),
):
    """What Lean says: the candidate's own messages, and each query's answer as messages of its own command."""
    answers = [[], []]
    if axioms is not None:
        answers[0].append(LeanMessage(severity="info", line=1, column=0, text=axioms))
    if ty is not None:
        answers[1].append(LeanMessage(severity="info", line=1, column=0, text=ty))
    for k, msg in more_answers:
        answers[k].append(msg)
    return LeanCheck(messages=list(extra), sorries=list(sorries), answers=answers)


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
        # an answer about another declaration, or two answers to one query, confirm nothing
        ({"axioms": "'N.other' does not depend on any axioms"}, "axioms_unconfirmed"),
        (
            {
                "more_answers": [
                    (
                        0,
                        LeanMessage(
                            severity="info", line=1, column=0, text="'N.add_comm'' does not depend on any axioms"
                        ),
                    )
                ]
            },
            "axioms_unconfirmed",
        ),
        (
            {"more_answers": [(1, LeanMessage(severity="error", line=1, column=0, text="unknown constant"))]},
            "type_unconfirmed",
        ),
        ({"ty": "@N.other : T"}, "type_unconfirmed"),
        ({"ty": "@N.add_comm' : ∀ (a b : Nat), ⋯"}, "type_unconfirmed"),  # elided: cannot be compared
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


def test_judge_takes_no_answer_from_the_candidates_own_messages(cand):
    """What the candidate itself logged (at any line) is never taken for the answer to a query."""
    m = build_module(cand)
    forged = [
        LeanMessage(severity="info", line=ln, column=0, text="'N.add_comm'' depends on axioms: [propext]")
        for ln in range(1, m.text.count("\n") + 3)
    ]
    v = judge(cand, m, _check(m, axioms=None, extra=forged))
    assert not v.admitted and "axioms_unconfirmed" in {r.code for r in v.reasons}
    v = judge(cand, m, LeanCheck(messages=forged))  # no answers at all
    assert not v.admitted and {"axioms_unconfirmed", "type_unconfirmed"} <= {r.code for r in v.reasons}


def test_judge_needs_a_lock(cand):
    c = cand.model_copy(update={"locked_type": None})
    m = build_module(c)
    v = judge(c, m, _check(m))
    assert not v.admitted and v.reasons[0].code == "no_lock"


def test_parse_axioms_forms():
    assert parse_axioms("'a.b' depends on axioms: [propext, Classical.choice, Quot.sound]") == [
        "propext",
        "Classical.choice",
        "Quot.sound",
    ]
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

    def check(self, code, *, timeout_s=None, context_lines=0, queries=()):
        self.seen.append((code, list(queries)))
        return self.reply(code, list(queries))

    def close(self):
        pass


def test_check_file_queries_every_declaration():
    text = "import Mathlib\nnamespace X\ntheorem a : True := trivial\ndef b : ℕ := 1\nend X\n"

    def reply(code, queries):
        return LeanCheck(
            answers=[
                [LeanMessage(severity="info", line=1, column=0, text=f"'{q.split()[-1]}' depends on axioms: [propext]")]
                for q in queries
            ]
        )

    o = _ScriptedOracle(reply)
    v = check_file(text, o, header="import Mathlib")
    assert v.admitted, v.reasons
    code, queries = o.seen[0]
    assert queries == ["#print axioms X.a", "#print axioms X.b"] and "#print" not in code
    assert code.startswith("set_option autoImplicit false\n")
    v = check_file(text.replace("import Mathlib", "import Other"), o, header="import Mathlib")
    assert not v.admitted and v.reasons[0].code == "header"


def test_screen_file_needs_no_lean():
    assert screen_file("theorem a : True := trivial\n", header="import Mathlib") is None
    v = screen_file("theorem a : False := by\n  native_decide\n#eval 1\n", header="import Mathlib")
    assert v is not None and {r.code for r in v.reasons} == {"forbidden"} and len(v.reasons) == 2


def test_corpus_size():
    assert len(CHEATS) + len(AUX_CHEATS) >= 60 and len(HONEST) + len(HONEST_AUX) >= 30


def test_admit_stated():
    from autoform.lean.gate import admit_stated

    c = Candidate(kind="theorem", namespace="N", statement=LOCK, locked_type="@N.add_comm' : T")
    m = build_module(c, sorry_proof=True)
    sorry_line = m.proof_line
    assert m.text.splitlines()[sorry_line - 1] == "  sorry"

    def reply_with(sorry_lines, axioms="[propext, sorryAx]", ty="@N.add_comm' : T"):
        def reply(code, queries):
            msgs = [LeanMessage(severity="warning", line=m.body_start, column=0, text="declaration uses `sorry`")]
            answers = [
                [LeanMessage(severity="info", line=1, column=0, text=f"'N.add_comm'' depends on axioms: {axioms}")],
                [LeanMessage(severity="info", line=1, column=0, text=ty)],
            ]
            return LeanCheck(messages=msgs, sorries=[SorryInfo(line=x, column=2) for x in sorry_lines], answers=answers)

        return reply

    assert admit_stated(c, _ScriptedOracle(reply_with([sorry_line]))).admitted
    assert not admit_stated(c, _ScriptedOracle(reply_with([sorry_line], ty="@N.add_comm' : U"))).admitted
    assert not admit_stated(c, _ScriptedOracle(reply_with([sorry_line], axioms="[sorryAx, cheat]"))).admitted
    assert not admit_stated(c, _ScriptedOracle(reply_with([sorry_line, 1]))).admitted
    err = _ScriptedOracle(
        lambda code, q: LeanCheck(messages=[LeanMessage(severity="error", line=2, column=0, text="unknown identifier")])
    )
    assert not admit_stated(c, err).admitted
    assert not admit_stated(c, _ScriptedOracle(lambda code, q: LeanCheck(failure="Lean timed out"))).admitted
