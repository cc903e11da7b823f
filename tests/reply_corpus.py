"""The reply corpus (tests/fixtures/replies/<role>.jsonl) run through the agents' own parsing: what each case
yields, and whether it is what a right reading yields (see tests/fixtures/replies/make_corpus.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from agents.drafter import parse_critique, parse_drafts
from agents.gap_closer import parse_repair
from agents.prover import split_reply
from agents.reader import parse_extraction
from autoform.replies import MalformedReply

CORPUS = Path(__file__).resolve().parent / "fixtures" / "replies"
ROLES = ("reader", "drafter", "critic", "prover", "gap_closer")


def load(role: str) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in (CORPUS / f"{role}.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def parse(role: str, case: dict[str, Any]) -> Any:
    """What the agent's parsing makes of the case's reply (its content: reasoning_content stays apart)."""
    text, ctx = case["text"], case.get("context", {})
    if role == "reader":
        return parse_extraction(text)
    if role == "critic":
        return parse_critique(text).model_dump()
    if role == "drafter":
        return parse_drafts(text, kind=ctx["kind"], k=ctx.get("k", 1), header="import Mathlib")
    if role == "prover":
        return split_reply(text, locked=ctx["locked"], known=ctx.get("known", []))
    if role == "gap_closer":
        return parse_repair(
            text, locked=ctx["locked"], known=ctx.get("known", []), failed_proof=ctx.get("failed_proof", "")
        )
    raise ValueError(role)


def _decl_names(aux: str) -> list[str]:
    return re.findall(
        r"^(?:open [^\n]* in\n)?(?:@\[[^\]]*\]\s*)?(?:theorem|lemma|def|abbrev|instance|structure)\s+"
        r"([^\s:({\[]+)",
        aux,
        re.M,
    )


def check(role: str, case: dict[str, Any]) -> str | None:
    """None when the case is read right; else what went wrong."""
    try:
        got = parse(role, case)
    except MalformedReply as e:
        if "refused" in case:
            return None if case["refused"].lower() in str(e).lower() else f"refused for another reason: {e}"
        return f"refused ({e}), expected {case['expect']!r}"
    if "refused" in case:
        return f"parsed as {got!r}, expected a refusal mentioning {case['refused']!r}"
    want = case["expect"]
    if role in ("prover", "gap_closer"):
        aux, proof = got
        problems = []
        if proof != want["proof"]:
            problems.append(f"proof {proof!r} != {want['proof']!r}")
        if _decl_names(aux) != want["aux_names"]:
            problems.append(f"helpers {_decl_names(aux)} != {want['aux_names']}")
        problems += [f"helpers lack {h!r}" for h in want.get("aux_has", []) if h not in aux]
        return "; ".join(problems) or None
    if role == "critic":
        got = {k: got[k] for k in want}
    return None if got == want else f"parsed as {got!r}, expected {want!r}"
