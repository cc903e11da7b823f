"""Proof by decomposition: when whole proofs of a unit fail, a sketch of its proof with ``have … := by sorry``
steps is checked by Lean, each hole becomes a subgoal proved on its own as a helper lemma (automation first,
then the prover on the subgoal's statement), and the sketch with its holes filled goes through the gate.

* The sketch comes from the prover with its sketch prompt (``agents/prover/sketch.md``); it is pre-screened with
  its holes, then checked by Lean with ``sorry`` allowed (checking is not admission).
* Each hole's goal (Lean's own, from the REPL's ``sorries``) is written as a standalone statement
  (:func:`autoform.lean.goals.standalone`), locked like a unit's statement, and proved through the gate; the hole
  becomes ``exact lemma args``. A subgoal proved once is not proved again (keyed by its goal text, across the
  book, resumes included): its lemma is reused.
* Every subgoal is a blackboard post (kind ``subgoal``: goal, parent unit, depth, status), so the transcript and
  the site show the tree. Admission is always the whole text through the gate; the helper lemmas enter the
  Atlas with the unit ("helper of Theorem 1.9").

This is the first level of the search the design calls for (depth 1: a hole that resists is not split again).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from agents import AgentRun, Prover, Sketcher
from autoform.lean import goals
from autoform.lean.gate import Candidate, Reason, Verdict, admit, build_module, check_statement, screen_candidate
from autoform.llm import MalformedReply
from autoform.pipeline.automation import AUTOMATION_TACTIC
from autoform.pipeline.context import JobScope
from autoform.pipeline.gatekeeper import Gatekeeper, theorem_code

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


#: a proved subgoal: (its lemma's code, empty when proved before; its name)
Lemma = tuple[str, str]


class Decomposer:
    """One sketch round for a unit whose whole proofs failed (thread-safe: it keeps no state of its own)."""

    def __init__(self, scope: JobScope, gate: Gatekeeper, prover: Prover) -> None:
        self.scope, self.gate, self.prover = scope, gate, prover
        self.board = scope.board
        self.sketcher = Sketcher()

    def run(self, run: AgentRun, base: Candidate) -> bool:
        """One sketch round for the unit; True when the unit was admitted."""
        if self.scope.oracle.backend == "lake":  # `lean --json` reports no goals for the holes of a sketch
            self.board.post(
                "decomposer",
                "subgoal",
                "no decomposition: the `lake` backend reports no goals (set "
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
        n_holes = len(_SORRY.findall(sketch))
        if n_holes == 0:  # a whole proof after all
            return self.gate.judge_proof(run, base, sketch, aux, "sketch")
        screened = base.model_copy(update={"proof": fill_holes(sketch, ["skip"] * n_holes), "aux": aux})
        if screen_candidate(screened):
            return self.gate.conclude(run, screened, admit(screened, self.scope.oracle), "proof", "sketch", sketch)
        holes = self._holes(run, base.model_copy(update={"proof": sketch, "aux": aux}), n_holes)
        if holes is None:
            return False
        return self._fill(run, base, sketch, aux, holes)

    def _holes(self, run: AgentRun, cand: Candidate, n_holes: int) -> list[goals.Hole] | None:
        """The sketch checked by Lean with its holes: their goals, or None (recorded as a failed attempt) when
        it does not elaborate or Lean reports another number of holes."""
        module = build_module(cand)
        hint: dict[str, int] = {"context_lines": module.context_lines} if module.context_lines else {}
        check = self.scope.oracle.check(module.text, **hint)
        holes = goals.holes(check)
        if check.failure is None and not check.errors and len(holes) == n_holes:
            return holes
        why = (
            check.failure
            or "; ".join(m.text for m in check.errors)[:500]
            or f"Lean reported {len(holes)} hole(s) for {n_holes} sorry"
        )
        verdict = Verdict(admitted=False, messages=check.messages, reasons=[Reason(code="sketch", message=why)])
        self.gate.record(run.unit, "proof", "sketch", cand.proof, verdict)
        return None

    def _fill(self, run: AgentRun, base: Candidate, sketch: str, aux: str, holes: list[goals.Hole]) -> bool:
        """Each hole proved as a lemma, then the sketch with ``exact lemma args`` in its holes through the gate;
        a hole that resists ends this round (depth 1), recorded as a failed attempt."""
        lemmas: list[str] = []
        calls: list[str] = []
        decl = base.name or "unit"
        for h in holes:
            got = self.subgoal(run, base, h, f"{decl}_step{h.index + 1}")
            if got is None:
                why = f"step {h.index + 1} of the sketch resists: {h.goal.splitlines()[-1]}"
                verdict = Verdict(admitted=False, reasons=[Reason(code="subgoal", message=why)])
                self.gate.record(run.unit, "proof", "decomposition", sketch, verdict)
                return False
            code, name = got
            if code:
                lemmas.append(code)
            calls.append(call_for(name, h.goal))
        whole_aux = "\n\n".join(x for x in [aux.strip(), *lemmas] if x)
        return self.gate.judge_proof(run, base, fill_holes(sketch, calls), whole_aux, "decomposition")

    def subgoal(self, run: AgentRun, base: Candidate, hole: goals.Hole, name: str) -> Lemma | None:
        """Prove one hole as a lemma of its own: (the lemma's code, its name), or None when it resists. A goal
        already proved in this book is answered by the lemma that proved it."""
        unit = run.unit
        for post in self.board.read(unit_id=unit.id, kind="subgoal"):  # proved before a kill: not again
            if post.data.get("goal") == hole.goal and post.data.get("status") == "proved":
                return post.data.get("code", ""), post.data["name"]
        name = self.scope.store.reserve_name(self.scope.book.id, unit.id, name)
        statement = goals.standalone(hole.goal, name)
        post_data = {"goal": hole.goal, "parent": unit.id, "depth": 1, "name": name, "statement": statement}
        lemma = self._locked_lemma(run, base, statement, post_data)
        if lemma is None:
            return None
        for author in ("automation", "prover"):
            proof = AUTOMATION_TACTIC if author == "automation" else self._prover_proof(run, statement)
            if proof is None:  # the prover's reply was unusable: this hole resists this round
                continue
            if admit(lemma.model_copy(update={"proof": proof}), self.scope.oracle).admitted:
                code = theorem_code(statement, proof)
                self._post(
                    unit.id, f"{name} proved ({author})", {**post_data, "status": "proved", "by": author, "code": code}
                )
                return code, name
        self._post(unit.id, f"{name}: not proved", {**post_data, "status": "failed"})
        return None

    def _locked_lemma(
        self, run: AgentRun, base: Candidate, statement: str, post_data: dict[str, Any]
    ) -> Candidate | None:
        """The subgoal's statement as a candidate locked to the type Lean elaborated it to; None (posted as a
        failed subgoal) when it cannot be stated on its own or does not elaborate."""
        lemma = base.model_copy(update={"statement": statement, "proof": "", "aux": "", "locked_type": None})
        name = post_data["name"]
        if screen_candidate(lemma.model_copy(update={"proof": "skip"})):
            self._post(run.unit.id, f"{name}: cannot be stated on its own", {**post_data, "status": "failed"})
            return None
        st = check_statement(lemma, self.scope.oracle)
        if not st.elaborates or not st.elaborated_type:
            why = f" ({st.reasons[0].message})" if st.reasons else ""
            self._post(run.unit.id, f"{name}: its statement does not elaborate{why}", {**post_data, "status": "failed"})
            return None
        return lemma.model_copy(update={"locked_type": st.elaborated_type})

    def _prover_proof(self, run: AgentRun, statement: str) -> str | None:
        try:
            _, proof, _ = self.prover.run(dataclasses.replace(run, pinned_ids=set(run.pinned_ids)), locked=statement)
        except MalformedReply:
            return None
        return proof

    def _post(self, unit_id: int, body: str, data: dict[str, Any]) -> None:
        self.board.post("decomposer", "subgoal", body, unit_id=unit_id, data=data)
