"""The order of moves of the proof search, in one place.

The proof stage works in *rounds*: it asks its policy for the next round (an ordered tuple of moves, chosen
from the proof attempts the unit has had in this job), plays the moves in order until one of them acts, and
asks again. A move *acts* when it admits the unit, ends it, or has a candidate judged and refused (then the
round is over and the next one is chosen from the longer history); a move that finds nothing to try *passes*
to the next move of the round. Lean's ``exact?`` (``library_search``) never ends a round: a suggestion that is
refused is recorded, and the prover follows in the same round.

:class:`ProofPolicy` is the default, built from the ``[job]`` settings (``library_search``, ``race``,
``automation``, ``decompose``) and ``max_attempts``:

1. no proof attempt yet: ``library_search`` (when on), then ``whole_proof`` (k racing prover attempts);
2. fewer than ``max_attempts``: ``rename`` (deprecated Mathlib names replaced, unless the last attempt was
   such a renaming), ``goal_search`` (Lean's ``exact?`` on each goal the last proof left open, its suggestions
   spliced in as bullets, until one such candidate was judged, when ``library_search`` is on: like
   ``library_search`` it passes when Lean finds nothing), ``automation`` (once, on a last attempt with code),
   ``repair`` (the gap-closer);
3. attempts spent: ``sketch`` (decomposition, once, when on and the oracle reports goals), then ``stated``
   (a statement the book does not prove is admitted as stated) and ``give_up``.

:class:`BudgetPolicy` (``[prove] strategy = "budget"``) plays the same moves, but instead of ``max_attempts`` the
repairs go on until the unit's budget (LLM calls, tokens, Lean checks, seconds) is spent or the search stalls
(``stall_rounds`` attempts in a row without fewer Lean errors than the best before). A stalled search goes on to
the sketch, whose subgoal moves stop when the budget is spent (:meth:`BudgetPolicy.spent`); a spent budget ends the
unit without one.

**Inside a sketch** (``sketch``), with the REPL's tactic mode (``[prove] tactic_mode``, the ``repl`` backend) each
hole's proof state is explored first: the closing tactics, then ``exact?`` (when ``library_search`` is on); a
tactic that closes the hole is spliced into it (the whole text still goes through the gate in command mode).
Without tactic mode ``exact?`` is tried on every hole in one command-mode probe. Each hole left is a subgoal played
by the policy's ``subgoal_moves``, in order until one proves it: ``automation`` (when ``[job] automation`` is on,
and tactic mode has not already seen it fail on that goal), ``prover`` (a proof of the subgoal's own statement),
``repair`` (the gap-closer, with Lean's errors and the goals where that proof broke), ``split`` (a sketch of the
subgoal, whose holes are subgoals one level deeper, while the depth is below ``[prove] max_depth``).

**A subgoal's own budget** (:meth:`ProofPolicy.subgoal_budget`, either strategy): at most ``[prove]
subgoal_llm_calls`` LLM calls (its prover, repair and split moves) and ``subgoal_lean_checks`` candidates judged
by Lean; the holes a split makes have budgets of their own. The unit's budget (:meth:`BudgetPolicy.spent`) caps
them all: a subgoal stops at whichever is spent first.

Another strategy (a search over sketches) is any object with the same ``next_round``, ``subgoal_moves``,
``subgoal_budget`` and ``max_depth``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from autoform.config import JobConfig, ProveConfig
from autoform.store import Attempt


class Move(StrEnum):
    """One move of the proof search (an attempt's ``author`` names the move that made it)."""

    LIBRARY_SEARCH = "library_search"  # Lean's `exact?` on the locked statement, before any LLM call
    WHOLE_PROOF = "whole_proof"  # the prover writes a whole proof (k racing attempts; author "prover")
    RENAME = "rename"  # deprecated Mathlib names replaced by their current ones, no LLM call ("mathlib_rename")
    AUTOMATION = "automation"  # closing tactics on what the last proof left open, no LLM call
    GOAL_SEARCH = "goal_search"  # Lean's `exact?` on each goal the last proof left open, no LLM call
    REPAIR = "repair"  # the gap-closer repairs the last proof from Lean's errors ("gap_closer")
    SKETCH = "sketch"  # decomposition: a sketch with `sorry` holes, each proved on its own
    STATED = "stated"  # a statement the book does not prove: admitted as stated
    GIVE_UP = "give_up"  # the unit fails, with the last attempt's reason


class SubgoalMove(StrEnum):
    """One move on a subgoal (a hole of a sketch), in the order ``subgoal_moves`` gives."""

    AUTOMATION = "automation"  # the closing tactics, no LLM call
    PROVER = "prover"  # the prover on the subgoal's standalone statement
    REPAIR = "repair"  # the gap-closer on the prover's failed proof, with the goals where it broke
    SPLIT = "split"  # a sketch of the subgoal: its holes become subgoals one level deeper


#: the default order of moves on a subgoal
SUBGOAL_MOVES = (SubgoalMove.AUTOMATION, SubgoalMove.PROVER, SubgoalMove.REPAIR, SubgoalMove.SPLIT)


@dataclass(frozen=True)
class SubgoalBudget:
    """What one subgoal may spend on its own moves (``[prove] subgoal_llm_calls``, ``subgoal_lean_checks``)."""

    llm_calls: int = 4
    lean_checks: int = 6


@dataclass(frozen=True)
class Round:
    """The moves to play, in order. ``spent``: the unit's attempts are spent (the round keeps the agents'
    round number, which counts attempts)."""

    moves: tuple[Move, ...]
    spent: bool = False
    why: str = ""  # why the search ends, when it does (the budget spent, a stall)


class ProofStrategy(Protocol):
    """What the proof stage asks: the next round, from the unit's proof attempts in this job (oldest first),
    and how many prover attempts a ``whole_proof`` move races."""

    @property
    def racers(self) -> int: ...

    def next_round(self, history: Sequence[Attempt]) -> Round: ...

    @property
    def max_depth(self) -> int: ...

    def subgoal_moves(self, depth: int) -> tuple[SubgoalMove, ...]: ...

    def subgoal_budget(self, unit_id: int) -> SubgoalBudget:
        """What one subgoal of the unit may spend on its own moves."""
        ...

    def spent(self, unit_id: int) -> str:
        """Why the unit may not spend more (a move inside a sketch asks before each LLM call); '' while it may."""
        ...


#: attempt authors that mean the unit was decomposed already
SKETCH_AUTHORS = ("sketch", "decomposition")


@dataclass(frozen=True)
class ProofPolicy:
    """The default order of moves (see the module's docstring)."""

    max_attempts: int
    race: int = 1
    library_search: bool = True
    automation: bool = True
    decompose: bool = True
    goals: bool = True  # the oracle reports the goals of a sketch's holes (the `lake` backend does not)
    max_depth: int = 2  # how deep holes are split again ([prove] max_depth)
    on_subgoals: tuple[SubgoalMove, ...] = SUBGOAL_MOVES
    per_subgoal: SubgoalBudget = SubgoalBudget()  # [prove] subgoal_llm_calls, subgoal_lean_checks

    @classmethod
    def from_settings(
        cls, job: JobConfig, *, max_attempts: int, backend: str, prove: ProveConfig | None = None
    ) -> ProofPolicy:
        return cls(
            max_attempts=max_attempts,
            race=job.race,
            library_search=job.library_search,
            automation=job.automation,
            decompose=job.decompose,
            goals=backend != "lake",
            max_depth=(prove or ProveConfig()).max_depth,
            per_subgoal=subgoal_budget_of(prove or ProveConfig()),
        )

    def spent(self, unit_id: int) -> str:
        """Never: the attempts policy bounds a sketch by its depth and its subgoals' own budgets."""
        return ""

    def subgoal_budget(self, unit_id: int) -> SubgoalBudget:
        """``[prove] subgoal_llm_calls`` and ``subgoal_lean_checks``."""
        return self.per_subgoal

    def subgoal_moves(self, depth: int) -> tuple[SubgoalMove, ...]:
        """The moves on a subgoal at ``depth`` (1: a hole of the unit's sketch): automation only when it is on,
        a split only above the deepest level."""
        return tuple(
            m
            for m in self.on_subgoals
            if (m is not SubgoalMove.AUTOMATION or self.automation)
            and (m is not SubgoalMove.SPLIT or depth < self.max_depth)
        )

    @property
    def racers(self) -> int:
        """Prover attempts raced in the first round (never more than the attempts allowed)."""
        return min(self.race, self.max_attempts)

    def next_round(self, history: Sequence[Attempt]) -> Round:
        if len(history) >= self.max_attempts:
            return self._closing(history)
        if not history:
            opening = (Move.LIBRARY_SEARCH,) if self.library_search else ()
            return Round((*opening, Move.WHOLE_PROOF))
        return Round(self._repairs(history))

    def _repairs(self, history: Sequence[Attempt]) -> tuple[Move, ...]:
        last = history[-1]
        moves: list[Move] = []
        if last.author != "mathlib_rename":
            moves.append(Move.RENAME)
        if self.library_search and last.lean_code and not any(a.author == "goal_search" for a in history):
            moves.append(Move.GOAL_SEARCH)
        if self.automation and last.lean_code and not any(a.author == "automation" for a in history):
            moves.append(Move.AUTOMATION)
        moves.append(Move.REPAIR)
        return tuple(moves)

    def _closing(self, history: Sequence[Attempt]) -> Round:
        if self.decompose and self.goals and not any(a.author in SKETCH_AUTHORS for a in history):
            return Round((Move.SKETCH,), spent=True)
        return Round((Move.STATED, Move.GIVE_UP), spent=True)


def subgoal_budget_of(prove: ProveConfig) -> SubgoalBudget:
    return SubgoalBudget(llm_calls=prove.subgoal_llm_calls, lean_checks=prove.subgoal_lean_checks)


#: the roles whose LLM calls a unit's proof budget counts (the sketcher and the subgoals' prover write as the
#: prover)
PROOF_ROLES = ("prover", "gap_closer")


@dataclass(frozen=True)
class UnitSpend:
    """What a unit's work has cost in this job."""

    llm_calls: int = 0
    tokens: int = 0
    lean_checks: int = 0
    seconds: float = 0.0


def errors_of(a: Attempt) -> int:
    """Lean's errors on an attempt (an attempt Lean never saw, e.g. a malformed reply, counts as the worst)."""
    if not a.messages and not a.lean_code:
        return 1 << 30
    return sum(1 for m in a.messages if m.get("severity") == "error") or (0 if a.admitted else 1)


def stalled_for(history: Sequence[Attempt]) -> int:
    """How many attempts at the end of ``history`` made no progress: none had fewer errors than every one
    before it."""
    best, since = 1 << 31, 0
    for a in history:
        n = errors_of(a)
        if n < best:
            best, since = n, 0
        else:
            since += 1
    return since


@dataclass(frozen=True)
class BudgetPolicy(ProofPolicy):
    """The default moves, with a budget per unit instead of ``max_attempts`` (see the module's docstring).
    ``spend(unit_id)`` says what the unit has cost in the job so far."""

    prove: ProveConfig = field(default_factory=ProveConfig)
    spend: Callable[[int], UnitSpend] = field(default=lambda _unit_id: UnitSpend())
    #: the limits of one unit (a person's ``retry --budget`` may give a unit its own); ``prove`` when None
    limits: Callable[[int], ProveConfig] | None = None

    @classmethod
    def from_prove(
        cls,
        job: JobConfig,
        prove: ProveConfig,
        *,
        backend: str,
        spend: Callable[[int], UnitSpend],
        limits: Callable[[int], ProveConfig] | None = None,
    ) -> BudgetPolicy:
        base = ProofPolicy.from_settings(job, max_attempts=prove.lean_checks, backend=backend, prove=prove)
        fields = {f: getattr(base, f) for f in base.__dataclass_fields__}
        return cls(**fields, prove=prove, spend=spend, limits=limits)

    def limits_of(self, unit_id: int) -> ProveConfig:
        """The unit's limits: its own when a person gave it some, else ``[prove]``."""
        return self.limits(unit_id) if self.limits is not None else self.prove

    def subgoal_budget(self, unit_id: int) -> SubgoalBudget:
        """The unit's limits' ``subgoal_llm_calls`` and ``subgoal_lean_checks`` (a person's own, or ``[prove]``)."""
        return subgoal_budget_of(self.limits_of(unit_id))

    def spent(self, unit_id: int) -> str:
        """Why the unit's budget is spent ('' while it is not)."""
        got, p = self.spend(unit_id), self.limits_of(unit_id)
        limits = (
            (got.llm_calls >= p.llm_calls, f"{got.llm_calls} LLM calls (budget {p.llm_calls})"),
            (got.tokens >= p.tokens, f"{got.tokens} tokens (budget {p.tokens})"),
            (got.lean_checks >= p.lean_checks, f"{got.lean_checks} Lean checks (budget {p.lean_checks})"),
            (got.seconds >= p.wall_s, f"{got.seconds:.0f} s (budget {p.wall_s:.0f} s)"),
        )
        return next((f"budget spent: {what}" for over, what in limits if over), "")

    def exhausted(self, history: Sequence[Attempt]) -> str:
        """Why the unit may not go on ('' while it may)."""
        if not history:
            return ""
        why = self.spent(history[-1].unit_id)
        if why:
            return why
        stalled = stalled_for(history)
        if stalled >= self.limits_of(history[-1].unit_id).stall_rounds:
            return f"no progress in {stalled} attempts (fewer Lean errors)"
        return ""

    def next_round(self, history: Sequence[Attempt]) -> Round:
        why = self.exhausted(history)
        if why.startswith("budget spent"):  # no sketch: its subgoals could not spend anything
            return Round((Move.STATED, Move.GIVE_UP), spent=True, why=why)
        if why:
            closing = self._closing(history)
            return Round(closing.moves, spent=True, why=why)
        if not history:
            opening = (Move.LIBRARY_SEARCH,) if self.library_search else ()
            return Round((*opening, Move.WHOLE_PROOF))
        return Round(self._repairs(history))
