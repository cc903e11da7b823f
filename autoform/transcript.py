"""A unit's transcript: everything that happened to one unit, in order, from the store — every prompt sent to
an LLM (``llm_calls.request``), its reply (``llm_calls.response``), every Lean verdict (``attempts``: stage,
author, the reasons and Lean's messages) and every blackboard post — so a user can see why a unit failed.

``autoform transcript BOOK UNIT [--job N] [--json]``; UNIT is the unit's id, its label or its number.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from autoform.config import Settings
from autoform.errors import UsageError
from autoform.store import ADMITTED, Attempt, Book, Post, Store, Unit, UnitStatus
from autoform.store.reports import LLMCall
from autoform.subgoals import SubgoalNode, subgoal_tree
from autoform.unit_cost import UnitCost, unit_cost


class AmbiguousUnit(UsageError):
    """The reference matches more than one unit; the message lists them."""


class Entry(BaseModel):
    type: Literal["prompt", "reply", "verdict", "post"]
    at: float
    job_id: int | None = None
    # prompt / reply
    role: str = ""
    model: str = ""
    messages: list[dict[str, Any]] = Field(default_factory=list)
    text: str = ""
    cached: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    call_id: int | None = None
    # verdict
    attempt: int | None = None
    stage: str = ""
    author: str = ""
    admitted: bool | None = None
    reasons: list[dict[str, Any]] = Field(default_factory=list)
    lean_messages: list[dict[str, Any]] = Field(default_factory=list)
    lean_code: str = ""
    axioms: list[str] | None = None
    elapsed_s: float = 0.0
    superseded: bool = False  # made for a statement that re-ingest has since changed
    # post
    post_id: int | None = None
    kind: str = ""
    body: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    round: int = 0


class Transcript(BaseModel):
    book: str
    unit_id: int
    unit: str
    label: str
    status: str
    statement: str
    why: str = ""  # for a unit not admitted: the last reasons Lean (or the job) gave
    hints: list[str] = Field(default_factory=list)  # the hints people gave the unit (pinned for its agents)
    subgoals: list[SubgoalNode] = Field(default_factory=list)  # the decomposition's tree, when it was decomposed
    cost: UnitCost | None = None  # how the unit was closed and what it cost (every job)
    entries: list[Entry]


def find_unit(store: Store, book: Book, ref: str) -> Unit | None:
    """The unit of ``book`` named by ``ref``: its id, label, ident or number ("2.3", "Theorem 2.3")."""
    units = store.units(book.id)
    ref = ref.strip()
    if ref.isdigit():
        for u in units:
            if u.id == int(ref):
                return u
    for field in ("label", "ident"):
        hits = [u for u in units if getattr(u, field) == ref]
        if len(hits) == 1:
            return hits[0]
    hits = [u for u in units if ref.lower() in (u.number.lower(), f"{u.kind} {u.number}".lower())]
    if len(hits) > 1:
        raise AmbiguousUnit(
            f"{ref!r} names {len(hits)} units: "
            + ", ".join(f"{u.id} ({u.display}{', ' + u.label if u.label else ''})" for u in hits)
            + "; give the id or the label"
        )
    return hits[0] if hits else None


#: the order of entries made at the same moment: a prompt, its reply, a verdict, a post
_ORDER = {"prompt": 0, "reply": 1, "verdict": 2, "post": 3}


def _call_entries(call: LLMCall) -> list[Entry]:
    """The prompt of one LLM call (at the moment it was sent) and its reply."""
    try:
        req = json.loads(call.request)
    except ValueError:
        req = {"messages": [{"role": "?", "content": call.request}]}
    common = {
        "job_id": call.job_id,
        "role": call.role,
        "model": call.model,
        "call_id": call.id,
        "cached": call.cached,
    }
    sent = call.created_at - (call.elapsed_s or 0.0)
    return [
        Entry(type="prompt", at=sent, messages=req.get("messages", []), **common),
        Entry(
            type="reply",
            at=call.created_at,
            text=call.response,
            prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens,
            **common,
        ),
    ]


def _verdict_entry(a: Attempt) -> Entry:
    return Entry(
        type="verdict",
        at=a.created_at,
        job_id=a.job_id,
        attempt=a.n,
        stage=a.stage,
        author=a.author,
        admitted=a.admitted,
        reasons=a.reasons,
        lean_messages=a.messages,
        lean_code=a.lean_code,
        axioms=a.axioms,
        elapsed_s=a.elapsed_s,
        superseded=a.superseded,
    )


def _post_entry(p: Post) -> Entry:
    return Entry(
        type="post",
        at=p.created_at,
        job_id=p.job_id,
        post_id=p.id,
        author=p.author,
        kind=p.kind,
        body=p.body,
        data=p.data,
        round=p.round,
    )


def unit_transcript(
    store: Store, unit: Unit, *, job_id: int | None = None, settings: Settings | None = None
) -> Transcript:
    """Everything recorded of one unit (of one job, if given), in the order it happened; with ``settings``
    (for ``[llm] prices``), also how it was closed and what it cost in every job."""
    keyed: list[tuple[float, int, int, Entry]] = []
    for call in store.llm_calls_of_unit(unit.id, job_id):
        keyed += [(e.at, _ORDER[e.type], call.id, e) for e in _call_entries(call)]
    for a in store.attempts(unit.id, job_id, superseded=True):
        keyed.append((a.created_at, _ORDER["verdict"], a.id, _verdict_entry(a)))
    for p in store.posts(unit.book_id, unit_id=unit.id):
        if job_id is None or p.job_id == job_id:
            keyed.append((p.created_at, _ORDER["post"], p.id, _post_entry(p)))
    keyed.sort(key=lambda e: e[:3])
    ordered = [e[3] for e in keyed]
    return Transcript(
        book=store.book_slug(unit.book_id),
        unit_id=unit.id,
        unit=unit.display,
        label=unit.label,
        status=unit.status,
        statement=unit.statement,
        why=_why(unit, ordered),
        hints=[e.body for e in ordered if e.type == "post" and e.kind == "hint" and e.author == "person"],
        subgoals=subgoal_tree(store, unit.id, job_id),
        cost=unit_cost(store, settings, unit) if settings is not None else None,
        entries=ordered,
    )


def _why(unit: Unit, entries: list[Entry]) -> str:
    if unit.status in ADMITTED:
        return ""
    for e in reversed(entries):
        if e.type == "post" and e.author == "job":  # the scheduler's reason (token cap, internal error)
            return e.body
        if e.type == "verdict" and not e.admitted:
            reasons = "; ".join(r.get("message", "") for r in e.reasons) or "rejected"
            return f"last {e.stage} attempt ({e.author}, #{e.attempt}) rejected: {reasons}"
    return "no attempt recorded yet" if unit.status != UnitStatus.SKIPPED else "skipped (kind not formalized)"


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _indent(text: str, pad: str = "    ") -> str:
    return "\n".join(pad + ln if ln.strip() else ln.rstrip() for ln in text.rstrip("\n").splitlines())


def _prompt_lines(e: Entry, job: str) -> list[str]:
    out = [f"== {_stamp(e.at)} {job} - prompt to the {e.role} ({e.model}, call {e.call_id}) =="]
    for m in e.messages:
        out += [f"  [{m.get('role', '?')}]", _indent(str(m.get("content", "")))]
    return out


def _reply_lines(e: Entry, job: str) -> list[str]:
    how = "from the reply cache" if e.cached else f"{e.prompt_tokens}+{e.completion_tokens} tokens"
    return [f"== {_stamp(e.at)} {job} - reply of the {e.role} ({how}) ==", _indent(e.text)]


def _verdict_lines(e: Entry, job: str) -> list[str]:
    word = "ADMITTED" if e.admitted else "REJECTED"
    old = " (superseded: the statement changed since)" if e.superseded else ""
    out = [
        f"== {_stamp(e.at)} {job} - Lean verdict: {e.stage} attempt {e.attempt} by the {e.author}: "
        f"{word} ({e.elapsed_s:.2f} s){old} =="
    ]
    out += [f"  - [{r.get('code', '?')}] {r.get('message', '')}" for r in e.reasons]
    out += [
        f"  {m.get('severity')} at line {m.get('line')}: {m.get('text', '')}"
        for m in e.lean_messages
        if m.get("severity") in ("error", "warning")
    ]
    if e.axioms is not None:
        out.append(f"  axioms: {', '.join(e.axioms) or 'none'}")
    if e.lean_code.strip():
        out += ["  code:", _indent(e.lean_code)]
    return out


def _post_lines(e: Entry, job: str) -> list[str]:
    if e.kind == "verdict":  # shown as the attempt it records
        return []
    if e.kind == "hint" and e.author == "person":
        return [f"== {_stamp(e.at)} {job} - hint by a person (pinned for this unit's agents) ==", _indent(e.body)]
    return [f"== {_stamp(e.at)} {job} - post by the {e.author}: {e.kind} (round {e.round}) ==", _indent(e.body)]


#: how each type of entry is shown: its lines (none for a post the transcript shows otherwise)
_RENDERERS: dict[str, Callable[[Entry, str], list[str]]] = {
    "prompt": _prompt_lines,
    "reply": _reply_lines,
    "verdict": _verdict_lines,
    "post": _post_lines,
}


def subgoal_lines(nodes: list[SubgoalNode], indent: str = "  ") -> list[str]:
    """The tree as indented lines: each subgoal's name, state, how it was closed, and its goal's last line."""
    out = []
    for n in nodes:
        how = f" by {n.by}" if n.by else ""
        goal = n.goal.strip().splitlines()[-1] if n.goal.strip() else ""
        out.append(f"{indent}{n.name}: {n.status}{how}   {goal}")
        out += subgoal_lines(n.children, indent + "  ")
    return out


def render_text(t: Transcript) -> str:
    """The transcript for reading in a terminal or a pager (verdict posts are shown as the attempts they
    record)."""
    out = [
        f"{t.unit} [{t.label or 'no label'}] (unit {t.unit_id} of {t.book}): {t.status}",
        _indent(t.statement.strip(), "  "),
        "",
    ]
    if t.why:
        out += [f"why: {t.why}", ""]
    if t.cost is not None:
        out += [t.cost.line(), ""]
    out += [f"hint by a person: {h}" for h in t.hints] + ([""] if t.hints else [])
    if t.subgoals:
        out += ["subgoals (the decomposition's tree):", *subgoal_lines(t.subgoals), ""]
    for e in t.entries:
        lines = _RENDERERS[e.type](e, f"job {e.job_id}" if e.job_id is not None else "no job")
        if lines:
            out += [*lines, ""]
    if not t.entries:
        out.append("(nothing recorded for this unit yet: run `autoform run` on its book)")
    return "\n".join(out).rstrip("\n") + "\n"
