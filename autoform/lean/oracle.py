"""The Lean oracle: compiles Lean text with a real Lean 4 toolchain and reports what Lean said.

The oracle never decides admission (that is :mod:`autoform.lean.gate`); it returns Lean's own messages,
sorries and, when Lean did not answer (timeout, crash, garbage), a ``failure`` that the gate treats as a
rejection. Two production backends share one interface:

* :class:`autoform.lean.repl_pool.ReplPool` drives community Lean REPL processes through lean-interact: each
  imports the header once and checks many candidates in that environment;
* :class:`autoform.lean.lake.LakeFileOracle` writes the module to a file in the Lean project and runs
  ``lake env lean --json``;
* :class:`autoform.lean.kimina.KiminaOracle` asks a remote Kimina Lean Server (a verification cluster).

:class:`autoform.lean.cache.CachedOracle` answers identical checks from the store.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from autoform.errors import MissingError


class OracleUnavailable(MissingError):
    """Lean cannot be started here; the message says what is missing and how to get it."""


class LeanMessage(BaseModel):
    """One message of Lean's, at a position relative to the text it was checked in (frozen: a copy moves it)."""

    model_config = ConfigDict(frozen=True)

    severity: str
    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None
    text: str

    def shifted(self, lines: int) -> LeanMessage:
        """This message ``lines`` lines further up (positions relative to a text that starts later)."""
        end = None if self.end_line is None else self.end_line - lines
        return self.model_copy(update={"line": self.line - lines, "end_line": end})


class SorryInfo(BaseModel):
    """A ``sorry`` Lean reported: where it is, its goal and the proof state that tactic mode can resume."""

    model_config = ConfigDict(frozen=True)

    line: int | None = None
    column: int | None = None
    goal: str = ""
    proof_state: int | None = None

    def shifted(self, lines: int) -> SorryInfo:
        return self if self.line is None else self.model_copy(update={"line": self.line - lines})


class LeanCheck(BaseModel):
    """What one Lean run said about one piece of Lean text (positions relative to that text).

    ``answers``: for each query passed to :meth:`Oracle.check`, the messages of that query's own command, run on
    the environment the text produced (positions relative to the query); None when no query was asked.

    Frozen: a backend that adds what it knows (time, backend, toolchain) makes a copy (:meth:`stamped`)."""

    model_config = ConfigDict(frozen=True)

    messages: list[LeanMessage] = Field(default_factory=list)
    sorries: list[SorryInfo] = Field(default_factory=list)
    answers: list[list[LeanMessage]] | None = None
    env: int | None = None
    failure: str | None = None
    elapsed_s: float = 0.0
    backend: str = ""
    toolchain: str = ""

    @property
    def errors(self) -> list[LeanMessage]:
        return [m for m in self.messages if m.severity == "error"]

    @property
    def answered(self) -> bool:
        return self.failure is None

    def shifted(self, lines: int) -> LeanCheck:
        """Positions ``lines`` lines further up: relative to the candidate's own text, not to a prefix before it."""
        if not lines:
            return self
        return self.model_copy(
            update={
                "messages": [m.shifted(lines) for m in self.messages],
                "sorries": [x.shifted(lines) for x in self.sorries],
            }
        )

    def stamped(self, *, elapsed_s: float, backend: str, toolchain: str = "") -> LeanCheck:
        """This result with the backend's own facts: the wall time of the whole check, which backend, which Lean."""
        return self.model_copy(update={"elapsed_s": elapsed_s, "backend": backend, "toolchain": toolchain})


