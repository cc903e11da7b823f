"""The proof stage: the locked statement proved through the gate, in rounds of moves that its policy
(:mod:`autoform.pipeline.policy`) chooses: Lean's ``exact?``, the prover (k racing attempts where configured),
deprecated names renamed, automation on what a proof left open, the gap-closer's repair with Lean's errors,
decomposition into subgoals (:mod:`autoform.pipeline.decompose`), and at the end the statement admitted as
stated or the unit failed. Attempts already made in the job count (a resumed unit goes on where it stopped)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from enum import Enum

from agents import AgentRun, GapCloser, Prover
from autoform.lean import goals, library_search
from autoform.lean.gate import Candidate, Verdict, admit, build_module, screen_candidate
from autoform.lean.oracle import LeanMessage
from autoform.llm import MalformedReply
from autoform.mathlib.grounding import substitute as substitute_names
from autoform.pipeline.automation import automation_proof
from autoform.pipeline.context import JobScope, UnitContext
from autoform.pipeline.decompose import Decomposer
from autoform.pipeline.gatekeeper import Gatekeeper, errors_text
from autoform.pipeline.policy import Move, ProofStrategy
from autoform.pipeline.retrieval import Retrieval
from autoform.store import Attempt, UnitStatus


class Outcome(Enum):
    """What a move came to."""

    CLOSED = "closed"  # the unit is done: admitted (proved or stated) or failed
    JUDGED = "judged"  # a candidate was judged and refused (recorded): the round is over
    PASSED = "passed"  # nothing to try: the round's next move


@dataclass(frozen=True)
class Turn:
    """A round of the proof search: the unit, its locked statement as a candidate without proof, and the proof
    attempts made so far in the job (oldest first)."""

    ctx: UnitContext
    base: Candidate
    history: list[Attempt]
    why: str = ""  # why the search ends, when the policy says it does

    @property
    def run(self) -> AgentRun:
        return self.ctx.run

    @property
    def last(self) -> Attempt:
        return self.history[-1]


def _judged(admitted: bool) -> Outcome:
    return Outcome.CLOSED if admitted else Outcome.JUDGED


class ProofStage:
    def __init__(self, scope: JobScope, gate: Gatekeeper, retrieval: Retrieval, policy: ProofStrategy) -> None:
        self.scope, self.gate, self.retrieval, self.policy = scope, gate, retrieval, policy
        self.prover, self.gap_closer = Prover(), GapCloser()
        self.decomposer = Decomposer(scope, gate, self.prover, policy)
        self.moves: dict[Move, Callable[[Turn], Outcome]] = {
            Move.LIBRARY_SEARCH: self._library_search,
            Move.WHOLE_PROOF: self._whole_proof,
            Move.RENAME: self._rename,
            Move.AUTOMATION: self._automation,
            Move.GOAL_SEARCH: self._goal_search,
            Move.REPAIR: self._repair,
            Move.SKETCH: self._sketch,
            Move.STATED: self._stated,
            Move.GIVE_UP: self._give_up,
        }

    def prove(self, ctx: UnitContext, statement: str, locked_type: str) -> None:
        """Rounds of moves until the unit is admitted or ends, or the job stops."""
        unit = ctx.unit
        base = Candidate(
            kind="theorem",
            namespace=self.scope.namespace,
            statement=statement,
            prelude=ctx.prelude,
            locked_type=locked_type,
        )
        self.retrieval.lemmas(unit, statement)
        while not self.scope.stop.is_set():
            history = self.gate.attempts(unit, "proof")
            chosen = self.policy.next_round(history)
            if not chosen.spent:
                ctx.run.round = len(history)
            if self._play(chosen.moves, Turn(ctx, base, history, chosen.why)) is Outcome.CLOSED:
                return

    def _play(self, moves: tuple[Move, ...], turn: Turn) -> Outcome:
        """The round's moves in order, until one acts; a round in which none acts ends the unit (a policy's
        rounds end in a move that always acts; this keeps a faulty one from spinning)."""
        for move in moves:
            outcome = self.moves[move](turn)
            if outcome is not Outcome.PASSED:
                return outcome
        return self._give_up(turn)

    # -- the moves ----------------------------------------------------------------------------------
    def _library_search(self, turn: Turn) -> Outcome:
        """Lean's ``exact?`` on the locked statement, before any LLM call: its suggestion (never ``exact?``
        itself) goes through the gate as the proof; a statement closed by one Mathlib lemma is noted as being
        in Mathlib under that name. A refused suggestion is recorded, and passes."""
        # the statement and helpers are screened as for any candidate; the probe's `exact?` is Lean's search,
        # which the pre-screen refuses in a proof (an admitted proof holds what it suggests, never the search)
        if screen_candidate(turn.base.model_copy(update={"proof": "skip"})):
            return Outcome.PASSED
        probe = turn.base.model_copy(update={"proof": library_search.PROBE})
        module = build_module(probe)
        hint: dict[str, int] = {"context_lines": module.context_lines} if module.context_lines else {}
        tactic = library_search.suggestion(self.scope.oracle.check(module.text, **hint))
        if tactic is None:
            return Outcome.PASSED
        name = library_search.mathlib_name(tactic)
        cand = turn.base.model_copy(update={"proof": tactic})
        note = f"in Mathlib as `{name}`" if name else ""
        verdict = admit(cand, self.scope.oracle)
        if self.gate.conclude(turn.run, cand, verdict, "proof", "library_search", tactic, note=note):
            return Outcome.CLOSED
        return Outcome.PASSED

    def _whole_proof(self, turn: Turn) -> Outcome:
        """k prover attempts at once (``[job] race``); the first one Lean admits wins and the others are
        cancelled (those not yet at the gate are dropped; a finished loser is recorded as the rejected attempt
        it was)."""
        k = self.policy.racers
        run, base = turn.run, turn.base
        won = threading.Event()

        def attempt(i: int) -> bool:
            if won.is_set() or self.scope.stop.is_set():
                return False
            r = dataclasses.replace(run, pinned_ids=set(run.pinned_ids))
            try:
                aux, proof, _ = self.prover.run(r, locked=base.statement, variant=i, race=k)
            except MalformedReply as e:
                if not won.is_set():
                    self.gate.record(run.unit, "proof", "prover", "", Verdict(admitted=False), note=str(e))
                return False
            if won.is_set():
                return False  # cancelled: another attempt was admitted while this one was thinking
            if self.gate.judge_proof(r, base, proof, aux, "prover"):
                won.set()
                return True
            return False

        if k == 1:
            return _judged(attempt(0))
        with ThreadPoolExecutor(max_workers=k, thread_name_prefix=f"race-{run.unit.id}") as pool:
            futures = [pool.submit(attempt, i) for i in range(k)]
            for f in as_completed(futures):
                if f.result():
                    for other in futures:
                        other.cancel()
        return _judged(won.is_set())

    def _rename(self, turn: Turn) -> Outcome:
        """After Lean refused a proof for unknown identifiers: a name Mathlib deprecated is replaced by its
        current one and checked again, with no LLM call; for other unknown names the nearest existing ones are
        posted for the gap-closer (and the move passes)."""
        replace = self.retrieval.unknown_names(turn.run.unit, errors_text(turn.last))
        if not replace or not turn.last.lean_code:
            return Outcome.PASSED
        proof = substitute_names(turn.last.lean_code, replace)
        return _judged(self.gate.judge_proof(turn.run, turn.base, proof, "", "mathlib_rename"))

    def _automation(self, turn: Turn) -> Outcome:
        """Closing tactics on the goals the last proof left open (or on the whole statement), no LLM call."""
        return _judged(self.gate.judge_proof(turn.run, turn.base, automation_proof(turn.last), "", "automation"))

    def _goal_search(self, turn: Turn) -> Outcome:
        """Lean's ``exact?`` on each goal the last proof left open (its ``unsolved goals``), no LLM call, in one
        command-mode probe (:func:`autoform.lean.library_search.open_goals_search`): when Lean finds a term for
        every goal, the proof with those suggestions (never ``exact?`` itself) goes through the gate. Passes when
        the last proof left no such goals or Lean finds nothing."""
        last = turn.last
        module = self._checked_module(last)
        if not module:
            return Outcome.PASSED
        shared = build_module(turn.base.model_copy(update={"proof": "skip"})).context_lines
        messages = [LeanMessage(**m) for m in last.messages]
        proof = library_search.open_goals_search(
            self.scope.oracle, module, messages, turn.base.statement, context_lines=shared
        )
        if proof is None:
            return Outcome.PASSED
        return _judged(self.gate.judge_proof(turn.run, turn.base, proof, "", "goal_search"))

    def _checked_module(self, last: Attempt) -> str:
        """The text Lean checked for ``last`` (the gate's verdict post keeps it); '' when none is kept."""
        return next(
            (
                p.data.get("module", "")
                for p in reversed(self.scope.board.read(unit_id=last.unit_id, kind="verdict"))
                if p.data.get("attempt") == last.id
            ),
            "",
        )

    def _repair(self, turn: Turn) -> Outcome:
        """The gap-closer repairs the last proof from Lean's errors and the goals where it broke."""
        last = turn.last
        try:
            aux, proof, _ = self.gap_closer.run(
                turn.run,
                locked=turn.base.statement,
                failed_proof=last.lean_code,
                errors=errors_text(last),
                goals="\n\n".join(self.broken_state(turn)),
            )
        except MalformedReply as e:
            self.gate.record(turn.run.unit, "proof", "gap_closer", "", Verdict(admitted=False), note=str(e))
            return Outcome.JUDGED
        return _judged(self.gate.judge_proof(turn.run, turn.base, proof, aux, "gap_closer"))

    def broken_state(self, turn: Turn) -> list[str]:
        """The goals where the last proof broke (:func:`autoform.lean.goals.failure_goals`), read from the text
        Lean checked (the gate's verdict post keeps it); empty when Lean never saw it or reports no goals."""
        last = turn.last
        messages = [LeanMessage(**m) for m in last.messages]
        err = goals.first_error(messages)
        if not last.lean_code or err is None:
            return []
        module = self._checked_module(last)
        if not module:
            return goals.error_goals(err.text)
        shared = build_module(turn.base.model_copy(update={"proof": "skip"})).context_lines
        oracle, statement = self.scope.oracle, turn.base.statement
        return goals.failure_goals(oracle, module, messages, context_lines=shared, statement=statement)

    def _sketch(self, turn: Turn) -> Outcome:
        """Decomposition: one sketch round (:class:`~autoform.pipeline.decompose.Decomposer`)."""
        return _judged(self.decomposer.run(turn.run, turn.base))

    def _stated(self, turn: Turn) -> Outcome:
        """A statement the book gives no proof of is admitted as stated when Lean confirms it."""
        if not turn.run.unit.proof.strip() and self.gate.admit_stated(turn.run, turn.base):
            return Outcome.CLOSED
        return Outcome.PASSED

    def _give_up(self, turn: Turn) -> Outcome:
        """The unit fails, with the last attempt's first reason."""
        last = turn.history[-1] if turn.history else None
        why = last.reasons[0]["message"] if last is not None and last.reasons else "attempts exhausted"
        if turn.why:
            why = f"{turn.why}; last: {why}"
        self.gate.finish(turn.run.unit, UnitStatus.FAILED, why)
        return Outcome.CLOSED
