"""Proof by decomposition: when whole proofs of a unit fail, a sketch of its proof with ``have … := by sorry``
steps is checked by Lean, each hole becomes a subgoal proved on its own as a helper lemma, and the sketch with its
holes filled goes through the gate.

* The sketch comes from the prover with its sketch prompt (``agents/prover/sketch.md``); it is pre-screened with
  its holes, then checked by Lean with ``sorry`` allowed (checking is not admission).
* The holes are explored first (:mod:`autoform.pipeline.explore`): in the REPL's tactic mode each hole's proof
  state is tried with the closing tactics and ``exact?``, without it ``exact?`` goes into every hole in one
  command-mode probe; a tactic that closes a hole is spliced into it (a ``subgoal`` post ``by`` ``automation`` or
  ``library_search`` with its ``tactic``, no lemma), and the gate still judges the whole text in command mode.
* Each other hole's goal (Lean's own, from the REPL's ``sorries``) is written as a standalone statement
  (:func:`autoform.lean.goals.standalone`), locked like a unit's statement, and played by the policy's subgoal
  moves (:meth:`autoform.pipeline.policy.ProofPolicy.subgoal_moves`): automation, the prover on the subgoal's
  statement, the gap-closer with the goals where that proof broke, and a **split**: a sketch of the subgoal
  itself, whose holes are subgoals one level deeper (``depth + 1``, the subgoal recorded as their parent), to
  ``[prove] max_depth``. Solved holes are spliced back (``exact lemma args``) and the subgoal's lemma, with the
  lemmas of its own holes before it, is judged by the gate. Each subgoal has a budget of its own (``[prove]
  subgoal_llm_calls``, ``subgoal_lean_checks``; its post records what it ``spent``) besides the unit's.
* A subgoal proved once is not proved again in the job (keyed by its goal, whitespace aside; resumes included):
  within the unit its lemma is reused; another unit gets the same lemma's code (renamed to a name of its own at
  admission, :func:`autoform.pipeline.gatekeeper.reserve_helpers`), or calls it by name when the lemma is in the
  Atlas code of its dependencies already.
* Every subgoal is a blackboard post (kind ``subgoal``: goal, parent unit, ``parent_name`` (the subgoal it is a
  hole of, "" at depth 1), depth, name, statement, status ``open``/``proved``/``failed``, and how it was closed:
  ``by``), so :func:`autoform.subgoals.subgoal_tree` rebuilds the tree for the transcript, ``status`` and the
  site. Admission is always the whole text through the gate; the helper lemmas enter the Atlas with the unit.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from agents import AgentRun, GapCloser, Prover, Sketcher
from autoform.lean import goals, library_search
from autoform.lean.gate import (
    Candidate,
    Reason,
    Verdict,
    admit,
    check_statement,
    declared_names,
    screen_candidate,
)
from autoform.llm import MalformedReply
from autoform.pipeline.automation import AUTOMATION_TACTIC
from autoform.pipeline.context import JobScope
from autoform.pipeline.explore import Explored, Explorer, screened_sketch, splice
from autoform.pipeline.gatekeeper import Gatekeeper, theorem_code
from autoform.pipeline.policy import ProofStrategy, SubgoalBudget, SubgoalMove
from autoform.store import Post

_SORRY = re.compile(r"(?<![\w.'])sorry(?![\w'])")


def fill_holes(sketch: str, replacements: list[str]) -> str:
    """``sketch`` with its k-th ``sorry`` replaced by ``replacements[k]``."""
    it = iter(replacements)
    return _SORRY.sub(lambda m: next(it), sketch)


def call_for(lemma: str, goal: str) -> str:
    """``exact lemma args``: the hole's hypotheses passed in order (instances are found by Lean; a hypothesis
    Lean made inaccessible is passed as ``‹type›``, found by assumption)."""
    hyps, _ = goals.split_goal(goal)
    args: list[str] = []
    for names, ty in hyps:
        for n in names:
            if n.startswith("inst") and n.endswith("✝"):
                continue
            args.append(f"‹{ty}›" if n.endswith("✝") else n)
    return f"exact {lemma}" + "".join(f" {a}" for a in args)


def goal_key(goal: str) -> str:
    """A goal's identity for reuse: its text, whitespace aside."""
    return " ".join(goal.split())


