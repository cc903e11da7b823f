"""The per-unit dispatcher: a unit is marked working, its context built (dependencies in Lean, neighbourhood in
the graph), its statement read and locked (or its definition admitted) by the statement stage, and its locked
statement proved by the proof stage.

The proof's strategy is chosen per unit: ``[prove] strategy`` for every unit, except a unit a person retried
with a budget (``autoform retry --budget``), whose proof is searched under that budget (the budget strategy,
whatever ``[prove] strategy`` says). A unit's spend is counted in the job from the latest time a person re-opened
it (a retry, a rejection, a new statement)."""

from __future__ import annotations

import threading

import networkx as nx

from autoform.blackboard import Blackboard
from autoform.config import ProveConfig, Settings
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
    ``policy``: the proof search's order of moves for every unit (by default ``[prove] strategy``'s, and the
    budget strategy for a unit a person retried with a budget)."""

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
        self.settings = settings
        self._reopened_seen, self._reopened_lock = store.last_reopening_id(book.id), threading.Lock()
        self.statement = StatementStage(self.scope, gate, retrieval)
        if policy is None:
            self.proof, self.budget_proof = self._proof_stages(max_attempts, oracle.backend, gate, retrieval)
        else:
            self.proof = self.budget_proof = ProofStage(self.scope, gate, retrieval, policy)

    def _proof_stages(
        self, max_attempts: int, backend: str, gate: Gatekeeper, retrieval: Retrieval
    ) -> tuple[ProofStage, ProofStage]:
        """The proof stage of ``[prove] strategy`` (a fixed number of attempts, or a budget per unit), and the
        budget strategy's (the same stage when that is the strategy), for units a person retried with a budget."""
        s = self.settings
        budget = BudgetPolicy.from_prove(s.job, s.prove, backend=backend, spend=self._spend, limits=self._limits)
        if s.prove.strategy == "budget":
            stage = ProofStage(self.scope, gate, retrieval, budget)
            return stage, stage
        default = ProofPolicy.from_settings(s.job, max_attempts=max_attempts, backend=backend, prove=s.prove)
        return ProofStage(self.scope, gate, retrieval, default), ProofStage(self.scope, gate, retrieval, budget)

    def _retry_limits(self, unit_id: int) -> dict[str, int | float]:
        """The proof budget a person gave the unit on its latest retry (empty: none)."""
        retry = self.store.last_reopening(unit_id, "retry")
        return retry.limits if retry is not None else {}

    def _limits(self, unit_id: int) -> ProveConfig:
        """The unit's proof limits: ``[prove]`` with the budget of its latest retry, if a person gave one."""
        own = self._retry_limits(unit_id)
        if not own:
            return self.settings.prove
        return ProveConfig.model_validate(self.settings.prove.model_dump() | own | {"strategy": "budget"})

    def _spend(self, unit_id: int) -> UnitSpend:
        """What the unit's proof has cost in this job since a person last re-opened it (LLM calls of the proving
        roles; proof attempts)."""
        reopened = self.store.last_reopening(unit_id)
        since = reopened.created_at if reopened is not None else 0.0
        calls, tokens, llm_s, checks, lean_s = self.store.unit_proof_spend(
            self.scope.job.id, unit_id, PROOF_ROLES, since=since
        )
        return UnitSpend(llm_calls=calls, tokens=tokens, lean_checks=checks, seconds=llm_s + lean_s)

    def proof_stage(self, unit: Unit) -> ProofStage:
        """The proof stage for the unit: under its own budget when a person retried it with one."""
        return self.budget_proof if self._retry_limits(unit.id) else self.proof

    def _catch_up(self) -> None:
        """The blackboard reads again the posts of the units a person re-opened since the last look (their locks
        superseded), so no unit is worked on a statement withdrawn meanwhile."""
        with self._reopened_lock:
            new = self.store.reopenings_since(self.book.id, self._reopened_seen)
            if new:
                self.board.reload(r.unit_id for r in new)
                self._reopened_seen = new[-1].id

    def work_unit(self, unit: Unit) -> None:
        self.store.set_unit_status(unit.id, UnitStatus.WORKING)
        self._catch_up()  # after: a person's change committed later is refused (the unit is in work)
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
        self.proof_stage(unit).prove(ctx, lock.data["statement"], lock.data["elaborated_type"])

    # the pipeline's name rules, as the tests call them on a stand-in (any object with ``store`` and ``book``)
    def _unique_name(self, text: str, unit: Unit) -> str:
        return unique_name(self.store, self.book.id, unit.id, text)

    def _reserve_helpers(self, unit: Unit, aux: str, proof: str) -> tuple[str, str]:
        return reserve_helpers(self.store, self.book.id, unit.id, aux, proof)
