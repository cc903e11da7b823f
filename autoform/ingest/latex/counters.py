"""Counters, numbered like LaTeX numbers them: reset lists, ``\\the<counter>`` formats kept as macros, the
document class's sectioning counters, ``\\appendix`` and front/main/back matter."""

from __future__ import annotations

import re

from autoform.ingest.latex.argspec import Macro
from autoform.ingest.latex.macros import MacroTable
from autoform.ingest.latex.state import Handler, Src
from autoform.ingest.latex.syntax import mandatory, optional, read_star

CHAPTER_CLASSES = {
    "book",
    "report",
    "memoir",
    "scrbook",
    "scrreprt",
    "amsbook",
    "svmono",
    "krantz",
    "tufte-book",
    "extbook",
    "extreport",
    "ctexbook",
    "ctexrep",
    "elegantbook",
    "mwbk",
    "mwrep",
}


class CounterOps(MacroTable):
    """The book's counters and the commands that set them."""

    def newcounter(self, c: str, within: str | None) -> None:
        if c not in self.values:
            self.values[c] = 0
        if within:
            if within not in self.values:
                self.newcounter(within, None)
            if c not in self.children.setdefault(within, []):
                self.children[within].append(c)
            self.macros[f"the{c}"] = Macro.make("", rf"\the{within}.\arabic{{{c}}}")
        elif f"the{c}" not in self.macros:
            self.macros[f"the{c}"] = Macro.make("", rf"\Roman{{{c}}}" if c == "part" else rf"\arabic{{{c}}}")

    def step(self, c: str) -> None:
        if c not in self.values:
            self.newcounter(c, None)
        self.values[c] += 1
        self._reset(c, 0)

    def _reset(self, c: str, depth: int) -> None:
        for ch in self.children.get(c, ()):
            self.values[ch] = 0
            if depth < 8:
                self._reset(ch, depth + 1)

    def setup_class(self, cls: str) -> None:
        self.has_chapters = cls in CHAPTER_CLASSES
        self.newcounter("part", None)
        if self.has_chapters:
            self.newcounter("chapter", None)
            self.newcounter("section", "chapter")
            self.newcounter("equation", "chapter")
        else:
            self.newcounter("section", None)
            self.newcounter("equation", None)
        self.newcounter("subsection", "section")
        self.newcounter("subsubsection", "subsection")
        self.newcounter("paragraph", "subsubsection")
        self.newcounter("subparagraph", "paragraph")

    def number(self, counter: str | None) -> str:
        if counter is None:
            return ""
        self.step(counter)
        s = self.expand(rf"\the{counter}", strings=True)
        return " ".join(s.replace("{", "").replace("}", "").split())

    def appendix(self) -> None:
        c = "chapter" if self.has_chapters else "section"
        self.values[c] = 0
        self.macros[f"the{c}"] = Macro.make("", rf"\Alph{{{c}}}")

    def h_counter(self, name: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        if name in ("numberwithin", "counterwithin", "counterwithout"):
            _, i = read_star(s, i, n)
            opt = optional(s, i, n)
            i = opt[1] if opt else i
        a = mandatory(s, i, n)
        if a is None:
            return i
        c = self.expand(a[0], strings=True).strip()
        j = a[2]
        if name in ("stepcounter", "refstepcounter"):
            self.step(c)
            return j
        if name == "newcounter":
            opt = optional(s, j, n)
            self.newcounter(c, opt[0].strip() if opt else None)
            return opt[1] if opt else j
        b = mandatory(s, j, n)
        if b is None:
            return j
        if name in ("numberwithin", "counterwithin"):
            self.newcounter(c, b[0].strip())
        elif name == "counterwithout":
            p = b[0].strip()
            if c in self.children.get(p, []):
                self.children[p].remove(c)
            self.macros[f"the{c}"] = Macro.make("", rf"\arabic{{{c}}}")
        else:
            v = self.expand(b[0], strings=True).strip()
            m = re.fullmatch(r"-?\d+", v)
            if m is None:
                m2 = re.fullmatch(r"\\value\s*\{([^}]*)\}", v)
                val = self.values.get(m2.group(1), 0) if m2 else None
            else:
                val = int(v)
            if val is not None:
                if c not in self.values:
                    self.newcounter(c, None)
                self.values[c] = val if name == "setcounter" else self.values[c] + val
        return b[2]

    def h_appendix(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        self.appendix()
        return i

    def h_matter(self, name: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        self.matter = name[:-6]
        return i

    def handler_table(self) -> dict[str, Handler]:
        counters = (
            "setcounter",
            "addtocounter",
            "stepcounter",
            "refstepcounter",
            "newcounter",
            "numberwithin",
            "counterwithin",
            "counterwithout",
        )
        return {
            **super().handler_table(),
            **dict.fromkeys(counters, self.h_counter),
            "appendix": self.h_appendix,
            **dict.fromkeys(("frontmatter", "mainmatter", "backmatter"), self.h_matter),
        }
