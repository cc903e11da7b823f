"""How an error that reaches the command line is reported: one ``error:`` line (or one ``missing:`` line per
missing part) and the exit code its class carries (:mod:`autoform.errors`); :func:`autoform.cli.main` is the one
place that calls :func:`report_error`. Also the exit code of a job that stopped before it was done."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from autoform.errors import EXIT_FAIL, EXIT_MISSING, EXIT_USAGE, AutoformError, MissingError

#: the stop reasons of an unfinished job that mean something needed went missing (exit 3); any other exits 1
MISSING_STOPS = ("llm", "lean", "store", "worker")


class CommandError(AutoformError):
    """A command's own one-line error whose exit code the command decides (e.g. a store that cannot be opened,
    reported with the store's own message rather than as a failed write)."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class MissingParts(MissingError):
    """Things a command needs are missing (the LLM, Lean): each is reported on a ``missing:`` line of its own,
    then ``advice``."""

    def __init__(self, problems: list[str], advice: str = "") -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.advice = advice


def print_error(message: str, console: Console) -> None:
    """The one-line ``error:`` report (one line, for grep)."""
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def report_error(e: AutoformError, console: Console) -> int:
    """Print an error that reached the command line; the exit code its class carries."""
    if isinstance(e, MissingParts):
        for p in e.problems:
            console.print(f"[bold red]missing:[/] {escape(p)}", highlight=False)
        if e.advice:
            console.print(e.advice)
    else:
        print_error(str(e), console)
    return e.exit_code


def stopped_exit_code(stop_reason: str | None) -> int:
    """The exit code of a job (or evaluation) that stopped before it was done."""
    return EXIT_MISSING if stop_reason in MISSING_STOPS else EXIT_FAIL
