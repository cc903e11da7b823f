"""Goals: what Lean says is left to prove, read from its replies (the REPL's ``sorries`` and tactic mode), and a
goal written as a standalone statement, the way Mathlib's ``extract_goal`` prints it.

A goal, as the REPL reports it (``../shared/data/lean-output/repl-tests/test/have_by_sorry.expected.out``)::

    x : Int
    h : x = 1
    ⊢ x = 1

Hypotheses are ``names : type`` lines (a type may continue on indented lines); an instance hypothesis is
``inst✝ : Group G``; names Lean made inaccessible end with ``✝``. The standalone statement binds every
hypothesis (``(x : Int) (h : x = 1)``, instances as ``[Group G]``, inaccessible names renamed) and states the
goal, so it can be proved on its own and its proof spliced back where the hole was.

**The goals at a failing step** (:func:`failure_goals`): Lean's ``unsolved goals`` error carries the goals left
(``unsolved goals\ncase zero\n⊢ 0 + 1 > 0\n\ncase succ\n...``, repl-tests ``Mathlib/test/H20231115_3``), as
``don't know how to synthesize placeholder`` carries its ``context:``; any other failing tactic (an unknown
identifier, ``linarith failed``) is probed: the text checked again with that tactic replaced by ``sorry``
(:func:`probe_at`), and the hole's goal is the state the tactic ran on. That probe is a command-mode check, so it
works wherever the backend reports holes (the REPL, and Kimina, whose replies carry the REPL's ``sorries``) and
through the result cache; the ``lake`` backend reports no goals (:func:`goal_support` says so).
"""

from __future__ import annotations

import re
import textwrap
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from autoform.lean.oracle import LeanCheck, LeanMessage, Oracle, severity


class Hole(BaseModel):
    """A ``sorry`` in checked text, with the goal it stands for."""

    index: int
    goal: str
    line: int | None = None
    column: int | None = None
    proof_state: int | None = None


class TacticResult(BaseModel):
    """The REPL's reply to a tactic run on a proof state (tactic mode: for exploring only, never admission)."""

    proof_state: int | None = None
    goals: list[str] = Field(default_factory=list)
    messages: list[LeanMessage] = Field(default_factory=list)
    status: str = ""
    failure: str | None = None

    @property
    def solved(self) -> bool:
        return self.failure is None and not self.goals and not any(m.severity == "error" for m in self.messages)


def holes(check: LeanCheck) -> list[Hole]:
    """The holes of checked text, in text order."""
    found = sorted(check.sorries, key=lambda s: (s.line or 0, s.column or 0))
    return [
        Hole(index=k, goal=s.goal, line=s.line, column=s.column, proof_state=s.proof_state) for k, s in enumerate(found)
    ]


def parse_tactic_reply(reply: Any) -> TacticResult:
    """The REPL's reply to ``{"tactic": ..., "proofState": n}``, parsed once, here."""
    if not isinstance(reply, dict):
        return TacticResult(failure=f"unparseable REPL reply: {reply!r:.200}")
    if set(reply) == {"message"}:
        return TacticResult(failure=f"Lean REPL error: {reply['message']}")
    try:
        msgs = [
            LeanMessage(
                severity=severity(m["severity"]), line=m["pos"]["line"], column=m["pos"]["column"], text=m["data"]
            )
            for m in reply.get("messages", [])
        ]
        goals = [str(g) for g in reply.get("goals", [])]
    except (KeyError, TypeError) as e:
        return TacticResult(failure=f"unparseable REPL reply (missing {e})")
    ps = reply.get("proofState")
    return TacticResult(
        proof_state=ps if isinstance(ps, int) else None,
        goals=goals,
        messages=msgs,
        status=str(reply.get("proofStatus", "")),
    )


_HYP = re.compile(r"^(?P<names>[^:⊢]+?) :(?: (?P<type>.*))?$")


