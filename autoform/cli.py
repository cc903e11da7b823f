"""The ``autoform`` command line (Typer). Exit codes: 0 success, 1 failure of the work asked for (a
rejected candidate, a failed build), 2 bad usage or bad input, 3 something needed is missing (Lean, LLM)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from autoform import cli_errors, cli_people
from autoform.cli_errors import CommandError, MissingParts, report_error, stopped_exit_code
from autoform.config import (
    CONFIG_FILE,
    Settings,
    load_settings,
    parse_unit_budget,
    render_default_toml,
    with_unit_budget,
)
from autoform.errors import EXIT_FAIL, EXIT_MISSING, EXIT_USAGE, AutoformError, MissingError, UsageError
from autoform.store.models import UnitStatus

if TYPE_CHECKING:
    from autoform.executors import Executor
    from autoform.ingest import IngestResult, IngestSummary, Limits
    from autoform.jobs import JobParams, JobRunner, JobSummary
    from autoform.lean.oracle import Oracle
    from autoform.llm import LLMClient
    from autoform.mathlib.index import Hit, MathlibIndex
    from autoform.store import Book, Store, Unit

app = typer.Typer(
    help="Turn textbook mathematics into a machine-checked Lean 4 library (the Atlas).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
atlas_app = typer.Typer(help="Write, build and browse the Atlas.", no_args_is_help=True)
app.add_typer(atlas_app, name="atlas")
mathlib_app = typer.Typer(
    help="Index and search Mathlib's declarations (offline, from its source).", no_args_is_help=True
)
app.add_typer(mathlib_app, name="mathlib")

out = Console()
err = Console(stderr=True)


class _State:
    home: str | None = None
    db_path: Path | None = None  # the store the command opened (named in an SQLite error)


state = _State()


def print_error(message: str) -> None:
    """The one-line ``error:`` report (one line, for grep)."""
    cli_errors.print_error(message, err)


def settings() -> Settings:
    return load_settings(state.home)


def open_store(s: Settings, *, create: bool = False, readonly: bool = False) -> Store:
    """The workspace's store, checked on open (a damaged one exits 2 and is never written); ``readonly`` for the
    commands that only read (they work in a read-only workspace)."""
    from autoform.store import Store, StoreError

    state.db_path = s.db_path
    if not create and not s.db_path.exists():
        raise UsageError(
            f"no autoform store in {s.home} (looked for {s.db_path.name}). Run `autoform ingest PATH --book SLUG` "
            "first, or pass --home."
        )
    try:
        return Store(s.db_path, readonly=readonly)
    except StoreError as e:  # reported as the store says it, not read as a failed write (main())
        raise CommandError(str(e), e.exit_code) from e
    except OSError as e:  # e.g. the workspace directory cannot be created
        raise MissingError(f"{s.db_path}: cannot open the store: {e.strerror or e}") from e


def store_error_message(e: BaseException, db_path: Path | str) -> tuple[str, int]:
    """A one-line message and exit code for an SQLite or store error that reached the command line: a full or
    read-only disk (3: something needed is missing), a store error with its class's code, else a damaged store
    (2), always naming the store's file."""
    from autoform.executors.base import store_failure
    from autoform.store import StoreError, damaged_message

    why = store_failure(e)
    if why is not None:
        return f"{db_path}: {why}", EXIT_MISSING
    if isinstance(e, StoreError):
        return str(e), e.exit_code
    if isinstance(e, sqlite3.OperationalError) and ("locked" in str(e) or "busy" in str(e)):
        return f"{db_path}: the store is locked by another process ({e}); try again when it is done", EXIT_MISSING
    return damaged_message(Path(db_path), str(e)), EXIT_USAGE


def get_book(store: Store, slug: str) -> Book:
    book = store.book(slug)
    if book is None:
        known = ", ".join(b.slug for b in store.books()) or "none"
        raise UsageError(
            f"no book {slug!r} in this workspace (books: {known}). Ingest it with `autoform ingest PATH --book {slug}`."
        )
    return book


@app.callback()
def main_options(
    home: Annotated[str | None, typer.Option("--home", help="workspace directory (env AUTOFORM_HOME)")] = None,
) -> None:
    state.home = home


# ------------------------------------------------------------------------------------------------ init
@app.command()
def init() -> None:
    """Set up a workspace: a commented autoform.toml and an empty store."""
    s = settings()
    s.home.mkdir(parents=True, exist_ok=True)
    cfg = s.home / CONFIG_FILE
    if not cfg.exists():
        cfg.write_text(render_default_toml(), encoding="utf-8")
    store = open_store(s, create=True)
    from autoform.toolchain.workspace import write_workspace_files

    lake_files = write_workspace_files(s.home)  # a workspace outside the repository shares its Mathlib
    out.print(
        f"workspace {s.home} (store schema v{store.schema_version}, config {cfg.name})"
        + (
            f"; Lake files {', '.join(p.name for p in lake_files)} sharing the repository's Mathlib"
            if lake_files
            else ""
        )
    )


# ---------------------------------------------------------------------------------------------- doctor
@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    quick: Annotated[bool, typer.Option("--quick", help="do not start Lean to import the header")] = False,
) -> None:
    """Say what is ready (Python packages, Lean, lake, REPL, Mathlib, LLM endpoint) and what is missing."""
    from autoform.doctor import run_doctor

    checks = run_doctor(settings(), start_pool=not quick)
    missing = [c for c in checks if not c.ok and c.needed_by_run]
    if as_json:
        print(json.dumps({"ready": not missing, "checks": [c.model_dump() for c in checks]}, indent=2))
    else:
        t = Table(title="autoform doctor")
        t.add_column("check")
        t.add_column("status")
        t.add_column("detail", overflow="fold")
        for c in checks:
            mark = "[green]ok[/]" if c.ok else ("[red]MISSING[/]" if c.needed_by_run else "[yellow]absent[/]")
            t.add_row(c.name, mark, escape(c.detail))
        out.print(t)
        if missing:
            err.print(f"[red]not ready to run:[/] missing {escape(', '.join(c.name for c in missing))}")
    if missing:
        raise typer.Exit(EXIT_MISSING)


