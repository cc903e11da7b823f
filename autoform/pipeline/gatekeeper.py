"""Every candidate's verdict into the store: attempts recorded, admissions (Atlas entry, attempt, unit status
and post in one transaction, so a unit is admitted at most once), declaration names reserved for a unit and
freed again, and the unit's final status. The stages judge through :class:`Gatekeeper`; it writes only through
the store's named operations."""

from __future__ import annotations

import re

from agents import AgentRun
from autoform.lean.gate import (
    Candidate,
    Verdict,
    admit,
    admit_stated,
    declared_name,
    declared_names,
    normalize_proof,
    rename_declaration,
)
from autoform.pipeline.context import JobScope
from autoform.store import Attempt, Store, Unit, UnitStatus

#: the model recorded for an admission found by Lean's ``exact?`` (no LLM call)
LIBRARY_SEARCH_MODEL = "lean exact?"


def helper_names(aux: str) -> list[str]:
    """The names the helper declarations of a proof declare, in order."""
    return declared_names(aux)


def theorem_code(statement: str, proof: str) -> str:
    """``statement := by`` and the tactic proof, indented under it."""
    lines = normalize_proof(proof).splitlines()
    return f"{statement} := by\n" + "\n".join("  " + ln if ln.strip() else ln for ln in lines)


def admitted_code(c: Candidate) -> str:
    """The code an admitted candidate enters the Atlas with: its helpers, then the declaration."""
    body = c.statement.strip() if c.kind == "definition" else theorem_code(c.statement.rstrip(), c.proof)
    return (c.aux.strip() + "\n\n" if c.aux.strip() else "") + body


def unique_name(store: Store, book_id: int, unit_id: int, text: str) -> str:
    """``text`` with its declaration renamed if another unit of the book already owns the name; the name is
    reserved for this unit in the store, in one transaction, so concurrent workers (threads, processes, Ray
    nodes) never draft two units under one name."""
    name = declared_name(text) or ""
    if not name:
        return text
    new = store.reserve_name(book_id, unit_id, name)
    if new == name:
        return text
    return rename_declaration(text, new)  # the declaration's own name, not the first substring matching it


def reserve_helpers(store: Store, book_id: int, unit_id: int, aux: str, proof: str) -> tuple[str, str]:
    """The helper declarations of a proof (``aux``) get names reserved for the unit, as its main declaration
    does: a name another unit of the book holds (two units' ``key_lemma``) becomes ``key_lemma_2`` in the
    helpers and the proof, so the chapter modules of the Atlas never declare one name twice."""
    for name in helper_names(aux):
        new = store.reserve_name(book_id, unit_id, name)
        if new != name:
            pat = re.compile(rf"(?<![\w.'`]){re.escape(name)}(?![\w'!?])")
            aux, proof = pat.sub(new, aux), pat.sub(new, proof)
    return aux, proof


def errors_text(attempt: Attempt) -> str:
    """A failed attempt's reasons and Lean's errors and warnings, one line each, for the agents."""
    lines = [f"- {r['message']}" for r in attempt.reasons]
    lines += [
        f"- {m['severity']} at line {m['line']}: {m['text']}"
        for m in attempt.messages
        if m["severity"] in ("error", "warning")
    ]
    return "\n".join(dict.fromkeys(lines)) or "(no message)"


def verdict_body(v: Verdict, note: str) -> str:
    """The text of the gate's verdict post."""
    if v.admitted:
        return "Lean accepted the candidate."
    lines = [f"Rejected: {v.summary()}"] if v.reasons else []
    if note:
        lines.append(f"Malformed reply: {note}")
    lines += [f"error (line {m.line}): {m.text}" for m in v.messages if m.severity == "error"]
    return "\n".join(lines) or "Rejected."


