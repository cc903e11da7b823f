"""Goals: what Lean says is left to prove, read from its replies (the REPL's ``sorries`` and tactic mode), and a
goal written as a standalone statement, the way Mathlib's ``extract_goal`` prints it.

A goal, as the REPL reports it (``../shared/data/lean-output/repl-tests/test/have_by_sorry.expected.out``)::

    x : Int
    h : x = 1
    ⊢ x = 1

Hypotheses are ``names : type`` lines (a type may continue on indented lines); an instance hypothesis is
``inst✝ : Group G``; names Lean made inaccessible end with ``✝``. The standalone statement binds every
hypothesis (``(x : Int) (h : x = 1)``, instances as ``[Group G]``, inaccessible names renamed) and states the
goal, so it can be proved on its own and its proof spliced back where the hole was.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from autoform.lean.oracle import LeanCheck, LeanMessage, severity


class Hole(BaseModel):
    """A ``sorry`` in checked text, with the goal it stands for."""

    index: int
    goal: str
    line: int | None = None
    column: int | None = None
    proof_state: int | None = None


class TacticResult(BaseModel):
    """The REPL's reply to a tactic run on a proof state (tactic mode: for exploring only, never admission)."""

    proof_state: int | None = None
    goals: list[str] = Field(default_factory=list)
    messages: list[LeanMessage] = Field(default_factory=list)
    status: str = ""
    failure: str | None = None

    @property
    def solved(self) -> bool:
        return self.failure is None and not self.goals and not any(m.severity == "error" for m in self.messages)


def holes(check: LeanCheck) -> list[Hole]:
    """The holes of checked text, in text order."""
    found = sorted(check.sorries, key=lambda s: (s.line or 0, s.column or 0))
    return [
        Hole(index=k, goal=s.goal, line=s.line, column=s.column, proof_state=s.proof_state) for k, s in enumerate(found)
    ]


def parse_tactic_reply(reply: Any) -> TacticResult:
    """The REPL's reply to ``{"tactic": ..., "proofState": n}``, parsed once, here."""
    if not isinstance(reply, dict):
        return TacticResult(failure=f"unparseable REPL reply: {reply!r:.200}")
    if set(reply) == {"message"}:
        return TacticResult(failure=f"Lean REPL error: {reply['message']}")
    try:
        msgs = [
            LeanMessage(
                severity=severity(m["severity"]), line=m["pos"]["line"], column=m["pos"]["column"], text=m["data"]
            )
            for m in reply.get("messages", [])
        ]
        goals = [str(g) for g in reply.get("goals", [])]
    except (KeyError, TypeError) as e:
        return TacticResult(failure=f"unparseable REPL reply (missing {e})")
    ps = reply.get("proofState")
    return TacticResult(
        proof_state=ps if isinstance(ps, int) else None,
        goals=goals,
        messages=msgs,
        status=str(reply.get("proofStatus", "")),
    )


_HYP = re.compile(r"^(?P<names>[^:⊢]+?) :(?: (?P<type>.*))?$")


def split_goal(goal: str) -> tuple[list[tuple[list[str], str]], str]:
    """``(hypotheses, target)`` of a goal: each hypothesis as (names, type)."""
    hyps: list[tuple[list[str], str]] = []
    target_lines: list[str] = []
    in_target = False
    for raw in goal.splitlines():
        if in_target:
            target_lines.append(raw.strip())
            continue
        if raw.startswith("⊢"):
            in_target = True
            target_lines.append(raw[1:].strip())
            continue
        if raw[:1].isspace() and hyps:  # a type continued on an indented line
            names, ty = hyps[-1]
            hyps[-1] = (names, f"{ty} {raw.strip()}".strip())
            continue
        m = _HYP.match(raw.strip())
        if m:  # a type may start on the next line (``hab :`` then the type, indented)
            hyps.append((m.group("names").split(), (m.group("type") or "").strip()))
    return hyps, " ".join(x for x in target_lines if x)


def standalone(goal: str, name: str) -> str:
    """``theorem name (hyps...) : target``: the goal as a statement of its own (``extract_goal`` style)."""
    hyps, target = split_goal(goal)
    binders: list[str] = []
    used: set[str] = set()
    for names, ty in hyps:
        clean = []
        for n in names:
            if n.endswith("✝"):
                base = n.rstrip("✝") or "h"
                if base.startswith("inst"):
                    clean.append("")  # an instance: bound by [..] below
                    continue
                k = 1
                while f"{base}_{k}" in used:
                    k += 1
                n = f"{base}_{k}"
            used.add(n)
            clean.append(n)
        if all(c == "" for c in clean):
            binders.append(f"[{ty}]")
        else:
            binders.append(f"({' '.join(c for c in clean if c)} : {ty})")
    head = f"theorem {name}" + ("".join(f" {b}" for b in binders))
    return f"{head} : {target}"
