"""Prover: writes a proof for the locked statement from the informal proof and the context; asked for a sketch
(:class:`Sketcher`), the proof's structure with ``have … := by sorry`` for its hard steps."""

from __future__ import annotations

from agents.base import Agent, AgentRun
from autoform.replies import parse_proof


def split_reply(
    text: str, *, locked: str = "", known: list[str] | None = None, exclude: list[str] | None = None
) -> tuple[str, str]:
    """(helper declarations, tactic proof of ``locked``) from a reply (see :func:`autoform.replies.parse_proof`):
    a tactic block, a restated theorem or a whole file; a restatement that changes the locked statement is
    refused."""
    r = parse_proof(text, locked=locked, known=known or [], exclude=exclude or [])
    return r.aux, r.proof


def known_names(run: AgentRun) -> list[str]:
    """Names a whole-file answer may copy from the prompt and must not redefine: the Atlas's declarations."""
    return [d["name"] for d in [*run.deps_lean, *run.deps_stated] if d.get("name")]


class Prover(Agent):
    role = "prover"
    reads = ("extraction", "lock", "admission", "hint", "retrieval")

    def run(
        self, run: AgentRun, *, locked: str, variant: int = 0, race: int = 1, subgoal: str = ""
    ) -> tuple[str, str, int]:
        """(helpers, proof, post id) for ``locked``; ``subgoal``: where ``locked`` stands in the unit's proof when
        it is a subgoal of a sketch (autoform/pipeline/decompose.py), shown in the prompt."""
        known = known_names(run)
        (aux, proof), reply, ctx = self.ask_parsed(
            run,
            lambda t: split_reply(t, locked=locked, known=known),
            locked=locked,
            variant=variant,
            race=race,
            subgoal=subgoal,
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


class Sketcher(Prover):
    """The prover, asked for a sketch (``agents/prover/sketch.md``) for proof by decomposition
    (:mod:`autoform.pipeline.decompose`)."""

    system_file = "sketch_system.md"
    prompt_file = "sketch.md"
    prompt_dir = "prover"