class Gatekeeper:
    """Judges candidates through the gate and writes what came of them (thread-safe: it holds no state of
    its own beyond the job's scope)."""

    def __init__(self, scope: JobScope) -> None:
        self.scope = scope
        self.store, self.board = scope.store, scope.board

    def attempts(self, unit: Unit, stage: str) -> list[Attempt]:
        """The unit's attempts at ``stage`` in this job, oldest first."""
        return [a for a in self.store.attempts(unit.id, self.scope.job.id) if a.stage == stage]

    def unique_name(self, text: str, unit: Unit) -> str:
        return unique_name(self.store, self.scope.book.id, unit.id, text)

    def reserve_helpers(self, unit: Unit, aux: str, proof: str) -> tuple[str, str]:
        return reserve_helpers(self.store, self.scope.book.id, unit.id, aux, proof)

    def release_names(self, unit: Unit, keep: list[str]) -> None:
        """The names the unit reserved for drafts and helpers that were not kept are free again."""
        self.store.release_names(self.scope.book.id, unit.id, keep)

    def record(self, unit: Unit, stage: str, author: str, code: str, verdict: Verdict, note: str = "") -> int:
        """One attempt and the gate's verdict post, in one transaction; ``note``: why the reply was unusable
        (a malformed reply is recorded as a rejected attempt with no code)."""
        reasons = [r.model_dump() for r in verdict.reasons]
        if note:
            reasons.append({"code": "malformed_reply", "message": note, "line": None})
        with self.store.tx():
            aid, before = self.store.record_attempt(
                job_id=self.scope.job.id,
                unit_id=unit.id,
                stage=stage,
                author=author,
                lean_code=code,
                admitted=verdict.admitted,
                reasons=reasons,
                messages=[m.model_dump() for m in verdict.messages],
                axioms=verdict.axioms,
                toolchain=verdict.toolchain,
                elapsed_s=verdict.elapsed_s,
                elaborated_type=verdict.elaborated_type or "",
            )
            data = {"attempt": aid, "admitted": verdict.admitted, "stage": stage}
            if verdict.module and not verdict.admitted:
                data["module"] = verdict.module
            self.board.post("gate", "verdict", verdict_body(verdict, note), unit_id=unit.id, round=before, data=data)
        return aid

    def judge_proof(self, run: AgentRun, base: Candidate, proof: str, aux: str, author: str) -> bool:
        """A proof (and its helpers, their names reserved for the unit) through the gate; True when admitted."""
        aux, proof = self.reserve_helpers(run.unit, aux, proof)
        cand = base.model_copy(update={"proof": proof, "aux": aux})
        return self.conclude(run, cand, admit(cand, self.scope.oracle), "proof", author, proof)

    def conclude(
        self, run: AgentRun, cand: Candidate, verdict: Verdict, stage: str, author: str, code: str, note: str = ""
    ) -> bool:
        """Record the verdict; an admitted candidate enters the Atlas (True, also when a racing attempt of the
        unit was admitted first: then this one is not needed and not recorded)."""
        unit = run.unit
        if not verdict.admitted:
            self.record(unit, stage, author, code, verdict)
            self.scope.on_event("rejected", unit, verdict.summary())
            return False
        status = UnitStatus.DEFINED if cand.kind == "definition" else UnitStatus.PROVED
        with self.store.tx():  # one writer at a time: the check below and the admission are atomic
            if self.store.atlas_entry(unit.id) is not None:
                return True  # a racing attempt was admitted first: this one is not needed
            aid = self.record(unit, stage, author, code, verdict)
            self.store.admit(
                unit_id=unit.id,
                book_id=self.scope.book.id,
                job_id=self.scope.job.id,
                status=status,
                decl_name=cand.name,
                statement_lean=cand.statement.strip(),
                lean_code=admitted_code(cand),
                model=self._model(stage, author),
                attempt_id=aid,
            )
            self.release_names(unit, [cand.name, *helper_names(cand.aux)])  # drafts' and helpers' not admitted
            self.board.post(
                "gate",
                "admission",
                f"{cand.full_name} admitted ({status})" + (f", {note}" if note else ""),
                unit_id=unit.id,
                data={"decl": cand.full_name, "attempt": aid, **({"note": note} if note else {})},
            )
        self.scope.on_event(status, unit, cand.full_name)
        return True

    def _model(self, stage: str, author: str) -> str:
        if author in ("library_search", "goal_search"):  # found by Lean's exact?, no LLM call
            return LIBRARY_SEARCH_MODEL
        return self.scope.settings.llm.model_for("prover" if stage == "proof" else "drafter")

    def admit_stated(self, run: AgentRun, base: Candidate) -> bool:
        """A statement the book does not prove, not proved by the agents either: admitted as *stated* (the
        AtlasStated library) when Lean confirms its locked statement."""
        cand = base
        if not admit_stated(cand, self.scope.oracle).admitted:
            return False
        with self.store.tx():
            self.store.admit(
                unit_id=run.unit.id,
                book_id=self.scope.book.id,
                job_id=self.scope.job.id,
                status=UnitStatus.STATED,
                decl_name=cand.name,
                statement_lean=cand.statement.strip(),
                lean_code=f"{cand.statement.rstrip()} := by\n  sorry",
                model=self.scope.settings.llm.model_for("drafter"),
                attempts=len(self.store.attempts(run.unit.id, self.scope.job.id)),
            )
            self.board.post(
                "gate",
                "admission",
                f"{cand.full_name} admitted as stated (no proof in the book)",
                unit_id=run.unit.id,
                data={"decl": cand.full_name, "stated": True},
            )
        self.scope.on_event(UnitStatus.STATED, run.unit, cand.full_name)
        return True

    def finish(self, unit: Unit, status: UnitStatus, detail: str) -> None:
        """The unit ends with ``status`` (failed, not admitted) and the job is told why."""
        self.store.set_unit_status(unit.id, status)
        self.scope.on_event(status, unit, detail)
