"""A unit's transcript: everything that happened to one unit, in order, from the store — every prompt sent to
an LLM (``llm_calls.request``), its reply (``llm_calls.response``), every Lean verdict (``attempts``: stage,
author, the reasons and Lean's messages) and every blackboard post — so a user can see why a unit failed.

``autoform transcript BOOK UNIT [--job N] [--json]``; UNIT is the unit's id, its label or its number.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from autoform.errors import UsageError
from autoform.store import Book, Store, Unit


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


def unit_transcript(store: Store, unit: Unit, *, job_id: int | None = None) -> Transcript:
    book = store.query("SELECT slug FROM books WHERE id = ?", (unit.book_id,))[0][0]
    where, params = " AND job_id = ?" if job_id is not None else "", (job_id,) if job_id is not None else ()
    entries: list[tuple[float, int, int, Entry]] = []
    for r in store.query(f"SELECT * FROM llm_calls WHERE unit_id = ?{where} ORDER BY id", (unit.id, *params)):
        try:
            req = json.loads(r["request"])
        except ValueError:
            req = {"messages": [{"role": "?", "content": r["request"]}]}
        common = {
            "job_id": r["job_id"],
            "role": r["role"],
            "model": r["model"],
            "call_id": r["id"],
            "cached": bool(r["cached"]),
        }
        sent = r["created_at"] - (r["elapsed_s"] or 0.0)
        entries.append((sent, 0, r["id"], Entry(type="prompt", at=sent, messages=req.get("messages", []), **common)))
        entries.append(
            (
                r["created_at"],
                1,
                r["id"],
                Entry(
                    type="reply",
                    at=r["created_at"],
                    text=r["response"],
                    prompt_tokens=r["prompt_tokens"],
                    completion_tokens=r["completion_tokens"],
                    **common,
                ),
            )
        )
    for a in store.attempts(unit.id, job_id, superseded=True):
        entries.append(
            (
                a.created_at,
                2,
                a.id,
                Entry(
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
                ),
            )
        )
    for p in store.posts(unit.book_id, unit_id=unit.id):
        if job_id is not None and p.job_id != job_id:
            continue
        entries.append(
            (
                p.created_at,
                3,
                p.id,
                Entry(
                    type="post",
                    at=p.created_at,
                    job_id=p.job_id,
                    post_id=p.id,
                    author=p.author,
                    kind=p.kind,
                    body=p.body,
                    data=p.data,
                    round=p.round,
                ),
            )
        )
    entries.sort(key=lambda e: e[:3])
    ordered = [e[3] for e in entries]
    return Transcript(
        book=book,
        unit_id=unit.id,
        unit=unit.display,
        label=unit.label,
        status=unit.status,
        statement=unit.statement,
        why=_why(unit, ordered),
        entries=ordered,
    )


def _why(unit: Unit, entries: list[Entry]) -> str:
    if unit.status in ("proved", "defined", "stated"):
        return ""
    for e in reversed(entries):
        if e.type == "post" and e.author == "job":  # the scheduler's reason (token cap, internal error)
            return e.body
        if e.type == "verdict" and not e.admitted:
            reasons = "; ".join(r.get("message", "") for r in e.reasons) or "rejected"
            return f"last {e.stage} attempt ({e.author}, #{e.attempt}) rejected: {reasons}"
    return "no attempt recorded yet" if unit.status != "skipped" else "skipped (kind not formalized)"


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _indent(text: str, pad: str = "    ") -> str:
    return "\n".join(pad + ln if ln.strip() else ln.rstrip() for ln in text.rstrip("\n").splitlines())


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
    for e in t.entries:
        job = f"job {e.job_id}" if e.job_id is not None else "no job"
        if e.type == "prompt":
            out.append(f"== {_stamp(e.at)} {job} - prompt to the {e.role} ({e.model}, call {e.call_id}) ==")
            for m in e.messages:
                out += [f"  [{m.get('role', '?')}]", _indent(str(m.get("content", "")))]
        elif e.type == "reply":
            how = "from the reply cache" if e.cached else f"{e.prompt_tokens}+{e.completion_tokens} tokens"
            out += [f"== {_stamp(e.at)} {job} - reply of the {e.role} ({how}) ==", _indent(e.text)]
        elif e.type == "verdict":
            word = "ADMITTED" if e.admitted else "REJECTED"
            old = " (superseded: the statement changed since)" if e.superseded else ""
            out.append(
                f"== {_stamp(e.at)} {job} - Lean verdict: {e.stage} attempt {e.attempt} by the {e.author}: "
                f"{word} ({e.elapsed_s:.2f} s){old} =="
            )
            for r in e.reasons:
                out.append(f"  - [{r.get('code', '?')}] {r.get('message', '')}")
            for m in e.lean_messages:
                if m.get("severity") in ("error", "warning"):
                    out.append(f"  {m.get('severity')} at line {m.get('line')}: {m.get('text', '')}")
            if e.axioms is not None:
                out.append(f"  axioms: {', '.join(e.axioms) or 'none'}")
            if e.lean_code.strip():
                out += ["  code:", _indent(e.lean_code)]
        elif e.kind != "verdict":
            out += [f"== {_stamp(e.at)} {job} - post by the {e.author}: {e.kind} (round {e.round}) ==", _indent(e.body)]
        else:
            continue
        out.append("")
    if not t.entries:
        out.append("(nothing recorded for this unit yet: run `autoform run` on its book)")
    return "\n".join(out).rstrip("\n") + "\n"
