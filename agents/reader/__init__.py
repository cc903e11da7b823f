"""Reader: normalizes a unit's statement, names its concepts and conventions, and finds missed dependencies."""

from __future__ import annotations

from agents.base import Agent, AgentRun
from autoform.llm import MalformedReply
from autoform.replies import parse_json, read_fields

READER_FIELDS: dict = {
    "statement": ("str", True),
    "concepts": ("list[str]", False),
    "conventions": ("list[str]", False),
    "dependencies": ("list[str]", False),
}


def parse_extraction(text: str) -> dict:
    """The reader's JSON (tolerant in form, strict in meaning: see :func:`autoform.replies.read_fields`)."""
    data = read_fields(parse_json(text, READER_FIELDS), READER_FIELDS)
    if not data["statement"]:
        raise MalformedReply("the JSON field 'statement' is empty")
    return data


class Reader(Agent):
    role = "reader"
    reads = ("extraction",)

    def run(self, run: AgentRun) -> int:
        try:
            data, reply, ctx = self.ask_parsed(run, parse_extraction)
            statement = data["statement"]
            concepts, conventions, missed = data["concepts"], data["conventions"], data["dependencies"]
            call_id = reply.call_id
        except MalformedReply as e:
            # the parser's statement stands; the failure is on the board for the audit
            statement, concepts, conventions, missed = run.unit.statement, [], [], []
            ctx, call_id = self.context(run), 0
            run.board.post(self.role, "critique", f"reader reply unusable: {e}", unit_id=run.unit.id, round=run.round)
        body = statement
        if concepts:
            body += "\nConcepts: " + ", ".join(concepts)
        if conventions:
            body += "\nConventions: " + "; ".join(conventions)
        return run.board.post(
            self.role,
            "extraction",
            body,
            unit_id=run.unit.id,
            round=run.round,
            refs=ctx.post_ids,
            data={
                "statement": statement,
                "concepts": concepts,
                "conventions": conventions,
                "dependencies": missed,
                "llm_call": call_id,
            },
        )
