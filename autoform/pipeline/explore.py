"""Exploring a sketch's holes before any lemma is stated: what closes a hole by a tactic alone.

With the REPL's tactic mode (``[prove] tactic_mode``; :func:`autoform.lean.goals.tactic_mode` finds it through the
result cache and the job's breaker) the sketch is checked in one session and each hole's proof state is tried with
the closing tactics (``[job] automation``) and then ``exact?`` (``[job] library_search``; its suggestion is kept,
never ``exact?`` itself). Without tactic mode (``lake`` has no goals at all; Kimina and a REPL with tactic mode off
report holes) ``exact?`` goes into every hole in one command-mode probe. Exploring only: a tactic found is spliced
into the sketch (:func:`splice`), and the gate judges the whole text in command mode.
"""

from __future__ import annotations

import contextlib
import re

from autoform.lean import goals, library_search
from autoform.lean.gate import Candidate, Reason, Verdict, admit, build_module, screen_candidate
from autoform.lean.oracle import OracleUnavailable
from autoform.pipeline.automation import AUTOMATION_TACTIC
from autoform.pipeline.context import JobScope

SORRY = re.compile(r"(?<![\w.'])sorry(?![\w'])")

#: what exploring found for the holes of a sketch: hole index -> (the tactic that closes it, how it was found:
#: ``automation`` or ``library_search``); and the holes on which the closing tactics failed
Explored = tuple[dict[int, tuple[str, str]], set[int]]

#: what makes the hole after it a term: `:=`, an opening bracket, a comma, a term-taking tactic, `fun x =>`
_TERM_BEFORE = re.compile(
    r"(?::=|[(⟨,]|(?<![\w.'])(?:exact|refine|apply|use|from|show\s.*\sfrom)|\bfun\b[^=]*=>|λ[^=]*=>)$"
)


def splice(sketch: str, tactics: list[str]) -> str:
    """``sketch`` with its k-th ``sorry`` replaced by the tactic ``tactics[k]``: as ``(by tactic)`` where the hole
    is a term (after ``:=``, a bracket, a comma, ``exact``, ``fun x =>``, also across a line break), in place
    where it is a tactic (after ``by``, a bullet ``·``, ``case … =>``, ``;``, ``<;>``, on a line of its own)."""
    it = iter(tactics)

    def one(m: re.Match[str]) -> str:
        tactic = next(it)
        before = sketch[: m.start()].rstrip()
        return f"(by {tactic})" if _TERM_BEFORE.search(before) else tactic

    return SORRY.sub(one, sketch)


def screened_sketch(cand: Candidate) -> Candidate:
    """The sketch with its holes as ``skip``: what the pre-screen reads (it refuses ``sorry`` itself)."""
    n = len(SORRY.findall(cand.proof))
    it = iter(["skip"] * n)
    return cand.model_copy(update={"proof": SORRY.sub(lambda m: next(it), cand.proof)})


class Explorer:
    """The holes of one sketch, checked and explored (it keeps no state between sketches)."""

    def __init__(self, scope: JobScope) -> None:
        self.scope = scope

    def explore(self, cand: Candidate) -> tuple[list[goals.Hole], str, Verdict | None, Explored]:
        """The sketch ``cand.proof`` checked by Lean with its holes: (their goals, "", None, what closes them), or a
        refusal: the pre-screen's verdict, or Lean's (it does not elaborate, or reports another number of holes).
        What closes a hole without a lemma: in the REPL's tactic mode (``[prove] tactic_mode``)
        the sketch is checked in a session and each hole's proof state is tried with the closing tactics and
        ``exact?``; without it, ``exact?`` on every hole in one command-mode probe. Exploring only: what is found
        is spliced into the sketch, which the gate then judges whole."""
        screened = screened_sketch(cand)
        if screen_candidate(screened):
            return [], "pre-screen", admit(screened, self.scope.oracle), ({}, set())
        module = build_module(cand)
        n_holes = len(SORRY.findall(cand.proof))
        explored: Explored = ({}, set())
        tactics = goals.tactic_mode(self.scope.oracle) if self.scope.settings.prove.tactic_mode else None
        check = None
        if tactics is not None:
            with contextlib.suppress(OracleUnavailable), tactics.session() as session:
                check = session.check(module.text)
                # a command-mode check like any (status counts it), outside the result cache: its proof states
                # live in this session's process only
                self.scope.store.record_lean_check(
                    self.scope.job.id, cached=False, failed=check.failure is not None, elapsed_s=check.elapsed_s
                )
                found = goals.holes(check)
                if check.failure is None and not check.errors and len(found) == n_holes:
                    explored = self._explore_holes(session, found)
        if check is None:
            hint: dict[str, int] = {"context_lines": module.context_lines} if module.context_lines else {}
            check = self.scope.oracle.check(module.text, **hint)
        found = goals.holes(check)
        if check.failure is None and not check.errors and len(found) == n_holes:
            return found, "", None, explored if tactics is not None else self._probe_holes(cand, found)
        why = (
            check.failure
            or "; ".join(m.text for m in check.errors)[:500]
            or f"Lean reported {len(found)} hole(s) for {n_holes} sorry"
        )
        reasons = [Reason(code="sketch", message=why)]
        return (
            [],
            why,
            Verdict(admitted=False, messages=check.messages, reasons=reasons, module=module.text),
            ({}, set()),
        )

    def _explore_holes(self, session: goals.GoalSession, found: list[goals.Hole]) -> Explored:
        """Each hole's proof state tried in tactic mode: the closing tactics (when ``[job] automation`` is on), then
        ``exact?`` (when ``[job] library_search`` is on; its suggestion, never ``exact?`` itself, is kept)."""
        job = self.scope.settings.job
        closed: dict[int, tuple[str, str]] = {}
        failed: set[int] = set()
        for h in found:
            if h.proof_state is None:
                continue
            if job.automation:
                if session.tactic(h.proof_state, AUTOMATION_TACTIC).solved:
                    closed[h.index] = (AUTOMATION_TACTIC, "automation")
                    continue
                failed.add(h.index)
            if job.library_search:
                found_term = library_search.tactic_suggestion(session.tactic(h.proof_state, library_search.PROBE))
                if found_term:
                    closed[h.index] = (found_term, "library_search")
        return closed, failed

    def _probe_holes(self, cand: Candidate, found: list[goals.Hole]) -> Explored:
        """Without tactic mode: ``exact?`` in every hole, one command-mode check; a hole alone on its line whose
        ``exact?`` found a term is closed by the suggestion."""
        if not self.scope.settings.job.library_search or not found:
            return {}, set()
        probe = cand.model_copy(update={"proof": splice(cand.proof, [library_search.PROBE] * len(found))})
        module = build_module(probe)
        hint: dict[str, int] = {"context_lines": module.context_lines} if module.context_lines else {}
        by_line = library_search.suggestions_by_line(self.scope.oracle.check(module.text, **hint))
        lines = [h.line for h in found]
        return {
            h.index: (by_line[h.line], "library_search")
            for h in found
            if h.line in by_line and lines.count(h.line) == 1
        }, set()
