"""The statement stage: the reader's extraction (and the dependencies it found), then k drafts a round, each
checked by Lean with ``sorry`` as its proof, the elaborating ones critiqued by back-translation and the most
faithful locked with its elaborated type; a definition is drafted and admitted whole.

A resumed job keeps what the store holds: the extraction, a lock, and drafts already judged (a job stopped
between their verdicts and the lock locks one of them without asking again).

A person's statement (``autoform state``, :mod:`autoform.people`) is a lock post by the author ``person``, checked
by Lean as a draft is: the stage uses it instead of drafting (a definition's is admitted as the first draft)."""

from __future__ import annotations

from agents import AgentRun, Drafter, FidelityCritic, Reader
from autoform.ingest.model import textual_refs
from autoform.lean.gate import Candidate, Verdict, admit, check_statement, declared_name
from autoform.llm import MalformedReply
from autoform.pipeline.context import JobScope, UnitContext
from autoform.pipeline.gatekeeper import Gatekeeper
from autoform.pipeline.retrieval import Retrieval
from autoform.store import Post, Unit, UnitStatus

#: an elaborated draft: (its Lean text, the type Lean elaborated it to)
Draft = tuple[str, str]

#: the author of what a person wrote on the board (hints, statements, reviews)
PERSON = "person"


def person_lock(statement: str, elaborated_type: str, *, kind: str) -> dict[str, str | bool]:
    """The data of the lock post of a statement a person supplied: marked "stated by a person"."""
    return {
        "statement": statement,
        "name": declared_name(statement) or "",
        "elaborated_type": elaborated_type,
        "fidelity": "stated by a person",
        "stated_by": PERSON,
        "definition": kind == "definition",
    }


def stated_by_person(lock: Post | None) -> bool:
    """Whether a lock post holds a statement a person supplied."""
    return lock is not None and lock.data.get("stated_by") == PERSON


