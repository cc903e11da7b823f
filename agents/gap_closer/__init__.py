"""Gap-closer: repairs a failing proof from Lean's errors and unsolved goals."""

from __future__ import annotations

from agents.base import Agent, AgentRun
from agents.prover import split_reply


class GapCloser(Agent):
    role = "gap_closer"
    reads = ("extraction", "lock", "proof", "verdict", "admission", "hint")

    def run(self, run: AgentRun, *, locked: str, failed_proof: str, errors: str) -> tuple[str, str, int]:
        (aux, proof), reply, ctx = self.ask_parsed(run, split_reply, locked=locked, failed_proof=failed_proof,
                                                   errors=errors)
        pid = run.board.post(self.role, "proof", proof, unit_id=run.unit.id, round=run.round, refs=ctx.post_ids,
                             data={"aux": aux, "llm_call": reply.call_id})
        return aux, proof, pid
