"""People in the loop: what a person does to a book's units, each one store transaction, safe while a job runs
on the same book.

* :func:`add_hint`: a pinned ``hint`` post on a unit, by the author ``person`` (its agents' next prompt has it);
* :func:`state_unit`: a person's Lean statement (or definition) of a unit, through the gate a draft passes, locked
  and marked "stated by a person" (the job uses it instead of drafting);
* :func:`review_queue`, :func:`approve`, :func:`reject`: the review of fidelity. A rejected entry leaves the
  Atlas (kept in ``atlas_history``), its reason becomes a pinned hint, the unit goes back to drafting, and the
  units whose Atlas code used it leave the Atlas too and are re-checked (their proofs go through the gate again);
* :func:`retry`: failed (or skipped) units re-opened with fresh attempts, their history kept, and with the
  proof budget a person gives (its proof searches keep to it until a later retry, whatever ``[prove] strategy``
  says).

Every re-opening is recorded (``reopenings``: a retry, a rejection, a new statement, a unit re-checked). A
command never touches a unit a live job has in work (status ``working``), nor, when it withdraws an Atlas entry,
a unit in work that depends on it: it says so and changes nothing. A running job picks the rest up at the unit's
next step: a hint at its next prompt, a statement when it reaches the unit, and a unit re-opened during the run
is taken up again by that job (:mod:`autoform.jobs.runner`), its spend counted from the re-opening on."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import networkx as nx

from autoform import graph as graphs
from autoform.atlas import book_namespace, write_atlas
from autoform.config import Settings
from autoform.errors import AutoformError, UsageError
from autoform.jobs.lifecycle import job_process_alive
from autoform.lean.gate import Candidate, admit, check_statement, declared_name
from autoform.lean.oracle import Oracle
from autoform.lean.prescreen import prescreen
from autoform.pipeline.statement import PERSON, person_lock
from autoform.store import ADMITTED, AtlasEntry, Book, Job, JobStatus, Store, Unit, UnitStatus
from autoform.store.review import APPROVED, REJECTED
from autoform.transcript import find_unit, unit_transcript

#: every stage of a unit's attempts
STAGES = ("statement", "proof", "definition")


class InWork(AutoformError):
    """A live job has the unit (or a unit resting on it) in work: nothing was changed."""


@dataclass
class Change:
    """What a command did: the units it changed, and how (for the terminal and ``--json``)."""

    action: str
    book: str
    units: list[dict[str, str | int]] = field(default_factory=list)
    rechecked: list[dict[str, str | int]] = field(default_factory=list)
    message: str = ""

    def add(self, unit: Unit, into: list[dict[str, str | int]] | None = None, **extra: str | int) -> None:
        (self.units if into is None else into).append(
            {"id": unit.id, "unit": unit.display, "label": unit.label, **extra}
        )


def resolve_unit(store: Store, book: Book, ref: str) -> Unit:
    """The unit ``ref`` names (an id, a label or a number; :func:`autoform.transcript.find_unit`)."""
    unit = find_unit(store, book, ref)
    if unit is None:
        raise UsageError(
            f"no unit {ref!r} in {book.slug} (give its id, label or number; `autoform units {book.slug}` lists them)"
        )
    return unit


def live_job(store: Store, book: Book) -> Job | None:
    """The book's job that a live process runs now, if any."""
    job = store.unfinished_job(book.id)
    if job is not None and job.status == JobStatus.RUNNING and job_process_alive(job.pid):
        return job
    return None


def guard(store: Store, book: Book, unit_ids: set[int], why: str) -> None:
    """Refuse (:class:`InWork`) when a live job has one of the units in work; call it inside the transaction
    that makes the change, so no job takes a unit between the check and the change."""
    job = live_job(store, book)
    busy = store.units_in_work(unit_ids) if job is not None else []
    if job is not None and busy:
        names = ", ".join(store.unit(uid).display for uid in sorted(busy))
        raise InWork(
            f"{names} of {book.slug}: in work by job {job.id} (pid {job.pid}) right now, and {why}; nothing was "
            "changed. Try again when the job has moved on (`autoform status`), or stop it first"
        )


