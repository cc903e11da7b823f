"""Mathlib retrieval for the agents (when the workspace has a Mathlib index, ``[job] grounding``): the
declarations for the notions of a statement (for the drafter; with ``[job] propose_names`` the model first proposes
Mathlib names, which the index checks), lemmas for a locked statement (for the prover
and the gap-closer), and, after Lean refused unknown names, the nearest existing ones and the current names
of deprecated ones. Each is a ``retrieval`` post, made once per unit and purpose."""

from __future__ import annotations

from agents import AgentRun
from agents.grounder import Grounder
from autoform.blackboard import Blackboard
from autoform.llm import MalformedReply
from autoform.mathlib.grounding import CheckedName, Grounding, checked_ranking, render_checked
from autoform.mathlib.grounding import render as render_hits
from autoform.store import Post, Unit


class Retrieval:
    def __init__(self, grounding: Grounding | None, board: Blackboard) -> None:
        self.grounding, self.board = grounding, board
        self.grounder = Grounder()

    def _retrieved(self, unit: Unit, purpose: str) -> bool:
        return self._post(unit, purpose) is not None

    def _post(self, unit: Unit, purpose: str) -> Post | None:
        posts = [p for p in self.board.read(unit_id=unit.id, kind="retrieval") if p.data.get("purpose") == purpose]
        return posts[-1] if posts else None

    def notions(self, run: AgentRun) -> None:
        """The Mathlib declarations for the notions of the unit's statement, posted for the drafter: with
        ``[job] propose_names``, first the names the model proposed, checked by the index (one LLM call)."""
        unit = run.unit
        if self.grounding is None or self._retrieved(unit, "notions"):
            return
        model_concepts, proposed = self.proposed(run) if run.settings.job.propose_names else ([], [])
        extraction = self.board.latest(unit.id, "extraction")
        reader_concepts = [str(c) for c in (extraction.data.get("concepts", []) if extraction else [])]
        hits = [
            h
            for h in self.grounding.notions(unit.statement, reader_concepts + model_concepts)
            if h.name not in proposed
        ]
        if hits:
            self.board.post(
                "mathlib",
                "retrieval",
                render_hits(hits, "Mathlib declarations for the notions of this statement (use these names):"),
                unit_id=unit.id,
                data={"purpose": "notions", "names": [h.name for h in hits]},
            )

    def proposed(self, run: AgentRun) -> tuple[list[str], list[str]]:
        """(the model's concepts, the checked names posted): the grounder proposes concepts and Mathlib names for
        the unit, the index checks each (exact; deprecated: its current name; unknown: the nearest existing
        names), and what exists is posted with its signature (once per unit; a resumed job reads the post)."""
        assert self.grounding is not None
        if (post := self._post(run.unit, "proposed")) is not None:
            return list(post.data.get("concepts", [])), list(post.data.get("names", []))
        try:
            proposals, call_id = self.grounder.propose(run)
        except MalformedReply as e:  # the unit goes on with the index's own grounding
            self.board.post(
                "grounder", "critique", f"grounder reply unusable: {e}", unit_id=run.unit.id, round=run.round
            )
            return [], []
        checked = self.grounding.check(proposals.names)
        names = [h.name for h in checked_ranking(checked)]
        if checked:
            self.board.post(
                "mathlib",
                "retrieval",
                render_checked(checked),
                unit_id=run.unit.id,
                round=run.round,
                data={
                    "purpose": "proposed",
                    "names": names,
                    "concepts": proposals.concepts,
                    **_outcome(checked),
                    "llm_call": call_id,
                },
            )
        return proposals.concepts, names

    def lemmas(self, unit: Unit, statement: str) -> None:
        """Mathlib lemmas for the locked statement, posted for the prover and the gap-closer."""
        if self.grounding is None or self._retrieved(unit, "lemmas"):
            return
        hits = self.grounding.lemmas(statement)
        if hits:
            self.board.post(
                "mathlib",
                "retrieval",
                render_hits(hits, "Mathlib lemmas that may help:"),
                unit_id=unit.id,
                data={"purpose": "lemmas", "names": [h.name for h in hits]},
            )

    def unknown_names(self, unit: Unit, errors: str) -> dict[str, str]:
        """For the unknown identifiers of Lean's ``errors``: the nearest existing names are posted for the
        gap-closer; returned, the names Mathlib deprecated with their current ones (``{old: new}``)."""
        if self.grounding is None:
            return {}
        replace, nearest = self.grounding.repairs(errors)
        purpose = f"nearest:{sorted(nearest)}"
        if nearest and not self._retrieved(unit, purpose):
            body = "\n".join(
                f"- `{n}` does not exist; nearest names: {', '.join(f'`{x}`' for x in near)}"
                for n, near in nearest.items()
            )
            self.board.post(
                "mathlib",
                "retrieval",
                "Lean did not know these names:\n" + body,
                unit_id=unit.id,
                data={"purpose": purpose, "nearest": nearest},
            )
        return replace


def _outcome(checked: list[CheckedName]) -> dict[str, object]:
    """What the index answered for each proposed name, for the audit: the names as proposed, the deprecated ones
    with their current names, the unknown ones with their nearest names."""
    return {
        "proposed": [c.proposed for c in checked],
        "deprecated": {c.proposed: c.hits[0].name if c.hits else None for c in checked if c.status == "deprecated"},
        "unknown": {c.proposed: [h.name for h in c.hits] for c in checked if c.status == "unknown"},
    }
