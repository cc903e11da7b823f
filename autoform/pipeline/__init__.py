"""The per-unit pipeline: reader -> statement drafter -> prover -> gap-closer, every candidate judged by the
admission gate, every step one transaction in the store.

A unit's progress is derived from the store, so a resumed job continues where the unit stopped: the reader's
extraction is kept, a locked statement is kept, attempts already made count against ``max_attempts``, and an
admission (atlas entry + attempt + unit status + post) commits at once, so a unit is admitted at most once.

The package, in the order a unit goes through it:

* :mod:`~autoform.pipeline.unit`: :class:`UnitPipeline`, the thin dispatcher the executors call;
* :mod:`~autoform.pipeline.context`: the job-wide collaborators and the unit in work, shared by the stages;
* :mod:`~autoform.pipeline.statement`: the statement stage (reader, drafts, critique, lock; definitions);
* :mod:`~autoform.pipeline.proof`: the proof stage, playing the moves that
  :mod:`~autoform.pipeline.policy` (the order of moves, in one place) chooses;
* :mod:`~autoform.pipeline.decompose`: proof by decomposition (a sketch's holes proved one by one);
* :mod:`~autoform.pipeline.automation`: the closing tactics tried without an LLM call;
* :mod:`~autoform.pipeline.retrieval`: Mathlib declarations posted for the agents;
* :mod:`~autoform.pipeline.gatekeeper`: verdicts and admissions written to the store.
"""

from __future__ import annotations

from autoform.pipeline.automation import AUTOMATION, AUTOMATION_TACTIC, automation_proof
from autoform.pipeline.gatekeeper import helper_names
from autoform.pipeline.policy import Move, ProofPolicy, ProofStrategy, Round
from autoform.pipeline.unit import UnitPipeline

__all__ = [
    "AUTOMATION",
    "AUTOMATION_TACTIC",
    "Move",
    "ProofPolicy",
    "ProofStrategy",
    "Round",
    "UnitPipeline",
    "automation_proof",
    "helper_names",
]