# -- hints -------------------------------------------------------------------------------------------
def add_hint(store: Store, book: Book, unit: Unit, text: str) -> int:
    """A person's hint on the unit: a ``hint`` post pinned for that unit's agents; its id."""
    text = text.strip()
    if not text:
        raise UsageError("an empty hint: give the text of the hint")
    return store.add_post(book_id=book.id, unit_id=unit.id, author=PERSON, kind="hint", body=text, pinned=True)


# -- withdrawals (a rejection, a new statement) ------------------------------------------------------------
def _dependents(graph: nx.DiGraph, unit_id: int) -> set[int]:
    """Every unit resting on the unit in the dependency graph (transitively)."""
    return set(nx.ancestors(graph, unit_id)) if unit_id in graph else set()


def _withdraw(store: Store, book: Book, unit: Unit, entry: AtlasEntry, reason: str, change: Change) -> None:
    """``entry`` leaves the Atlas (to the history) and so does every entry whose code used it, those units
    pending again and re-checked: their proofs (and their statements, where these name it) go through the gate
    again. Joins the caller's transaction."""
    users = store.users_of(book.id, unit.id, entry.decl_name, in_prelude=entry.status != UnitStatus.STATED)
    store.withdraw_entries([unit.id], reason)
    name = entry.decl_name.rsplit(".", 1)[-1]
    named = re.compile(rf"(?<![\w.']){re.escape(name)}(?![\w'])")
    for uid in sorted(users):
        dep = store.unit(uid)
        lock = store.latest_post_data(uid, "lock")
        keep = lock is not None and not named.search(str(lock.get("statement", "")))
        why = f"it used `{entry.decl_name}`, which left the Atlas ({reason})"
        store.withdraw_entries([uid], why)
        store.reopen_unit(uid, keep_lock=keep, stages=("proof",) if keep else STAGES, cause="recheck")
        store.add_post(book_id=book.id, unit_id=uid, author=PERSON, kind="invalidation", body=f"Re-checked: {why}")
        change.add(dep, change.rechecked)


# -- a person's statement -----------------------------------------------------------------------------
def clean_statement(text: str, *, definition: bool) -> str:
    """A person's Lean file (or a benchmark's statement) as a statement: its ``import`` lines dropped, and for a
    theorem a ``:= sorry`` or ``:= by sorry`` proof at its end, or a bare ``:=`` or ``:= by`` with no proof."""
    lines = [ln for ln in text.splitlines() if not ln.startswith("import ")]
    out = "\n".join(lines).strip()
    if not definition:
        out = re.sub(r"\s*:=\s*(?:by\b\s*)?(?:sorry\s*)?$", "", out)
    return out


def _prelude(store: Store, graph: nx.DiGraph, unit: Unit) -> str:
    """The code of the unit's admitted (proved or defined) dependencies, transitively, in book order: what a
    draft of it is checked after."""
    if unit.id not in graph:
        return ""
    closure = sorted(nx.descendants(graph, unit.id), key=lambda n: graph.nodes[n]["seq"])
    entries = [store.atlas_entry(uid) for uid in closure]
    return "\n\n".join(e.lean_code for e in entries if e is not None and e.status in ("proved", "defined"))


def check_person_statement(store: Store, book: Book, unit: Unit, text: str, oracle: Oracle | None) -> str:
    """The gate a draft passes: the pre-screen (no Lean), then Lean elaborates it after the unit's admitted
    dependencies (a definition: admitted whole). Returns the elaborated type (a definition: ""); raises
    :class:`AutoformError` with the reasons. ``oracle`` None: only the pre-screen (it must then refuse)."""
    definition = unit.kind == "definition"
    name = declared_name(text)
    if not name:
        raise UsageError(f"{unit.display}: no declaration found in the Lean text (`theorem NAME ... : ...`)")
    owner = store.name_owner(book.id, name)
    if owner is not None and owner != unit.id:
        raise UsageError(
            f"`{name}` is already declared by {store.unit(owner).display}; give the declaration a new name"
        )
    reasons = prescreen(text, role="statement")
    if reasons or oracle is None:
        raise AutoformError(f"{unit.display}: refused: " + "; ".join(r.message for r in reasons))
    cand = Candidate(
        kind="definition" if definition else "theorem",
        namespace=book_namespace(book),
        statement=text,
        prelude=_prelude(store, graphs.book_graph(store, book.id), unit),
    )
    if definition:
        verdict = admit(cand, oracle)
        if not verdict.admitted:
            raise AutoformError(f"{unit.display}: Lean refused the definition: {verdict.summary()}")
        return ""
    chk = check_statement(cand, oracle)
    if not chk.elaborates or not chk.elaborated_type:
        raise AutoformError(
            f"{unit.display}: Lean refused the statement: " + ("; ".join(r.message for r in chk.reasons) or "no type")
        )
    return chk.elaborated_type