class Oracle(Protocol):
    backend: str
    toolchain: str

    def start(self) -> None: ...

    def check(
        self,
        code: str,
        *,
        header: str | None = None,
        timeout_s: float | None = None,
        context_lines: int = 0,
        queries: Sequence[str] = (),
    ) -> LeanCheck:
        """Lean's messages on ``code`` (in the environment of ``header``), with lines relative to ``code``.

        ``queries``: commands (``#print axioms X``, ``#check``) run after ``code``, each on the environment
        ``code`` produced and each answered with its own messages only (``LeanCheck.answers``), never mixed
        with what ``code`` itself logged. A backend that cannot keep them apart must say so in its docs.

        ``context_lines``: the first lines of ``code`` are a self-contained block shared by many checks (the
        admitted dependencies); the rest is self-contained on top of it. A backend may elaborate that block
        once and check the rest in its environment (the REPL pool does); the verdict must be the same as for
        the whole text, which is what a backend that ignores the hint checks."""
        ...

    def close(self) -> None: ...


class OracleWrapper:
    """An oracle around another (``inner``): its backend, toolchain, start and close are the inner one's; a
    subclass changes ``check`` (the result cache, the header prefix of an evaluation)."""

    def __init__(self, inner: Oracle) -> None:
        self.inner = inner

    @property
    def backend(self) -> str:
        return self.inner.backend

    @property
    def toolchain(self) -> str:
        return self.inner.toolchain

    def start(self) -> None:
        self.inner.start()

    def close(self) -> None:
        self.inner.close()


#: ``lean --json`` writes Lean's ``MessageSeverity`` as ``information``; the REPL writes ``info``
_SEVERITY = {"information": "info", "info": "info", "warning": "warning", "error": "error"}


def severity(value: str) -> str:
    """Lean's message severity in one spelling (``info``, ``warning``, ``error``); an unknown one is kept."""
    return _SEVERITY.get(value, value)


def parse_repl_reply(reply: dict[str, Any]) -> LeanCheck:
    """Turn one JSON reply of the Lean REPL into a :class:`LeanCheck` (parsed once, here, at the edge)."""
    if not isinstance(reply, dict):
        return LeanCheck(failure=f"unparseable REPL reply: {reply!r:.200}")
    if set(reply) == {"message"}:  # the REPL's own error (unknown env, bad JSON, ...)
        return LeanCheck(failure=f"Lean REPL error: {reply['message']}")
    try:
        msgs = [
            LeanMessage(
                severity=severity(m["severity"]),
                line=m["pos"]["line"],
                column=m["pos"]["column"],
                end_line=(m.get("endPos") or {}).get("line"),
                end_column=(m.get("endPos") or {}).get("column"),
                text=m["data"],
            )
            for m in reply.get("messages", [])
        ]
        sorries = [
            SorryInfo(
                line=(s.get("pos") or {}).get("line"),
                column=(s.get("pos") or {}).get("column"),
                goal=s.get("goal", ""),
                proof_state=s.get("proofState"),
            )
            for s in reply.get("sorries", [])
        ]
    except (KeyError, TypeError) as e:
        return LeanCheck(failure=f"unparseable REPL reply (missing {e}): {json.dumps(reply)[:200]}")
    env = reply.get("env")
    return LeanCheck(messages=msgs, sorries=sorries, env=env if isinstance(env, int) else None)


def parse_lean_json_lines(output: str, *, line_offset: int = 0) -> LeanCheck:
    """Parse ``lean --json`` output: one JSON message per line. Lines shifted by ``line_offset``."""
    msgs: list[LeanMessage] = []
    for raw in output.splitlines():
        raw = raw.strip()
        if not raw:
            continue
        try:
            m = json.loads(raw)
            pos, end = m["pos"], m.get("endPos") or {}
            msgs.append(
                LeanMessage(
                    severity=severity(m["severity"]),
                    line=pos["line"] - line_offset,
                    column=pos["column"],
                    end_line=(end["line"] - line_offset) if "line" in end else None,
                    end_column=end.get("column"),
                    text=m["data"],
                )
            )
        except (ValueError, KeyError, TypeError):
            return LeanCheck(failure=f"unparseable output from lean --json: {raw[:200]}")
    return LeanCheck(messages=msgs)
