"""What every reader (LaTeX, PDF) produces: units in book order, with their references.

Also shared by the readers and their callers: :class:`IngestError`, the printed names of theorem-like
environments and the textual references ("by Lemma 3.1", "the previous theorem", "Theorem 2 above"), resolved
against the units' numbers and order.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from autoform.errors import UsageError
from autoform.store.models import UnitContent


class IngestError(UsageError):
    """The book cannot be read at all (missing root file, not LaTeX); the message names the file."""


KINDS = (
    "definition",
    "theorem",
    "lemma",
    "proposition",
    "corollary",
    "example",
    "exercise",
    "axiom",
    "remark",
    "claim",
)

#: printed names of theorem-like environments (lower case) -> unit kinds; "proof" marks proof-like environments
NAME_TO_KIND: dict[str, str] = {
    "theorem": "theorem",
    "lemma": "lemma",
    "proposition": "proposition",
    "corollary": "corollary",
    "definition": "definition",
    "example": "example",
    "exercise": "exercise",
    "axiom": "axiom",
    "remark": "remark",
    "claim": "claim",
    # synonyms
    "problem": "exercise",
    "question": "exercise",
    "exercises": "exercise",
    "problems": "exercise",
    "note": "remark",
    "observation": "remark",
    "conjecture": "claim",
    "fact": "proposition",
    "property": "proposition",
    "criterion": "theorem",
    "notation": "definition",
    "construction": "definition",
    "vocabulary": "definition",
    "terminology": "definition",
    "axioms": "axiom",
    "assumption": "axiom",
    "hypothesis": "axiom",
    "postulate": "axiom",
    "examples": "example",
    "remarks": "remark",
    # usual environment-name abbreviations
    "thm": "theorem",
    "theo": "theorem",
    "lem": "lemma",
    "lemm": "lemma",
    "prop": "proposition",
    "cor": "corollary",
    "coro": "corollary",
    "corol": "corollary",
    "defn": "definition",
    "dfn": "definition",
    "def": "definition",
    "defi": "definition",
    "ex": "example",
    "exa": "example",
    "exm": "example",
    "exmp": "example",
    "exer": "exercise",
    "exc": "exercise",
    "prob": "exercise",
    "rem": "remark",
    "rmk": "remark",
    "conj": "claim",
    "ax": "axiom",
    "axm": "axiom",
    "obs": "remark",
    "nota": "definition",
    "clm": "claim",
    # proofs
    "proof": "proof",
    "pf": "proof",
    "solution": "proof",
    "sol": "proof",
    "answer": "proof",
}


class RawUnit(UnitContent):
    """A unit as a reader found it (before the store gives it an id and a status)."""

    proof_raw: str = ""
    labels: list[str] = Field(default_factory=list)  # every \\label inside the unit (equations, items), first = label
    text_refs: list[tuple[str, str]] = Field(default_factory=list)  # (kind, number) of units named in the text

    @property
    def ident(self) -> str:
        """Identity across re-ingests: the label, else kind and number."""
        if self.label:
            return self.label
        return f"{self.kind}:{self.number}" if self.number else ""


class IngestResult(BaseModel):
    title: str = ""
    source_kind: str
    root: str
    units: list[RawUnit]
    warnings: list[str] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------ textual references
_KIND_WORDS = (
    "theorem",
    "lemma",
    "proposition",
    "corollary",
    "definition",
    "exercise",
    "claim",
    "axiom",
    "example",
    "remark",
    "problem",
    "question",
    "conjecture",
    "fact",
    "observation",
    "notation",
    "construction",
)
_KW = "|".join(_KIND_WORDS)
_NUM = r"\d+(?:\.\d+)*[a-z]?(?![\w.]\d)"
_SEP = r"(?:~|\s|\\[,; ]|\\nobreakspace\s*\{\}|\$)*"
#: "Lemma 3.1", "Lemmas 3.1 and 3.2", "Theorem~2 above"
_NUMBERED_RE = re.compile(
    rf"\b({_KW})(s|es)?{_SEP}({_NUM}(?:\s*(?:,|and|or|&|--?)\s*{_NUM})*)(?:{_SEP}(above|below|earlier|later))?",
    re.IGNORECASE,
)
#: "the previous theorem", "the preceding lemma", "the following corollary", "the theorem above"
_RELATIVE_RE = re.compile(
    rf"\b(previous|preceding|last|above|foregoing|next|following)\s+({_KW}|result)\b"
    rf"|\b(?:the|this|that)\s+({_KW}|result)\s+(above|below)\b",
    re.IGNORECASE,
)
_RESULT_KINDS = ("theorem", "lemma", "proposition", "corollary", "claim")


def _kind_of(word: str) -> str:
    w = word.lower()
    return NAME_TO_KIND.get(w, w)


def textual_mentions(text: str) -> list[tuple[str, str, str]]:
    """(kind, number, where) for each unit named in plain text; number "" for relative phrases ("the previous
    theorem"); where is "before", "after" or "" (either, nearest before first)."""
    out: list[tuple[str, str, str]] = []
    for m in _NUMBERED_RE.finditer(text):
        where = {"above": "before", "earlier": "before", "below": "after", "later": "after"}.get(
            (m.group(4) or "").lower(), ""
        )
        for num in re.findall(_NUM, m.group(3)):
            out.append((_kind_of(m.group(1)), num, where))
    for m in _RELATIVE_RE.finditer(text):
        if m.group(1):
            where = "after" if m.group(1).lower() in ("next", "following") else "before"
            word = m.group(2)
        else:
            where = "before" if m.group(4).lower() == "above" else "after"
            word = m.group(3)
        out.append((_kind_of(word), "", where))
    return out


def textual_refs(text: str) -> list[tuple[str, str]]:
    """("lemma", "1.3") for phrases like "by Lemma 1.3" (a reference without \\ref), unresolved."""
    return [(k, num) for k, num, _ in textual_mentions(text) if num]


def _pick(cands: list[int], i: int, where: str) -> int | None:
    """The candidate nearest to position ``i`` on the side ``where`` says ("before", "after", "": before first)."""
    before = [j for j in cands if j < i]
    after = [j for j in cands if j > i]
    if where == "after":
        return after[0] if after else None
    if where == "before":
        return before[-1] if before else None
    return before[-1] if before else (after[0] if after else None)


class _Numbers:
    """The units of a book indexed by their numbers, to resolve "Lemma 3.1" from the unit at position ``i``."""

    def __init__(self, units: list[RawUnit]) -> None:
        self.units = units
        self.by_kn: dict[tuple[str, str], list[int]] = {}
        self.by_n: dict[str, list[int]] = {}
        for k, u in enumerate(units):
            if u.number:
                self.by_kn.setdefault((u.kind, u.number), []).append(k)
                self.by_n.setdefault(u.number, []).append(k)

    def numbered(self, i: int, kind: str, number: str, where: str) -> int | None:
        """The unit "Kind number" names from unit ``i``; -1 when it names unit ``i`` itself and nothing else."""
        cands = self.by_kn.get((kind, number)) or self.by_n.get(number) or []
        if not cands and "." not in number:  # "Theorem 2" in a book numbering 3.1.2: the same chapter's ….2
            chapter = self.units[i].chapter
            cands = [
                k
                for k, v in enumerate(self.units)
                if v.kind == kind and v.chapter == chapter and v.number.endswith("." + number)
            ]
        j = _pick([c for c in cands if c != i], i, where)
        if j is None and i in cands:
            return -1
        return j

    def relative(self, i: int, kind: str, where: str) -> int | None:
        """The nearest unit of ``kind`` ("result": any result) before or after unit ``i``."""
        kinds = _RESULT_KINDS if kind == "result" else (kind,)
        step = -1 if where == "before" else 1
        k = i + step
        while 0 <= k < len(self.units) and self.units[k].kind not in kinds:
            k += step
        return k if 0 <= k < len(self.units) else None


def link_textual(units: list[RawUnit]) -> None:
    """Resolve the textual references of every unit against the numbers and the order of ``units`` and add the
    targets, as (kind, number), to ``text_refs`` (what is already there is kept). A reference to the unit itself,
    to a number no unit has, or to an unnumbered unit is dropped. "Theorem 2" in a book numbering 3.1.2 resolves
    to the nearest theorem numbered ….2 in the same chapter."""
    index = _Numbers(units)
    for i, u in enumerate(units):
        text = "\n".join(t for t in (u.statement_raw or u.statement, u.proof_raw or u.proof) if t)
        found = list(u.text_refs)
        for kind, number, where in textual_mentions(text):
            j = index.numbered(i, kind, number, where) if number else index.relative(i, kind, where)
            if j is None or j < 0 or j == i or not units[j].number:
                continue
            pair = (units[j].kind, units[j].number)
            if pair not in found:
                found.append(pair)
        u.text_refs = found
