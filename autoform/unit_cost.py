"""What each unit cost and how it was closed, from the store: Lean's checks of its candidates and their time, its
LLM calls (cached ones cost nothing), tokens and USD at ``[llm] prices``, and the move that closed it (``prover``,
``gap_closer``, ``automation``, ``decomposition``, ``library_search``, ``stated``, ...).

``autoform status BOOK --units``, each unit's transcript and its page on the site show it."""

from __future__ import annotations

from pydantic import BaseModel

from autoform.config import Settings
from autoform.llm import price
from autoform.store import Book, Store, Unit
from autoform.store.reports import UnitSpending

#: how the closing attempt's author reads to a person
CLOSED_BY_LABELS = {
    "prover": "whole proof",
    "gap_closer": "repair",
    "automation": "automation",
    "decomposition": "decomposition",
    "sketch": "decomposition",
    "library_search": "exact? (Mathlib)",
    "goal_search": "exact? on open goals",
    "mathlib_rename": "renamed Mathlib names",
    "stated": "stated",
    "person": "a person",
}


class UnitCost(BaseModel):
    """One unit's cost, as ``status --units --json`` prints it."""

    unit_id: int
    unit: str
    label: str
    status: str
    closed_by: str = ""  # the closing attempt's author; "" while the unit has no Atlas entry
    lean_checks: int = 0
    lean_s: float = 0.0
    llm_calls: int = 0
    cached_calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0

    @property
    def closed_by_label(self) -> str:
        return CLOSED_BY_LABELS.get(self.closed_by, self.closed_by)

    def line(self) -> str:
        """One line for a terminal or a page: how the unit was closed and what it cost."""
        closed = f"closed by {self.closed_by_label}; " if self.closed_by else ""
        cached = f" (+{self.cached_calls} cached)" if self.cached_calls else ""
        return (
            f"{closed}cost: {self.llm_calls} LLM calls{cached}, {self.tokens:,} tokens, ${self.cost_usd:.4f}; "
            f"{self.lean_checks} Lean checks ({self.lean_s:.1f} s)"
        )


def _usd(settings: Settings, spending: UnitSpending) -> float:
    return sum(
        price(settings, model, prompt, completion) for model, (prompt, completion) in spending.tokens_by_model.items()
    )


def _cost(unit: Unit, spending: UnitSpending | None, closer: str, settings: Settings) -> UnitCost:
    got = spending or UnitSpending(unit_id=unit.id)
    return UnitCost(
        unit_id=unit.id,
        unit=unit.display,
        label=unit.label,
        status=str(unit.status),
        closed_by=closer,
        lean_checks=got.lean_checks,
        lean_s=round(got.lean_s, 3),
        llm_calls=got.llm_calls,
        cached_calls=got.cached_calls,
        tokens=sum(p + c for p, c in got.tokens_by_model.values()),
        cost_usd=round(_usd(settings, got), 6),
    )


def unit_costs(store: Store, settings: Settings, book: Book) -> list[UnitCost]:
    """Every present unit of the book, in the book's order, with what it cost and how it was closed."""
    spending, closers = store.unit_spending(book.id), store.unit_closers(book.id)
    return [_cost(u, spending.get(u.id), closers.get(u.id, ""), settings) for u in store.units(book.id)]


def unit_cost(store: Store, settings: Settings, unit: Unit) -> UnitCost:
    """One unit's cost (for its transcript and its page)."""
    spending = store.unit_spending(unit.book_id, unit_id=unit.id)
    closer = store.unit_closers(unit.book_id, unit_id=unit.id).get(unit.id, "")
    return _cost(unit, spending.get(unit.id), closer, settings)