def split_goal(goal: str) -> tuple[list[tuple[list[str], str]], str]:
    """``(hypotheses, target)`` of a goal: each hypothesis as (names, type)."""
    hyps: list[tuple[list[str], str]] = []
    target_lines: list[str] = []
    in_target = False
    for raw in goal.splitlines():
        if in_target:
            target_lines.append(raw.strip())
            continue
        if raw.startswith("⊢"):
            in_target = True
            target_lines.append(raw[1:].strip())
            continue
        if raw[:1].isspace() and hyps:  # a type continued on an indented line
            names, ty = hyps[-1]
            hyps[-1] = (names, f"{ty} {raw.strip()}".strip())
            continue
        m = _HYP.match(raw.strip())
        if m:  # a type may start on the next line (``hab :`` then the type, indented)
            hyps.append((m.group("names").split(), (m.group("type") or "").strip()))
    return hyps, " ".join(x for x in target_lines if x)


def standalone(goal: str, name: str) -> str:
    """``theorem name (hyps...) : target``: the goal as a statement of its own (``extract_goal`` style)."""
    hyps, target = split_goal(goal)
    binders: list[str] = []
    used: set[str] = set()
    for names, ty in hyps:
        clean = []
        for n in names:
            if n.endswith("✝"):
                base = n.rstrip("✝") or "h"
                if base.startswith("inst"):
                    clean.append("")  # an instance: bound by [..] below
                    continue
                k = 1
                while f"{base}_{k}" in used:
                    k += 1
                n = f"{base}_{k}"
            used.add(n)
            clean.append(n)
        if all(c == "" for c in clean):
            binders.append(f"[{ty}]")
        else:
            binders.append(f"({' '.join(c for c in clean if c)} : {ty})")
    head = f"theorem {name}" + ("".join(f" {b}" for b in binders))
    return f"{head} : {target}"


# ----------------------------------------------------------------------------- the goals at a failing step
#: what each backend can tell of goals (``goal_support``)
GOAL_SUPPORT = {
    "repl": "holes' goals and proof states (the REPL's `sorries`), tactic mode on a proof state (ReplPool.session)",
    "kimina": "holes' goals (its replies carry the REPL's `sorries`); no tactic mode: Kimina's API has no proof "
    "state handle",
    "lake": "none: `lake env lean --json` reports messages only, no goals, no proof states, no tactic mode",
}


def goal_support(backend: str) -> str:
    """What the backend reports of goals, in one sentence (an unknown backend: the REPL's reply shapes)."""
    return GOAL_SUPPORT.get(backend, GOAL_SUPPORT["repl"])


def reports_goals(backend: str) -> bool:
    return backend != "lake"


def error_goals(text: str) -> list[str]:
    """The goals an error message carries: each goal of ``unsolved goals`` (separated by blank lines), the
    ``context:`` of an unsynthesized placeholder, or the goal block of another tactic's failure."""
    head, _, rest = text.partition("\n")
    if head.startswith("unsolved goals"):
        return [g.strip("\n") for g in re.split(r"\n\s*\n", rest) if "⊢" in g]
    if "\ncontext:\n" in text:
        block = text.split("\ncontext:\n", 1)[1]
        return [block.strip("\n")] if "⊢" in block else []
    if "⊢" not in rest:
        return []
    lines = rest.splitlines()
    start = next((i for i, ln in enumerate(lines) if _HYP.match(ln.strip()) or ln.startswith(("⊢", "case "))), 0)
    end = max(i for i, ln in enumerate(lines) if ln.startswith("⊢"))
    return ["\n".join(lines[start : end + 1])]


def first_error(messages: list[LeanMessage]) -> LeanMessage | None:
    return next((m for m in messages if m.severity == "error"), None)


def probe_at(text: str, line: int) -> str | None:
    """``text`` with the tactic on ``line`` (1-based, and the lines continuing it, indented deeper) replaced by
    ``sorry`` at the same indentation (a bullet kept): the hole then stands where the tactic failed. None when the
    line is not a tactic line of a proof."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines) or not lines[line - 1].strip():
        return None
    raw = lines[line - 1]
    indent = len(raw) - len(raw.lstrip())
    if indent == 0:
        return None  # a declaration's own line: no tactic to replace
    bullet = re.match(r"\s*([·.]\s+)", raw)
    lead = raw[:indent] + (bullet.group(1) if bullet else "")
    end = line
    while end < len(lines) and lines[end].strip() and len(lines[end]) - len(lines[end].lstrip()) > indent:
        end += 1
    return "\n".join([*lines[: line - 1], lead + "sorry", *lines[end:]])


def first_tactic_line(text: str, statement: str) -> int:
    """The line (1-based) of the first tactic of ``statement``'s proof in ``text``; 0 when it is not there."""
    head = statement.rstrip().splitlines()[-1].rstrip() + " := by" if statement.strip() else ""
    lines = text.split("\n")
    return next((i + 2 for i, ln in enumerate(lines) if head and ln.rstrip() == head), 0)


