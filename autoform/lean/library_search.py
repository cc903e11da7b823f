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

from autoform.lean import goals
from autoform.lean.goals import TacticResult
from autoform.lean.oracle import LeanCheck, LeanMessage, Oracle

PROBE = "exact?"
_TRY_THIS = re.compile(r"^Try this:\s*(?:\[apply\]\s*)?(?P<tactic>(?:\(expose_names;\s*)?(?:exact|refine)\b.*)$", re.S)
#: ``exact Foo.bar x y`` -> ``Foo.bar``: the one Mathlib declaration a suggestion applies
_HEAD = re.compile(r"^(?:\(expose_names;\s*)?exact\s+(?:@)?(?P<name>[A-Za-z_][\w.'₀-₉]*)")


def parse_suggestion(text: str) -> str | None:
    """The tactic of one ``Try this:`` message (either of Lean's formats); None for another message, for a
    suggestion that leaves goals (``refine … ?_``) or holds ``sorry``, and for one that cannot be read back as
    source: it names an inaccessible hypothesis (``h✝``) or elides a term (``⋯``)."""
    found = _TRY_THIS.match(text.strip())
    if not found:
        return None
    tactic = " ".join(found.group("tactic").split())
    if "sorry" in tactic or "?" in tactic or "✝" in tactic or "⋯" in tactic:  # `refine … ?_` leaves goals
        return None
    return tactic


def suggestion(check: LeanCheck) -> str | None:
    """The tactic Lean suggested for the goal, when ``exact?`` closed it without an error; else None."""
    if check.failure is not None or check.errors:
        return None
    for m in check.messages:
        if m.severity != "info":
            continue
        found = _TRY_THIS.match(m.text.strip())
        if found:
            return parse_suggestion(m.text)
    return None


def suggestions_by_line(check: LeanCheck) -> dict[int, str]:
    """Every ``exact?`` of a checked text that found a term: its line -> the suggested tactic (the ``exact?`` that
    found nothing are Lean's errors, and absent here)."""
    if check.failure is not None:
        return {}
    out: dict[int, str] = {}
    for m in check.messages:
        tactic = parse_suggestion(m.text) if m.severity == "info" else None
        if tactic is not None:
            out.setdefault(m.line, tactic)
    return out


def tactic_suggestion(result: TacticResult) -> str | None:
    """The suggestion of ``exact?`` run in tactic mode on a proof state, when it closed the goal."""
    if not result.solved:
        return None
    return next((t for m in result.messages if m.severity == "info" and (t := parse_suggestion(m.text))), None)


def mathlib_name(tactic: str) -> str | None:
    """The declaration an ``exact`` suggestion applies (``exact Nat.Prime.two_le hp`` -> ``Nat.Prime.two_le``)."""
    m = _HEAD.match(tactic)
    return m.group("name") if m else None


def open_goals_search(
    oracle: Oracle, text: str, messages: list[LeanMessage], statement: str, *, context_lines: int = 0
) -> str | None:
    """``exact?`` on each goal a checked proof left open (its first error, Lean's ``unsolved goals``): one
    command-mode probe with a bullet ``· exact?`` a goal after the block that left them
    (:func:`autoform.lean.goals.open_goals_probe`). The proof of ``statement`` with Lean's suggestion in each
    bullet (never ``exact?`` itself) when it found a term for every goal; else None (no such error, or a goal
    Lean found nothing for)."""
    err = goals.first_error(messages)
    probe = goals.open_goals_probe(text, err, PROBE) if err is not None else None
    if probe is None:
        return None
    probe_text, first, count = probe
    hint: dict[str, int] = {"context_lines": context_lines} if 0 < context_lines < first else {}
    found = suggestions_by_line(oracle.check(probe_text, **hint))
    lines = probe_text.split("\n")
    for line in range(first, first + count):
        if line not in found:
            return None
        lines[line - 1] = lines[line - 1].replace(PROBE, found[line], 1)
    return goals.proof_of("\n".join(lines), statement) or None
