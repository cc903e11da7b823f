"""The per-unit pipeline: reader -> statement drafter -> prover -> gap-closer, every candidate judged by the
admission gate, every step one transaction in the store.

A unit's progress is derived from the store, so a resumed job continues where the unit stopped: the reader's
extraction is kept, a locked statement is kept, attempts already made count against ``max_attempts``, and an
admission (atlas entry + attempt + unit status + post) commits at once, so a unit is admitted at most once.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed

import networkx as nx

from agents import AgentRun, Drafter, FidelityCritic, GapCloser, Prover, Reader
from autoform import graph as graphs
from autoform.blackboard import Blackboard
from autoform.config import Settings
from autoform.decompose import Decomposer
from autoform.ingest.latex import textual_refs
from autoform.lean import library_search
from autoform.lean.gate import (
    Candidate,
    Verdict,
    admit,
    admit_stated,
    build_module,
    check_statement,
    declared_name,
    declared_names,
    rename_declaration,
    screen_candidate,
)
from autoform.lean.oracle import Oracle
from autoform.llm import LLMClient, MalformedReply
from autoform.mathlib.grounding import Grounding
from autoform.mathlib.grounding import render as render_hits
from autoform.mathlib.grounding import substitute as substitute_names
from autoform.store import Book, Job, Store, Unit


def helper_names(aux: str) -> list[str]:
    """The names the helper declarations of a proof declare, in order."""
    return declared_names(aux)


DONE = ("proved", "defined")


class UnitPipeline:
    """Everything a job needs to work on one unit at a time (thread-safe: one instance serves many workers)."""

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
        on_event: Callable[[str, Unit, str], None],
    ) -> None:
        self.settings, self.store, self.book, self.job, self.oracle, self.llm = settings, store, book, job, oracle, llm
        self.max_attempts = max_attempts
        self.namespace, self.graph, self.stop, self.on_event = namespace, graph, stop, on_event
        self.board = Blackboard(store, book.id, job.id)
        self.reader, self.drafter, self.prover, self.gap_closer = Reader(), Drafter(), Prover(), GapCloser()
        self.critic = FidelityCritic()
        self.grounding = Grounding.open(settings.mathlib_index_path) if settings.job.grounding else None

    def _deps_lean(self, unit: Unit) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        """The unit's dependencies (transitively) in Lean: (admitted ones, whose code is the prelude of every
        candidate; stated ones, whose statement Lean elaborated but which have no proof: admitted as *stated*,
        or failed after their statement was locked). A failed dependency does not block its dependents, which
        proceed with its stated form: shown to the agents, never in the prelude (a proof using it would rest
        on `sorry`, which the gate refuses)."""
        if unit.id not in self.graph:
            return [], []
        closure = sorted(nx.descendants(self.graph, unit.id), key=lambda n: self.graph.nodes[n]["seq"])
        admitted, stated = [], []
        for uid in closure:
            e = self.store.atlas_entry(uid)
            if e is not None and e.status in DONE:
                admitted.append({"name": e.decl_name, "statement": e.statement_lean, "code": e.lean_code})
            elif e is not None:
                stated.append(
                    {"name": e.decl_name, "statement": e.statement_lean, "why": "stated in the book without proof"}
                )
            elif (lock := self.board.latest(uid, "lock")) is not None:
                stated.append(
                    {"name": lock.data.get("name", ""), "statement": lock.data["statement"], "why": "not proved yet"}
                )
        return admitted, stated

    def work_unit(self, unit: Unit) -> None:
        self.store.set_unit_status(unit.id, "working")
        self.on_event("start", unit, "")
        deps, stated = self._deps_lean(unit)
        prelude = "\n\n".join(d["code"] for d in deps)
        cutoff = self.settings.attention.unreachable_hops  # farther units count as unreachable anyway
        hops = graphs.hops(self.graph, unit.id, cutoff) if unit.id in self.graph else {}
        run = AgentRun(
            self.settings,
            self.llm,
            self.board,
            unit,
            hops,
            namespace=self.namespace,
            deps_lean=deps,
            deps_stated=stated,
        )

        if self.board.latest(unit.id, "extraction") is None:
            self.reader.run(run)
            self._reader_dependencies(unit)
        lock = self.board.latest(unit.id, "lock")
        kind = "definition" if unit.kind == "definition" else "theorem"
        if kind == "definition":
            self._definition(run, prelude)
            return
        if lock is None:
            self._ground_notions(unit)
            lock_id = self._draft_statement(run, prelude)
            if lock_id is None:
                if self.stop.is_set():  # stopped, not failed: the unit stays pending for the resume
                    return
                self._finish(unit, "failed", "no statement elaborated")
                return
            lock = self.board.latest(unit.id, "lock")
        assert lock is not None
        run.pinned_ids.add(lock.id)
        self._prove(run, prelude, lock.data["statement"], lock.data["elaborated_type"])

    def _retrieved(self, unit: Unit, purpose: str) -> bool:
        return any(p.data.get("purpose") == purpose for p in self.board.read(unit_id=unit.id, kind="retrieval"))

    def _ground_notions(self, unit: Unit) -> None:
        """The Mathlib declarations for the notions of the unit's statement, posted for the drafter."""
        if self.grounding is None or self._retrieved(unit, "notions"):
            return
        extraction = self.board.latest(unit.id, "extraction")
        reader_concepts = [str(c) for c in (extraction.data.get("concepts", []) if extraction else [])]
        hits = self.grounding.notions(unit.statement, reader_concepts)
        if hits:
            self.board.post(
                "mathlib",
                "retrieval",
                render_hits(hits, "Mathlib declarations for the notions of this statement (use these names):"),
                unit_id=unit.id,
                data={"purpose": "notions", "names": [h.name for h in hits]},
            )

    def _ground_lemmas(self, unit: Unit, statement: str) -> None:
        """Mathlib lemmas for the locked statement, posted for the prover and the gap-closer."""
        if self.grounding is None or self._retrieved(unit, "lemmas"):
            return
        hits = self.grounding.lemmas(statement)
        if hits:
            self.board.post(
                "mathlib",
                "retrieval",
                render_hits(hits, "Mathlib lemmas that may help:"),
                unit_id=unit.id,
                data={"purpose": "lemmas", "names": [h.name for h in hits]},
            )

    def _repair_names(self, run: AgentRun, base: Candidate, last: object) -> bool | None:
        """After Lean refused a proof for unknown identifiers: a name Mathlib deprecated is replaced by its
        current one and checked again, with no LLM call (True/False: admitted or not); for other unknown names
        the nearest existing ones are posted for the gap-closer (None: nothing was tried)."""
        if self.grounding is None:
            return None
        replace, nearest = self.grounding.repairs(_errors_text(last))
        if nearest and not self._retrieved(run.unit, f"nearest:{sorted(nearest)}"):
            body = "\n".join(
                f"- `{n}` does not exist; nearest names: {', '.join(f'`{x}`' for x in near)}"
                for n, near in nearest.items()
            )
            self.board.post(
                "mathlib",
                "retrieval",
                "Lean did not know these names:\n" + body,
                unit_id=run.unit.id,
                data={"purpose": f"nearest:{sorted(nearest)}", "nearest": nearest},
            )
        code = getattr(last, "lean_code", "")
        if not replace or not code:
            return None
        return self._try(run, base, substitute_names(code, replace), "", "mathlib_rename")

    def _reader_dependencies(self, unit: Unit) -> None:
        """Dependencies the reader found that the parser missed ("by Lemma 1.3"), stored as graph edges."""
        post = self.board.latest(unit.id, "extraction")
        found = textual_refs(" ".join(post.data.get("dependencies", []))) if post else []
        if not found:
            return
        by_number: dict[str, int] = {}
        for u in self.store.units(self.book.id):
            by_number.setdefault(f"{u.kind}:{u.number}", u.id)
            by_number.setdefault(u.number, u.id)
        with self.store.tx() as c:
            for kind, number in found:
                dep = by_number.get(f"{kind}:{number}") or by_number.get(number)
                if dep is not None and dep != unit.id:
                    c.execute(
                        "INSERT OR IGNORE INTO unit_deps (unit_id, dep_id, via) VALUES (?,?,'reader')", (unit.id, dep)
                    )

    def _attempts(self, unit: Unit, stage: str) -> list:
        return [a for a in self.store.attempts(unit.id, self.job.id) if a.stage == stage]

    def _unique_name(self, text: str, unit: Unit) -> str:
        """Rename the declaration if another unit of the book already owns the name; the name is reserved for
        this unit in the store, in one transaction, so concurrent workers (threads, processes, Ray nodes) never
        draft two units under one name."""
        name = declared_name(text) or ""
        if not name:
            return text
        new = self.store.reserve_name(self.book.id, unit.id, name)
        if new == name:
            return text
        return rename_declaration(text, new)  # the declaration's own name, not the first substring matching it

    def _draft_statement(self, run: AgentRun, prelude: str) -> int | None:
        """Rounds of k drafts: each is checked by Lean with `sorry` as its proof; the elaborating ones are
        critiqued by back-translation; the most faithful is locked (with its elaborated type)."""
        unit, job = run.unit, self.settings.job
        recorded = [
            (a.lean_code, a.elaborated_type)
            for a in self.store.attempts(unit.id)
            if a.stage == "statement" and a.admitted and a.elaborated_type
        ]
        if recorded:  # a job stopped between these drafts' verdicts and the lock: lock one of them now
            return self._lock_best(run, recorded)
        error = ""
        while len(self._attempts(unit, "statement")) < self.max_attempts and not self.stop.is_set():
            run.round = len(self._attempts(unit, "statement"))
            try:
                drafts = self.drafter.propose(run, k=job.drafts, previous_error=error)
            except MalformedReply as e:
                error = str(e)
                self._record(unit, "statement", "drafter", "", Verdict(admitted=False, reasons=[]), note=error)
                continue
            elaborated: list[tuple[str, str]] = []
            errors: list[str] = []
            for text, _ in drafts:
                text = self._unique_name(text, unit)
                cand = Candidate(kind="theorem", namespace=self.namespace, statement=text, prelude=prelude)
                chk = check_statement(cand, self.oracle)
                verdict = Verdict(
                    admitted=chk.elaborates,
                    reasons=chk.reasons,
                    module=chk.module,
                    messages=chk.messages,
                    elaborated_type=chk.elaborated_type,
                    elapsed_s=chk.elapsed_s,
                )
                self._record(unit, "statement", "drafter", text, verdict)
                if chk.elaborates and chk.elaborated_type:
                    elaborated.append((text, chk.elaborated_type))
                else:
                    errors.append(f"`{declared_name(text)}`: {verdict.summary()}")
            if elaborated:
                return self._lock_best(run, elaborated)
            error = "\n".join(errors)
            self.on_event("statement_rejected", unit, error)
        return None

    def _lock_best(self, run: AgentRun, elaborated: list[tuple[str, str]]) -> int:
        best: tuple[tuple[bool, float, int], str, str, str] | None = None
        for k, (text, ty) in enumerate(elaborated):
            fidelity, key = "", (False, 0.0, -k)
            if self.settings.job.critique:
                try:
                    crit, _ = self.critic.run(run, lean=text)
                    fidelity, key = crit.fidelity, (crit.faithful, crit.score, -k)
                except MalformedReply as e:  # a critique steers; without one the draft order decides
                    run.board.post(
                        "critic",
                        "critique",
                        f"no usable critique of `{declared_name(text)}`: {e}",
                        unit_id=run.unit.id,
                        round=run.round,
                    )
            if best is None or key > best[0]:
                best = (key, text, ty, fidelity)
        assert best is not None
        _, text, ty, fidelity = best
        name = declared_name(text)
        with self.store.tx() as c:  # the lock, and the names of the drafts not locked are free again
            c.execute(
                "DELETE FROM decl_names WHERE book_id = ? AND unit_id = ? AND name != ?",
                (self.book.id, run.unit.id, name),
            )
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

    def _definition(self, run: AgentRun, prelude: str) -> None:
        unit = run.unit
        error = ""
        while len(self._attempts(unit, "definition")) < self.max_attempts and not self.stop.is_set():
            run.round = len(self._attempts(unit, "definition"))
            try:
                text, _ = self.drafter.run(run, previous_error=error)
            except MalformedReply as e:
                error = str(e)
                self._record(unit, "definition", "drafter", "", Verdict(admitted=False), note=error)
                continue
            text = self._unique_name(text, unit)
            cand = Candidate(kind="definition", namespace=self.namespace, statement=text, prelude=prelude)
            verdict = admit(cand, self.oracle)
            if self._conclude(run, cand, verdict, "definition", "drafter", text):
                return
            error = verdict.summary()
        if not self.stop.is_set():
            self._finish(unit, "failed", error)

    def _prove(self, run: AgentRun, prelude: str, statement: str, locked_type: str) -> None:
        """The prover (k racing attempts where configured), then automation on what is left, then the
        gap-closer with Lean's errors, until admitted or ``max_attempts`` proof attempts are spent."""
        unit, job = run.unit, self.settings.job
        base = Candidate(
            kind="theorem", namespace=self.namespace, statement=statement, prelude=prelude, locked_type=locked_type
        )
        self._ground_lemmas(unit, statement)
        while not self.stop.is_set():
            previous = self._attempts(unit, "proof")
            if len(previous) >= self.max_attempts:
                if (
                    job.decompose
                    and self.oracle.backend != "lake"
                    and not any(a.author in ("sketch", "decomposition") for a in previous)
                ):
                    if Decomposer(self).run(run, base):
                        return
                    continue
                if not unit.proof.strip() and self._admit_stated(run, prelude, statement, locked_type):
                    return
                self._finish(
                    unit,
                    "failed",
                    previous[-1].reasons[0]["message"] if previous and previous[-1].reasons else "attempts exhausted",
                )
                return
            run.round = len(previous)
            if not previous and job.library_search and self._library_search(run, base):
                return
            if not previous:
                k = min(job.race, self.max_attempts)
                if self._race(run, base, k):
                    return
                continue
            last = previous[-1]
            if last.author != "mathlib_rename":
                repaired = self._repair_names(run, base, last)
                if repaired:
                    return
                if repaired is False:
                    continue
            if job.automation and last.lean_code and not any(a.author == "automation" for a in previous):
                if self._try(run, base, automation_proof(last), "", "automation"):
                    return
                continue
            try:
                aux, proof, _ = self.gap_closer.run(
                    run, locked=statement, failed_proof=last.lean_code, errors=_errors_text(last)
                )
            except MalformedReply as e:
                self._record(unit, "proof", "gap_closer", "", Verdict(admitted=False), note=str(e))
                continue
            if self._try(run, base, proof, aux, "gap_closer"):
                return

    def _library_search(self, run: AgentRun, base: Candidate) -> bool:
        """Lean's ``exact?`` on the locked statement, before any LLM call: its suggestion (never ``exact?``
        itself) goes through the gate as the proof; a statement closed by one Mathlib lemma is noted as being
        in Mathlib under that name."""
        probe = base.model_copy(update={"proof": library_search.PROBE})
        if screen_candidate(probe):
            return False
        module = build_module(probe)
        hint = {"context_lines": module.context_lines} if module.context_lines else {}
        tactic = library_search.suggestion(self.oracle.check(module.text, **hint))
        if tactic is None:
            return False
        name = library_search.mathlib_name(tactic)
        cand = base.model_copy(update={"proof": tactic})
        note = f"in Mathlib as `{name}`" if name else ""
        return self._conclude(run, cand, admit(cand, self.oracle), "proof", "library_search", tactic, note=note)

    def _reserve_helpers(self, unit: Unit, aux: str, proof: str) -> tuple[str, str]:
        """The helper declarations of a proof (``aux``) get names reserved for the unit, as its main declaration
        does: a name another unit of the book holds (two units' ``key_lemma``) becomes ``key_lemma_2`` in the
        helpers and the proof, so the chapter modules of the Atlas never declare one name twice."""
        for name in helper_names(aux):
            new = self.store.reserve_name(self.book.id, unit.id, name)
            if new != name:
                pat = re.compile(rf"(?<![\w.'`]){re.escape(name)}(?![\w'!?])")
                aux, proof = pat.sub(new, aux), pat.sub(new, proof)
        return aux, proof

    def _try(self, run: AgentRun, base: Candidate, proof: str, aux: str, author: str) -> bool:
        aux, proof = self._reserve_helpers(run.unit, aux, proof)
        cand = base.model_copy(update={"proof": proof, "aux": aux})
        return self._conclude(run, cand, admit(cand, self.oracle), "proof", author, proof)

    def _race(self, run: AgentRun, base: Candidate, k: int) -> bool:
        """k prover attempts at once; the first one Lean admits wins and the others are cancelled (those not yet
        at the gate are dropped; a finished loser is recorded as the rejected attempt it was)."""
        won = threading.Event()

        def attempt(i: int) -> bool:
            if won.is_set() or self.stop.is_set():
                return False
            r = dataclasses.replace(run, pinned_ids=set(run.pinned_ids))
            try:
                aux, proof, _ = self.prover.run(r, locked=base.statement, variant=i, race=k)
            except MalformedReply as e:
                if not won.is_set():
                    self._record(run.unit, "proof", "prover", "", Verdict(admitted=False), note=str(e))
                return False
            if won.is_set():
                return False  # cancelled: another attempt was admitted while this one was thinking
            if self._try(r, base, proof, aux, "prover"):
                won.set()
                return True
            return False

        if k == 1:
            return attempt(0)
        with ThreadPoolExecutor(max_workers=k, thread_name_prefix=f"race-{run.unit.id}") as pool:
            futures = [pool.submit(attempt, i) for i in range(k)]
            for f in as_completed(futures):
                if f.result():
                    for other in futures:
                        other.cancel()
        return won.is_set()

    def _admit_stated(self, run: AgentRun, prelude: str, statement: str, locked_type: str) -> bool:
        """A statement the book does not prove, not proved by the agents either: admitted as *stated* (the
        AtlasStated library) when Lean confirms its locked statement."""
        cand = Candidate(
            kind="theorem", namespace=self.namespace, statement=statement, prelude=prelude, locked_type=locked_type
        )
        verdict = admit_stated(cand, self.oracle)
        if not verdict.admitted:
            return False
        with self.store.tx() as c:
            c.execute(
                "INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code,"
                " job_id, model, attempts, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    run.unit.id,
                    self.book.id,
                    cand.name,
                    "stated",
                    statement.strip(),
                    f"{statement.rstrip()} := by\n  sorry",
                    self.job.id,
                    self.settings.llm.model_for("drafter"),
                    len(self.store.attempts(run.unit.id, self.job.id)),
                    time.time(),
                ),
            )
            c.execute("UPDATE units SET status = 'stated' WHERE id = ?", (run.unit.id,))
            self.board.post(
                "gate",
                "admission",
                f"{cand.full_name} admitted as stated (no proof in the book)",
                unit_id=run.unit.id,
                data={"decl": cand.full_name, "stated": True},
            )
        self.on_event("stated", run.unit, cand.full_name)
        return True

    # -- recording -----------------------------------------------------------------------------------
    def _record(self, unit: Unit, stage: str, author: str, code: str, verdict: Verdict, note: str = "") -> int:
        reasons = [r.model_dump() for r in verdict.reasons]
        if note:
            reasons.append({"code": "malformed_reply", "message": note, "line": None})
        with self.store.tx() as c:
            n = c.execute(
                "SELECT COUNT(*) FROM attempts WHERE unit_id = ? AND job_id = ? AND stage = ?",
                (unit.id, self.job.id, stage),
            ).fetchone()[0]
            aid = c.execute(
                "INSERT INTO attempts (job_id, unit_id, n, author, stage, lean_code, admitted, reasons, messages,"
                " axioms, toolchain, elapsed_s, created_at, elaborated_type) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    self.job.id,
                    unit.id,
                    n + 1,
                    author,
                    stage,
                    code,
                    int(verdict.admitted),
                    json.dumps(reasons),
                    json.dumps([m.model_dump() for m in verdict.messages]),
                    json.dumps(verdict.axioms) if verdict.axioms is not None else None,
                    verdict.toolchain,
                    verdict.elapsed_s,
                    time.time(),
                    verdict.elaborated_type or "",
                ),
            ).lastrowid
            self.board.post(
                "gate",
                "verdict",
                _verdict_body(verdict, note),
                unit_id=unit.id,
                round=n,
                data={
                    "attempt": aid,
                    "admitted": verdict.admitted,
                    "stage": stage,
                    **({"module": verdict.module} if verdict.module and not verdict.admitted else {}),
                },
            )
        return int(aid or 0)

    def _conclude(
        self, run: AgentRun, cand: Candidate, verdict: Verdict, stage: str, author: str, code: str, note: str = ""
    ) -> bool:
        unit = run.unit
        if not verdict.admitted:
            self._record(unit, stage, author, code, verdict)
            self.on_event("rejected", unit, verdict.summary())
            return False
        lean_code = (cand.aux.strip() + "\n\n" if cand.aux.strip() else "") + (
            cand.statement.strip()
            if cand.kind == "definition"
            else f"{cand.statement.rstrip()} := by\n"
            + "\n".join("  " + ln if ln.strip() else ln for ln in _proof_lines(cand))
        )
        status = "defined" if cand.kind == "definition" else "proved"
        with self.store.tx() as c:  # one writer at a time: the check below and the insert are atomic
            if c.execute("SELECT 1 FROM atlas_entries WHERE unit_id = ?", (unit.id,)).fetchone():
                return True  # a racing attempt was admitted first: this one is not needed
            aid = self._record(unit, stage, author, code, verdict)
            n_attempts = c.execute(
                "SELECT COUNT(*) FROM attempts WHERE unit_id = ? AND job_id = ?", (unit.id, self.job.id)
            ).fetchone()[0]
            c.execute(
                "INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code,"
                " attempt_id, job_id, model, attempts, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    unit.id,
                    self.book.id,
                    cand.name,
                    status,
                    cand.statement.strip(),
                    lean_code,
                    aid,
                    self.job.id,
                    "lean exact?"
                    if author == "library_search"
                    else self.settings.llm.model_for("prover" if stage == "proof" else "drafter"),
                    n_attempts,
                    time.time(),
                ),
            )
            c.execute("UPDATE units SET status = ? WHERE id = ?", (status, unit.id))
            keep = [cand.name, *helper_names(cand.aux)]  # names of drafts and helpers not admitted are free again
            c.execute(
                f"DELETE FROM decl_names WHERE book_id = ? AND unit_id = ? AND name NOT IN "
                f"({','.join('?' * len(keep))})",
                (self.book.id, unit.id, *keep),
            )
            self.board.post(
                "gate",
                "admission",
                f"{cand.full_name} admitted ({status})" + (f", {note}" if note else ""),
                unit_id=unit.id,
                data={"decl": cand.full_name, "attempt": aid, **({"note": note} if note else {})},
            )
        self.on_event(status, unit, cand.full_name)
        return True

    def _finish(self, unit: Unit, status: str, detail: str) -> None:
        self.store.set_unit_status(unit.id, status)
        self.on_event(status, unit, detail)


