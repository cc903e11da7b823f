"""Mathlib grounder: the model proposes the notions of a unit and the Mathlib names a Lean statement of it would
use; the index checks them (:func:`autoform.mathlib.grounding.check_names`) before the drafter reads them, so a
renamed name reaches the drafter as its current one and an invented one never as if it existed."""

from __future__ import annotations

from typing import cast

from agents.base import Agent, AgentRun
from autoform import attention
from autoform.blackboard import Blackboard
from autoform.config import Settings
from autoform.llm import LLMClient, Message
from autoform.replies import NameProposals, parse_name_proposals
from autoform.store import Unit

#: names the model may propose for one unit (the rest of a longer list is dropped)
MAX_NAMES = 12


class Grounder(Agent):
    role = "grounder"
    reads = ("extraction", "hint")

    def propose(self, run: AgentRun) -> tuple[NameProposals, int]:
        """(the model's concepts and names, unchecked; the LLM call's id). Raises MalformedReply when no usable
        reply comes back after the format retries."""

        def parse(text: str) -> NameProposals:
            return parse_name_proposals(text, max_names=MAX_NAMES)

        proposals, reply, _ = self.ask_parsed(run, parse, max_names=MAX_NAMES)
        return proposals, reply.call_id


def standalone_messages(settings: Settings, unit: Unit) -> list[Message]:
    """The grounder's prompt for a unit outside a job (a benchmark): the same files, no blackboard context."""
    run = AgentRun(settings=settings, llm=cast(LLMClient, None), board=cast(Blackboard, None), unit=unit, hops={})
    return Grounder().render(run, attention.Context(posts=[], key_sentences=[]), max_names=MAX_NAMES)
