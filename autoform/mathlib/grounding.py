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
