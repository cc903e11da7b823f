"""autoform's error hierarchy: every error the CLI reports as one line derives from :class:`AutoformError`, and
its class says the exit code, so the CLI maps errors in one place (:func:`autoform.cli.main`).

Exit codes: 0 success; 1 the work ran and failed (a rejected candidate, a failed build); 2 bad input or usage (a
file, an argument, the configuration, a damaged store); 3 something needed is missing or unreachable (Lean, the
model endpoint, a tool, a writable disk).
"""

from __future__ import annotations

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_MISSING = 0, 1, 2, 3


class AutoformError(Exception):
    """An error with a message meant for the user; ``exit_code`` is what the CLI exits with."""

    exit_code: int = EXIT_FAIL


class UsageError(AutoformError):
    """Bad input: a file, an argument or the configuration; the message names it and what to change."""

    exit_code = EXIT_USAGE


class MissingError(AutoformError):
    """Something the command needs is missing or unreachable (Lean, the LLM endpoint, a tool, a writable disk);
    the message says what and how to get it."""

    exit_code = EXIT_MISSING
