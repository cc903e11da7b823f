"""Mathlib retrieval for the agents (when the workspace has a Mathlib index, ``[job] grounding``): the
declarations for the notions of a statement (for the drafter), lemmas for a locked statement (for the prover
and the gap-closer), and, after Lean refused unknown names, the nearest existing ones and the current names
of deprecated ones. Each is a ``retrieval`` post, made once per unit and purpose."""

from __future__ import annotations

from autoform.blackboard import Blackboard
from autoform.mathlib.grounding import Grounding
from autoform.mathlib.grounding import render as render_hits
from autoform.store import Unit


class Retrieval:
    def __init__(self, grounding: Grounding | None, board: Blackboard) -> None:
        self.grounding, self.board = grounding, board

    def _retrieved(self, unit: Unit, purpose: str) -> bool:
        return any(p.data.get("purpose") == purpose for p in self.board.read(unit_id=unit.id, kind="retrieval"))

    def notions(self, unit: Unit) -> None:
        """The Mathlib declarations for the notions of the unit's statement, posted for the drafter."""
        if self.grounding is None or self._retrieved(unit, "notions"):
            return
        extraction = self.board.latest(unit.id, "extraction")
        reader_concepts = [str(c) for c in (extraction.data.get("concepts", []) if extraction else [])]
        hits = self.grounding.notions(unit.statement, reader_concepts)
        if hits:
            self.board.post(
                "mathlib",
                "retrieval",
                render_hits(hits, "Mathlib declarations for the notions of this statement (use these names):"),
                unit_id=unit.id,
                data={"purpose": "notions", "names": [h.name for h in hits]},
            )

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