#: closing tactics tried on what a failed proof left open, before the gap-closer is asked (no LLM call)
AUTOMATION = ("omega", "simp", "linarith", "nlinarith", "norm_num", "positivity", "aesop", "decide")
AUTOMATION_TACTIC = "first " + " ".join(f"| ({t}; done)" for t in AUTOMATION)


def automation_proof(last: object) -> str:
    """The failed proof with automation on the goals it left unsolved; or, when it failed otherwise,
    automation alone on the whole statement."""
    messages = getattr(last, "messages", [])
    proof = getattr(last, "lean_code", "")
    if any("unsolved goals" in m.get("text", "") for m in messages):
        return f"{proof.rstrip()}\nall_goals {AUTOMATION_TACTIC}"
    return AUTOMATION_TACTIC


def _proof_lines(c: Candidate) -> list[str]:
    from autoform.lean.gate import normalize_proof

    return normalize_proof(c.proof).splitlines()


def _errors_text(attempt: object) -> str:
    reasons = getattr(attempt, "reasons", [])
    messages = getattr(attempt, "messages", [])
    lines = [f"- {r['message']}" for r in reasons]
    lines += [
        f"- {m['severity']} at line {m['line']}: {m['text']}" for m in messages if m["severity"] in ("error", "warning")
    ]
    return "\n".join(dict.fromkeys(lines)) or "(no message)"


def _verdict_body(v: Verdict, note: str) -> str:
    if v.admitted:
        return "Lean accepted the candidate."
    lines = [f"Rejected: {v.summary()}"] if v.reasons else []
    if note:
        lines.append(f"Malformed reply: {note}")
    for m in v.messages:
        if m.severity == "error":
            lines.append(f"error (line {m.line}): {m.text}")
    return "\n".join(lines) or "Rejected."
