"""One Lean environment per import block, shared by every header built on it.

A benchmark's problems carry Lean headers that differ mostly after their imports: ProofNet-Verified's 367
problems have 60 distinct headers (``import Mathlib`` and a line or two of ``open ...``) over only 5 distinct
import blocks. Importing Mathlib costs seconds to minutes and gigabytes a process, opening a namespace nothing.
So a header is split into its **imports** and its **rest** (opens, options, helper definitions), and:

* one backend oracle (the REPL pool, or the configured backend) is started per import block, with that block as
  its header: each of its processes imports it once (:class:`HeaderOracles`, one block alive at a time);
* every check under a full header goes to that backend as ``rest + code`` with the rest as the shared leading
  block (``context_lines``, :meth:`autoform.lean.oracle.Oracle.check`): the REPL pool elaborates it once per
  process and checks the following texts in its environment (:class:`SharedHeader`). The verdict is the one on
  the whole text, which is what a backend ignoring the hint checks; positions are given back relative to
  ``code``, as if the header had been the process's own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from autoform.config import Settings
from autoform.lean.goals import TacticResult
from autoform.lean.oracle import LeanCheck, Oracle, OracleWrapper


def split_header(header: str) -> tuple[str, str]:
    """``(imports, rest)``: the header's leading ``import`` lines (blank lines and comments among them kept
    out), and everything after them."""
    lines = header.splitlines()
    imports: list[str] = []
    k = 0
    for k, line in enumerate(lines):  # noqa: B007 (k is the first line after the imports)
        s = line.strip()
        if s.startswith("import "):
            imports.append(s)
        elif s and not s.startswith("--"):
            break
    else:
        k = len(lines)
    return "\n".join(imports), "\n".join(lines[k:]).strip("\n")


class SharedHeader(OracleWrapper):
    """An oracle for checks under full headers, on a backend started with their imports only (see the module's
    docstring). ``header``: the default header of a check (the book's). Closing it leaves the backend open: its
    owner (:class:`HeaderOracles`) closes that."""

    def __init__(self, backend: Oracle, header: str) -> None:
        super().__init__(backend)
        self.header = header

    def check(
        self,
        code: str,
        *,
        header: str | None = None,
        timeout_s: float | None = None,
        context_lines: int = 0,
        queries: Sequence[str] = (),
    ) -> LeanCheck:
        imports, rest = split_header(self.header if header is None else header)
        if not rest.strip():
            return self.inner.check(
                code, header=imports, timeout_s=timeout_s, context_lines=context_lines, queries=queries
            )
        prefix = rest + "\n\n"
        shift = prefix.count("\n")
        result = self.inner.check(
            prefix + code,
            header=imports,
            timeout_s=timeout_s,
            context_lines=shift + context_lines,
            queries=queries,
        )
        return result.shifted(shift)

    @contextlib.contextmanager
    def session(self, header: str | None = None, *, timeout_s: float | None = None) -> Iterator[PrefixedSession]:
        """The backend's goal-level session (the REPL's tactic mode, :func:`autoform.lean.goals.tactic_mode`) on
        the imports, each text checked after the header's rest, positions relative to the text."""
        imports, rest = split_header(self.header if header is None else header)
        with self.inner.session(imports, timeout_s=timeout_s) as inner:  # type: ignore[attr-defined]
            yield PrefixedSession(inner, rest + "\n\n" if rest.strip() else "")

    def close(self) -> None:
        pass  # the backend is shared: HeaderOracles closes it


class PrefixedSession:
    """A goal-level session whose texts are checked after ``prefix`` (the header's rest)."""

    def __init__(self, inner: Any, prefix: str) -> None:
        self.inner, self.prefix = inner, prefix

    @property
    def failed(self) -> bool:
        return bool(self.inner.failed)

    def check(self, code: str) -> LeanCheck:
        result: LeanCheck = self.inner.check(self.prefix + code)
        return result.shifted(self.prefix.count("\n"))

    def tactic(self, proof_state: int, tactic: str) -> TacticResult:
        result: TacticResult = self.inner.tactic(proof_state, tactic)
        return result


class HeaderOracles:
    """The backends of an evaluation, one per import block, started on first use; at most one alive at a time
    (problems are run grouped by import block, so each block's environment is started once). ``make_backend``
    builds the configured backend for settings whose ``[lean] header`` is the block. Thread-safe."""

    def __init__(self, settings: Settings, make_backend: Callable[[Settings], Oracle]) -> None:
        self.settings, self.make_backend = settings, make_backend
        self._lock = threading.Lock()
        self._imports: str | None = None
        self._backend: Oracle | None = None
        #: import blocks whose backend was started, in order (the measure of header environments)
        self.started: list[str] = []

    def backend(self, header: str) -> Oracle:
        """The started backend of ``header``'s imports (the previous block's is closed first)."""
        imports, _ = split_header(header)
        with self._lock:
            if self._backend is not None and self._imports == imports:
                return self._backend
            self._close_current()
            lean = self.settings.lean.model_copy(update={"header": imports})
            backend = self.make_backend(self.settings.model_copy(update={"lean": lean}))
            backend.start()  # OracleUnavailable reaches the caller: Lean is missing
            self._imports, self._backend = imports, backend
            self.started.append(imports)
            return backend

    def oracle(self, header: str) -> SharedHeader:
        """An oracle checking under ``header`` by default, on its import block's backend."""
        return SharedHeader(self.backend(header), header)

    def _close_current(self) -> None:
        if self._backend is not None:
            self._backend.close()
        self._backend, self._imports = None, None

    def close(self) -> None:
        with self._lock:
            self._close_current()
