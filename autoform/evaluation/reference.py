"""Proofs of the benchmark's own statements (``autoform eval --prove-reference``, or ``"prove_reference": true`` on
a problem): the prover and the gap-closer work on the reference Lean statement, locked exactly as given.

The references of one header are a book of their own (``<book>-ref``: its namespace keeps their names apart from
the drafted statements'), one exercise unit a problem. Before its job, each reference is checked by Lean as a
draft is (the pre-screen, then elaborated with ``sorry``; :func:`autoform.lean.gate.check_statement`) and locked
with the type Lean elaborated, as a person's statement is (:mod:`autoform.people`): the proof stage then proves
that lock, and the gate admits only a proof whose elaborated type is the lock's. A reference Lean refuses fails
its unit with the reason (post ``eval_reference``). The job's budgets, resume and executor apply as to the
drafted book; a reference unit that concluded (proved or failed) is finished.
"""

from __future__ import annotations

from typing import Any

from autoform.atlas import book_namespace
from autoform.evaluation.bench import Problem
from autoform.lean.gate import Candidate, check_statement, declared_name
from autoform.lean.oracle import Oracle
from autoform.people import clean_statement
from autoform.pipeline.gatekeeper import unique_name
from autoform.store import TERMINAL, Book, Store, Unit, UnitStatus

#: the lock's author and ``stated_by``: the benchmark's reference statement
AUTHOR = "benchmark"
#: the post saying why a reference was not locked (Lean refused it)
REFUSED = "eval_reference"
#: what the reference book's slug ends with
SUFFIX = "-ref"


def concluded(status: str) -> bool:
    """Whether a reference unit's work is over: proved, or not (failed; ``stated``: locked, no proof found)."""
    return status in TERMINAL and status != UnitStatus.SKIPPED


def wants_reference(problem: Problem, flag: bool) -> bool:
    """Whether the reference statement of ``problem`` is to be proved (the flag, or the problem's own field)."""
    return flag or problem.prove_reference


def reference_lock(statement: str, elaborated_type: str, lean_s: float) -> dict[str, Any]:
    """The data of a reference's lock post (the shape of a person's lock, stated by the benchmark)."""
    return {
        "statement": statement,
        "name": declared_name(statement) or "",
        "elaborated_type": elaborated_type,
        "fidelity": "the benchmark's reference",
        "stated_by": AUTHOR,
        "definition": False,
        "lean_s": round(lean_s, 4),
    }


def lock_reference(store: Store, book: Book, unit: Unit, problem: Problem, oracle: Oracle) -> bool:
    """Lock the problem's reference as the unit's statement (Lean elaborates it first); a reference Lean refuses
    fails the unit with the reason. True when the unit is locked (now or before)."""
    if store.latest_post_data(unit.id, "lock") is not None:
        return True
    text = unique_name(store, book.id, unit.id, clean_statement(problem.formal, definition=False))
    chk = check_statement(Candidate(kind="theorem", namespace=book_namespace(book), statement=text), oracle)
    if not chk.elaborates or not chk.elaborated_type:
        why = "; ".join(r.message for r in chk.reasons) or "Lean returned no type"
        with store.tx():
            store.add_post(
                book_id=book.id,
                unit_id=unit.id,
                author="eval",
                kind=REFUSED,
                body=f"{problem.name}: the reference does not elaborate: {why}"[:2000],
                data={"reason": why[:2000], "lean_s": round(chk.elapsed_s, 4)},
            )
            store.set_unit_status(unit.id, UnitStatus.FAILED)
        return False
    with store.tx():
        store.add_post(
            book_id=book.id,
            unit_id=unit.id,
            author=AUTHOR,
            kind="lock",
            body=text,
            pinned=True,
            data=reference_lock(text, chk.elaborated_type, chk.elapsed_s),
        )
    return True


def lock_references(store: Store, book: Book, problems: list[Problem], oracle: Oracle) -> list[Unit]:
    """Lock every unconcluded reference of the book; the units left for the job (locked, not concluded)."""
    by_label = {u.label: u for u in store.units(book.id)}
    todo: list[Unit] = []
    for p in problems:
        unit = by_label[p.name]
        if concluded(unit.status):
            continue
        if lock_reference(store, book, unit, p, oracle):
            todo.append(unit)
    return todo


def reference_lean_s(store: Store, unit_id: int) -> float:
    """Lean's time on the reference's own check (elaborating it before the lock), beside its proof attempts'."""
    lock = store.latest_post_data(unit_id, "lock")
    refused = store.latest_post_data(unit_id, REFUSED)
    return float((lock or refused or {}).get("lean_s", 0.0))


def refusal(store: Store, unit_id: int) -> str:
    """Why Lean refused the reference ("" when it did not)."""
    d = store.latest_post_data(unit_id, REFUSED)
    return str(d.get("reason", "")) if d else ""
