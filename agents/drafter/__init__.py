"""Statement drafter: proposes a Lean 4 statement (or definition) for a unit."""

from __future__ import annotations

from agents.base import Agent, AgentRun
from autoform.lean.gate import declared_name
from autoform.llm import MalformedReply, one_lean_block


class Drafter(Agent):
    role = "drafter"
    reads = ("extraction", "lock", "verdict", "critique", "hint")

    def run(self, run: AgentRun, *, previous_error: str = "") -> tuple[str, int]:
        """Returns (Lean text, draft post id). Raises MalformedReply when the reply holds no usable draft."""
        reply, ctx = self.ask(run, previous_error=previous_error)
        text = one_lean_block(reply.text).strip()
        text = text.removeprefix(run.settings.lean.header).strip()
        if not declared_name(text):
            raise MalformedReply("the draft declares no `theorem NAME` or `def NAME`")
        if run.unit.kind != "definition":
            # the statement only: cut any proof the model attached
            cut = _top_level_assign(text)
            text = text[:cut].rstrip() if cut is not None else text
        pid = run.board.post(self.role, "draft", text, unit_id=run.unit.id, round=run.round, refs=ctx.post_ids,
                             data={"llm_call": reply.call_id})
        return text, pid


def _top_level_assign(text: str) -> int | None:
    """Index of the first ':=' outside brackets (where a proof would start)."""
    depth = 0
    for i, c in enumerate(text):
        if c in "([{⟨":
            depth += 1
        elif c in ")]}⟩":
            depth -= 1
        elif c == ":" and depth == 0 and text.startswith(":=", i):
            return i
    return None
