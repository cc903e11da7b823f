"""Gap-closer: repairs a failing proof from Lean's errors and the proof state where it broke (the goals at the
failing step, :func:`autoform.lean.goals.failure_goals`)."""

from __future__ import annotations

from agents.base import Agent, AgentRun
from agents.prover import known_names, split_reply
from autoform.replies import MalformedReply


def parse_repair(text: str, *, locked: str, known: list[str] | None = None, failed_proof: str = "") -> tuple[str, str]:
    """(helpers, repaired proof): as the prover's reply, except that the failed proof quoted back for contrast
    is not the answer, unless it is all there is."""
    try:
        return split_reply(text, locked=locked, known=known, exclude=[failed_proof] if failed_proof else [])
    except MalformedReply:
        if not failed_proof:
            raise
        return split_reply(text, locked=locked, known=known)


class GapCloser(Agent):
    role = "gap_closer"
    reads = ("extraction", "lock", "proof", "verdict", "admission", "hint", "retrieval")

    def run(
        self, run: AgentRun, *, locked: str, failed_proof: str, errors: str, goals: str = ""
    ) -> tuple[str, str, int]:
        known = known_names(run)

        def parse(text: str) -> tuple[str, str]:
            return parse_repair(text, locked=locked, known=known, failed_proof=failed_proof)

        (aux, proof), reply, ctx = self.ask_parsed(
            run, parse, locked=locked, failed_proof=failed_proof, errors=errors, goals=goals
        )
        pid = run.board.post(
            self.role,
            "proof",
            proof,
            unit_id=run.unit.id,
            round=run.round,
            refs=ctx.post_ids,
            data={"aux": aux, "llm_call": reply.call_id},
        )
        return aux, proof, pid
