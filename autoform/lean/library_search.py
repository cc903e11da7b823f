"""Lean's library search (``exact?``) before any LLM call: a statement Mathlib already proves costs one Lean
check, not a prover's reply.

``exact?`` is run on the locked statement in the candidate's environment; when it closes the goal Lean reports
the term it found as a suggestion, in one of the two forms Lean has used (``Lean/Meta/Tactic/TryThis.lean``)::

    Try this: exact Nat.Prime.two_le hp
    Try this:
      [apply] exact Nat.Prime.two_le hp

The suggestion, never ``exact?`` itself, becomes the proof, which then goes through the gate like any other.
"""

from __future__ import annotations

import re

from autoform.lean.oracle import LeanCheck

PROBE = "exact?"
_TRY_THIS = re.compile(r"^Try this:\s*(?:\[apply\]\s*)?(?P<tactic>(?:\(expose_names;\s*)?(?:exact|refine)\b.*)$", re.S)
#: ``exact Foo.bar x y`` -> ``Foo.bar``: the one Mathlib declaration a suggestion applies
_HEAD = re.compile(r"^(?:\(expose_names;\s*)?exact\s+(?:@)?(?P<name>[A-Za-z_][\w.'₀-₉]*)")


def suggestion(check: LeanCheck) -> str | None:
    """The tactic Lean suggested for the goal, when ``exact?`` closed it without an error; else None."""
    if check.failure is not None or check.errors:
        return None
    for m in check.messages:
        if m.severity != "info":
            continue
        found = _TRY_THIS.match(m.text.strip())
        if found:
            tactic = " ".join(found.group("tactic").split())
            if "sorry" in tactic or "?" in tactic:  # `refine … ?_` leaves goals: not a proof
                return None
            return tactic
    return None


def mathlib_name(tactic: str) -> str | None:
    """The declaration an ``exact`` suggestion applies (``exact Nat.Prime.two_le hp`` -> ``Nat.Prime.two_le``)."""
    m = _HEAD.match(tactic)
    return m.group("name") if m else None
