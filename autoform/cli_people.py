"""The commands of people in the loop (``autoform hint``, ``state``, ``review``, ``retry``), registered on the
``autoform`` app by :func:`register` with the command line's helpers (so this module does not import
:mod:`autoform.cli`); the operations are in :mod:`autoform.people`. Errors are raised (:mod:`autoform.errors`)
and reported by :func:`autoform.cli.main`."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from autoform.config import ProveConfig, Settings
from autoform.errors import MissingError, UsageError

if TYPE_CHECKING:
    from autoform.people import Change, ReviewItem
    from autoform.store import Book, Store


@dataclass(frozen=True)
class CliHooks:
    """What the commands use of :mod:`autoform.cli`: its settings, store, book lookup, console and budget
    parser (given to :func:`register`)."""

    settings: Callable[[], Settings]
    open_store: Callable[..., Store]
    get_book: Callable[[Store, str], Book]
    parse_unit_budget: Callable[[ProveConfig, str, str], ProveConfig]
    out: Console


_hooks: list[CliHooks] = []


def cli() -> CliHooks:
    """The hooks :func:`register` was given."""
    return _hooks[-1]


AsJson = Annotated[bool, typer.Option("--json", help="the result as JSON")]
BookArg = Annotated[str, typer.Argument(help="book slug")]
UnitArg = Annotated[str, typer.Argument(help="unit id, label (e.g. thm:main) or number (e.g. 'Theorem 2.3.7')")]


def _open(book: str, *, readonly: bool = False) -> tuple[Store, Book]:
    store = cli().open_store(cli().settings(), readonly=readonly)
    return store, cli().get_book(store, book)


def _print_change(change: Change, as_json: bool) -> None:
    out = cli().out
    if as_json:
        print(json.dumps(dataclasses.asdict(change), ensure_ascii=False, indent=2))
        return
    for u in change.units:
        extra = ", ".join(f"{k} {v}" for k, v in u.items() if k not in ("id", "unit", "label"))
        out.print(escape(f"{change.action}: {u['unit']} [{u['label'] or u['id']}]" + (f": {extra}" if extra else "")))
    for u in change.rechecked:
        out.print(escape(f"  re-checked (left the Atlas, pending): {u['unit']} [{u['label'] or u['id']}]"))
    if not change.units:
        out.print(escape(f"{change.action}: nothing to do in {change.book}"))
    if change.message:
        out.print(escape(change.message))


def hint(
    book: BookArg, unit: UnitArg, text: Annotated[str, typer.Argument(help="the hint")], as_json: AsJson = False
) -> None:
    """Post a person's hint on a unit: pinned for that unit's agents, shown in its transcript and page."""
    from autoform.people import Change, add_hint, resolve_unit

    store, b = _open(book)
    u = resolve_unit(store, b, unit)
    post_id = add_hint(store, b, u, text)
    change = Change("hint", b.slug)
    change.add(u, post=post_id)
    _print_change(change, as_json)


def state(
    book: BookArg,
    unit: UnitArg,
    file: Annotated[Path, typer.Argument(help="a Lean file with the statement (or definition) of the unit")],
    as_json: AsJson = False,
) -> None:
    """Supply a unit's Lean statement (or definition): checked like a draft (it must elaborate), locked, marked
    "stated by a person"; the prover works on it (a running job of the book takes it up; else the next run). Needs
    Lean (exit 3 without; nothing changed)."""
    from autoform.lean import make_oracle
    from autoform.lean.oracle import OracleUnavailable
    from autoform.people import check_person_statement, clean_statement, resolve_unit, state_unit

    if not file.is_file():
        raise UsageError(f"{file}: no such file")
    try:
        raw = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{file}: not UTF-8 ({e})") from e
    s = cli().settings()
    store, b = _open(book)
    u = resolve_unit(store, b, unit)
    text = clean_statement(raw, definition=u.kind == "definition")
    oracle = make_oracle(s)
    try:
        oracle.start()
    except OracleUnavailable as e:
        raise MissingError(
            f"{file}: Lean is needed to check the statement of {u.display}: {e}; nothing was changed"
        ) from e
    try:
        ty = check_person_statement(store, b, u, text, oracle)
    finally:
        oracle.close()
    change = state_unit(store, s, b, u, text, ty)
    change.message = f"locked as stated by a person; {_who_works(store, b)} proves it"
    _print_change(change, as_json)


def _show_item(item: ReviewItem) -> None:
    """The book's text and the Lean side by side, the critic's badge beside them."""
    out = cli().out
    u, e = item.unit, item.entry
    t = Table(title=escape(f"{u.display} [{u.label or u.id}]: {e.status}, {item.state}; critic: {item.badge}"))
    t.add_column("the book")
    t.add_column(escape(f"Lean ({e.decl_name})"))
    t.add_row(escape(u.statement.strip()), escape(e.statement_lean.strip()))
    out.print(t)


def _item_json(item: ReviewItem) -> dict[str, str | int]:
    u, e = item.unit, item.entry
    return {
        "id": u.id,
        "unit": u.display,
        "label": u.label,
        "statement": u.statement,
        "lean": e.statement_lean,
        "decl": e.decl_name,
        "status": e.status,
        "critic": item.badge,
        "review": item.state,
    }


def _walk(store: Store, b: Book, items: list[ReviewItem]) -> None:
    """Ask a person at the terminal about each item: approve, reject (with the reason), skip or quit."""
    from autoform.people import approve, reject

    for item in items:
        _show_item(item)
        answer = typer.prompt("[a]pprove, [r]eject, [s]kip, [q]uit", default="s").strip().lower()[:1]
        if answer == "q":
            return
        if answer == "a":
            _print_change(approve(store, b, item.unit), False)
        elif answer == "r":
            why = typer.prompt("why (it becomes the drafter's hint)")
            _print_change(reject(store, cli().settings(), b, item.unit, why), False)


def review(
    book: BookArg,
    unit: Annotated[str | None, typer.Argument(help="the unit to approve or reject")] = None,
    approve_: Annotated[bool, typer.Option("--approve", help="the Lean statement says what the book says")] = False,
    reject_: Annotated[str | None, typer.Option("--reject", help="why it does not (becomes a pinned hint)")] = None,
    next_: Annotated[bool, typer.Option("--next", help="only the next unit awaiting review")] = False,
    as_json: AsJson = False,
) -> None:
    """Review the fidelity of admitted statements: without UNIT, walk the units no person has reviewed (at a
    terminal: approve, reject, skip; else listed); with UNIT, --approve or --reject "why". A rejected entry
    leaves the Atlas (kept in its history), the unit is drafted again, and the units that used it re-checked."""
    from autoform.people import approve, reject, resolve_unit, review_queue

    if unit is None:
        if approve_ or reject_ is not None:
            raise UsageError("--approve and --reject need the UNIT")
        store, b = _open(book, readonly=True)
        items = review_queue(store, b)[: 1 if next_ else None]
        if as_json:
            print(json.dumps([_item_json(i) for i in items], ensure_ascii=False, indent=2))
        elif not items:
            cli().out.print(escape(f"{b.slug}: every Atlas entry has been reviewed"))
        elif sys.stdin.isatty() and not next_:
            _walk(cli().open_store(cli().settings()), b, items)
        else:
            for item in items:
                _show_item(item)
        return
    if approve_ == (reject_ is not None):
        raise UsageError("give --approve or --reject WHY (one of them) with a UNIT")
    store, b = _open(book)
    u = resolve_unit(store, b, unit)
    change = approve(store, b, u) if approve_ else reject(store, cli().settings(), b, u, reject_ or "")
    if not approve_:
        change.message = f"{_who_works(store, b)} drafts it again"
    _print_change(change, as_json)


def retry(
    book: BookArg,
    units: Annotated[list[str] | None, typer.Argument(help="the units to retry (ids, labels or numbers)")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="every failed unit of the book")] = False,
    budget: Annotated[
        str | None,
        typer.Option("--budget", help="the proof budget of each unit, as run's --unit-budget ('llm_calls=20,...')"),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Re-open failed (or skipped) units with fresh attempts, keeping their history for the agents (a pinned
    note of how they ended); with --budget, their next proof search keeps to that budget. A running job of the
    book takes them up; else the next `autoform run` works on them."""
    from autoform.people import retry as reopen
    from autoform.people import retry_targets

    limits = _budget_limits(cli().settings().prove, budget) if budget is not None else {}
    store, b = _open(book)
    change = reopen(store, b, retry_targets(store, b, units or [], failed=failed), budget=budget or "", limits=limits)
    if change.units:
        change.message = f"{_who_works(store, b)} works on them with fresh attempts"
    _print_change(change, as_json)


def _who_works(store: Store, b: Book) -> str:
    """Who takes a re-opened unit up: the book's running job, else the next run."""
    from autoform.people import live_job

    job = live_job(store, b)
    return f"job {job.id} (running)" if job is not None else f"`autoform run {b.slug}`"


def _budget_limits(prove: ProveConfig, text: str) -> dict[str, int | float]:
    """The limits ``--budget`` names (checked as run checks ``--unit-budget``), with their values."""
    parsed = cli().parse_unit_budget(prove, text, "--budget")
    named = {p.partition("=")[0].strip() for p in text.split(",") if p.strip()}
    return {name: getattr(parsed, name) for name in sorted(named)}


def register(app: typer.Typer, hooks: CliHooks) -> None:
    """Add the commands to the ``autoform`` app, which lends them ``hooks``."""
    _hooks.append(hooks)
    for command in (hint, state, review, retry):
        app.command(command.__name__)(command)
