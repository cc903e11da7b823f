"""Is a drafted statement equivalent to the benchmark's reference? Lean decides, in the spirit of BEq.

Each direction is a Lean module of its own, checked under the benchmark's header:

    axiom autoform_eval_ref <reference binders> : <reference type>
    theorem autoform_eval_fwd <drafted binders> : <drafted type> := by <automation that may use the axiom>

and the converse (``autoform_eval_drafted`` as the axiom, ``autoform_eval_bwd`` proving the reference). The
hypothesis is an axiom, not a binder ``(h : ∀ ..., ...)``, so it stays universe-polymorphic: a statement over
``Type*`` is used at whatever universe the other side needs, where a hypothesis would be fixed at one. A
direction is proved only when Lean reports no error and no sorry, and answers ``#print axioms`` (a command of
its own on the environment the module produced, as the gate asks) with nothing but the standard three axioms
and that one hypothesis. Both directions proved: **equivalent**. When a direction is not proved, automation
tries to refute the drafted statement outright (``¬ ∀ binders, type``, standard axioms only); proved, the two
are **not equivalent** (the reference is a theorem of the benchmark, so a false drafted statement differs from
it). Anything else, a timeout or a crash included, is **undecided**: never equivalent without Lean saying so.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from autoform.lean.gate import ALLOWED_AXIOMS, STRICT_OPTIONS, axioms_query, confirmed_axioms
from autoform.lean.oracle import LeanCheck, Oracle

Outcome = Literal["equivalent", "not_equivalent", "undecided", "no_statement"]

REF, DRAFTED = "autoform_eval_ref", "autoform_eval_drafted"


def equiv_tactic(hyp: str) -> str:
    """Automation proving a statement from ``hyp`` (each alternative on its own; the first that closes wins)."""
    return "\n".join(
        [
            "first",
            f"  | exact {hyp}",
            f"  | (apply {hyp} <;> assumption)",
            f"  | (intros; apply {hyp} <;> assumption)",
            f"  | (simpa using {hyp})",
            f"  | (have := @{hyp}; aesop)",
        ]
    )


REFUTE_TACTIC = "first\n  | decide\n  | (norm_num; done)\n  | (simp; done)\n  | (push_neg; aesop)"

_OPEN, _CLOSE = "([{⦃⟨", ")]}⦄⟩"
_HEAD = re.compile(
    r"^\s*(?:@\[[^\]]*\]\s*)?(?:(?:private|protected|noncomputable|nonrec)\s+)*"
    r"(theorem|lemma|example)\s*([^\s:({\[⦃]*)",
    re.M,
)


class Statement(BaseModel):
    """A theorem statement split at its top-level colon: ``theorem name binders : type``."""

    name: str
    binders: str
    type: str

    def as_prop(self) -> str:
        """The statement as one proposition: ``∀ binders, type`` (or the type alone)."""
        return f"∀ {self.binders}, {self.type}" if self.binders.strip() else self.type


def _strip_comments(text: str) -> str:
    text = re.sub(r"/-.*?-/", " ", text, flags=re.S)
    return re.sub(r"--[^\n]*", "", text)


def split_statement(text: str) -> Statement | None:
    """``theorem n binders : T [:= proof]`` split into its parts (brackets and ``:=`` understood); None when the
    text is not one theorem statement."""
    src = _strip_comments(text)
    m = _HEAD.search(src)
    if m is None:
        return None
    rest, depth, colon, end = src[m.end() :], 0, -1, -1
    for i, ch in enumerate(rest):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif depth == 0 and ch == ":" and rest[i + 1 : i + 2] != "=":
            if colon < 0:
                colon = i
        elif depth == 0 and ch == ":" and colon >= 0:
            end = i
            break
    if colon < 0:
        return None
    ty = rest[colon + 1 : end if end >= 0 else len(rest)].strip()
    binders = " ".join(rest[:colon].split())
    return Statement(name=m.group(2), binders=binders, type=ty) if ty else None


class DirectionCheck(BaseModel):
    direction: Literal["fwd", "bwd", "refute"]
    proved: bool
    reason: str = ""
    lean_s: float = 0.0
    module: str = ""


class Equivalence(BaseModel):
    outcome: Outcome
    reason: str = ""
    checks: list[DirectionCheck] = Field(default_factory=list)

    @property
    def lean_s(self) -> float:
        return sum(c.lean_s for c in self.checks)


def _indent(text: str) -> str:
    return "\n".join("  " + ln for ln in text.splitlines())


def _prove(
    oracle: Oracle,
    header: str,
    namespace: str,
    direction: Literal["fwd", "bwd", "refute"],
    body: str,
    theorem: str,
    hypothesis: str | None,
) -> DirectionCheck:
    text = (
        STRICT_OPTIONS
        + (f"namespace {namespace}\n" if namespace else "")
        + body
        + (f"end {namespace}\n" if namespace else "")
    )
    full = f"{namespace}.{theorem}" if namespace else theorem
    check: LeanCheck = oracle.check(text, header=header, queries=[axioms_query(full)])
    out = DirectionCheck(direction=direction, proved=False, lean_s=check.elapsed_s, module=text)
    if check.failure is not None:
        out.reason = f"Lean gave no verdict: {check.failure}"
        return out
    if check.errors:
        out.reason = f"line {check.errors[0].line}: {check.errors[0].text[:300]}"
        return out
    if check.sorries or any("sorry" in m.text and m.severity == "warning" for m in check.messages):
        out.reason = "Lean reports a sorry"
        return out
    axioms, why = confirmed_axioms(check, 0, full)
    if axioms is None:
        out.reason = f"Lean did not confirm the axioms: {why}"
        return out
    allowed = ALLOWED_AXIOMS | ({f"{namespace}.{hypothesis}" if namespace else hypothesis} if hypothesis else set())
    bad = sorted(set(axioms) - allowed)
    if bad:
        out.reason = f"rests on {', '.join(bad)}"
        return out
    out.proved = True
    return out


def decide(oracle: Oracle, *, header: str, namespace: str, reference: str, drafted: str) -> Equivalence:
    """Lean's verdict on whether ``drafted`` (a locked statement) states the same as ``reference``."""
    ref, dr = split_statement(reference), split_statement(drafted)
    if ref is None:
        return Equivalence(outcome="undecided", reason="the reference is not a theorem statement autoform can read")
    if dr is None:
        return Equivalence(outcome="undecided", reason="the drafted statement could not be split at its colon")
    fwd = _prove(
        oracle,
        header,
        namespace,
        "fwd",
        f"axiom {REF} {ref.binders} : {ref.type}\n\n"
        f"theorem autoform_eval_fwd {dr.binders} : {dr.type} := by\n{_indent(equiv_tactic(REF))}\n",
        "autoform_eval_fwd",
        REF,
    )
    bwd = _prove(
        oracle,
        header,
        namespace,
        "bwd",
        f"axiom {DRAFTED} {dr.binders} : {dr.type}\n\n"
        f"theorem autoform_eval_bwd {ref.binders} : {ref.type} := by\n{_indent(equiv_tactic(DRAFTED))}\n",
        "autoform_eval_bwd",
        DRAFTED,
    )
    checks = [fwd, bwd]
    if fwd.proved and bwd.proved:
        return Equivalence(outcome="equivalent", checks=checks)
    refute = _prove(
        oracle,
        header,
        namespace,
        "refute",
        f"theorem autoform_eval_refute : ¬ ({dr.as_prop()}) := by\n{_indent(REFUTE_TACTIC)}\n",
        "autoform_eval_refute",
        None,
    )
    checks.append(refute)
    if refute.proved:
        return Equivalence(
            outcome="not_equivalent",
            checks=checks,
            reason="Lean refuted the drafted statement (the reference is a theorem)",
        )
    failed = [c for c in (fwd, bwd) if not c.proved]
    return Equivalence(
        outcome="undecided", checks=checks, reason="; ".join(f"{c.direction}: {c.reason}" for c in failed)
    )