class StatementStage:
    def __init__(self, scope: JobScope, gate: Gatekeeper, retrieval: Retrieval) -> None:
        self.scope, self.gate, self.retrieval = scope, gate, retrieval
        self.board = scope.board
        self.reader, self.drafter, self.critic = Reader(), Drafter(), FidelityCritic()

    # -- the reader ---------------------------------------------------------------------------------
    def read(self, run: AgentRun) -> None:
        """The reader's extraction of the unit, once (a resumed unit keeps it)."""
        if self.board.latest(run.unit.id, "extraction") is None:
            self.reader.run(run)
            self._reader_dependencies(run.unit)

    def _reader_dependencies(self, unit: Unit) -> None:
        """Dependencies the reader found that the parser missed ("by Lemma 1.3"), stored as graph edges."""
        post = self.board.latest(unit.id, "extraction")
        found = textual_refs(" ".join(post.data.get("dependencies", []))) if post else []
        if not found:
            return
        by_number: dict[str, int] = {}
        for u in self.scope.store.units(self.scope.book.id):
            by_number.setdefault(f"{u.kind}:{u.number}", u.id)
            by_number.setdefault(u.number, u.id)
        deps = [by_number.get(f"{kind}:{number}") or by_number.get(number) for kind, number in found]
        self.scope.store.add_reader_deps(unit.id, [d for d in deps if d is not None and d != unit.id])

    # -- a theorem's statement ---------------------------------------------------------------------------
    def lock(self, ctx: UnitContext) -> Post | None:
        """The unit's locked statement: the one already locked, or drafted and locked now; None when no draft
        elaborated (the unit failed) or the job is stopping (the unit stays pending for the resume)."""
        unit = ctx.unit
        lock = self.board.latest(unit.id, "lock")
        if lock is not None:
            return lock
        self.retrieval.notions(ctx.run)
        if self._draft(ctx) is None:
            if not self.scope.stop.is_set():
                self.gate.finish(unit, UnitStatus.FAILED, "no statement elaborated")
            return None
        return self.board.latest(unit.id, "lock")

    def _draft(self, ctx: UnitContext) -> int | None:
        """Rounds of k drafts until one elaborates (then the lock post's id) or the attempts are spent."""
        run, unit = ctx.run, ctx.unit
        recorded = [
            (a.lean_code, a.elaborated_type)
            for a in self.scope.store.attempts(unit.id)
            if a.stage == "statement" and a.admitted and a.elaborated_type
        ]
        if recorded:  # a job stopped between these drafts' verdicts and the lock: lock one of them now
            return self._lock_best(run, recorded)
        error = ""
        while len(self.gate.attempts(unit, "statement")) < self.scope.max_attempts and not self.scope.stop.is_set():
            run.round = len(self.gate.attempts(unit, "statement"))
            try:
                drafts = self.drafter.propose(run, k=self.scope.settings.job.drafts, previous_error=error)
            except MalformedReply as e:
                error = str(e)
                self.gate.record(unit, "statement", "drafter", "", Verdict(admitted=False, reasons=[]), note=error)
                continue
            elaborated, errors = self._check_drafts(ctx, [text for text, _ in drafts])
            if elaborated:
                return self._lock_best(run, elaborated)
            error = "\n".join(errors)
            self.scope.on_event("statement_rejected", unit, error)
        return None

    def _check_drafts(self, ctx: UnitContext, texts: list[str]) -> tuple[list[Draft], list[str]]:
        """Each draft (its name made unique) checked by Lean with ``sorry`` as its proof and recorded:
        (the elaborated ones, the errors of the others)."""
        elaborated: list[Draft] = []
        errors: list[str] = []
        for text in texts:
            text = self.gate.unique_name(text, ctx.unit)
            cand = Candidate(kind="theorem", namespace=self.scope.namespace, statement=text, prelude=ctx.prelude)
            chk = check_statement(cand, self.scope.oracle)
            verdict = Verdict(
                admitted=chk.elaborates,
                reasons=chk.reasons,
                module=chk.module,
                messages=chk.messages,
                elaborated_type=chk.elaborated_type,
                elapsed_s=chk.elapsed_s,
            )
            self.gate.record(ctx.unit, "statement", "drafter", text, verdict)
            if chk.elaborates and chk.elaborated_type:
                elaborated.append((text, chk.elaborated_type))
            else:
                errors.append(f"`{declared_name(text)}`: {verdict.summary()}")
        return elaborated, errors

    def _fidelity(self, run: AgentRun, text: str, k: int) -> tuple[tuple[bool, float, int], str]:
        """(the draft's rank: faithful first, then score, then draft order; its fidelity as shown): a critique
        steers; without one (switched off, or unusable) the draft order decides."""
        if not self.scope.settings.job.critique:
            return (False, 0.0, -k), ""
        try:
            crit, _ = self.critic.run(run, lean=text)
        except MalformedReply as e:
            run.board.post(
                "critic",
                "critique",
                f"no usable critique of `{declared_name(text)}`: {e}",
                unit_id=run.unit.id,
                round=run.round,
            )
            return (False, 0.0, -k), ""
        return (crit.faithful, crit.score, -k), crit.fidelity

    def _lock_best(self, run: AgentRun, elaborated: list[Draft]) -> int:
        """Lock the most faithful of the elaborated drafts; the names of the others are free again."""
        best: tuple[tuple[bool, float, int], str, str, str] | None = None
        for k, (text, ty) in enumerate(elaborated):
            key, fidelity = self._fidelity(run, text, k)
            if best is None or key > best[0]:
                best = (key, text, ty, fidelity)
        assert best is not None
        _, text, ty, fidelity = best
        name = declared_name(text)
        with self.scope.store.tx():  # the lock, and the names of the drafts not locked are free again
            if (person := self.board.latest(run.unit.id, "lock")) is not None:
                return person.id  # a person stated the unit meanwhile: theirs is the lock
            if name is not None:
                self.gate.release_names(run.unit, [name])
            return run.board.post(
                "drafter",
                "lock",
                text,
                unit_id=run.unit.id,
                round=run.round,
                data={
                    "statement": text,
                    "name": name,
                    "elaborated_type": ty,
                    "fidelity": fidelity,
                    "drafts": len(elaborated),
                },
            )

    # -- a definition -------------------------------------------------------------------------------------
    def define(self, ctx: UnitContext) -> None:
        """Draft the definition and admit it whole, until admitted or ``max_attempts`` drafts are spent."""
        run, unit = ctx.run, ctx.unit
        if self._person_definition(ctx):
            return
        self.retrieval.notions(run)
        error = ""
        while len(self.gate.attempts(unit, "definition")) < self.scope.max_attempts and not self.scope.stop.is_set():
            run.round = len(self.gate.attempts(unit, "definition"))
            try:
                text, _ = self.drafter.run(run, previous_error=error)
            except MalformedReply as e:
                error = str(e)
                self.gate.record(unit, "definition", "drafter", "", Verdict(admitted=False), note=error)
                continue
            text = self.gate.unique_name(text, unit)
            cand = Candidate(kind="definition", namespace=self.scope.namespace, statement=text, prelude=ctx.prelude)
            verdict = admit(cand, self.scope.oracle)
            if self.gate.conclude(run, cand, verdict, "definition", "drafter", text):
                return
            error = verdict.summary()
        if not self.scope.stop.is_set():
            self.gate.finish(unit, UnitStatus.FAILED, error)

    def _person_definition(self, ctx: UnitContext) -> bool:
        """A definition a person stated, admitted through the gate as the unit's first draft (once a job)."""
        lock = self.board.latest(ctx.unit.id, "lock")
        if not stated_by_person(lock) or any(a.author == PERSON for a in self.gate.attempts(ctx.unit, "definition")):
            return False
        assert lock is not None
        text = lock.data["statement"]
        cand = Candidate(kind="definition", namespace=self.scope.namespace, statement=text, prelude=ctx.prelude)
        return self.gate.conclude(ctx.run, cand, admit(cand, self.scope.oracle), "definition", PERSON, text)
