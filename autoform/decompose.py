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
from typing import TYPE_CHECKING

from agents.base import AgentRun
from agents.prover import Prover
from autoform.lean import goals
from autoform.lean.gate import (
    Candidate,
    Reason,
    Verdict,
    admit,
    build_module,
    check_statement,
    normalize_proof,
    screen_candidate,
)
from autoform.llm import MalformedReply

if TYPE_CHECKING:
    from autoform.pipeline import UnitPipeline

_SORRY = re.compile(r"(?<![\w.'])sorry(?![\w'])")


class Sketcher(Prover):
    """The prover, asked for a sketch (``agents/prover/sketch.md``)."""

    system_file = "sketch_system.md"
    prompt_file = "sketch.md"
    prompt_dir = "prover"


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


class Decomposer:
    def __init__(self, pipeline: UnitPipeline) -> None:
        self.p = pipeline
        self.sketcher = Sketcher()

    def run(self, run: AgentRun, base: Candidate) -> bool:
        """One sketch round for the unit; True when the unit was admitted."""
        p, unit = self.p, run.unit
        if p.oracle.backend == "lake":  # `lean --json` reports no goals for the holes of a sketch
            p.board.post(
                "decomposer",
                "subgoal",
                "no decomposition: the `lake` backend reports no goals (set "
                '[lean] backend = "repl" for proof by decomposition)',
                unit_id=unit.id,
                data={"status": "unavailable", "depth": 0},
            )
            return False
        try:
            aux, sketch, _ = self.sketcher.run(run, locked=base.statement)
        except MalformedReply as e:  # recorded like any failed attempt
            p._record(unit, "proof", "sketch", "", Verdict(admitted=False), note=str(e))
            return False
        n_holes = len(_SORRY.findall(sketch))
        if n_holes == 0:  # a whole proof after all
            return p._try(run, base, sketch, aux, "sketch")
        screened = base.model_copy(update={"proof": fill_holes(sketch, ["skip"] * n_holes), "aux": aux})
        if screen_candidate(screened):
            return p._conclude(run, screened, admit(screened, p.oracle), "proof", "sketch", sketch)
        cand = base.model_copy(update={"proof": sketch, "aux": aux})
        module = build_module(cand)
        hint = {"context_lines": module.context_lines} if module.context_lines else {}
        check = p.oracle.check(module.text, **hint)
        holes = goals.holes(check)
        if check.failure is not None or check.errors or len(holes) != n_holes:
            why = (
                check.failure
                or "; ".join(m.text for m in check.errors)[:500]
                or f"Lean reported {len(holes)} hole(s) for {n_holes} sorry"
            )
            p._record(
                unit,
                "proof",
                "sketch",
                sketch,
                Verdict(admitted=False, messages=check.messages, reasons=[Reason(code="sketch", message=why)]),
            )
            return False
        lemmas: list[str] = []
        calls: list[str] = []
        decl = base.name or "unit"
        for h in holes:
            got = self.subgoal(run, base, h, f"{decl}_step{h.index + 1}")
            if got is None:  # a hole that resists ends this round (depth 1), recorded as a failed attempt
                p._record(
                    unit,
                    "proof",
                    "decomposition",
                    sketch,
                    Verdict(
                        admitted=False,
                        reasons=[
                            Reason(
                                code="subgoal",
                                message=f"step {h.index + 1} of the sketch resists: {h.goal.splitlines()[-1]}",
                            )
                        ],
                    ),
                )
                return False
            code, name = got
            if code:
                lemmas.append(code)
            calls.append(call_for(name, h.goal))
        whole_aux = "\n\n".join(x for x in [aux.strip(), *lemmas] if x)
        return p._try(run, base, fill_holes(sketch, calls), whole_aux, "decomposition")

    def subgoal(self, run: AgentRun, base: Candidate, hole: goals.Hole, name: str) -> tuple[str, str] | None:
        """Prove one hole as a lemma of its own: (the lemma's code, its name), or None when it resists. A goal
        already proved in this book is answered by the lemma that proved it."""
        p, unit = self.p, run.unit
        for post in p.board.read(unit_id=unit.id, kind="subgoal"):  # proved before a kill: not again
            if post.data.get("goal") == hole.goal and post.data.get("status") == "proved":
                return post.data.get("code", ""), post.data["name"]
        name = p.store.reserve_name(p.book.id, unit.id, name)
        statement = goals.standalone(hole.goal, name)
        post_data = {"goal": hole.goal, "parent": unit.id, "depth": 1, "name": name, "statement": statement}
        lemma = base.model_copy(update={"statement": statement, "proof": "", "aux": "", "locked_type": None})
        if screen_candidate(lemma.model_copy(update={"proof": "skip"})):
            p.board.post(
                "decomposer",
                "subgoal",
                f"{name}: cannot be stated on its own",
                unit_id=unit.id,
                data={**post_data, "status": "failed"},
            )
            return None
        st = check_statement(lemma, p.oracle)
        if not st.elaborates or not st.elaborated_type:
            p.board.post(
                "decomposer",
                "subgoal",
                f"{name}: its statement does not elaborate ({st.reasons[0].message})"
                if st.reasons
                else f"{name}: its statement does not elaborate",
                unit_id=unit.id,
                data={**post_data, "status": "failed"},
            )
            return None
        lemma = lemma.model_copy(update={"locked_type": st.elaborated_type})
        from autoform.pipeline import AUTOMATION_TACTIC

        tries: list[tuple[str, str]] = [("automation", AUTOMATION_TACTIC)]
        for author, proof in tries + [("prover", "")]:
            if author == "prover":
                try:
                    _, proof, _ = p.prover.run(
                        dataclasses.replace(run, pinned_ids=set(run.pinned_ids)), locked=statement
                    )
                except MalformedReply:  # this hole resists this round
                    continue
            v = admit(lemma.model_copy(update={"proof": proof}), p.oracle)
            if v.admitted:
                code = f"{statement} := by\n" + "\n".join(
                    "  " + ln if ln.strip() else ln for ln in normalize_proof(proof).splitlines()
                )
                p.board.post(
                    "decomposer",
                    "subgoal",
                    f"{name} proved ({author})",
                    unit_id=unit.id,
                    data={**post_data, "status": "proved", "by": author, "code": code},
                )
                return code, name
        p.board.post(
            "decomposer", "subgoal", f"{name}: not proved", unit_id=unit.id, data={**post_data, "status": "failed"}
        )
        return None