#: a declaration to include: (its name, its code)
Decl = tuple[str, str]


@dataclass(frozen=True)
class Proved:
    """A proved subgoal: its lemma's name and the declarations a proof using it must include (the lemmas of its
    own holes first, then its own; none when the Atlas code in the prelude declares it already); or, for a hole
    closed in tactic mode, the tactic spliced into it (no lemma)."""

    name: str
    decls: tuple[Decl, ...] = ()
    tactic: str = ""

    def fills(self, goal: str) -> str:
        """What takes the hole's place: the tactic, or the call of the lemma."""
        return self.tactic or call_for(self.name, goal)


def spliced(sketch: str, proved: list[Proved], holes: list[goals.Hole]) -> str:
    """The sketch with each hole filled by what proved it."""
    return splice(sketch, [p.fills(h.goal) for p, h in zip(proved, holes, strict=True)])


def merged(blocks: list[Proved], aux: str = "") -> str:
    """``aux`` and every block's declarations, each name once, in order."""
    seen: dict[str, str] = {}
    for p in blocks:
        for name, code in p.decls:
            seen.setdefault(name, code)
    return "\n\n".join(x for x in [aux.strip(), *seen.values()] if x)


@dataclass
class _Subgoal:
    """A subgoal in work: the unit's run and base candidate, its locked lemma, its place in the tree, and the last
    proof of it Lean refused (for the repair)."""

    run: AgentRun
    base: Candidate
    lemma: Candidate
    hole: goals.Hole
    name: str
    depth: int
    data: dict[str, Any]
    budget: SubgoalBudget = field(default_factory=SubgoalBudget)
    failed: tuple[str, Verdict] | None = field(default=None)
    llm_calls: int = 0  # spent on its own moves (its budget: ``budget``)
    lean_checks: int = 0
    automation_failed: bool = False  # tactic mode saw the closing tactics fail on its goal

    def over(self, needs_llm: bool) -> str:
        """Why the subgoal may not play a move any more ('' while it may)."""
        if self.lean_checks >= self.budget.lean_checks:
            return f"subgoal budget spent: {self.lean_checks} Lean checks (budget {self.budget.lean_checks})"
        if needs_llm and self.llm_calls >= self.budget.llm_calls:
            return f"subgoal budget spent: {self.llm_calls} LLM calls (budget {self.budget.llm_calls})"
        return ""


class SubgoalLedger:
    """The subgoal posts of a job, read and written: what proved a goal before (and may prove it again), what
    was withdrawn (a tactic-mode tactic the whole text refused), and each subgoal's state."""

    def __init__(self, scope: JobScope) -> None:
        self.scope, self.board = scope, scope.board

    def post(self, unit_id: int, body: str, data: dict[str, Any]) -> None:
        self.board.post("decomposer", "subgoal", body, unit_id=unit_id, data=data)

    def known(self, base: Candidate, goal: str) -> tuple[Proved, Post] | None:
        """What proved ``goal`` earlier in this job (a lemma, or a tactic not withdrawn since), and the post that
        says so; None if nothing did."""
        key = goal_key(goal)
        proved: list[Post] = []
        withdrawn: set[str] = set()  # tactics found in tactic mode that did not hold in a whole text
        for post in self.board.read(kind="subgoal"):
            d = post.data
            if post.job_id != self.scope.job.id or goal_key(d.get("goal", "")) != key:
                continue
            if d.get("status") == "withdrawn":
                withdrawn.add(d.get("tactic", ""))
            elif d.get("status") == "proved":
                proved.append(post)
        for post in proved:
            got = _proved_by(base, post.data)
            if not (got.tactic and got.tactic in withdrawn):
                return got, post
        return None

    def withdraw(
        self, run: AgentRun, base: Candidate, holes: list[goals.Hole], closed: dict[int, tuple[str, str]]
    ) -> None:
        """The holes closed in tactic mode whose tactics the gate refused in the whole text: posted as withdrawn,
        so neither this unit nor another reuses those tactics (:meth:`known`) and the tree says so."""
        for h in holes:
            if h.index not in closed:
                continue
            name, tactic = f"{base.name or 'unit'}_step{h.index + 1}", closed[h.index][0]
            data = {"goal": h.goal, "parent": run.unit.id, "parent_name": "", "depth": 1, "name": name}
            body = f"{name}: `{tactic}` did not hold in the whole text"
            self.post(run.unit.id, body, {**data, "status": "withdrawn", "tactic": tactic})


