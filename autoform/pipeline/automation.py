"""Automation: closing tactics tried on what a failed proof left open, before the gap-closer is asked (no LLM
call); the decomposer tries them first on each hole of a sketch."""

from __future__ import annotations

from autoform.store import Attempt

#: the closing tactics, in the order tried
AUTOMATION = ("omega", "simp", "linarith", "nlinarith", "norm_num", "positivity", "aesop", "decide")
AUTOMATION_TACTIC = "first " + " ".join(f"| ({t}; done)" for t in AUTOMATION)


def automation_proof(last: Attempt) -> str:
    """The failed proof with automation on the goals it left unsolved; or, when it failed otherwise,
    automation alone on the whole statement."""
    if any("unsolved goals" in m.get("text", "") for m in last.messages):
        return f"{last.lean_code.rstrip()}\nall_goals {AUTOMATION_TACTIC}"
    return AUTOMATION_TACTIC
