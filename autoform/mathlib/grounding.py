"""Grounding the agents in Mathlib: what the index retrieves for a unit becomes blackboard posts (kind
``retrieval``), which the drafter, prover and gap-closer read through the attention filter like any other post.

* before drafting: the notions of the unit's statement (and the reader's concepts, and any Lean names the
  reader proposed, checked by the index) with their signatures;
* before proving: lemmas for the locked statement;
* after Lean refused a candidate for an unknown identifier: the nearest existing names, and, for a name Mathlib
  deprecated, its replacement (which the pipeline also substitutes itself, with no LLM call).

Nothing here is a verdict: retrieval only changes what the agents read."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from pydantic import BaseModel, Field

from autoform.mathlib.index import Hit, MathlibIndex
from autoform.mathlib.search import concepts, lookup, search

#: Lean's message, in both spellings it has used: "unknown identifier 'x'" and (v4.33) "Unknown identifier `x`"
_UNKNOWN = re.compile(r"unknown (?:identifier|constant) ['`]([^'`]+)['`]", re.IGNORECASE)
_NAMEISH = re.compile(r"^[A-Za-z_][\w']*(?:\.[A-Za-z_][\w']*)+$")


class Grounding:
    """The workspace's Mathlib index, shared by the worker threads of a job (queries take a lock)."""

    def __init__(self, path: Path, *, k: int = 8) -> None:
        self.index = MathlibIndex(path)
        self.k = k
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path) -> Grounding | None:
        """The grounding of a workspace whose index was built (`autoform mathlib index`), else None."""
        if not path.is_file():
            return None
        g = cls(path)
        if g.index.count() == 0:
            g.close()
            return None
        return g

    def close(self) -> None:
        self.index.close()

    def notions(self, statement: str, reader_concepts: list[str]) -> list[Hit]:
        """Declarations for the notions of an informal statement: its own words' concepts, the reader's concepts
        as further concepts, and the reader's Lean-looking names checked by the index."""
        names = [c for c in reader_concepts if _NAMEISH.match(c.strip())]
        text = " ".join([statement, *[c for c in reader_concepts if c not in names]])
        with self._lock:
            return concepts(self.index, text, k=self.k, extra_names=names)

    def lemmas(self, locked_statement: str) -> list[Hit]:
        with self._lock:
            return [h for h in search(self.index, locked_statement, k=self.k * 2) if h.kind in ("theorem", "alias")][
                : self.k
            ]

    def repairs(self, errors: str) -> tuple[dict[str, str], dict[str, list[str]]]:
        """For each unknown identifier in Lean's errors: its replacement when Mathlib deprecated it
        (``{old: new}``), else its nearest existing names."""
        replace: dict[str, str] = {}
        nearest: dict[str, list[str]] = {}
        with self._lock:
            for name in dict.fromkeys(_UNKNOWN.findall(errors)):
                ans = lookup(self.index, name)
                if ans.status == "deprecated" and ans.current and self.index.get(ans.current) is not None:
                    replace[name] = ans.current
                elif ans.status == "unknown" and ans.nearest:
                    nearest[name] = ans.nearest
        return replace, nearest

    def check(self, names: list[str]) -> list[CheckedName]:
        """Names a model proposed, checked against the index (:func:`check_names`)."""
        with self._lock:
            return check_names(self.index, names)


class CheckedName(BaseModel):
    """A name a model proposed, as the index answers it: it exists (``hits`` is it), Mathlib deprecated it
    (``hits`` is its current name), or it does not exist (``hits`` are the nearest existing names)."""

    proposed: str
    status: str  # exists | deprecated | unknown
    hits: list[Hit] = Field(default_factory=list)


def check_names(index: MathlibIndex, names: list[str], *, nearest: int = 3) -> list[CheckedName]:
    """Each proposed name checked: exact; deprecated -> its current name (when that exists); unknown -> up to
    ``nearest`` existing names nearest to it, with their signatures. Nothing unknown is ever returned as a hit."""
    out: list[CheckedName] = []
    for name in names:
        ans = lookup(index, name)
        if ans.status == "exists" and ans.hit is not None:
            out.append(CheckedName(proposed=name, status="exists", hits=[ans.hit]))
        elif ans.status == "deprecated":  # its current name (one Lean generates, a field, has no signature here)
            cur = (index.get(ans.current) or _named(ans.current, ans.hit)) if ans.current else None
            out.append(CheckedName(proposed=name, status="deprecated", hits=[cur] if cur else []))
        else:
            current = [n for n in ans.nearest if (d := index.deprecation(n)) is not None and not d[0]]
            hits = [h for n in current if (h := index.get(n)) is not None]
            out.append(CheckedName(proposed=name, status="unknown", hits=hits[:nearest]))
    return out


def _named(name: str, alias: Hit | None) -> Hit:
    """A declaration the index knows only by name (the target of a deprecated alias: a structure field, a
    name Lean generates): no signature."""
    return Hit(name=name, kind="declaration", signature="", module=alias.module if alias else "", score=0.0)


def checked_ranking(checked: list[CheckedName]) -> list[Hit]:
    """The declarations the checked names stand for, best first: the names that exist and the current names of
    deprecated ones (in the model's order), then the nearest names of unknown ones, round by round."""
    sure = [c.hits[0] for c in checked if c.status != "unknown" and c.hits]
    guesses = [c.hits for c in checked if c.status == "unknown"]
    rounds = [g[i] for i in range(max((len(g) for g in guesses), default=0)) for g in guesses if i < len(g)]
    best: dict[str, Hit] = {}
    for h in [*sure, *rounds]:
        best.setdefault(h.name, h)
    return list(best.values())


def render_checked(checked: list[CheckedName]) -> str:
    """The body of the post of the checked names: what exists, with its signature; a deprecated name's current
    one; for a name that does not exist, only the nearest existing names (the name is said not to exist)."""
    lines = ["Mathlib declarations for this statement (proposed, then checked against Mathlib's index):"]
    for c in checked:
        if c.status == "exists":
            lines.append(_line(c.hits[0]))
        elif c.status == "deprecated" and c.hits:
            lines.append(_line(c.hits[0], f"[replaces the deprecated `{c.proposed}`]"))
    stale = [f"`{c.proposed}`" for c in checked if c.status == "deprecated" and not c.hits]
    if stale:
        lines.append("Deprecated in Mathlib, no replacement named (avoid): " + ", ".join(stale))
    missing = [c for c in checked if c.status == "unknown"]
    if missing:
        names = ", ".join(f"`{c.proposed}`" for c in missing)
        lines.append(f"Not in Mathlib's index (invented or misspelt: do not use them): {names}")
        lines += [_line(h, f"[exists; near `{c.proposed}`]") for c in missing for h in c.hits]
    return "\n".join(lines)


def _line(h: Hit, note: str = "") -> str:
    kind = f" ({h.kind})" if h.signature else ""
    return " ".join(p for p in (f"- `{h.name}`{kind}", h.signature[:200], note) if p)


def render(hits: list[Hit], title: str) -> str:
    """A retrieval post's body: one declaration a line, with its signature."""
    lines = [title]
    for h in hits:
        lines.append(f"- `{h.name}` ({h.kind}) {h.signature[:200]}".rstrip())
    return "\n".join(lines)


def substitute(text: str, replace: dict[str, str]) -> str:
    """``text`` with each deprecated name (as a whole name) replaced by its current one."""
    for old, new in replace.items():
        text = re.sub(rf"(?<![\w.'`]){re.escape(old)}(?![\w'])", new, text)
    return text
