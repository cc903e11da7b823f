"""The per-unit dispatcher: a unit is marked working, its context built (dependencies in Lean, neighbourhood in
the graph), its statement read and locked (or its definition admitted) by the statement stage, and its locked
statement proved by the proof stage."""

from __future__ import annotations

import threading

import networkx as nx

from autoform.blackboard import Blackboard
from autoform.config import Settings
from autoform.lean.oracle import Oracle
from autoform.llm import LLMClient
from autoform.mathlib.grounding import Grounding
from autoform.pipeline.context import EventFn, JobScope, unit_context
from autoform.pipeline.gatekeeper import Gatekeeper, reserve_helpers, unique_name
from autoform.pipeline.policy import PROOF_ROLES, BudgetPolicy, ProofPolicy, ProofStrategy, UnitSpend
from autoform.pipeline.proof import ProofStage
from autoform.pipeline.retrieval import Retrieval
from autoform.pipeline.statement import StatementStage
from autoform.store import Book, Job, Store, Unit, UnitStatus


class UnitPipeline:
    """Everything a job needs to work on one unit at a time (thread-safe: one instance serves many workers).
    ``policy``: the proof search's order of moves (by default :class:`ProofPolicy` from ``[job]``)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        book: Book,
        job: Job,
        oracle: Oracle,
        llm: LLMClient,
        *,
        max_attempts: int,
        namespace: str,
        graph: nx.DiGraph,
        stop: threading.Event,
        on_event: EventFn,
        policy: ProofStrategy | None = None,
    ) -> None:
        self.store, self.book, self.llm, self.graph, self.on_event = store, book, llm, graph, on_event
        self.board = Blackboard(store, book.id, job.id)
        self.scope = JobScope(
            settings=settings,
            store=store,
            book=book,
            job=job,
            oracle=oracle,
            board=self.board,
            namespace=namespace,
            max_attempts=max_attempts,
            stop=stop,
            on_event=on_event,
            grounding=Grounding.open(settings.mathlib_index_path) if settings.job.grounding else None,
        )
        gate = Gatekeeper(self.scope)
        retrieval = Retrieval(self.scope.grounding, self.board)
        if policy is None:
            policy = self._policy(settings, max_attempts, oracle.backend)
        self.statement = StatementStage(self.scope, gate, retrieval)
        self.proof = ProofStage(self.scope, gate, retrieval, policy)

    def _policy(self, settings: Settings, max_attempts: int, backend: str) -> ProofStrategy:
        """``[prove] strategy``: a fixed number of attempts, or a budget per unit."""
        if settings.prove.strategy == "budget":
            return BudgetPolicy.from_prove(settings.job, settings.prove, backend=backend, spend=self._spend)
        return ProofPolicy.from_settings(settings.job, max_attempts=max_attempts, backend=backend, prove=settings.prove)

    def _spend(self, unit_id: int) -> UnitSpend:
        """What the unit's proof has cost in this job (LLM calls of the proving roles; proof attempts)."""
        calls, tokens, llm_s, checks, lean_s = self.store.unit_proof_spend(self.scope.job.id, unit_id, PROOF_ROLES)
        return UnitSpend(llm_calls=calls, tokens=tokens, lean_checks=checks, seconds=llm_s + lean_s)

    def work_unit(self, unit: Unit) -> None:
        self.store.set_unit_status(unit.id, UnitStatus.WORKING)
        self.on_event("start", unit, "")
        ctx = unit_context(self.scope, self.graph, self.llm, unit)
        self.statement.read(ctx.run)
        if unit.kind == "definition":
            self.statement.define(ctx)
            return
        lock = self.statement.lock(ctx)
        if lock is None:
            return
        ctx.run.pinned_ids.add(lock.id)
        self.proof.prove(ctx, lock.data["statement"], lock.data["elaborated_type"])

    # the pipeline's name rules, as the tests call them on a stand-in (any object with ``store`` and ``book``)
    def _unique_name(self, text: str, unit: Unit) -> str:
        return unique_name(self.store, self.book.id, unit.id, text)

    def _reserve_helpers(self, unit: Unit, aux: str, proof: str) -> tuple[str, str]:
        return reserve_helpers(self.store, self.book.id, unit.id, aux, proof)
