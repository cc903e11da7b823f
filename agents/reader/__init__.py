"""Reader: normalizes a unit's statement, names its concepts and conventions, and finds missed dependencies."""

from __future__ import annotations

from agents.base import Agent, AgentRun
from autoform.llm import MalformedReply, json_block


class Reader(Agent):
    role = "reader"
    reads = ("extraction",)

    def run(self, run: AgentRun) -> int:
        reply, ctx = self.ask(run)
        try:
            data = json_block(reply.text)
            statement = str(data.get("statement") or run.unit.statement)
            concepts = [str(c) for c in data.get("concepts", []) if str(c).strip()]
            conventions = [str(c) for c in data.get("conventions", []) if str(c).strip()]
            missed = [str(c) for c in data.get("dependencies", []) if str(c).strip()]
        except MalformedReply as e:
            # the parser's statement stands; the failure is on the board for the audit
            statement, concepts, conventions, missed = run.unit.statement, [], [], []
            run.board.post(self.role, "critique", f"reader reply unusable: {e}", unit_id=run.unit.id,
                           round=run.round, data={"llm_call": reply.call_id})
        body = statement
        if concepts:
            body += "\nConcepts: " + ", ".join(concepts)
        if conventions:
            body += "\nConventions: " + "; ".join(conventions)
        return run.board.post(
            self.role, "extraction", body, unit_id=run.unit.id, round=run.round, refs=ctx.post_ids,
            data={"statement": statement, "concepts": concepts, "conventions": conventions,
                  "dependencies": missed, "llm_call": reply.call_id},
        )
