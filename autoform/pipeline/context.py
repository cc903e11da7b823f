"""What the stages of the pipeline share: the job-wide collaborators (:class:`JobScope`) and the unit in work
(:class:`UnitContext`: its agent run and the Lean prelude of its admitted dependencies)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx

from agents import AgentRun
from autoform import graph as graphs
from autoform.blackboard import Blackboard
from autoform.config import Settings
from autoform.lean.oracle import Oracle
from autoform.llm import LLMClient
from autoform.mathlib.grounding import Grounding
from autoform.store import Book, Job, Store, Unit, UnitStatus

#: on_event(kind, unit, detail): what the job shows of a unit's progress ("start", "rejected", "proved", ...)
EventFn = Callable[[str, Unit, str], None]

#: the statuses of a dependency whose code enters the prelude of its dependents
DONE = (UnitStatus.PROVED, UnitStatus.DEFINED)

#: a dependency in Lean as the agents are shown it: name, statement and code (admitted) or why (stated)
LeanDep = dict[str, str]


@dataclass(frozen=True)
class JobScope:
    """The job-wide collaborators every stage uses (one scope serves every worker thread of a job)."""

    settings: Settings
    store: Store
    book: Book
    job: Job
    oracle: Oracle
    board: Blackboard
    namespace: str
    max_attempts: int
    stop: threading.Event
    on_event: EventFn
    grounding: Grounding | None


@dataclass(frozen=True)
class UnitContext:
    """One unit in work: its agent run (the unit, its blackboard view, its dependencies in Lean) and the
    prelude of every candidate (the code of its admitted dependencies)."""

    run: AgentRun
    prelude: str

    @property
    def unit(self) -> Unit:
        return self.run.unit


def lean_dependencies(scope: JobScope, graph: nx.DiGraph, unit: Unit) -> tuple[list[LeanDep], list[LeanDep]]:
    """The unit's dependencies (transitively) in Lean: (admitted ones, whose code is the prelude of every
    candidate; stated ones, whose statement Lean elaborated but which have no proof: admitted as *stated*,
    or failed after their statement was locked). A failed dependency does not block its dependents, which
    proceed with its stated form: shown to the agents, never in the prelude (a proof using it would rest
    on `sorry`, which the gate refuses)."""
    if unit.id not in graph:
        return [], []
    closure = sorted(nx.descendants(graph, unit.id), key=lambda n: graph.nodes[n]["seq"])
    admitted: list[LeanDep] = []
    stated: list[LeanDep] = []
    for uid in closure:
        e = scope.store.atlas_entry(uid)
        if e is not None and e.status in DONE:
            admitted.append({"name": e.decl_name, "statement": e.statement_lean, "code": e.lean_code})
        elif e is not None:
            stated.append(
                {"name": e.decl_name, "statement": e.statement_lean, "why": "stated in the book without proof"}
            )
        elif (lock := scope.board.latest(uid, "lock")) is not None:
            stated.append(
                {"name": lock.data.get("name", ""), "statement": lock.data["statement"], "why": "not proved yet"}
            )
    return admitted, stated


def unit_context(scope: JobScope, graph: nx.DiGraph, llm: LLMClient, unit: Unit) -> UnitContext:
    """The context of a unit about to be worked: its dependencies in Lean and its neighbourhood in the graph."""
    deps, stated = lean_dependencies(scope, graph, unit)
    cutoff = scope.settings.attention.unreachable_hops  # farther units count as unreachable anyway
    hops = graphs.hops(graph, unit.id, cutoff) if unit.id in graph else {}
    run = AgentRun(
        scope.settings,
        llm,
        scope.board,
        unit,
        hops,
        namespace=scope.namespace,
        deps_lean=deps,
        deps_stated=stated,
    )
    return UnitContext(run=run, prelude="\n\n".join(d["code"] for d in deps))
