"""Reader, optional step for PDF books: restore the LaTeX of a statement garbled by PDF text extraction.

One chat call per unit through :class:`autoform.llm.LLMClient` (cached in the store like every call), with the
prompt in ``agents/reader/restore.md``. Ingest never calls this by itself; it stays LLM-free. A caller that
wants restored statements runs :func:`restore_unit` on the PDF's units: the LaTeX becomes ``statement`` and
the extracted text stays in ``statement_raw``.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2

from autoform.ingest.model import RawUnit
from autoform.llm import LLMClient, MalformedReply, Message, code_blocks

ROLE = "reader"  # model, temperature and token settings of the reader role apply
PROMPT = "reader/restore.md"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).resolve().parent.parent)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


def restore_messages(unit: RawUnit) -> list[Message]:
    """The system and user messages asking for the LaTeX of ``unit``'s statement."""
    module = _env.get_template(PROMPT).module
    system = str(module.system()).strip()  # type: ignore[attr-defined]
    user = str(module.user(unit)).strip()  # type: ignore[attr-defined]
    return [Message(role="system", content=system), Message(role="user", content=user)]


def restore_latex(unit: RawUnit, llm: LLMClient, *, job_id: int | None = None, unit_id: int | None = None) -> str:
    """LaTeX for the unit's statement as extracted from a PDF (``statement_raw``, else ``statement``).

    Raises :class:`MalformedReply` when the reply holds no ```latex block (the unit is then left as it is),
    and :class:`autoform.llm.LLMUnavailable` when the endpoint cannot be used."""
    if not (unit.statement_raw or unit.statement).strip():
        raise ValueError(f"{unit.kind} {unit.number}: no statement text to restore")
    reply = llm.chat(llm.request(ROLE, restore_messages(unit)), job_id=job_id, unit_id=unit_id)
    return parse_reply(reply.text)


def parse_reply(text: str) -> str:
    """The statement in the reply's last ```latex (or ```tex, or unlabelled) block."""
    blocks = code_blocks(text, "latex") or code_blocks(text, "tex")
    if not blocks:
        blocks = _unlabelled(text)
    if not blocks:
        if text.count("```") % 2 == 1:
            raise MalformedReply("the reply ends inside an unclosed code block (truncated?)")
        raise MalformedReply("the reply has no ```latex block")
    latex = blocks[-1].strip()
    if not latex:
        raise MalformedReply("the reply's ```latex block is empty")
    return latex


def _unlabelled(text: str) -> list[str]:
    # code_blocks(text, "lean") counts unlabelled blocks as Lean; keep only those with no info string
    return [m.group(2) for m in re.finditer(r"```[ \t]*([^\n`]*)\n(.*?)```", text, re.S) if not m.group(1).strip()]


def restore_unit(unit: RawUnit, llm: LLMClient, *, job_id: int | None = None, unit_id: int | None = None) -> RawUnit:
    """A copy of ``unit`` whose statement is the restored LaTeX, the extracted text kept in ``statement_raw``."""
    latex = restore_latex(unit, llm, job_id=job_id, unit_id=unit_id)
    return unit.model_copy(update={"statement": latex, "statement_raw": unit.statement_raw or unit.statement})


__all__ = ["parse_reply", "restore_latex", "restore_messages", "restore_unit"]