# ---------------------------------------------------------------------------------------------- ingest
@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="a .tex root file, a directory, or a .pdf")],
    book: Annotated[str, typer.Option("--book", help="the book's slug, e.g. number-theory")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    allow_input: Annotated[
        list[Path] | None,
        typer.Option(
            "--allow-input", help="a directory outside the book's own from which \\input may read (repeatable)"
        ),
    ] = None,
    transcribe: Annotated[
        bool, typer.Option("--transcribe", help="a PDF: have the LLM endpoint's vision model transcribe its pages")
    ] = False,
) -> None:
    """Store a textbook's units and their dependency graph (re-ingest keeps work on unchanged units)."""
    import re

    from autoform.ingest import read_book, store_book

    if not re.fullmatch(r"[a-z0-9][a-z0-9-_]*", book):
        raise UsageError(f"--book {book!r}: use lower-case letters, digits, '-' and '_'")
    s = settings()
    if transcribe:
        from autoform.ingest.transcribe import transcribe_book

        result = transcribe_book(path, s, open_store(s, create=True), say=lambda m: err.print(escape(m)))
    else:
        result = read_book(path, env_map=s.ingest.environments, limits=_ingest_limits(s, allow_input or []))
    if not result.units:
        raise UsageError(f"{path}: no theorem-like units found; nothing stored")
    # a full or read-only disk: the transaction is rolled back, nothing half-stored (main() says what to do)
    summary = store_book(open_store(s, create=True), book, result)
    if as_json:
        print(summary.model_dump_json(indent=2))
        return
    _print_ingested(book, result, summary)


def _ingest_limits(s: Settings, allow_input: list[Path]) -> Limits:
    from autoform.ingest import Limits

    cfg = s.ingest
    return Limits(
        max_file_bytes=int(cfg.max_file_mb * 2**20),
        max_units=cfg.max_units,
        max_nesting=cfg.max_nesting,
        max_expansion=cfg.max_expansion,
        max_input_depth=cfg.max_input_depth,
        allow_dirs=tuple(allow_input),
    )


def _print_ingested(book: str, result: IngestResult, summary: IngestSummary) -> None:
    for w in summary.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)
    kinds: dict[str, int] = {}
    for u in result.units:
        kinds[u.kind] = kinds.get(u.kind, 0) + 1
    withdrawn = (
        f"; Lean work withdrawn from {summary.invalidated} unit(s) whose statement or prelude changed "
        "(kept in the history; the next run redoes them)"
        if summary.invalidated
        else ""
    )
    out.print(
        f"[bold]{book}[/]: {summary.units} units ({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))}); "
        f"{summary.edges} dependencies; added {summary.added}, updated {summary.updated}, "
        f"unchanged {summary.unchanged}, removed {summary.removed}" + withdrawn
    )
    if summary.unresolved_refs:
        out.print(
            f"[yellow]{len(summary.unresolved_refs)} references to labels that are not units[/] "
            f"(e.g. {escape(', '.join(summary.unresolved_refs[:5]))})"
        )


