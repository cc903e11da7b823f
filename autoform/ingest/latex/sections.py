"""Sectioning: chapters and sections (the place of every unit), their counters, headed units ("\\section{Theorem
3.1}" in books that write them so), and the book's title."""

from __future__ import annotations

import re

from autoform.ingest.latex.commands import SECTION_LEVELS
from autoform.ingest.latex.counters import CounterOps
from autoform.ingest.latex.frames import FrameOps
from autoform.ingest.latex.state import Frame, Handler, Src
from autoform.ingest.latex.syntax import mandatory, optional, read_star
from autoform.ingest.model import NAME_TO_KIND, RawUnit

_HEADED_RE = re.compile(
    r"^\s*([A-Z][A-Za-z]+)\s+(\d[\w]*(?:[.\-][\w]+)*|[A-Z]?\d[\w]*(?:[.\-][\w]+)*)\s*[.:]?\s*(?:\((.*)\))?\s*[.:]?\s*$"
)


def _plain_heading(s: str) -> str:
    s = re.sub(r"\\(?:textbf|textit|emph|textsc|bfseries|itshape|noindent)\b\s*", "", s)
    return s.replace("{", "").replace("}", "")


class SectionOps(CounterOps, FrameOps):
    """Sectioning commands and the title."""

    def h_section(self, name: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        starred, j = read_star(s, i, n)
        while (opt := optional(s, j, n)) is not None:
            j = opt[1]
        a = mandatory(s, j, n)
        if a is None or not self.in_document:
            return j
        raw_title, j = a[0], a[2]
        self.close_headed(start)
        level = SECTION_LEVELS.get(name, 0 if name == "addchap" else 1)
        if not starred and name not in ("addchap", "addsec"):
            self._step_section(name)
        self._enter(level, " ".join(self.expand(raw_title, strings=True).replace("{}", "").split()))
        if level >= 1 and src.origin is None and not self._in_unit_or_proof():
            self._open_headed(name, raw_title, src, start, j)
        return j

    def _step_section(self, name: str) -> None:
        """A numbered sectioning command steps its counter (chapters only in the main matter)."""
        if name != "chapter":
            self.step(name)
        elif self.matter == "main":
            self.step("chapter")

    def _enter(self, level: int, title: str) -> None:
        """A part, chapter or section begins: it is where the units that follow are (a proof after it proves none
        of the units before)."""
        if level == 0:
            self.chapter, self.section = title, ""
        elif level == 1:
            self.section = title
        if level <= 1:
            self.last_unit = None

    def _in_unit_or_proof(self) -> bool:
        return self.innermost_unit() is not None or any(f.role == "proof" for f in self.frames)

    def _open_headed(self, name: str, raw_title: str, src: Src, start: int, j: int) -> None:
        """A heading that names a unit ("\\subsection{Theorem 3.1 (Title)}") opens one, which runs to the next
        heading."""
        hm = _HEADED_RE.match(_plain_heading(raw_title))
        kind = NAME_TO_KIND.get(hm.group(1).lower(), "proof") if hm else "proof"
        if hm is None or kind == "proof":
            return
        unit = RawUnit(
            kind=kind,
            number=hm.group(2),
            title=(hm.group(3) or "").strip(),
            statement="",
            chapter=self.chapter,
            section=self.section,
        )
        self.units.append(unit)
        self.frames.append(Frame("headed", name, src, start, j, unit))

    def h_title(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        opt = optional(src.masked, i, n)
        j = opt[1] if opt else i
        a = mandatory(src.masked, j, n)
        if a is None:
            return j
        if not self.title:
            self.title = " ".join(a[0].split())
        return a[2]

    def handler_table(self) -> dict[str, Handler]:
        return {
            **super().handler_table(),
            **dict.fromkeys((*SECTION_LEVELS, "addchap", "addsec"), self.h_section),
            "title": self.h_title,
        }