def _proved_by(base: Candidate, d: dict[str, Any]) -> Proved:
    """What a ``proved`` subgoal post says proves its goal: a tactic, a lemma by name, or a lemma with its code."""
    name = d["name"]
    if d.get("tactic"):  # closed in tactic mode: the same tactic closes it again
        return Proved(name, (), d["tactic"])
    if name in declared_names(base.prelude):  # in the Atlas code of a dependency: called by name
        return Proved(name)
    return Proved(name, (*(tuple(x) for x in d.get("helpers", [])), (name, d.get("code", ""))))


class Decomposer:
    """One sketch round for a unit whose whole proofs failed (thread-safe: it keeps no state of its own)."""

    def __init__(self, scope: JobScope, gate: Gatekeeper, prover: Prover, policy: ProofStrategy) -> None:
        self.scope, self.gate, self.prover, self.policy = scope, gate, prover, policy
        self.board = scope.board
        self.ledger = SubgoalLedger(scope)
        self.sketcher = Sketcher()
        self.gap_closer = GapCloser()

    def run(self, run: AgentRun, base: Candidate) -> bool:
        """One sketch round for the unit; True when the unit was admitted."""
        if not goals.reports_goals(self.scope.oracle.backend):  # `lean --json` reports no goals for the holes
            self.board.post(
                "decomposer",
                "subgoal",
                f"no decomposition: the `{self.scope.oracle.backend}` backend reports no goals (set "
                '[lean] backend = "repl" for proof by decomposition)',
                unit_id=run.unit.id,
                data={"status": "unavailable", "depth": 0},
            )
            return False
        try:
            aux, sketch, _ = self.sketcher.run(run, locked=base.statement)
        except MalformedReply as e:  # recorded like any failed attempt
            self.gate.record(run.unit, "proof", "sketch", "", Verdict(admitted=False), note=str(e))
            return False
        if not _SORRY.search(sketch):  # a whole proof after all
            return self.gate.judge_proof(run, base, sketch, aux, "sketch")
        cand = base.model_copy(update={"proof": sketch, "aux": aux})
        holes, why, verdict, explored = self.explore(cand)
        if verdict is not None:  # refused by the pre-screen (recorded as its verdict) or by Lean
            return self.gate.conclude(run, screened_sketch(cand), verdict, "proof", "sketch", sketch)
        admitted, judged = self._judge_closed(run, base, sketch, aux, holes, explored)
        if admitted or not judged or not explored[0] or self.scope.stop.is_set():
            return admitted
        # the gate refused the whole text: a tactic tactic mode found may not hold there (read back differently,
        # or in another place): those tactics are withdrawn, and their holes go the lemma route
        self.ledger.withdraw(run, base, holes, explored[0])
        return self._judge_closed(run, base, sketch, aux, holes, ({}, explored[1]))[0]

    def _judge_closed(
        self, run: AgentRun, base: Candidate, sketch: str, aux: str, holes: list[goals.Hole], explored: Explored
    ) -> tuple[bool, bool]:
        """The sketch's holes closed (by what exploring found, else as subgoals), spliced back, through the gate:
        (admitted, judged); not judged when a hole resisted."""
        proved = self._close(run, base, holes, base.name or "unit", 1, explored)
        if isinstance(proved, str):
            verdict = Verdict(admitted=False, reasons=[Reason(code="subgoal", message=proved)])
            self.gate.record(run.unit, "proof", "decomposition", sketch, verdict)
            return False, False
        whole = spliced(sketch, proved, holes)
        return self.gate.judge_proof(run, base, whole, merged(proved, aux), "decomposition"), True

    def holes(self, cand: Candidate) -> tuple[list[goals.Hole], str, Verdict | None]:
        """The sketch ``cand.proof`` checked by Lean with its holes: (their goals, "", None), or a refusal: the
        pre-screen's verdict, or Lean's (it does not elaborate, or reports another number of holes)."""
        found, why, verdict, _ = self.explore(cand)
        return found, why, verdict

    def explore(self, cand: Candidate) -> tuple[list[goals.Hole], str, Verdict | None, Explored]:
        """:meth:`holes`, and what closes them without a lemma (:class:`~autoform.pipeline.explore.Explorer`)."""
        return Explorer(self.scope).explore(cand)

    def _close(
        self, run: AgentRun, base: Candidate, holes: list[goals.Hole], parent: str, depth: int, explored: Explored
    ) -> list[Proved] | str:
        """Each hole proved as a subgoal at ``depth`` (or closed by what tactic mode found for it): their
        :class:`Proved`, or why one resists (a str)."""
        closed, failed = explored
        out: list[Proved] = []
        for h in holes:
            name = f"{parent}_step{h.index + 1}" if depth == 1 else f"{parent}_{h.index + 1}"
            where = {"parent": run.unit.id, "parent_name": "" if depth == 1 else parent, "depth": depth}
            if h.index in closed:
                tactic, by = closed[h.index]
                data = {"goal": h.goal, **where, "name": name, "status": "proved", "by": by, "tactic": tactic}
                self.ledger.post(run.unit.id, f"{name} closed in tactic mode ({by})", data)
                out.append(Proved(name, (), tactic))
                continue
            got = self.subgoal(
                run, base, h, name, depth=depth, parent=where["parent_name"], automation_failed=h.index in failed
            )
            if got is None:
                place = "step" if depth == 1 else f"step {parent},"
                return f"{place} {h.index + 1} of the sketch resists: {h.goal.splitlines()[-1]}"
            out.append(got)
        return out

    def subgoal(
        self,
        run: AgentRun,
        base: Candidate,
        hole: goals.Hole,
        name: str,
        *,
        depth: int = 1,
        parent: str = "",
        automation_failed: bool = False,
    ) -> Proved | None:
        """Prove one hole as a lemma of its own, by the policy's subgoal moves; None when it resists. A goal
        proved before in this job is answered by the lemma that proved it."""
        unit = run.unit
        known = self.ledger.known(base, hole.goal)
        if known is not None:
            proved, post = known
            if post.unit_id != unit.id:  # another unit's lemma: a node of this unit's tree, closed by reuse
                where = {"parent": unit.id, "parent_name": parent, "depth": depth, "from": post.unit_id}
                self.ledger.post(
                    unit.id, f"{proved.name}: proved before (reused)", {**post.data, **where, "by": "reused"}
                )
            return proved
        name = self.scope.store.reserve_name(self.scope.book.id, unit.id, name)
        statement = goals.standalone(hole.goal, name)
        data = {
            "goal": hole.goal,
            "parent": unit.id,
            "parent_name": parent,
            "depth": depth,
            "name": name,
            "statement": statement,
        }
        lemma = self._locked_lemma(run, base, statement, data)
        if lemma is None:
            return None
        self.ledger.post(unit.id, f"{name}: open (depth {depth})", {**data, "status": "open"})
        sg = _Subgoal(run, base, lemma, hole, name, depth, data, self.policy.subgoal_budget(unit.id))
        sg.automation_failed = automation_failed
        got = self._moves(sg)
        if isinstance(got, Proved):
            return got
        self.ledger.post(unit.id, f"{name}: {got}", {**data, "status": "failed", "spent": self._spent(sg)})
        return None

    def _moves(self, sg: _Subgoal) -> Proved | str:
        """The policy's subgoal moves on ``sg`` until one proves it (posted as proved by :meth:`_try`), while the
        unit's and the subgoal's own budgets last: its :class:`Proved`, or why it was not proved."""
        for move in self.policy.subgoal_moves(sg.depth):
            if self.scope.stop.is_set():
                break
            if move is SubgoalMove.AUTOMATION and sg.automation_failed:
                continue  # tactic mode saw the closing tactics fail on this very goal
            needs_llm = move is not SubgoalMove.AUTOMATION
            over = (self.policy.spent(sg.run.unit.id) if needs_llm else "") or sg.over(needs_llm)
            if over:
                return f"not proved ({over})"
            got = self._play(move, sg)
            if got is not None:
                return got
        return "not proved"

    @staticmethod
    def _spent(sg: _Subgoal) -> dict[str, int]:
        return {"llm_calls": sg.llm_calls, "lean_checks": sg.lean_checks}

    # -- the moves on a subgoal ----------------------------------------------------------------------
    def _play(self, move: SubgoalMove, sg: _Subgoal) -> Proved | None:
        if move is SubgoalMove.AUTOMATION:
            return self._try(sg, AUTOMATION_TACTIC, (), "automation")
        if move is SubgoalMove.PROVER:
            return self._prover(sg)
        if move is SubgoalMove.REPAIR:
            return self._repair(sg)
        return self._split(sg)

    def _prover(self, sg: _Subgoal) -> Proved | None:
        sg.llm_calls += 1
        try:
            aux, proof, _ = self.prover.run(self._fresh(sg.run), locked=sg.lemma.statement, subgoal=self._where(sg))
        except MalformedReply:
            return None
        return self._try(sg, proof, self._helpers(sg, aux), "prover")

    def _repair(self, sg: _Subgoal) -> Proved | None:
        """The gap-closer on the last refused proof of the subgoal, with Lean's errors and the goals where it
        broke."""
        if sg.failed is None:
            return None
        proof, verdict = sg.failed
        if self.scope.settings.job.library_search and verdict.module:  # exact? on the goals it left, no LLM call
            found = library_search.open_goals_search(
                self.scope.oracle, verdict.module, verdict.messages, sg.lemma.statement
            )
            if found is not None:
                got = self._try(sg, found, (), "library_search")
                if got is not None:
                    return got
                sg.failed = (proof, verdict)  # the gap-closer repairs the proof it was asked about
        errors = [f"- {r.message}" for r in verdict.reasons]
        errors += [f"- error at line {m.line}: {m.text}" for m in verdict.messages if m.severity == "error"]
        state = (
            goals.failure_goals(self.scope.oracle, verdict.module, verdict.messages, statement=sg.lemma.statement)
            if verdict.module
            else []
        )
        sg.llm_calls += 1
        try:
            aux, fixed, _ = self.gap_closer.run(
                self._fresh(sg.run),
                locked=sg.lemma.statement,
                failed_proof=proof,
                errors="\n".join(dict.fromkeys(errors)) or "(no message)",
                goals="\n\n".join(state),
            )
        except MalformedReply:
            return None
        return self._try(sg, fixed, self._helpers(sg, aux), "repair")

    def _split(self, sg: _Subgoal) -> Proved | None:
        """A sketch of the subgoal: its holes proved one level deeper, spliced back, the lemma judged whole."""
        sg.llm_calls += 1
        try:
            aux, sketch, _ = self.sketcher.run(self._fresh(sg.run), locked=sg.lemma.statement, subgoal=self._where(sg))
        except MalformedReply:
            return None
        if not _SORRY.search(sketch):
            return self._try(sg, sketch, self._helpers(sg, aux), "split")
        holes, why, _, explored = self.explore(sg.lemma.model_copy(update={"proof": sketch, "aux": aux}))
        if why:
            self.ledger.post(
                sg.run.unit.id, f"{sg.name}: its sketch was refused: {why[:300]}", {**sg.data, "status": "open"}
            )
            return None
        proved = self._close(sg.run, sg.base, holes, sg.name, sg.depth + 1, explored)
        if isinstance(proved, str):
            return None
        decls = (*self._helpers(sg, aux), *(d for p in proved for d in p.decls))
        return self._try(sg, spliced(sketch, proved, holes), decls, "split")

    def _try(self, sg: _Subgoal, proof: str, decls: tuple[Decl, ...], by: str) -> Proved | None:
        """``proof`` (with ``decls`` before the lemma) through the gate; the subgoal posted as proved when
        admitted, else the refusal kept for the repair."""
        if sg.lean_checks >= sg.budget.lean_checks:
            return None
        sg.lean_checks += 1
        aux = merged([Proved("", decls)])
        verdict = admit(sg.lemma.model_copy(update={"proof": proof, "aux": aux}), self.scope.oracle)
        if not verdict.admitted:
            sg.failed = (proof, verdict)
            return None
        code = theorem_code(sg.lemma.statement, proof)
        helpers = [list(d) for d in dict.fromkeys(decls)]
        data = {**sg.data, "status": "proved", "by": by, "code": code, "helpers": helpers, "spent": self._spent(sg)}
        self.ledger.post(sg.run.unit.id, f"{sg.name} proved ({by})", data)
        return Proved(sg.name, (*decls, (sg.name, code)))

    # -- helpers ------------------------------------------------------------------------------------
    def _helpers(self, sg: _Subgoal, aux: str) -> tuple[Decl, ...]:
        """A reply's helper declarations as one block, their names reserved for the unit."""
        if not aux.strip():
            return ()
        aux, _ = self.gate.reserve_helpers(sg.run.unit, aux, "")
        names = declared_names(aux)
        return ((names[0] if names else f"{sg.name}_aux", aux.strip()),)

    @staticmethod
    def _where(sg: _Subgoal) -> str:
        parent = sg.data.get("parent_name") or "the unit's sketch"
        return (
            f"subgoal `{sg.name}` (depth {sg.depth}), a hole of {parent}; its goal as Lean states it:\n{sg.hole.goal}"
        )

    @staticmethod
    def _fresh(run: AgentRun) -> AgentRun:
        return dataclasses.replace(run, pinned_ids=set(run.pinned_ids))

    def _locked_lemma(self, run: AgentRun, base: Candidate, statement: str, data: dict[str, Any]) -> Candidate | None:
        """The subgoal's statement as a candidate locked to the type Lean elaborated it to; None (posted as a
        failed subgoal) when it cannot be stated on its own or does not elaborate."""
        lemma = base.model_copy(update={"statement": statement, "proof": "", "aux": "", "locked_type": None})
        name = data["name"]
        if screen_candidate(lemma.model_copy(update={"proof": "skip"})):
            self.ledger.post(run.unit.id, f"{name}: cannot be stated on its own", {**data, "status": "failed"})
            return None
        st = check_statement(lemma, self.scope.oracle)
        if not st.elaborates or not st.elaborated_type:
            why = f" ({st.reasons[0].message})" if st.reasons else ""
            self.ledger.post(
                run.unit.id, f"{name}: its statement does not elaborate{why}", {**data, "status": "failed"}
            )
            return None
        return lemma.model_copy(update={"locked_type": st.elaborated_type})


# ----------------------------------------------------------------------------------- the subgoal tree
