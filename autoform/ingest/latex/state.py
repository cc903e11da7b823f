"""The reader's state and records: the limits a book may cost, the sources it reads (a file, or text a macro
expanded to, mapped back to its file and line), the frames of the units and proofs open at a point, the theorem
environments, and :class:`ReaderState`, the base every concern of the reader builds on."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from autoform.ingest.latex.argspec import EnvDef, Macro
from autoform.ingest.latex.commands import PROOF_ENVS
from autoform.ingest.latex.masking import VERBATIM_ENVS
from autoform.ingest.model import RawUnit

#: what a handler returns to stop the scan (``\\end{document}``)
STOP = -1
#: macros nested deeper than this while scanning are a macro that expands into itself (TeX: "capacity exceeded")
MAX_DEPTH = 24


@dataclass(frozen=True)
class Limits:
    """What one book may cost the reader (as TeX bounds its own stacks); past a limit, ingest stops with an
    :class:`IngestError` naming the file, line and macro. Defaults: ``[ingest]`` in autoform.toml."""

    max_file_bytes: int = 64 * 2**20  # one source file
    max_units: int = 50_000  # theorem-like units in the book
    max_nesting: int = 200  # environments open at once (units, proofs)
    max_expansion: int = 1_000_000  # macro expansion steps in the book: one a use, plus one per 32 characters
    max_input_depth: int = 15  # \input files open at once (TeX stops at 15)
    allow_dirs: tuple[Path, ...] = ()  # beyond the book's own directory, where \input may read


class ExpansionLimit(Exception):
    """Raised deep inside the expansion; the innermost scan that knows a file position turns it into an
    :class:`IngestError`."""

    def __init__(self, name: str, steps: int, *, nested: int = 0) -> None:
        super().__init__(name)
        self.name, self.steps, self.nested = name, steps, nested
        self.where: str | None = None


@dataclass
class TheoremEnv:
    """A theorem-like environment: the unit kind it makes, its printed name, the counter that numbers it."""

    env: str
    kind: str
    printed: str
    counter: str | None  # None: unnumbered
    fallback: bool = False  # not declared by the book: one of the usual names


@dataclass
class EnvUse:
    """How a \\begin{name} is read: a unit or a proof, maybe through an alias with its own arguments."""

    role: str  # "unit" | "proof"
    thm: TheoremEnv | None
    spec: str = ""
    defaults: tuple[str | None, ...] = ()
    title_arg: int = -1  # which alias argument is the title (-1: the environment's own [title])
    fixed_title: str = ""
    restatable: bool = False


@dataclass
class Src:
    """Text the scanner reads: a file, or what a macro expanded to (``origin``: where, in its file)."""

    text: str  # comments blanked (verbatim kept): what statements are cut from
    masked: str  # comments and verbatim blanked: what the scanner reads
    file: Path | None = None
    origin: tuple[Src, int] | None = None  # for expanded text: the file source and position of the macro
    imported: bool = False  # reached through \import, \subimport or \subfile: relative paths start here
    _lines: list[int] = field(default_factory=list)

    def at(self, pos: int) -> tuple[Src, int]:
        return self.origin if self.origin is not None else (self, pos)

    def line(self, pos: int) -> int:
        if self.origin is not None:
            return self.origin[0].line(self.origin[1])
        if not self._lines:
            self._lines = [0] + [m.end() for m in re.finditer("\n", self.text)]
        return bisect.bisect_right(self._lines, pos)


@dataclass
class Frame:
    """A unit or proof open at a point of the scan (or a unit opened by a heading), and what it collected."""

    role: str  # "unit" | "proof" | "headed"
    env: str
    src: Src
    begin: int
    body: int
    unit: RawUnit | None = None
    target: RawUnit | None = None  # proofs: the unit proved
    refs: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    cut: list[tuple[int, int]] = field(default_factory=list)
    adjacent: bool = True  # proofs: right after (or inside) what they prove; the unit's span then grows


Handler = Callable[[str, Src, int, int, int, int], int]


class ReaderState:
    """What the reader knows at a point of the book (macros, counters, environments, open frames, units so far),
    and the reporting every concern shares. The concerns (macros, counters, conditionals, frames, theorems,
    units, sections, inclusion, the scanner) are mixins over this state, composed into
    :class:`~autoform.ingest.latex.reader.Reader`; each adds its control words to :meth:`handler_table`."""

    def __init__(self, root: Path, env_map: dict[str, str], limits: Limits | None = None) -> None:
        self.root = root
        self.base = root.parent
        self.limits = limits or Limits()
        self.allowed = [self.base.resolve(), *(d.resolve() for d in self.limits.allow_dirs)]
        self.steps = 0  # expansion work so far (see Limits.max_expansion)
        self.env_map = env_map
        self.macros: dict[str, Macro] = {"jobname": Macro.make("", root.stem)}
        self.envdefs: dict[str, EnvDef] = {}
        self.thm: dict[str, TheoremEnv] = {}
        self.proof_envs: set[str] = set(PROOF_ENVS)
        self.verbatim: set[str] = set(VERBATIM_ENVS)
        self.values: dict[str, int] = {}
        self.children: dict[str, list[str]] = {}
        self.toggles: dict[str, bool] = {}
        self.ifs: dict[str, bool] = {}
        self.tokens: dict[str, tuple[str, str, str, str]] = {}
        self.groups: list[dict[str, Macro | None]] = []  # per \begingroup: the definitions it will restore
        self.toggle_groups: list[dict[str, bool | None]] = []
        self.global_next = False
        self.units: list[RawUnit] = []
        self.warnings: list[str] = []
        self.frames: list[Frame] = []
        self.last_unit: RawUnit | None = None
        self.last_parent: Frame | None = None
        self.label_unit: dict[str, RawUnit] = {}
        self.chapter = self.section = ""
        self.in_document = False
        self.matter = "main"
        self.title = ""
        self.stack: list[Path] = []
        self.at_begin_document: list[tuple[str, Src, int]] = []
        self.has_chapters = False
        self.markers: dict[str, tuple[Src, int, int]] = {}
        self.label_macros: set[str] = set()  # \newcommand{\ollabel}[1]{\label{...#1}}: dropped like \label
        self._label_macro_re: re.Pattern[str] | None = None
        self.marker_seq = 0
        self.fallback_used = False
        self._use_cache: dict[str, EnvUse | None] = {}
        self._int_cache: dict[str, bool] = {}
        self._content_cache: dict[str, bool] = {}
        self.handlers: dict[str, Handler] = self.handler_table()

    def rel(self, file: Path | None) -> str:
        if file is None:
            return "?"
        try:
            return str(file.resolve().relative_to(self.base.resolve()))
        except ValueError:
            return str(file)

    def where(self, src: Src, pos: int) -> str:
        fsrc, fpos = src.at(pos)
        return f"{self.rel(fsrc.file)}:{fsrc.line(fpos)}"

    def warn(self, src: Src, pos: int, msg: str) -> None:
        self.warnings.append(f"{self.where(src, pos)}: {msg}")

    def charge(self, name: str, size: int) -> None:
        """Count one expansion of ``name`` producing ``size`` characters against the book's budget."""
        self.steps += 1 + size // 32
        if self.steps > self.limits.max_expansion:
            raise ExpansionLimit(name, self.steps)

    def expansion_error(self, e: ExpansionLimit, src: Src, pos: int) -> ExpansionLimit:
        if e.where is None:
            e.where = self.where(src, pos)
        return e

    def run_inline(self, text: str, src: Src, pos: int, depth: int) -> None:
        if text.strip():
            self.run(Src(text, text, None, src.at(pos)), 0, len(text), depth + 1)

    def handler_table(self) -> dict[str, Handler]:
        """The control words this reader handles, each with its handler; every concern adds its own."""
        return {}

    def run(self, src: Src, i: int, n: int, depth: int) -> int:
        """Scan ``src`` from ``i`` to ``n`` (see :meth:`~autoform.ingest.latex.scanner.Scanner.run`)."""
        raise NotImplementedError