def state_unit(store: Store, settings: Settings, book: Book, unit: Unit, text: str, elaborated_type: str) -> Change:
    """Lock a person's statement (checked by :func:`check_person_statement`) as the unit's, in one transaction:
    an Atlas entry of the unit leaves the Atlas (with what used it), its old lock is superseded, its attempts
    kept as history, and the unit is pending with the new lock, marked "stated by a person"."""
    change = Change("state", book.slug)
    graph = graphs.book_graph(store, book.id)
    with store.tx():
        entry = store.atlas_entry(unit.id)
        guard(store, book, {unit.id} | (_dependents(graph, unit.id) if entry else set()), "its statement would change")
        if entry is not None:
            _withdraw(store, book, unit, entry, "a person stated the unit anew", change)
        store.reopen_unit(unit.id, keep_lock=False, stages=STAGES, cause="state")
        name = declared_name(text) or ""
        store.reserve_name(book.id, unit.id, name)
        kind = "definition" if unit.kind == "definition" else "theorem"
        store.add_post(
            book_id=book.id,
            unit_id=unit.id,
            author=PERSON,
            kind="lock",
            body=text,
            pinned=True,
            data=person_lock(text, elaborated_type, kind=kind),
        )
    change.add(unit, status=UnitStatus.PENDING, decl=name)
    if entry is not None:
        write_atlas(store, settings)
    return change


# -- review --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReviewItem:
    """An admitted unit awaiting a person's review: the book's text and the Lean side by side, the critic's
    badge beside them."""

    unit: Unit
    entry: AtlasEntry
    badge: str
    state: str


def critic_badge(store: Store, book: Book, entry: AtlasEntry) -> str:
    """The critic's verdict on the entry's statement (its latest ``critique`` post of that text), else the
    lock's, else "no critique"."""
    for p in reversed(store.posts(book.id, unit_id=entry.unit_id, kind="critique")):
        if str(p.data.get("lean", "")).strip() == entry.statement_lean.strip() and p.data.get("fidelity"):
            return str(p.data["fidelity"])
    lock = store.latest_post_data(entry.unit_id, "lock")
    return str(lock.get("fidelity") or "no critique") if lock else "no critique"


def review_queue(store: Store, book: Book, *, everything: bool = False) -> list[ReviewItem]:
    """The book's admitted units whose statement no person has reviewed (``everything``: all admitted units),
    in book order."""
    states = store.review_states(book.id)
    units = {u.id: u for u in store.units(book.id)}
    return [
        ReviewItem(units[e.unit_id], e, critic_badge(store, book, e), states.get(e.unit_id, "unreviewed"))
        for e in store.atlas_entries(book.id)
        if e.unit_id in units and (everything or states.get(e.unit_id) != APPROVED)
    ]


def _entry_of(store: Store, book: Book, unit: Unit) -> AtlasEntry:
    entry = store.atlas_entry(unit.id)
    if entry is None or unit.status not in ADMITTED:
        raise UsageError(f"{unit.display} of {book.slug} is not in the Atlas ({unit.status}): nothing to review")
    return entry