# ----------------------------------------------------------------------------------------------- units
@app.command()
def units(
    book: Annotated[str, typer.Argument(help="book slug")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """List a book's units."""
    s = settings()
    store = open_store(s, readonly=True)
    b = get_book(store, book)
    deps: dict[int, list[int]] = {}
    for uid, dep, _ in store.deps(b.id):
        deps.setdefault(uid, []).append(dep)
    rows = store.units(b.id)
    if as_json:
        for u in rows:
            print(
                json.dumps(
                    {
                        "id": u.id,
                        "kind": u.kind,
                        "number": u.number,
                        "title": u.title,
                        "label": u.label,
                        "statement": u.statement,
                        "statement_raw": u.statement_raw,
                        "proof": u.proof,
                        "location": u.location,
                        "source": u.source,
                        "depends_on": deps.get(u.id, []),
                        "status": u.status,
                    },
                    ensure_ascii=False,
                )
            )
        return
    t = Table(title=f"{book}: {len(rows)} units")
    for col in ("id", "unit", "label", "source", "deps", "status"):
        t.add_column(col)
    for u in rows:
        t.add_row(str(u.id), u.display, u.label, u.source, ",".join(map(str, deps.get(u.id, []))), u.status)
    out.print(t)


# ----------------------------------------------------------------------------------------------- graph
@app.command()
def graph(
    book: Annotated[str, typer.Argument(help="book slug")],
    fmt: Annotated[str, typer.Option("--format", help="json or dot")] = "json",
) -> None:
    """Print the dependency graph (edges go from a unit to what it uses)."""
    from autoform import graph as graphs

    if fmt not in ("json", "dot"):
        raise UsageError("--format must be json or dot")
    s = settings()
    store = open_store(s, readonly=True)
    b = get_book(store, book)
    g = graphs.book_graph(store, b.id)
    print(graphs.to_json(g) if fmt == "json" else graphs.to_dot(g, name=book), end="" if fmt == "dot" else "\n")


# ------------------------------------------------------------------------------------------------- run
def _again(book: str, *, executor: str, address: str | None, max_attempts: int | None, unit_budget: str | None) -> str:
    """The arguments of ``autoform run`` that resume this job as it ran (executor, strategy and budget)."""
    parts = [book]
    parts += ["--executor ray"] if executor == "ray" else []
    parts += [f"--address {address}"] if address else []
    parts += [f"--max-attempts {max_attempts}"] if max_attempts is not None else []
    parts += [f"--unit-budget '{unit_budget}'"] if unit_budget is not None else []
    return " ".join(parts)


MaxAttemptsOption = Annotated[
    int | None,
    typer.Option(
        "--max-attempts",
        help="attempts per unit and stage; for proofs it replaces the \\[prove] budget (unless --unit-budget)",
    ),
]
UnitBudgetOption = Annotated[
    str | None,
    typer.Option("--unit-budget", help="per-unit proof budget (\\[prove]), e.g. 'llm_calls=20,wall_s=900'"),
]


@app.command()
def run(
    book: Annotated[str, typer.Argument(help="book slug")],
    jobs: Annotated[int | None, typer.Option("--jobs", help="units in flight")] = None,
    budget_usd: Annotated[float | None, typer.Option("--budget-usd", help="stop new work past this cost")] = None,
    budget_tokens: Annotated[
        int | None, typer.Option("--budget-tokens", help="stop new work past this many LLM tokens")
    ] = None,
    unit_tokens: Annotated[
        int | None, typer.Option("--unit-tokens", help="fail a unit past this many LLM tokens in the job")
    ] = None,
    max_attempts: MaxAttemptsOption = None,
    unit_budget: UnitBudgetOption = None,
    executor: Annotated[str, typer.Option("--executor", help="local (threads) or ray (a Ray cluster)")] = "local",
    address: Annotated[str | None, typer.Option("--address", help="Ray cluster address (with --executor ray)")] = None,
    ray_workers: Annotated[
        int | None,
        typer.Option("--ray-workers", help="unit workers on the Ray cluster (default: one per node, joining ones too)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Run (or resume) a batch formalization job over a book."""
    from autoform.jobs import JobRunner

    s = with_unit_budget(settings(), unit_budget, max_attempts=max_attempts)
    params = _job_params(
        s,
        jobs=jobs,
        budget_usd=budget_usd,
        budget_tokens=budget_tokens,
        unit_tokens=unit_tokens,
        max_attempts=max_attempts,
        executor=executor,
        address=address,
        ray_workers=ray_workers,
    )
    store = open_store(s)
    b = get_book(store, book)
    ex, llm, oracle = _preflight(s, store, params, cluster_slots=jobs is None and "jobs" not in s.job.model_fields_set)
    live = err.is_terminal and not as_json
    _index_atlas(s)

    def on_event(kind: str, unit: Unit, detail: str) -> None:
        if not live and not as_json and kind in REPORTED_EVENTS:
            err.print(escape(f"{unit.display}: {kind} {detail}"), highlight=False)

    runner = JobRunner(s, store, b, oracle, llm, params, on_event=on_event, executor=ex)
    again = _again(book, executor=executor, address=address, max_attempts=max_attempts, unit_budget=unit_budget)
    summary = _run_job(runner, ex, oracle, book, live=live, again=again)
    _print_job_summary(summary, again, as_json=as_json)
    code = _job_exit_code(summary)
    if runner.stop_reason == "sigint-now":  # units may still be in flight: the store is safe, leave now
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if code:
        raise typer.Exit(code)


#: the job's events printed one a line when there is no live view
REPORTED_EVENTS = (UnitStatus.PROVED, UnitStatus.DEFINED, UnitStatus.STATED, UnitStatus.FAILED)


def _job_params(
    s: Settings,
    *,
    jobs: int | None,
    budget_usd: float | None,
    budget_tokens: int | None,
    unit_tokens: int | None,
    max_attempts: int | None,
    executor: str,
    address: str | None,
    ray_workers: int | None,
) -> JobParams:
    """The job's parameters from the options and the settings; a wrong option is a :class:`UsageError`."""
    from autoform.jobs import JobParams

    _check_budgets(budget_usd, budget_tokens, unit_tokens)
    if executor not in ("local", "ray"):
        raise UsageError(f"--executor {executor!r}: use local or ray")
    if (address or ray_workers) and executor != "ray":
        raise UsageError("--address and --ray-workers go with --executor ray")
    n_jobs = jobs if jobs is not None else s.job.jobs
    n_attempts = max_attempts if max_attempts is not None else s.job.max_attempts
    if n_jobs < 1 or n_attempts < 1 or (ray_workers is not None and ray_workers < 1):
        raise UsageError("--jobs, --max-attempts and --ray-workers must be at least 1")
    return JobParams(
        max_attempts=n_attempts,
        jobs=n_jobs,
        budget_usd=budget_usd,
        budget_tokens=budget_tokens,
        unit_tokens=unit_tokens,
        executor="ray" if executor == "ray" else "local",
        address=address,
        ray_workers=ray_workers,
    )


def _check_budgets(budget_usd: float | None, budget_tokens: int | None, unit_tokens: int | None) -> None:
    if budget_usd is not None and budget_usd <= 0:
        raise UsageError(f"--budget-usd {budget_usd}: a budget must be positive (nothing would run)")
    if budget_tokens is not None and budget_tokens <= 0:
        raise UsageError(f"--budget-tokens {budget_tokens}: a budget must be positive (nothing would run)")
    if unit_tokens is not None and unit_tokens <= 0:
        raise UsageError(f"--unit-tokens {unit_tokens}: a cap must be positive")


def _preflight(
    s: Settings, store: Store, params: JobParams, *, cluster_slots: bool = False
) -> tuple[Executor, LLMClient, Oracle]:
    """The executor (connected), the LLM client and the oracle (started, when the units run here), all
    answering; else nothing is written to the store: an unreachable cluster is a :class:`MissingError`, and a
    missing LLM or Lean are reported together (:class:`MissingParts`)."""
    from autoform.executors import make_executor
    from autoform.lean import make_oracle
    from autoform.lean.oracle import OracleUnavailable
    from autoform.llm import LLMClient, LLMUnavailable

    slots = None if cluster_slots and params.executor == "ray" else params.jobs  # Ray without --jobs: the cluster's
    ex = make_executor(params.executor, slots, address=params.address, workers=params.ray_workers)
    ex.connect()
    problems: list[str] = []
    llm: LLMClient | None = None
    try:
        llm = LLMClient(s, store)
        llm.ping()
    except LLMUnavailable as e:
        problems.append(f"LLM: {e}")
    oracle = make_oracle(s, store)
    if params.executor == "local":  # on Ray, every worker starts its own Lean
        try:
            oracle.start()
        except OracleUnavailable as e:
            problems.append(f"Lean: {e}")
    elif not problems:  # every node's toolchain and Lean, before the job row is written
        problems += [f"Ray: {p}" for p in ex.preflight(s, store)]
    if problems or llm is None:
        oracle.close()
        ex.close(wait=False)
        raise MissingParts(problems, "Nothing was changed. `autoform doctor` lists every check.")
    return ex, llm, oracle


def _late_sigint(signum: int, frame: FrameType | None) -> None:
    """The job has ended: a Ctrl-C only hurries the exit."""
    os._exit(EXIT_FAIL)


def _job_sigint(runner: JobRunner) -> Callable[[int, FrameType | None], None]:
    """Ctrl-C during a job: the first stops it after the steps in flight, the second now, the third at once."""

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if runner.stop_reason == "sigint-now":  # a third Ctrl-C: leave at once (the store is safe, as after kill -9)
            os._exit(EXIT_FAIL)
        if runner.stop.is_set():
            runner.stop_reason = "sigint-now"
            raise KeyboardInterrupt
        # plain write: a signal handler must not import (rich loads its emoji table on first markup, and a second
        # Ctrl-C during that import leaves the module half-initialised)
        sys.stderr.write("stopping after the steps in flight (Ctrl-C again to stop now)...\n")
        sys.stderr.flush()
        runner.request_stop("sigint")

    return on_sigint


def _run_job(runner: JobRunner, ex: Executor, oracle: Oracle, book: str, *, live: bool, again: str) -> JobSummary:
    """Run the job under its own Ctrl-C handling (with the live view on a terminal); the oracle is closed after."""
    from autoform.jobs import JobError, render_live

    old = signal.signal(signal.SIGINT, _job_sigint(runner))
    try:
        if not live:
            return runner.run()
        from rich.live import Live

        with Live(get_renderable=lambda: render_live(runner, book), console=err, refresh_per_second=4, transient=False):
            return runner.run()
    except JobError:
        ex.close(wait=False)
        raise
    except KeyboardInterrupt:  # the second Ctrl-C landed outside the job's own handling: leave now, code 1
        signal.signal(signal.SIGINT, _late_sigint)
        err.print("stopped now; resume with: autoform run " + escape(again), highlight=False)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_FAIL)
    finally:
        # never Python's default handler again: a KeyboardInterrupt escaping now would end the process with -2
        signal.signal(signal.SIGINT, _late_sigint if old is signal.default_int_handler else old)
        oracle.close()


def _print_job_summary(summary: JobSummary, again: str, *, as_json: bool) -> None:
    if as_json:
        print(summary.model_dump_json(indent=2))
        return
    counts = ", ".join(f"{v} {k}" for k, v in sorted(summary.units.items()))
    out.print(
        f"job {summary.job_id} ({'resumed' if summary.resumed else 'new'}) {summary.status}: {counts}; "
        f"{summary.attempts} attempts, {summary.llm_calls} LLM calls ({summary.llm_cached} from cache), "
        f"${summary.cost_usd:.4f}"
    )
    if summary.message:
        err.print(f"[red]{escape(summary.message)}[/]")
    if summary.status != "done":
        err.print(f"resume with: autoform run {escape(again)}", highlight=False)


def _job_exit_code(summary: JobSummary) -> int:
    return 0 if summary.status == "done" else stopped_exit_code(summary.stop_reason)


# ---------------------------------------------------------------------------------------------- status
@app.command()
def status(
    book: Annotated[str | None, typer.Argument(help="book slug (default: all)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="every column, whatever the terminal's width")] = False,
    units: Annotated[
        bool, typer.Option("--units", help="a row per unit: how it was closed and what it cost (needs BOOK)")
    ] = False,
) -> None:
    """Progress and cost per book: units, jobs (units in flight, attempts, cost, rate, ETA). The table shows the
    columns that fit the terminal, most needed first; --wide shows all of them, --json everything. With BOOK
    --units: each unit, how it was closed and what it cost."""
    s = settings()
    store = open_store(s, readonly=True)
    if units:
        if book is None:
            raise UsageError("--units needs a BOOK: `autoform status BOOK --units`")
        _unit_status(store, s, get_book(store, book), as_json=as_json, wide=wide)
        return
    books = [get_book(store, book)] if book else store.books()
    report = [_book_status(store, s, b) for b in books]
    if as_json:
        print(json.dumps(report if book is None else report[0], indent=2))
        return
    from autoform.tables import fitted_table, natural_width

    rows = [_status_row(r) for r in report]
    table = fitted_table("autoform status", STATUS_HEADERS, rows, STATUS_PRIORITY, out.size.width, wide=wide)
    # --wide: the whole table at its natural width (a pager or a wide terminal shows it; nothing is cut)
    (Console(width=natural_width(STATUS_HEADERS, rows)) if wide else out).print(table)


StatusReport = dict[str, Any]  # one book's status, as `autoform status --json` prints it

UNIT_HEADERS = ("unit", "status", "closed by", "LLM calls (cached)", "tokens", "cost", "Lean checks", "Lean s")
#: the unit, its state and its cost first
UNIT_PRIORITY = (0, 1, 5, 2, 3, 6, 4, 7)


def _unit_status(store: Store, s: Settings, b: Book, *, as_json: bool, wide: bool) -> None:
    """``status BOOK --units``: a row per unit (``--json``: the book, its totals and the units)."""
    from autoform.tables import fitted_table, natural_width
    from autoform.unit_cost import unit_costs

    costs = unit_costs(store, s, b)
    if as_json:
        total = {
            "llm_calls": sum(c.llm_calls for c in costs),
            "tokens": sum(c.tokens for c in costs),
            "cost_usd": round(sum(c.cost_usd for c in costs), 6),
            "lean_checks": sum(c.lean_checks for c in costs),
        }
        print(json.dumps({"book": b.slug, "total": total, "units": [c.model_dump() for c in costs]}, indent=2))
        return
    rows = [
        (
            c.unit,
            c.status,
            c.closed_by_label or "-",
            f"{c.llm_calls} ({c.cached_calls})",
            f"{c.tokens:,}",
            f"${c.cost_usd:.4f}",
            str(c.lean_checks),
            f"{c.lean_s:.1f}",
        )
        for c in costs
    ]
    table = fitted_table(f"{b.slug}: units", UNIT_HEADERS, rows, UNIT_PRIORITY, out.size.width, wide=wide)
    (Console(width=natural_width(UNIT_HEADERS, rows)) if wide else out).print(table)


STATUS_HEADERS = (
    "book",
    "proved",
    "defined",
    "stated",
    "failed",
    "pending",
    "in flight",
    "jobs",
    "attempts",
    "LLM calls (cached)",
    "Lean checks (cache hits)",
    "cost",
    "rate /min",
    "ETA",
    "reviewed",
)
#: at a glance first: what is done, what failed, what is left, the job and what it cost; the rest where it fits
STATUS_PRIORITY = (0, 1, 4, 5, 7, 11, 13, 3, 2, 6, 8, 9, 12, 10, 14)


def _book_status(store: Store, s: Settings, b: Book) -> StatusReport:
    from autoform.jobs import job_status, unit_counts
    from autoform.jobs.report import people_report

    jobs = [job_status(store, s, j) for j in store.jobs(b.id)]
    running = [j for j in jobs if j["alive"]]
    return {
        "book": b.slug,
        "units": unit_counts(store, b.id),
        "atlas_entries": len(store.atlas_entries(b.id)),
        "closed_by": store.closed_by(b.id),
        "jobs": jobs,
        "llm": store.llm_usage(b.id),
        "cost_usd": round(sum(j["cost_usd"] for j in jobs), 6),
        "attempts": sum(j["attempts"] for j in jobs),
        "in_flight": running[-1]["in_flight"] if running else [],
        "rate_units_per_min": jobs[-1]["rate_units_per_min"] if jobs else 0.0,
        "eta_s": jobs[-1]["eta_s"] if jobs else None,
        "people": people_report(store, b),
    }


def _status_row(r: StatusReport) -> tuple[str, ...]:
    """One book's row of the status table (the columns of :data:`STATUS_HEADERS`)."""
    u = r["units"]
    jobs = r["jobs"]
    last = jobs[-1]["status"] + (" [alive]" if jobs[-1]["alive"] else "") if jobs else "-"
    lean = jobs[-1]["lean"] if jobs else {"checks": 0, "cache_hits": 0, "hit_rate": 0.0}
    eta = f"{r['eta_s'] / 60:.0f} min" if r["eta_s"] is not None else "-"
    return (
        r["book"],
        str(u.get(UnitStatus.PROVED, 0)),
        str(u.get(UnitStatus.DEFINED, 0)),
        str(u.get(UnitStatus.STATED, 0)),
        str(u.get(UnitStatus.FAILED, 0)),
        str(u.get(UnitStatus.PENDING, 0) + u.get(UnitStatus.WORKING, 0)),
        str(len(r["in_flight"])),
        f"{len(jobs)} (last {last})",
        str(r["attempts"]),
        f"{r['llm']['calls']} ({r['llm']['cached']})",
        f"{lean['checks']} ({lean['cache_hits']}, {lean['hit_rate']:.0%})",
        f"${r['cost_usd']:.4f}",
        f"{r['rate_units_per_min']:.2f}",
        eta,
        f"{r['people']['reviewed']}/{r['people']['atlas_entries']}",
    )


# ------------------------------------------------------------------------------------------ transcript
@app.command()
def transcript(
    book: Annotated[str, typer.Argument(help="book slug")],
    unit: Annotated[str, typer.Argument(help="unit id, label (e.g. thm:main) or number (e.g. 2.3)")],
    job: Annotated[int | None, typer.Option("--job", help="only this job")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object with every entry")] = False,
) -> None:
    """Everything that happened to one unit, in order: prompts, replies, Lean verdicts, blackboard posts."""
    from autoform.transcript import find_unit, render_text, unit_transcript

    s = settings()
    store = open_store(s, readonly=True)
    b = get_book(store, book)
    u = find_unit(store, b, unit)
    if u is None:
        raise UsageError(
            f"no unit {unit!r} in {book} (give its id, label or number; `autoform units {book}` lists them)"
        )
    t = unit_transcript(store, u, job_id=job, settings=s)
    if as_json:
        print(t.model_dump_json(indent=2))
    else:
        print(render_text(t), end="")


# ------------------------------------------------------------------------------------- backup, restore
@app.command()
def backup(
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="the backup file (default: backups/autoform-<time>.sqlite in the workspace)"),
    ] = None,
) -> None:
    """Copy the store with SQLite's online backup API (safe while a job runs); `autoform restore FILE` puts a
    copy back."""
    import time

    s = settings()
    store = open_store(s, readonly=True)  # checked on open: a damaged store is not copied over a good backup
    target = out_file or s.home / "backups" / time.strftime("autoform-%Y%m%d-%H%M%S.sqlite")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        store.backup(target)
    except OSError as e:
        raise MissingError(f"{target}: cannot write the backup: {e.strerror or e}") from e
    except sqlite3.Error as e:
        raise MissingError(f"{target}: the backup failed: {e}") from e
    out.print(
        f"backup of {escape(str(s.db_path))} written to {escape(str(target))} ({target.stat().st_size} bytes)",
        soft_wrap=True,
    )


@app.command()
def restore(
    backup_file: Annotated[Path, typer.Argument(help="a file written by `autoform backup`")],
) -> None:
    """Replace the workspace's store by a backup (checked first); the store it replaces is kept beside it as
    autoform.sqlite.replaced-<time>."""
    import time

    from autoform.store import Store, StoreError

    s = settings()
    if not backup_file.is_file():
        raise UsageError(f"{backup_file}: no such file")
    try:
        src = Store(backup_file, readonly=True)
    except StoreError as e:
        raise UsageError(f"{backup_file}: not a usable backup: {e}") from e
    s.db_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = s.db_path.with_name(s.db_path.name + ".restoring")
    try:
        src.backup(tmp)
        src.close()
        kept = None
        if s.db_path.exists():
            kept = s.db_path.with_name(f"{s.db_path.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
            s.db_path.replace(kept)
        for suffix in ("-wal", "-shm"):  # the replaced store's log must not be replayed onto the backup
            s.db_path.with_name(s.db_path.name + suffix).unlink(missing_ok=True)
        tmp.replace(s.db_path)
    except (OSError, sqlite3.Error) as e:
        tmp.unlink(missing_ok=True)
        raise MissingError(f"{s.db_path}: cannot restore: {e}") from e
    out.print(
        f"restored {escape(str(s.db_path))} from {escape(str(backup_file))}"
        + (f"; the replaced store is kept as {escape(kept.name)}" if kept else ""),
        soft_wrap=True,
    )


# ----------------------------------------------------------------------------------------------- check
@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="a Lean file")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run the admission gate on a Lean file and print the verdict with each reason.

    The pre-screen runs first and needs no Lean: a file it refuses is rejected (exit 1) even where Lean is
    missing; only a file that passes it needs Lean (exit 3 when Lean is absent)."""
    from autoform.lean import make_oracle
    from autoform.lean.gate import check_file, screen_file
    from autoform.lean.oracle import OracleUnavailable

    if not file.is_file():
        raise UsageError(f"{file}: no such file")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{file}: not UTF-8 ({e})") from e
    s = settings()
    verdict = screen_file(text, header=s.lean.header)
    if verdict is None:
        oracle = make_oracle(s)
        try:
            oracle.start()
        except OracleUnavailable as e:
            raise MissingError(f"{file} passes the pre-screen; Lean is needed to judge it further: {e}") from e
        try:
            verdict = check_file(text, oracle, header=s.lean.header)
        finally:
            oracle.close()
    if as_json:
        print(json.dumps({"file": str(file), **verdict.model_dump(exclude={"module"})}, indent=2))
    else:
        word, colour = ("ADMITTED", "green") if verdict.admitted else ("REJECTED", "red")
        out.print(f"{escape(str(file))}: [{colour}]{word}[/]")
        for r in verdict.reasons:
            out.print(escape(f"  - [{r.code}] {r.message}"), highlight=False)
        if verdict.axioms is not None:
            out.print(f"  axioms: {', '.join(verdict.axioms) or 'none'}")
    if not verdict.admitted:
        raise typer.Exit(EXIT_FAIL)


# ----------------------------------------------------------------------------------------------- atlas
@atlas_app.command("write")
def atlas_write() -> None:
    """Regenerate atlas/ from the store (deterministic; unchanged files are not touched)."""
    from autoform.atlas import write_atlas

    s = settings()
    changed = write_atlas(open_store(s), s)
    out.print(f"{len(changed)} file(s) changed under {s.atlas_dir}")


@atlas_app.command("build")
def atlas_build() -> None:
    """Write the Atlas and build it with `lake build` (the result is recorded in the store)."""
    from autoform.atlas import build_atlas, write_atlas
    from autoform.lean.lake import lake_problem

    s = settings()
    store = open_store(s)
    problem = lake_problem(s)
    if problem and "not found" in problem:
        raise MissingError(problem)
    if not (s.home / "lakefile.lean").exists():
        raise UsageError(
            f"{s.home} has no lakefile.lean: run `autoform --home {s.home} init` (it writes one that shares the "
            "repository's Mathlib), or work from the repository root"
        )
    write_atlas(store, s)
    ok, output = build_atlas(store, s)
    out.print(escape(output[-3000:]), highlight=False)
    if not ok:
        raise AutoformError("lake build failed")
    out.print("[green]Atlas built[/]; auditing it in a fresh Lean process")
    _audit(store, s, as_json=False)


def _audit(store: Store, s: Settings, *, as_json: bool) -> None:
    """Run the audit of the built Atlas, print it, and exit non-zero unless it is clean."""
    from autoform.lean.audit import audit_atlas

    report = audit_atlas(store, s)
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        for f in report.findings:
            out.print(escape(f"  - [{f.code}] {f.where}: {f.message}"), highlight=False)
        if report.failure:
            out.print(escape(f"  audit could not finish: {report.failure}"), highlight=False)
    if report.failure and "not found" in report.failure:
        raise typer.Exit(EXIT_MISSING)
    if not report.ok:
        if not as_json:
            err.print(
                f"audit failed: {len(report.findings)} finding(s) in {report.checked} declaration(s)"
                + (f"; {report.failure}" if report.failure else "")
            )
        raise typer.Exit(EXIT_FAIL)
    if not as_json:
        out.print(
            f"[green]audit clean[/]: {report.checked} declaration(s), only standard axioms, every type the locked one"
        )


@atlas_app.command("audit")
def atlas_audit(as_json: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False) -> None:
    """Audit the built Atlas in a fresh Lean process: every module passes the pre-screen, every declaration's
    axioms are the standard ones and its type the locked one in the store."""
    s = settings()
    _audit(open_store(s, readonly=True), s, as_json=as_json)


@atlas_app.command("site")
def atlas_site(
    out_dir: Annotated[Path, typer.Option("--out", help="output directory")] = Path("site"),
) -> None:
    """Write the static HTML site of the Atlas."""
    from autoform.site import build_site

    s = settings()
    summary = build_site(open_store(s, readonly=True), out_dir, s)
    out.print(f"site written to {out_dir} ({summary.pages} pages, {summary.units} units)")


@atlas_app.command("serve")
def atlas_serve(
    directory: Annotated[Path, typer.Option("--dir", help="the site directory")] = Path("site"),
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """Serve the site on localhost (only the site's folder)."""
    from autoform.site import serve_site

    if not (directory / "index.html").exists():
        raise UsageError(f"{directory} holds no site; run `autoform atlas site --out {directory}` first")
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]warning:[/] binding to {escape(host)} makes the site reachable from other machines")
    try:
        serve_site(directory, host=host, port=port)  # prints the address it serves on
    except OSError as e:
        raise UsageError(f"cannot serve on {host}:{port}: {e}") from e


@atlas_app.command("blueprint")
def atlas_blueprint(
    out_dir: Annotated[
        Path, typer.Option("--out", help="the blueprint/ folder (a complete one is made where none exists)")
    ] = Path("blueprint"),
    book: Annotated[str | None, typer.Option("--book", help="only this book (default: all)")] = None,
) -> None:
    """Export a Lean Blueprint (LaTeX with \\lean, \\leanok, \\uses) generated from the store."""
    from autoform.blueprint import export_blueprint

    s = settings()
    store = open_store(s)
    books = [get_book(store, book)] if book else None
    summary = export_blueprint(store, out_dir, books, repo_root=s.home)
    out.print(
        f"blueprint {summary.layout} in {escape(str(out_dir))}: {summary.units} units, {summary.leanok} in Lean "
        f"({', '.join(summary.written)})",
        soft_wrap=True,
    )
    for note in summary.notes:
        err.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)


@atlas_app.command("dataset")
def atlas_dataset(
    out_file: Annotated[Path, typer.Option("--out", help="output file (JSON Lines)")] = Path("atlas.jsonl"),
    book: Annotated[str | None, typer.Option("--book", help="only this book (default: all)")] = None,
    include_unproved: Annotated[
        bool,
        typer.Option(
            "--include-unproved",
            help="add units whose locked statement elaborated but were not proved "
            "(status statement_only, no lean_code)",
        ),
    ] = False,
    trace: Annotated[
        bool,
        typer.Option(
            "--trace",
            help="add LeanDojo's tactic states and premises of the Atlas (needs .\\[dojo], lake, the "
            "network, the workspace at the git top level with atlas/ committed)",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Export the Atlas as a dataset: informal statement and proof paired with what Lean checked."""
    from autoform.dataset import export_dataset

    s = settings()
    store = open_store(s)
    books = [get_book(store, book)] if book else None
    try:
        summary = export_dataset(store, s, out_file, books=books, include_unproved=include_unproved, trace=trace)
    except OSError as e:
        raise UsageError(f"{out_file}: {e}") from e
    if as_json:
        print(summary.model_dump_json())
        return
    counts = ", ".join(f"{n} {k}" for k, n in sorted(summary.by_status.items())) or "nothing admitted yet"
    out.print(
        f"dataset written to {escape(summary.path)}: {summary.records} records ({counts})"
        + (f", {summary.traced} traced" if trace else ""),
        soft_wrap=True,
    )


@atlas_app.command("docs")
def atlas_docs(
    fetch: Annotated[bool, typer.Option("--fetch", help="download doc-gen4 first if needed (needs GitHub)")] = False,
) -> None:
    """Build the Atlas's doc-gen4 pages (in docbuild/, doc-gen4's nested-project set-up)."""
    from autoform.atlas import build_docs

    s = settings()
    result = build_docs(open_store(s), s, fetch=fetch)
    if result.output:
        out.print(escape(result.output[-3000:]), highlight=False)
    if not result.ok:
        raise CommandError(result.message, EXIT_MISSING if result.state in ("no-lake", "no-docgen") else EXIT_FAIL)
    out.print(f"[green]{escape(result.message)}[/]", soft_wrap=True)


def _leave_now(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C while autoform starts or ends: nothing is half-done (every step is a transaction), leave with the
    documented code for interrupted work instead of letting a KeyboardInterrupt escape (the process would end
    with -2 and a traceback)."""
    os._exit(EXIT_FAIL)


def main() -> None:
    """The ``autoform`` entry point: runs the command and maps what escapes it to one line and an exit code (an
    :class:`~autoform.errors.AutoformError` exits with its class's code; an SQLite error names the store)."""
    from autoform.store import StoreError

    signal.signal(signal.SIGINT, signal.default_int_handler)  # the command's own time: KeyboardInterrupt
    code: int = 0
    try:
        app()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_FAIL)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, _leave_now)
        err.print("interrupted")
        code = EXIT_FAIL
    except (sqlite3.Error, StoreError) as e:  # never a traceback: name the store and what to do
        message, code = store_error_message(e, state.db_path or "the store")
        print_error(message)
    except AutoformError as e:
        code = report_error(e, err)
    finally:
        signal.signal(signal.SIGINT, _leave_now)  # ending (threads joined at exit): a Ctrl-C only hurries it
    sys.exit(code)


# ----------------------------------------------------------------------------------------------- mathlib
def _mathlib_index(s: Settings) -> MathlibIndex:
    from autoform.mathlib.index import MathlibIndex

    path = s.mathlib_index_path
    if not path.exists():
        raise MissingError(f"no Mathlib index at {path}: run `autoform mathlib index` (it reads {s.mathlib_source})")
    return MathlibIndex(path)


@mathlib_app.command("index")
def mathlib_index(
    source: Annotated[Path | None, typer.Option(help="a Mathlib checkout (default: the one Lake fetched)")] = None,
    force: Annotated[bool, typer.Option(help="rebuild even if the source is unchanged")] = False,
    workers: Annotated[int, typer.Option(help="processes reading the source")] = 2,
    from_lean: Annotated[bool, typer.Option("--from-lean", help="read Lean's environment (needs Lean)")] = False,
    root: Annotated[list[str] | None, typer.Option("--root", help="with --from-lean: modules to import")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Build the declaration index of Mathlib from its source (no Lean run), and of the Atlas; rebuilt only when
    the source changed. With --from-lean, from Lean's own environment."""
    import time

    from autoform.mathlib.from_lean import build_from_lean
    from autoform.mathlib.index import MathlibIndex, build, dependency_sources

    s = settings()
    src = (source or s.mathlib_source).expanduser()
    if not src.is_dir() and not from_lean:
        raise MissingError(
            f"{src}: no Mathlib source there. Run scripts/setup.sh (Lake fetches Mathlib into "
            f"{s.mathlib_source}), or pass --source DIR"
        )
    t0 = time.monotonic()
    index = MathlibIndex(s.mathlib_index_path)
    try:
        if from_lean:
            roots = root or ["Mathlib"]
            n, rebuilt = build_from_lean(index, s, roots=roots, source=src, workers=max(1, workers)), True
        else:
            n, rebuilt = build(index, src, workers=max(1, workers), force=force)
        deps_n = sum(  # Batteries and Lean's own library, where present: a name check must know them too
            build(index, d, workers=max(1, workers), origin=o, force=force)[0]
            for o, d in dependency_sources(src, s.lean_project)
        )
        atlas_n = 0
        if s.atlas_dir.is_dir() and any(s.atlas_dir.rglob("*.lean")):
            atlas_n, _ = build(index, s.atlas_dir, workers=1, origin="atlas", force=force)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from e
    finally:
        index.close()
    report = {
        "index": str(s.mathlib_index_path),
        "source": str(src),
        "declarations": n,
        "dependency_declarations": deps_n,
        "atlas_declarations": atlas_n,
        "rebuilt": rebuilt,
        "seconds": round(time.monotonic() - t0, 1),
    }
    if as_json:
        print(json.dumps(report))
    else:
        out.print(
            f"{n} Mathlib declarations ({'rebuilt' if rebuilt else 'unchanged'}), {deps_n} of Batteries and Lean's "
            f"library, and {atlas_n} of the Atlas "
            f"in {s.mathlib_index_path} ({report['seconds']} s)"
        )


@mathlib_app.command("search")
def mathlib_search(
    query: Annotated[str | None, typer.Argument(help="a name, a Lean expression or informal text")] = None,
    k: Annotated[int, typer.Option("-k", help="how many results")] = 10,
    batch: Annotated[Path | None, typer.Option(help="a file of queries, one a line: JSON Lines out")] = None,
    embeddings: Annotated[bool, typer.Option("--embeddings", help="fuse in the endpoint's embeddings")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Rank Mathlib's declarations for a query (Mathlib's naming conventions understood)."""
    from autoform.mathlib.search import Embedder, fused_search
    from autoform.mathlib.search import search as lexical

    if (query is None) == (batch is None):
        raise UsageError("give a QUERY or --batch FILE (one of them)")
    s = settings()
    index = _mathlib_index(s)
    embed: Embedder | None = None
    if embeddings:
        from autoform.llm import LLMClient

        llm, model = LLMClient(s, open_store(s, create=True)), s.attention.embedding_model

        def embed(texts: list[str]) -> list[list[float]]:
            return llm.embed(texts, model)

    def search(index: MathlibIndex, q: str, *, k: int) -> list[Hit]:
        return lexical(index, q, k=k) if embed is None else fused_search(index, q, embed, k=k)

    try:
        if batch is not None:
            if not batch.is_file():
                raise UsageError(f"{batch}: no such file")
            for line in batch.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    hits = search(index, line.strip(), k=k)
                    print(
                        json.dumps({"query": line.strip(), "results": [_hit_json(h) for h in hits]}, ensure_ascii=False)
                    )
            return
        hits = search(index, query or "", k=k)
    finally:
        index.close()
    if as_json:
        print(json.dumps({"query": query, "results": [_hit_json(h) for h in hits]}, ensure_ascii=False))
        return
    if not hits:
        out.print("no match")
    for h in hits:
        out.print(f"[bold]{escape(h.name)}[/] [dim]{h.kind} · {escape(h.module)} · {h.score:.2f}[/]")
        out.print(f"    {escape(h.signature[:160])}", highlight=False)


def _index_atlas(s: Settings) -> None:
    """Where the Mathlib index exists, the Atlas's own declarations are indexed with it before a job (a later
    book's agents find what earlier books proved), and the workspace's Mathlib again if its revision changed;
    only what changed, and never fatal."""
    if not s.job.grounding or not s.mathlib_index_path.is_file() or not s.atlas_dir.is_dir():
        return
    from autoform.mathlib.index import MathlibIndex, build, follow_source

    index = MathlibIndex(s.mathlib_index_path)
    try:
        if follow_source(index, s.mathlib_source):  # Mathlib's revision changed: the index follows it
            err.print(f"Mathlib changed: its index was rebuilt ({index.count('mathlib')} declarations)")
        if any(s.atlas_dir.rglob("*.lean")):
            build(index, s.atlas_dir, workers=1, origin="atlas")
    except (OSError, sqlite3.Error) as e:
        err.print(escape(f"warning: the Atlas was not indexed for the agents ({e})"), highlight=False)
    finally:
        index.close()


def _hit_json(h: Hit) -> dict[str, str | float]:
    return {"name": h.name, "kind": h.kind, "signature": h.signature, "module": h.module, "score": h.score}


@mathlib_app.command("name")
def mathlib_name(
    name: Annotated[str, typer.Argument(help="a declaration name")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Does NAME exist in Mathlib? Deprecated (and what replaces it)? Else the nearest existing names. Exit 1
    when it does not exist."""
    from autoform.mathlib.search import lookup

    s = settings()
    index = _mathlib_index(s)
    try:
        ans = lookup(index, name)
    finally:
        index.close()
    if as_json:
        print(ans.model_dump_json())
    elif ans.status == "exists" and ans.hit is not None:
        out.print(f"[green]{escape(name)}[/] exists: {ans.hit.kind} in {escape(ans.hit.module)}")
        out.print(f"    {escape(ans.hit.signature[:200])}", highlight=False)
    elif ans.status == "deprecated":
        out.print(f"[yellow]{escape(name)}[/] is deprecated" + (f": use {escape(ans.current)}" if ans.current else ""))
    else:
        out.print(
            f"[red]{escape(name)}[/] does not exist"
            + (f"; nearest: {escape(', '.join(ans.nearest))}" if ans.nearest else "")
        )
    if ans.status == "unknown":
        raise typer.Exit(EXIT_FAIL)


# ------------------------------------------------------------------------------------------------ eval
@app.command("eval")
def eval_cmd(
    target: Annotated[list[str], typer.Argument(help="BENCH.jsonl, or: compare A B (two --out directories)")],
    limit: Annotated[int | None, typer.Option("--limit", help="the first N problems")] = None,
    split: Annotated[str | None, typer.Option("--split", help="only problems of this split")] = None,
    out_dir: Annotated[str | None, typer.Option("--out", help="the evaluation's directory")] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", help="problems in flight")] = None,
    max_attempts: Annotated[int | None, typer.Option("--max-attempts", help="attempts per problem and stage")] = None,
    budget_usd: Annotated[
        float | None, typer.Option("--budget-usd", help="stop new work past this cost (the whole evaluation's)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    prove_reference: Annotated[
        bool, typer.Option("--prove-reference", help="also prove each reference statement, locked as given")
    ] = False,
    executor: Annotated[str, typer.Option("--executor", help="local (threads) or ray (a Ray cluster)")] = "local",
    address: Annotated[str | None, typer.Option("--address", help="Ray cluster address (with --executor ray)")] = None,
    ray_workers: Annotated[int | None, typer.Option("--ray-workers", help="unit workers on the Ray cluster")] = None,
) -> None:
    """Measure the pipeline on a benchmark with reference statements (Lean decides equivalence and proofs)."""
    from autoform.cli_eval import EvalOptions, eval_command

    opts = EvalOptions(
        limit, split, out_dir, jobs, max_attempts, budget_usd, as_json, prove_reference, executor, address, ray_workers
    )
    code = eval_command(settings(), target, opts, out=out, err=err)
    if code:
        raise typer.Exit(code)


cli_people.register(app, cli_people.CliHooks(settings, open_store, get_book, parse_unit_budget, out))

if __name__ == "__main__":
    main()
