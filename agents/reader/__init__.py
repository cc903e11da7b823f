"""Reader: normalizes a unit's statement, names its concepts and conventions, and finds missed dependencies."""

from __future__ import annotations

from agents.base import Agent, AgentRun
from autoform.llm import MalformedReply, json_block


class Reader(Agent):
    role = "reader"
    reads = ("extraction",)

    def run(self, run: AgentRun) -> int:
        try:
            data, reply, ctx = self.ask_parsed(run, json_block)
            statement = str(data.get("statement") or run.unit.statement)
            concepts = _strings(data.get("concepts"))
            conventions = _strings(data.get("conventions"))
            missed = _strings(data.get("dependencies"))
            call_id = reply.call_id
        except MalformedReply as e:
            # the parser's statement stands; the failure is on the board for the audit
            statement, concepts, conventions, missed = run.unit.statement, [], [], []
            ctx, call_id = self.context(run), 0
            run.board.post(self.role, "critique", f"reader reply unusable: {e}", unit_id=run.unit.id,
                           round=run.round)
        body = statement
        if concepts:
            body += "\nConcepts: " + ", ".join(concepts)
        if conventions:
            body += "\nConventions: " + "; ".join(conventions)
        return run.board.post(
            self.role, "extraction", body, unit_id=run.unit.id, round=run.round, refs=ctx.post_ids,
            data={"statement": statement, "concepts": concepts, "conventions": conventions,
                  "dependencies": missed, "llm_call": call_id},
        )


def _strings(value: object) -> list[str]:
    """A JSON field that should be a list of strings: null -> [], a lone string -> [it]."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [str(c).strip() for c in items if c is not None and str(c).strip()]