def approve(store: Store, book: Book, unit: Unit, note: str = "") -> Change:
    """A person approves the fidelity of the unit's Lean statement."""
    with store.tx():
        entry = _entry_of(store, book, unit)
        store.add_review(entry, APPROVED, reason=note, reviewer=PERSON)
    change = Change("approve", book.slug)
    change.add(unit, decl=entry.decl_name, state=APPROVED)
    return change


def reject(store: Store, settings: Settings, book: Book, unit: Unit, reason: str) -> Change:
    """A person rejects the unit's Lean statement: the entry leaves the Atlas (kept in the history), the reason
    becomes a pinned hint, the unit goes back to drafting, the units whose code used it are re-checked; then
    ``atlas/`` is rewritten."""
    reason = reason.strip()
    if not reason:
        raise UsageError("--reject needs the reason (it becomes the drafter's hint)")
    change = Change("reject", book.slug)
    graph = graphs.book_graph(store, book.id)
    with store.tx():
        entry = _entry_of(store, book, unit)
        guard(store, book, {unit.id} | _dependents(graph, unit.id), "it rests on the statement rejected")
        store.add_review(entry, REJECTED, reason=reason, reviewer=PERSON)
        _withdraw(store, book, unit, entry, f"rejected in review: {reason}", change)
        store.reopen_unit(unit.id, keep_lock=False, stages=STAGES, cause="reject")
        store.add_post(
            book_id=book.id,
            unit_id=unit.id,
            author=PERSON,
            kind="hint",
            body=f"A person rejected the statement `{entry.statement_lean.strip()}` in review: {reason}",
            pinned=True,
            data={"review": REJECTED, "statement": entry.statement_lean},
        )
    change.add(unit, decl=entry.decl_name, state=REJECTED, status=UnitStatus.PENDING)
    write_atlas(store, settings)
    return change


# -- retry ---------------------------------------------------------------------------------------------------
#: the statuses of the units a person may retry
RETRYABLE = (UnitStatus.FAILED, UnitStatus.SKIPPED)


def retry_targets(store: Store, book: Book, refs: list[str], *, failed: bool) -> list[Unit]:
    """The units ``refs`` name, or with ``failed`` the book's failed units; an admitted or open unit named is
    an error (a rejection sends an admitted unit back; an open one is worked already)."""
    if failed == bool(refs):
        raise UsageError("give the units to retry, or --failed (not both)")
    if failed:
        return [u for u in store.units(book.id) if u.status == UnitStatus.FAILED]
    units = [resolve_unit(store, book, r) for r in refs]
    for u in units:
        if u.status in ADMITTED:
            raise UsageError(
                f"{u.display} is in the Atlas ({u.status}); `autoform review {book.slug} {u.id} --reject WHY` sends "
                "it back to drafting"
            )
        if u.status not in RETRYABLE:
            raise UsageError(f"{u.display} is {u.status}: a job works on it already, nothing to retry")
    return units


def retry(
    store: Store, book: Book, units: list[Unit], *, budget: str = "", limits: dict[str, int | float] | None = None
) -> Change:
    """The units pending again with fresh attempts (their attempts kept as history, no longer counted), each
    with a pinned note of why it last failed, for its agents; ``limits``: the proof budget a person gives each
    (``[prove]`` fields; ``budget``: as it was written), which its proof searches keep to from then on (until a
    later retry), whatever ``[prove] strategy`` says."""
    change = Change("retry", book.slug)
    with store.tx():
        guard(store, book, {u.id for u in units}, "it would be re-opened")
        for u in units:
            current = store.unit(u.id)
            if current.status not in RETRYABLE:
                continue  # a job concluded it otherwise meanwhile
            why = unit_transcript(store, current).why or current.status
            store.reopen_unit(u.id, keep_lock=True, stages=STAGES, cause="retry", limits=limits)
            store.add_post(
                book_id=book.id,
                unit_id=u.id,
                author=PERSON,
                kind="hint",
                body=f"Retried by a person with a fresh budget{f' ({budget})' if budget else ''}. Earlier attempts "
                f"ended: {why}",
                pinned=True,
                data={"retry": True, "was": str(current.status), "budget": budget, "limits": limits or {}},
            )
            change.add(current, was=str(current.status), status=UnitStatus.PENDING)
    return change