def failure_goals(
    oracle: Oracle, text: str, messages: list[LeanMessage], *, context_lines: int = 0, statement: str = ""
) -> list[str]:
    """The goals where a checked text broke: those its first error carries, else the goal of a ``sorry`` put in
    place of the failing tactic (one more Lean check, for exploring only). Empty when the backend reports no goals,
    the failing line is no tactic, or it is the first tactic of ``statement``'s proof (the state is the statement
    itself, which the agent is shown anyway: no check is spent on it)."""
    err = first_error(messages)
    if err is None:
        return []
    carried = error_goals(err.text)
    if carried or not reports_goals(oracle.backend) or err.line is None:
        return carried
    if statement and err.line == first_tactic_line(text, statement):
        return []
    probe = probe_at(text, err.line)
    if probe is None:
        return []
    hint: dict[str, int] = {"context_lines": context_lines} if 0 < context_lines < err.line else {}
    check = oracle.check(probe, **hint)
    return [h.goal for h in holes(check) if h.line == err.line]


# ------------------------------------------------------------------------------------------ tactic mode
class GoalSession(Protocol):
    """Goal-level steps on one Lean process (:meth:`autoform.lean.repl_pool.ReplPool.session`): text checked with
    its holes, tactics run on the proof states it reported. For exploring only: never admission."""

    def check(self, code: str) -> LeanCheck: ...

    def tactic(self, proof_state: int, tactic: str) -> TacticResult: ...


@runtime_checkable
class TacticMode(Protocol):
    """A backend with the REPL's tactic mode."""

    backend: str

    def session(self, header: str | None = None, *, timeout_s: float | None = None) -> AbstractContextManager[Any]: ...


@runtime_checkable
class _Wrapper(Protocol):
    """An oracle around another (the result cache, the job's circuit breaker)."""

    inner: Any


def tactic_mode(oracle: Oracle) -> TacticMode | None:
    """The oracle's tactic mode, looked for through the oracles wrapped around the backend (the result cache, the
    job's breaker: tactic steps are never cached, proof states live in one process); None for a backend without
    one (``lake``, Kimina)."""
    inner: Any = oracle
    for _ in range(8):  # wrappers are few; a cycle of them is not followed for ever
        if isinstance(inner, TacticMode) and inner.backend == "repl":
            return inner
        if not isinstance(inner, _Wrapper):
            break
        inner = inner.inner
    return None


# ---------------------------------------------------------------------------- the goals a proof left open
def open_goals_probe(text: str, err: LeanMessage, tactic: str) -> tuple[str, int, int] | None:
    """``text`` with one bullet ``· tactic`` for each goal of the ``unsolved goals`` error ``err``, after the last
    line of the block it names, at that block's indentation: (the probe, the line of the first bullet, how many).
    None when ``err`` is no such error or its block cannot be told (a ``by`` with tactics on its own line)."""
    left = error_goals(err.text) if err.text.startswith("unsolved goals") else []
    lines = text.split("\n")
    end = err.end_line or err.line
    if not left or not 1 <= err.line <= end <= len(lines):
        return None
    by_line = lines[err.line - 1]
    if by_line[err.column :].strip() != "by":
        return None  # a block written on the line of its `by`: no place for bullets
    body = next((ln for ln in lines[err.line : end] if ln.strip()), "")
    indent = body[: len(body) - len(body.lstrip())]
    if not indent:
        return None
    bullets = [f"{indent}· {tactic}"] * len(left)
    return "\n".join([*lines[:end], *bullets, *lines[end:]]), end + 1, len(left)


def proof_of(text: str, statement: str) -> str:
    """The tactic proof of ``statement`` in checked ``text`` (the indented lines after its ``:= by``, dedented);
    '' when it is not there."""
    start = first_tactic_line(text, statement)
    if not start:
        return ""
    body: list[str] = []
    for ln in text.split("\n")[start - 1 :]:
        if ln.strip() and not ln[:1].isspace():
            break
        body.append(ln)
    return textwrap.dedent("\n".join(body)).strip("\n")
