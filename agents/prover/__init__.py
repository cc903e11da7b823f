"""Prover: writes a proof for the locked statement from the informal proof and the context."""

from __future__ import annotations

from agents.base import Agent, AgentRun
from autoform.llm import code_blocks, one_lean_block


def split_reply(text: str) -> tuple[str, str]:
    """(auxiliary lemmas, proof): with two or more Lean blocks the last is the proof, the others aux."""
    proof = one_lean_block(text)
    blocks = code_blocks(text, "lean")
    return "\n\n".join(blocks[:-1]), proof


class Prover(Agent):
    role = "prover"
    reads = ("extraction", "lock", "admission", "hint")

    def run(self, run: AgentRun, *, locked: str, variant: int = 0, race: int = 1) -> tuple[str, str, int]:
        (aux, proof), reply, ctx = self.ask_parsed(run, split_reply, locked=locked, variant=variant, race=race)
        pid = run.board.post(self.role, "proof", proof, unit_id=run.unit.id, round=run.round, refs=ctx.post_ids,
                             data={"aux": aux, "llm_call": reply.call_id})
        return aux, proof, pid
