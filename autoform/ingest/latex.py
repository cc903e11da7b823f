r"""LaTeX ingest: theorem-like environments with numbers, titles, labels, proofs, references and source spans.

How it reads a book (deterministic; nothing here calls an LLM):

* Every file is read once and *masked*: comments and verbatim material (``verbatim``, ``lstlisting``, ``\verb``,
  environments the book declares with ``\lstnewenvironment`` ...) are blanked, keeping every offset, so the
  scanner never mistakes them for structure and every position still maps to a file and line.
* A scanner walks the masked text from control word to control word (a C-level regex search; plain text is
  skipped at regex speed) and runs a small interpreter of the book's own *structural* macros: definitions
  (``\newcommand``, ``\renewcommand``, ``\def``, ``\let``, xparse's ``\NewDocumentCommand`` ..., with their argument
  specs), inclusion (``\input``, ``\include``, ``\subfile``, ``\import``, ``\subimport``, local packages), theorem
  declarations (``\newtheorem``, thmtools' ``\declaretheorem``, ``\newenvironment`` aliases, ``restatable``),
  counters (``\setcounter``, ``\numberwithin``, ``\renewcommand{\thesection}``, ``\appendix``, front/main/back
  matter), sectioning, ``\label`` and the reference commands. A macro the book defines is expanded when it
  *reaches* one of these (an inclusion macro like OpenLogic's ``\olimport``, a label macro like ``\ollabel``, a
  reference macro like ``\olref``, a state setter like ``\olfileid``); every other macro is left alone while
  scanning, so unknown macros cannot break anything.
* Numbers are computed like LaTeX does: counters with reset lists and ``\the<counter>`` formats kept as macros.
* The stored statement has the book's macros expanded; ``statement_raw`` keeps the source text.

Why not pylatexenc: it parsed the whole book into a node tree and spent ~90% of infdesc's 8-9 s in its
tokenizer; it also does not know the argument specs of a book's own macros, which is what labels, references
and inclusions hidden behind macros need. The scanner reads infdesc in well under a second.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from autoform.errors import UsageError
from autoform.ingest.model import KINDS, NAME_TO_KIND, IngestResult, RawUnit, link_textual, textual_mentions

REF_MACROS: dict[str, int] = {  # name -> number of label arguments
    "ref": 1,
    "eqref": 1,
    "cref": 1,
    "Cref": 1,
    "autoref": 1,
    "Autoref": 1,
    "pageref": 1,
    "vref": 1,
    "Vref": 1,
    "nameref": 1,
    "Nameref": 1,
    "cpageref": 1,
    "Cpageref": 1,
    "labelcref": 1,
    "namecref": 1,
    "nameCref": 1,
    "lcnamecref": 1,
    "namecrefs": 1,
    "nameCrefs": 1,
    "subref": 1,
    "fullref": 1,
    "vpageref": 1,
    "zcref": 1,
    "crefrange": 2,
    "Crefrange": 2,
    "cpagerefrange": 2,
    "Cpagerefrange": 2,
    "vrefrange": 2,
}
INCLUDE_MACROS = (
    "input",
    "include",
    "subfile",
    "import",
    "subimport",
    "includefrom",
    "subincludefrom",
    "inputfrom",
    "subinputfrom",
    "InputIfFileExists",
    "usepackage",
    "RequirePackage",
)
PROOF_ENVS = frozenset({"proof", "proof*", "pf", "Proof"})
_IMPORTS = frozenset({"subfile", "import", "subimport", "includefrom", "subincludefrom", "inputfrom", "subinputfrom"})
SECTION_LEVELS = {
    "part": -1,
    "chapter": 0,
    "section": 1,
    "subsection": 2,
    "subsubsection": 3,
    "paragraph": 4,
    "subparagraph": 5,
}
_CHAPTER_CLASSES = {
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
_VERBATIM_ENVS = {
    "verbatim",
    "verbatim*",
    "Verbatim",
    "Verbatim*",
    "BVerbatim",
    "LVerbatim",
    "lstlisting",
    "minted",
    "comment",
    "filecontents",
    "filecontents*",
    "spverbatim",
    "alltt*",
}
_ETOOLBOX_IFS = {  # macros whose name starts with "if" but that take arguments (no \fi)
    "ifdef",
    "ifundef",
    "ifcsdef",
    "ifcsundef",
    "ifdefmacro",
    "ifcsmacro",
    "ifdefparam",
    "ifdefprefix",
    "ifdefempty",
    "ifcsempty",
    "ifdefvoid",
    "ifcsvoid",
    "ifdefequal",
    "ifcsequal",
    "ifdefstring",
    "ifcsstring",
    "ifdefstrequal",
    "ifbool",
    "ifboolexpr",
    "ifboolexpe",
    "iftoggle",
    "ifnumcomp",
    "ifnumequal",
    "ifnumgreater",
    "ifnumless",
    "ifnumodd",
    "ifdimcomp",
    "ifstrequal",
    "ifstrempty",
    "ifblank",
    "ifinlist",
    "ifthenelse",
    "ifcommand",
    "ifdimequal",
    "ifdimgreater",
    "ifdimless",
    "ifrmnum",
    "ifltxcounter",
    "iflinguistics",
}
NOVALUE = "-NoValue-"
TRUE, FALSE = r"\BooleanTrue", r"\BooleanFalse"
_STOP = -1
_MAX_DEPTH = 24

#: control words whose presence in a macro's body makes the scanner expand that macro
_INTEREST = frozenset(
    {
        "label",
        "chapter",
        "section",
        "part",
        "subsection",
        "subsubsection",
        "paragraph",
        "appendix",
        "csuse",
        "csname",
        "def",
        "gdef",
        "edef",
        "xdef",
        "let",
        "newcommand",
        "renewcommand",
        "providecommand",
        "DeclareRobustCommand",
        "DeclareDocumentCommand",
        "NewDocumentCommand",
        "RenewDocumentCommand",
        "ProvideDocumentCommand",
        "setcounter",
        "addtocounter",
        "stepcounter",
        "refstepcounter",
        "numberwithin",
        "counterwithin",
        "counterwithout",
        "newtheorem",
        "declaretheorem",
        "newenvironment",
        "renewenvironment",
        "toggletrue",
        "togglefalse",
        "settoggle",
        "providetoggle",
        "newtoggle",
        "iftoggle",
        "docsvlist",
        "@firstoftwo",
        "@secondoftwo",
        "frontmatter",
        "mainmatter",
        "backmatter",
        "hyperref",
        *REF_MACROS,
        *INCLUDE_MACROS,
    }
)


#: control words that make a macro "programming" rather than content: such macros are not expanded in the
#: stored statement (their arguments are), since their expansion is TeX code, not mathematics
_PROGRAMMING = frozenset(
    {
        "def",
        "gdef",
        "edef",
        "xdef",
        "let",
        "futurelet",
        "expandafter",
        "csname",
        "csuse",
        "docsvlist",
        "forcsvlist",
        "newcommand",
        "renewcommand",
        "providecommand",
        "DeclareDocumentCommand",
        "NewDocumentCommand",
        "RenewDocumentCommand",
        "setcounter",
        "addtocounter",
        "stepcounter",
        "refstepcounter",
        "newtoggle",
        "toggletrue",
        "togglefalse",
        "settoggle",
        "providetoggle",
        "afterassignment",
        "aftergroup",
        "begingroup",
        "endgroup",
        "ifx",
        "ifdefined",
        "ifcsname",
        "ifnum",
        "ifdim",
        "ifcase",
        "else",
        "fi",
        "newif",
        "write",
        "immediate",
        "openout",
        "uppercase",
        "lowercase",
        "MakeUppercase",
        "makeatletter",
        "makeatother",
        "catcode",
        "global",
        "long",
        "protected",
        "noexpand",
        "unexpanded",
        "detokenize",
        "string",
        "romannumeral",
        "number",
        "numexpr",
        "dimexpr",
        "setbox",
        "sbox",
        "savebox",
        "hbox",
        "vbox",
        "advance",
        "multiply",
        "divide",
        "loop",
        "repeat",
        "input",
        "include",
        "subfile",
        "import",
        "subimport",
        "section",
        "chapter",
        "part",
        "begin",
        "end",
        "par",
        "vskip",
        "hskip",
        "vspace",
        "hspace",
        "newpage",
        "clearpage",
        "pagebreak",
    }
)


class IngestError(UsageError):
    """The book cannot be read at all (missing root file, not LaTeX); the message names the file."""


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


class _ExpansionLimit(Exception):
    """Raised deep inside the expansion; the innermost scan that knows a file position turns it into an
    :class:`IngestError`."""

    def __init__(self, name: str, steps: int, *, nested: int = 0) -> None:
        super().__init__(name)
        self.name, self.steps, self.nested = name, steps, nested
        self.where: str | None = None


# ============================================================================================ text helpers
_CS_RE = re.compile(r"\\([A-Za-z@]+)")
_CS_OR_TOKEN = re.compile(r"\\([A-Za-z@]+)|!!")
_TOKEN_USE = re.compile(r"(\^?)(a?)\{([^{}]*)\}(s?)")
_BRACE_TOK = re.compile(r"\\.|[{}]", re.S)
_BRACKET_TOK = re.compile(r"\\.|[{}\]]", re.S)
_TOKEN_RE = re.compile(r"\\(?:[A-Za-z@]+|.)|.", re.S)
_OPT_WS = re.compile(r"[ \t]*(?:\r?\n[ \t]*)?")
_WS = re.compile(r"\s*")
_LABEL_RE = re.compile(r"\\label\s*(?:\[[^\]]*\])?\s*\{[^{}]*\}")
_PARAM_RE = re.compile(r"#(#|[1-9])")
_NL_WS = re.compile(r"[ \t]*\n\s*")
_LONE_LABEL = re.compile(r"\s*\\label\s*\{(?:[^{}]|\{[^{}]*\})*\}\s*")
_ALIAS_RE = re.compile(r"\s*\\([A-Za-z@]+)\s*")


def _group(s: str, i: int, n: int) -> tuple[str, int] | None:
    """The content of the balanced group opening at s[i] == '{', and the index after it."""
    depth = 0
    for m in _BRACE_TOK.finditer(s, i, n):
        c = m.group()
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return s[i + 1 : m.start()], m.end()
    return None


def _bracket(s: str, i: int, n: int) -> tuple[str, int] | None:
    """The content of an optional argument opening at s[i] == '[' (braces protect a ']')."""
    depth = 0
    for m in _BRACKET_TOK.finditer(s, i + 1, n):
        c = m.group()
        if c == "{":
            depth += 1
        elif c == "}":
            depth = max(0, depth - 1)
        elif c == "]" and depth == 0:
            return s[i + 1 : m.start()], m.end()
    return None


def _mandatory(s: str, i: int, n: int) -> tuple[str, int, int] | None:
    """(text, start, end-after) of a mandatory argument: a group or a single token, after optional spaces."""
    i = _WS.match(s, i, n).end()
    if i >= n:
        return None
    if s[i] == "{":
        got = _group(s, i, n)
        return (got[0], i + 1, got[1]) if got else None
    if s[i] in "}]":
        return None
    m = _TOKEN_RE.match(s, i, n)
    return (m.group(), i, m.end()) if m else None


def _optional(s: str, i: int, n: int, open_: str = "[") -> tuple[str, int] | None:
    j = _OPT_WS.match(s, i, n).end()
    if j < n and s[j] == open_:
        return _bracket(s, j, n) if open_ == "[" else None
    return None


def _star(s: str, i: int, n: int) -> tuple[bool, int]:
    j = _WS.match(s, i, n).end()
    if j < n and s[j] == "*":
        return True, j + 1
    return False, i


def _clean(s: str) -> str:
    s = _LABEL_RE.sub("", s)
    s = re.sub(r"[ \t]+\n", "\n", s)
    return s.strip()


def _plain(s: str) -> str:
    """A printed name without macros and braces: '{Theorem\\assumesAC{x}}' -> 'Theorem'."""
    s = re.sub(r"\\[A-Za-z@]+\*?(\s*\{[^{}]*\})*", " ", s)
    s = re.sub(r"[{}~]", " ", s)
    return " ".join(s.split())


def _keyvals(s: str) -> dict[str, str]:
    """key=value pairs (and bare keys, value '') of an optional argument, split at top-level commas."""
    out: dict[str, str] = {}
    depth, cur, parts = 0, "", []
    for c in s:
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += (c == "{") - (c == "}")
        cur += c
    parts.append(cur)
    for p in parts:
        k, _, v = p.partition("=")
        v = v.strip()
        if v.startswith("{") and v.endswith("}"):
            v = v[1:-1]
        if k.strip():
            out[k.strip()] = v.strip()
    return out


# ================================================================================================ masking
def _mask(text: str, verbatim: set[str]) -> tuple[str, str]:
    """(text with comments and verbatim material blanked, text with only comments blanked); same length as
    ``text``, newlines kept."""
    names = "|".join(re.escape(v) for v in sorted(verbatim, key=len, reverse=True))
    pat = re.compile(
        r"\\[^A-Za-z]"  # an escaped character (\\, \%, \{): kept
        r"|\\verb\*?([^\sA-Za-z*])[^\n]*?\1"
        r"|\\(?:lstinline|mintinline\{[^}\n]*\}|lstinline\[[^\]\n]*\])(?:([^\s{A-Za-z\[])[^\n]*?\2|\{[^}\n]*\})"
        rf"|\\begin\s*\{{({names})\}}.*?\\end\s*\{{\3\}}"
        r"|%[^\n]*",
        re.S,
    )

    comments: list[tuple[int, int]] = []

    def blank(m: re.Match[str]) -> str:
        s = m.group()
        if s[0] == "\\" and len(s) == 2:
            return s
        if s[0] == "%":
            comments.append(m.span())
        if "\n" not in s:
            return " " * len(s)
        return re.sub(r"[^\n]", " ", s)

    masked = pat.sub(blank, text)
    if not comments:
        return masked, text
    parts, last = [], 0
    for a, b in comments:
        parts += [text[last:a], " " * (b - a)]
        last = b
    parts.append(text[last:])
    return masked, "".join(parts)


def _unmatched_braces(masked: str) -> list[int]:
    stack: list[int] = []
    bad: list[int] = []
    for m in _BRACE_TOK.finditer(masked):
        c = m.group()
        if c == "{":
            stack.append(m.start())
        elif c == "}":
            if stack:
                stack.pop()
            else:
                bad.append(m.start())
    return sorted(bad + stack)


# ================================================================================================== model
@dataclass
class Macro:
    spec: str  # one letter per argument: m (mandatory), o (optional, -NoValue-), O (optional, default), s, t
    body: str
    defaults: tuple[str | None, ...] = ()
    tokens: tuple[str, ...] = ()
    expandable: bool = True
    words: frozenset[str] = frozenset()
    alias: str | None = None  # the body is just another control word (\let\a\b, \def\a{\b})

    @staticmethod
    def make(
        spec: str,
        body: str,
        defaults: tuple[str | None, ...] = (),
        tokens: tuple[str, ...] = (),
        expandable: bool = True,
    ) -> Macro:
        al = _ALIAS_RE.fullmatch(body) if not spec and expandable else None
        return Macro(
            spec, body, defaults, tokens, expandable, frozenset(_CS_RE.findall(body)), al.group(1) if al else None
        )


@dataclass
class EnvDef:
    spec: str
    defaults: tuple[str | None, ...]
    begin: str
    end: str


@dataclass
class TheoremEnv:
    env: str
    kind: str
    printed: str
    counter: str | None  # None: unnumbered
    fallback: bool = False  # not declared by the book: one of the usual names


@dataclass
class _EnvUse:
    """How a \\begin{name} is read: a unit or a proof, maybe through an alias with its own arguments."""

    role: str  # "unit" | "proof"
    thm: TheoremEnv | None
    spec: str = ""
    defaults: tuple[str | None, ...] = ()
    title_arg: int = -1  # which alias argument is the title (-1: the environment's own [title])
    fixed_title: str = ""
    restatable: bool = False


@dataclass
class _Src:
    text: str  # comments blanked (verbatim kept): what statements are cut from
    masked: str  # comments and verbatim blanked: what the scanner reads
    file: Path | None = None
    origin: tuple[_Src, int] | None = None  # for expanded text: the file source and position of the macro
    imported: bool = False  # reached through \import, \subimport or \subfile: relative paths start here
    _lines: list[int] = field(default_factory=list)

    def at(self, pos: int) -> tuple[_Src, int]:
        return self.origin if self.origin is not None else (self, pos)

    def line(self, pos: int) -> int:
        if self.origin is not None:
            return self.origin[0].line(self.origin[1])
        if not self._lines:
            self._lines = [0] + [m.end() for m in re.finditer("\n", self.text)]
        return bisect.bisect_right(self._lines, pos)


@dataclass
class _Frame:
    role: str  # "unit" | "proof" | "headed"
    env: str
    src: _Src
    begin: int
    body: int
    unit: RawUnit | None = None
    target: RawUnit | None = None  # proofs: the unit proved
    refs: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    cut: list[tuple[int, int]] = field(default_factory=list)
    adjacent: bool = True  # proofs: right after (or inside) what they prove; the unit's span then grows


Handler = Callable[[str, _Src, int, int, int, int], int]


# ================================================================================================= reader
class _Reader:
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
        self.verbatim: set[str] = set(_VERBATIM_ENVS)
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
        self.frames: list[_Frame] = []
        self.last_unit: RawUnit | None = None
        self.last_parent: _Frame | None = None
        self.label_unit: dict[str, RawUnit] = {}
        self.chapter = self.section = ""
        self.in_document = False
        self.matter = "main"
        self.title = ""
        self.stack: list[Path] = []
        self.at_begin_document: list[tuple[str, _Src, int]] = []
        self.has_chapters = False
        self.markers: dict[str, tuple[_Src, int, int]] = {}
        self.label_macros: set[str] = set()  # \newcommand{\ollabel}[1]{\label{...#1}}: dropped like \label
        self._label_macro_re: re.Pattern[str] | None = None
        self.marker_seq = 0
        self.fallback_used = False
        self._use_cache: dict[str, _EnvUse | None] = {}
        self._int_cache: dict[str, bool] = {}
        self._content_cache: dict[str, bool] = {}
        self.handlers: dict[str, Handler] = self._handlers()

    # ----------------------------------------------------------------------------------------- utilities
    def rel(self, file: Path | None) -> str:
        if file is None:
            return "?"
        try:
            return str(file.resolve().relative_to(self.base.resolve()))
        except ValueError:
            return str(file)

    def where(self, src: _Src, pos: int) -> str:
        fsrc, fpos = src.at(pos)
        return f"{self.rel(fsrc.file)}:{fsrc.line(fpos)}"

    def warn(self, src: _Src, pos: int, msg: str) -> None:
        self.warnings.append(f"{self.where(src, pos)}: {msg}")

    # ---------------------------------------------------------------------------------------- definitions
    def define(self, name: str, macro: Macro | None) -> None:
        if self.groups and not self.global_next:
            top = self.groups[-1]
            if name not in top:
                top[name] = self.macros.get(name)
        self.global_next = False
        is_label = macro is not None and macro.spec == "m" and _LONE_LABEL.fullmatch(macro.body) is not None
        if is_label != (name in self.label_macros):
            (self.label_macros.add if is_label else self.label_macros.discard)(name)
            self._label_macro_re = None
        old = self.macros.get(name)
        if name in self._content_cache:
            self._content_cache.clear()
        old_int = self._int_cache.pop(name, None)
        if macro is None:
            self.macros.pop(name, None)
            if old_int:
                self._int_cache.clear()
            return
        self.macros[name] = macro
        if old is not None and old.words == macro.words and old.expandable == macro.expandable:
            if old_int is not None:
                self._int_cache[name] = old_int
            return
        new_int = self.interesting(name)
        if (old_int is not None and old_int != new_int) or (old is None and new_int):
            self._int_cache.clear()

    def interesting(self, name: str) -> bool:
        c = self._int_cache.get(name)
        if c is not None:
            return c
        self._int_cache[name] = False  # cycles are not interesting
        mac = self.macros[name]
        res = mac.expandable and any(w in _INTEREST or (w in self.macros and self.interesting(w)) for w in mac.words)
        self._int_cache[name] = res
        return res

    def content(self, name: str) -> bool:
        """A macro whose expansion is text and mathematics (no definitions, no TeX programming)."""
        c = self._content_cache.get(name)
        if c is not None:
            return c
        self._content_cache[name] = False
        mac = self.macros[name]
        res = (
            mac.expandable
            and len(mac.body) < 2000
            and not any(w in _PROGRAMMING or (w in self.macros and not self.content(w)) for w in mac.words)
        )
        self._content_cache[name] = res
        return res

    # ------------------------------------------------------------------------------------------ counters
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
        self.has_chapters = cls in _CHAPTER_CLASSES
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

    # ------------------------------------------------------------------------------------------ expansion
    def charge(self, name: str, size: int) -> None:
        """Count one expansion of ``name`` producing ``size`` characters against the book's budget."""
        self.steps += 1 + size // 32
        if self.steps > self.limits.max_expansion:
            raise _ExpansionLimit(name, self.steps)

    def expansion_error(self, e: _ExpansionLimit, src: _Src, pos: int) -> _ExpansionLimit:
        if e.where is None:
            e.where = self.where(src, pos)
        return e

    def expand(self, s: str, *, strings: bool = False, depth: int = 0) -> str:
        """Expand the book's macros in ``s`` (unknown macros are kept). ``strings``: also evaluate counter
        formats and drop \\relax-like tokens (for labels, file names and numbers)."""
        if depth > 16 or ("\\" not in s and "!!" not in s):
            return s
        out: list[str] = []
        i, n = 0, len(s)
        size = 0
        pat = _CS_OR_TOKEN if self.tokens else _CS_RE
        while True:
            m = pat.search(s, i)
            if m is None:
                out.append(s[i:])
                break
            out.append(s[i : m.start()])
            j = m.end()
            name = m.group(1)
            rep: str | None = None
            if name is None:  # !!{token}
                rep, j = self._token(s, j, n)
            elif name in _BRANCHES:
                got = self._branch(name, s, j, n)
                if got is not None:
                    rep, j = self.expand(got[0], strings=strings, depth=depth + 1), got[1]
            elif name in ("csuse", "csname", "usetoken"):
                got = self._csname(name, s, j, n)
                if got is not None:
                    s = "\\" + got[0] + s[got[1] :]
                    i, n = 0, len(s)
                    continue
            elif strings and name in _COUNTER_FORMATS:
                a = _mandatory(s, j, n)
                if a is not None:
                    rep, j = _COUNTER_FORMATS[name](self.values.get(a[0].strip(), 0)), a[2]
            elif strings and name in (
                "relax",
                "protect",
                "noexpand",
                "expandafter",
                "ignorespaces",
                "unskip",
                "xspace",
                "nobreak",
                "@",
                "leavevmode",
                "string",
            ):
                rep = ""
            mac = self.macros.get(name) if rep is None and name else None
            if mac is not None and mac.expandable and (strings or self.content(name)):
                args = self.read_args(s, j, n, mac)
                if args is not None:
                    vals, j = args
                    rep = _substitute(mac.body, vals)
                    self.charge(name, len(rep))
                    rep = self.expand(rep, strings=strings, depth=depth + 1)
                    if "\n" in rep:
                        rep = _NL_WS.sub(" ", rep.strip())
                    if not mac.spec and j < n and (s[j].isalpha() or s[j] == "@") and re.search(r"\\[A-Za-z@]+$", rep):
                        rep += " "
            elif rep is None and strings and name and name.startswith("the") and name[3:] in self.values:
                rep = str(self.values[name[3:]])
            if rep is None:
                out.append(m.group())
            else:
                out.append(rep)
                size += len(rep)
                if size > 500_000:
                    out.append(s[j:])
                    break
            i = j
        return "".join(out)

    def _token(self, s: str, j: int, n: int) -> tuple[str | None, int]:
        """OpenLogic's terminology tokens: !!{t}, !!{t}s, !!^{t}, !!a{t}, !!^a{t}."""
        m = _TOKEN_USE.match(s, j, n)
        if m is None or m.group(3) not in self.tokens:
            return None, j
        sing, plur, Sing, Plur = self.tokens[m.group(3)]
        word = (Plur if m.group(4) else Sing) if m.group(1) else (plur if m.group(4) else sing)
        if m.group(2):
            art = "an" if word[:1].lower() in "aeiou" else "a"
            if m.group(1):
                art, word = art.capitalize(), word[:1].lower() + word[1:]
            word = f"{art} {word}"
        return word, m.end()

    def _csname(self, name: str, s: str, j: int, n: int) -> tuple[str, int] | None:
        if name == "csname":
            k = s.find(r"\endcsname", j, n)
            if k < 0:
                return None
            return self.expand(s[j:k], strings=True).strip(), k + len(r"\endcsname")
        if name == "usetoken":
            a = _mandatory(s, j, n)
            b = _mandatory(s, a[2], n) if a else None
            if a is None or b is None:
                return None
            form, tok = a[0].strip(), b[0].strip()
            if tok in self.tokens and form in ("s", "p", "S", "P"):
                return f"OLtok@{form}@{tok}", b[2]
            return None
        a = _mandatory(s, j, n)
        if a is None:
            return None
        return self.expand(a[0], strings=True).strip(), a[2]

    def _branch(self, name: str, s: str, j: int, n: int) -> tuple[str, int] | None:
        """Evaluate the argument-taking conditionals; returns (chosen text, end)."""
        nargs, test = _BRANCHES[name]
        args: list[str] = []
        k = j
        for _ in range(nargs):
            a = _mandatory(s, k, n)
            if a is None:
                return None
            args.append(a[0])
            k = a[2]
        first = test(self, args[0]) if test else True
        k_arg = _pick_branch(name, nargs, first)
        return (args[k_arg] if k_arg >= 0 else ""), k

    def read_args(
        self, s: str, i: int, n: int, mac: Macro | EnvDef, spans: list[tuple[int, int] | None] | None = None
    ) -> tuple[list[str], int] | None:
        """The arguments of ``mac`` at s[i:] by its spec (and, in ``spans``, where each one's text lies)."""
        vals: list[str] = []
        for k, c in enumerate(mac.spec):
            if c == "m":
                a = _mandatory(s, i, n)
                if a is None:
                    return None
                vals.append(a[0])
                if spans is not None:
                    spans.append((a[1], a[1] + len(a[0])))
                i = a[2]
                continue
            if spans is not None:
                spans.append(None)
            if c in "oO":
                got = _optional(s, i, n)
                if got is None:
                    d = mac.defaults[k] if k < len(mac.defaults) else None
                    vals.append(NOVALUE if c == "o" or d is None else d)
                else:
                    vals.append(got[0])
                    if spans is not None:
                        spans[-1] = (got[1] - 1 - len(got[0]), got[1] - 1)
                    i = got[1]
            elif c in "st":
                tok = "*" if c == "s" else (mac.tokens[k] if isinstance(mac, Macro) and k < len(mac.tokens) else "*")
                j = _WS.match(s, i, n).end()
                if s.startswith(tok, j):
                    vals.append(TRUE)
                    i = j + len(tok)
                else:
                    vals.append(FALSE)
        return vals, i

    # ---------------------------------------------------------------------------------------------- files
    def read_file(self, path: Path, src: _Src | None, pos: int) -> str | None:
        try:
            size = path.stat().st_size
            if size > self.limits.max_file_bytes:
                where = f"{self.where(src, pos)}: " if src is not None else ""
                raise IngestError(
                    f"{where}{path}: {size / 2**20:.1f} MB, over the limit of "
                    f"{self.limits.max_file_bytes / 2**20:.0f} MB for one source file "
                    "([ingest] max_file_mb in autoform.toml)"
                )
            self.charge(f"input{{{path.name}}}", 640 + size)  # a file costs its reading and scanning
            data = path.read_bytes()
        except OSError as e:
            if src is not None:
                self.warn(src, pos, f"{path.name}: cannot be read ({e.strerror}); skipped")
            return None
        if b"\x00" in data:
            if src is None:
                raise IngestError(f"{path}: not a text file (it holds binary data); pass a LaTeX source")
            self.warn(src, pos, f"{self.rel(path)}: binary file, not LaTeX; skipped")
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            self.warnings.append(f"{self.rel(path)}:{line}: not valid UTF-8 ({e.reason}); read as Latin-1")
            return data.decode("latin-1")

    def run_file(self, path: Path, *, via: _Src | None = None, pos: int = 0, imported: bool = False) -> None:
        text = self.read_file(path, via, pos)
        if text is None:
            return
        for m in re.finditer(
            r"\\(?:lstnewenvironment|DefineVerbatimEnvironment|newminted|NewEnviron)\s*"
            r"\{([^{}]+)\}",
            text,
        ):
            if not m.group(0).startswith(r"\NewEnviron"):
                self.verbatim.add(m.group(1).strip())
        masked, text = _mask(text, self.verbatim)
        if path.suffix not in (".sty", ".cls"):
            bad = _unmatched_braces(masked)
            if bad:
                chars = list(masked)
                tmp = _Src(text, masked, path)
                for b in bad:
                    what = "unbalanced '}'" if masked[b] == "}" else "unclosed '{' (the group opened here never closes)"
                    self.warnings.append(f"{self.rel(path)}:{tmp.line(b)}: {what}")
                    chars[b] = " "
                masked = "".join(chars)
        src = _Src(text, masked, path, imported=imported)
        start, end = 0, len(text)
        is_root = via is None
        doc = re.search(r"\\begin\s*\{document\}", masked)
        if is_root:
            cls = re.search(r"\\documentclass\s*(?:\[[^\]]*\])?\s*\{([^}]*)\}", masked)
            self.setup_class(cls.group(1).strip() if cls else "article")
            if doc is None:
                self.in_document = True
                self.begin_document(src, 0)
        elif doc is not None and re.search(r"\\documentclass", masked[: doc.start()]):
            start = doc.end()  # a subfile/standalone document: only its body counts
            stop = re.search(r"\\end\s*\{document\}", masked[start:])
            end = start + stop.start() if stop else end
        self.stack.append(path.resolve())
        if len(self.stack) > self.limits.max_input_depth:
            assert via is not None
            chain = " -> ".join(p.name for p in self.stack)
            raise IngestError(
                f"{self.where(via, pos)}: more than {self.limits.max_input_depth} files open at once "
                f"through \\input (TeX's limit is 15): {chain}"
            )
        try:
            self.run(src, start, end, 0)
        finally:
            self.stack.pop()
            self.close_file_frames(src, end)

    def resolve(self, kind: str, target: str, src: _Src, pos: int) -> Path | None:
        fsrc, _ = src.at(pos)
        here = fsrc.file.parent if fsrc.file else self.base
        t = target.strip().strip('"')
        if not t:
            return None
        p = Path(t)
        # TeX looks in the directory it runs in (the root's); the import package and subfiles make paths
        # relative to the including file
        here_first = kind in _IMPORTS or fsrc.imported
        dirs = [here, self.base] if here_first else [self.base, here]
        exts = [".sty"] if kind in ("usepackage", "RequirePackage") else ["", ".tex"]
        for d in dirs:
            for ext in exts:
                c = (d / p) if not p.is_absolute() else p
                c = c.with_name(c.name + ext) if ext and not c.name.endswith(ext) else c
                if c.is_file():
                    self.confine(kind, target, c, src, pos)
                    return c
        return None

    def confine(self, kind: str, target: str, found: Path, src: _Src, pos: int) -> None:
        """Refuse a file outside the book's directory (and the directories allowed): a book must not pull in
        any readable file, whose text would go to the LLM and the site."""
        real = found.resolve()
        if not any(real == d or real.is_relative_to(d) for d in self.allowed):
            raise IngestError(
                f"{self.where(src, pos)}: \\{kind}{{{target}}} refused: {real} is outside the book's "
                f"directory {self.allowed[0]} (allow it with `autoform ingest --allow-input DIR`)"
            )

    def include(self, kind: str, target: str, src: _Src, pos: int, *, silent: bool = False) -> bool:
        target = self.expand(target, strings=True).strip()
        if not target:
            return False
        if "\\" in target or "#" in target:
            if not silent:
                self.warn(src, pos, f"\\{kind}{{{target}}}: file name uses an undefined macro; skipped")
            return False
        found = self.resolve(kind, target, src, pos)
        if found is None:
            if not silent:
                self.warn(src, pos, f"\\{kind}{{{target}}}: file not found; skipped")
            return False
        if found.resolve() in self.stack:
            self.warn(src, pos, f"\\{kind}{{{target}}} includes itself; skipped")
            return False
        self.run_file(found, via=src, pos=pos, imported=kind in _IMPORTS or src.at(pos)[0].imported)
        return True

    # ------------------------------------------------------------------------------------------- scanning
    def run(self, src: _Src, i: int, n: int, depth: int) -> int:
        masked = src.masked
        handlers = self.handlers
        macros = self.macros
        search = _CS_RE.search
        while True:
            m = search(masked, i, n)
            if m is None:
                return n
            name = m.group(1)
            j = m.end()
            for _ in range(8):  # \let-style aliases: \a -> \b
                mac = macros.get(name)
                if mac is None or mac.alias is None or name in handlers:
                    break
                name = mac.alias
            if self.markers and name in self.markers:
                msrc, a, b = self.markers[name]
                if self.run(msrc, a, b, depth + 1) == _STOP:
                    return _STOP
                i = j
                continue
            h = handlers.get(name)
            if h is not None:
                try:
                    r = h(name, src, j, n, m.start(), depth)
                except _ExpansionLimit as e:
                    raise self.expansion_error(e, src, m.start()) from None
                if r == _STOP:
                    return _STOP
                i = max(r, j)
                continue
            mac = macros.get(name)
            if mac is not None and depth >= _MAX_DEPTH and self.interesting(name):
                # TeX's input stack overflows here too ("TeX capacity exceeded"); real books stay far below
                raise self.expansion_error(_ExpansionLimit(name, self.steps, nested=depth), src, m.start())
            if mac is not None and depth < _MAX_DEPTH and self.interesting(name):
                try:
                    i = self.invoke(name, mac, src, j, n, m.start(), depth)
                except _ExpansionLimit as e:
                    raise self.expansion_error(e, src, m.start()) from None
                continue
            if name.endswith(("true", "false")):
                base = name[:-4] if name.endswith("true") else name[:-5]
                if "if" + base in self.ifs:
                    self.ifs["if" + base] = name.endswith("true")
            elif name in self.ifs and not self.ifs[name]:
                i = self.skip_conditional(src, j, n, to_else=True)
                continue
            i = j

    def invoke(self, name: str, mac: Macro, src: _Src, j: int, n: int, start: int, depth: int) -> int:
        spans: list[tuple[int, int] | None] = []
        got = self.read_args(src.masked, j, n, mac, spans)
        if got is None:
            return j
        vals, end = got
        self.charge(name, len(mac.body))
        markers: list[str] = []
        if src.origin is None:
            # an argument holding theorem environments or proofs (\iftag{t}{\begin{thm}...}{...}) is replaced
            # by a marker; where the expansion reaches the marker, the argument is read in place, in its file
            for k, (v, span) in enumerate(zip(vals, spans, strict=True)):
                if span is not None and any(self.env_use(e.strip()) for e in _UNIT_BEGIN.findall(v)):
                    self.marker_seq += 1
                    mark = "autoformArg" + _letters(self.marker_seq)
                    self.markers[mark] = (src, span[0], span[1])
                    markers.append(mark)
                    vals[k] = f"\\{mark} "
        body = _substitute(mac.body, vals)
        if body.strip():
            self.run(_Src(body, body, None, src.at(start)), 0, len(body), depth + 1)
        for mark in markers:
            self.markers.pop(mark, None)
        return end

    def run_inline(self, text: str, src: _Src, pos: int, depth: int) -> None:
        if text.strip():
            self.run(_Src(text, text, None, src.at(pos)), 0, len(text), depth + 1)

    def skip_conditional(self, src: _Src, i: int, n: int, *, to_else: bool) -> int:
        """Skip to the matching \\else (when ``to_else``) or \\fi, counting nested primitive conditionals."""
        depth = 0
        for m in re.finditer(r"\\(if[A-Za-z@]*|else|fi|or)(?![A-Za-z@])", src.masked[i:n]):
            w = m.group(1)
            if w.startswith("if"):
                if w in _ETOOLBOX_IFS or w in self.macros or w in self.handlers and w not in _PRIM_IFS:
                    continue
                depth += 1
            elif w == "fi":
                if depth == 0:
                    return i + m.end()
                depth -= 1
            elif w == "else" and depth == 0 and to_else:
                return i + m.end()
        return n

    # -------------------------------------------------------------------------------------------- frames
    def innermost_unit(self) -> _Frame | None:
        for fr in reversed(self.frames):
            if fr.role in ("unit", "headed"):
                return fr
        return None

    def close_headed(self, pos: int) -> None:
        if self.frames and self.frames[-1].role == "headed":
            fr = self.frames.pop()
            self.finish_unit(fr, pos, pos)

    def close_file_frames(self, src: _Src, end: int) -> None:
        while self.frames and self.frames[-1].src is src:
            fr = self.frames.pop()
            if fr.role != "headed":
                self.warn(src, fr.begin, f"\\begin{{{fr.env}}} is never closed; it ends with its file")
                end = min(end, len(src.text))
                if fr.role == "proof":
                    self.finish_proof(fr, end, end)
                    continue
            self.finish_unit(fr, end, end)

    def finish_unit(self, fr: _Frame, stop: int, after: int) -> None:
        u = fr.unit
        assert u is not None
        src = fr.src
        pieces, at = [], fr.body  # the text minus its proofs and nested units, in one pass (linear in the text)
        for a, b in sorted(fr.cut):
            if at <= a < b <= stop:
                pieces.append(src.text[at:a])
                at = b
        pieces.append(src.text[at:stop])
        body = "".join(pieces)
        raw = _clean(self.drop_label_macros(body))
        u.statement_raw = raw
        u.statement = _clean(self.expand(body))
        parent = self.innermost_unit()
        if parent is not None and parent.src is src:  # a unit nested in another is its own unit, not its text
            parent.cut.append((fr.begin, after))
        stmt_labels = list(dict.fromkeys(x for x in fr.labels if x))
        u.labels = list(dict.fromkeys(stmt_labels + u.labels))
        u.label = stmt_labels[0] if stmt_labels else ""
        u.refs = list(dict.fromkeys(fr.refs + u.refs))
        last = after - 1
        while last > fr.body and src.text[last].isspace():
            last -= 1
        l1, l2 = src.line(fr.begin), src.line(max(last, fr.begin))
        u.source = f"{self.rel(src.file)}:{l1}-{max(l2, self._span_end(u, src))}"
        for lab in u.labels:
            self.label_unit.setdefault(lab, u)
        self.last_unit, self.last_parent = u, self.innermost_unit()

    def drop_label_macros(self, s: str) -> str:
        if not self.label_macros:
            return s
        if self._label_macro_re is None:
            names = "|".join(re.escape(n) for n in sorted(self.label_macros, key=len, reverse=True))
            self._label_macro_re = re.compile(rf"\\(?:{names})(?![A-Za-z@])\s*\{{[^{{}}]*\}}")
        return self._label_macro_re.sub("", s)

    def _span_end(self, u: RawUnit, src: _Src) -> int:
        if u.source and u.source.rsplit(":", 1)[0] == self.rel(src.file):
            return int(u.source.rsplit("-", 1)[1])
        return 0

    def finish_proof(self, fr: _Frame, stop: int, after: int) -> None:
        src = fr.src
        parent = self.innermost_unit()
        if parent is not None and parent.src is src:
            parent.cut.append((fr.begin, after))
        u = fr.target
        if u is None:
            self.warn(src, fr.begin, "a proof with no statement before it; ignored")
            return
        body = src.text[fr.body : stop]
        raw = _clean(self.drop_label_macros(body))
        text = _clean(self.expand(body))
        u.proof = f"{u.proof}\n\n{text}" if u.proof else text
        u.proof_raw = f"{u.proof_raw}\n\n{raw}" if u.proof_raw else raw
        u.refs = list(dict.fromkeys(u.refs + fr.refs))
        u.labels = list(dict.fromkeys(u.labels + [x for x in fr.labels if x]))
        for lab in fr.labels:
            self.label_unit.setdefault(lab, u)
        if u.source and fr.adjacent:
            file, span = u.source.rsplit(":", 1)
            if file == self.rel(src.file):
                a, b = span.split("-")
                last = after - 1
                while last > fr.body and src.text[last].isspace():
                    last -= 1
                u.source = f"{file}:{a}-{max(int(b), src.line(last))}"

    def add_label(self, label: str) -> None:
        if self.frames and label:
            self.frames[-1].labels.append(label)

    def add_refs(self, labels: list[str]) -> None:
        if self.frames:
            self.frames[-1].refs.extend(x for x in labels if x)

    # ------------------------------------------------------------------------------------- environments
    def env_use(self, name: str) -> _EnvUse | None:
        if name in self._use_cache:
            return self._use_cache[name]
        use: _EnvUse | None = None
        if name in self.thm:
            use = _EnvUse("unit", self.thm[name])
        elif name in self.proof_envs:
            use = _EnvUse("proof", None)
        elif name in ("restatable", "restatable*"):
            use = _EnvUse("unit", None, restatable=True)
        elif name in self.envdefs:
            d = self.envdefs[name]
            m = re.search(r"\\begin\s*\{([^{}]+)\}\s*(\[([^\]]*)\])?", d.begin)
            if m:
                inner = self.env_use(m.group(1).strip())
                if inner is not None and not inner.restatable:
                    use = _EnvUse(inner.role, inner.thm, d.spec, d.defaults)
                    if m.group(3) is not None:
                        k = re.fullmatch(r"\s*#([1-9])\s*", m.group(3))
                        if k:
                            use.title_arg = int(k.group(1)) - 1
                        else:
                            use.fixed_title = m.group(3).strip()
                            use.title_arg = -2
        self._use_cache[name] = use
        return use

    def declare_theorem(
        self, name: str, printed: str, own: bool, other: str | None, within: str | None, refname: str = ""
    ) -> None:
        name = name.strip()
        if not name:
            return
        kind = self.kind_for(name, printed, refname)
        self._use_cache.clear()
        if kind == "proof":
            self.proof_envs.add(name)
            self.thm.pop(name, None)
            return
        counter: str | None
        if not own:
            counter = None
        elif other:
            other = other.strip()
            counter = self.thm[other].counter if other in self.thm and self.thm[other].counter else other
            if counter not in self.values:
                self.newcounter(counter, None)
        else:
            counter = name
            self.newcounter(name, within.strip() if within else None)
        self.thm[name] = TheoremEnv(name, kind, printed, counter)

    def kind_for(self, env: str, printed: str, refname: str = "") -> str:
        if env in self.env_map:
            return self.env_map[env]
        p = printed.strip()
        m = re.fullmatch(r"\\([A-Za-z]+)name", p)
        if m and p[1:] not in self.macros:  # \theoremname (babel-style), undefined here: "theorem"
            p = m.group(1)
        words = _plain(self.expand(p, strings=True)).lower().split()
        ref = _plain(refname).lower().split(",")[0].split()
        cands = [
            " ".join(words),
            words[-1] if words else "",
            " ".join(ref),
            ref[-1] if ref else "",
            env.rstrip("*").lower(),
            re.sub(r"\d+$", "", env.rstrip("*")).lower(),
        ]
        for c in cands:
            if c in NAME_TO_KIND:
                return NAME_TO_KIND[c]
        if words and NAME_TO_KIND.get(words[0], "proof") != "proof":  # "Lemma A"
            return NAME_TO_KIND[words[0]]
        return "remark"

    # ============================================================================================ handlers
    def _handlers(self) -> dict[str, Handler]:
        h: dict[str, Handler] = {}
        for n in ("begin",):
            h[n] = self.h_begin
        h["end"] = self.h_end
        for n in SECTION_LEVELS:
            h[n] = self.h_section
        for n in ("addchap", "addsec"):
            h[n] = self.h_section
        h["appendix"] = self.h_appendix
        for n in ("frontmatter", "mainmatter", "backmatter"):
            h[n] = self.h_matter
        for n in (
            "setcounter",
            "addtocounter",
            "stepcounter",
            "refstepcounter",
            "newcounter",
            "numberwithin",
            "counterwithin",
            "counterwithout",
        ):
            h[n] = self.h_counter
        h["label"] = self.h_label
        for n in REF_MACROS:
            h[n] = self.h_ref
        h["hyperref"] = self.h_hyperref
        for n in ("newcommand", "renewcommand", "providecommand", "DeclareRobustCommand"):
            h[n] = self.h_newcommand
        for n in ("def", "gdef", "edef", "xdef"):
            h[n] = self.h_def
        h["global"] = self.h_global
        h["let"] = self.h_let
        for n in (
            "DeclareDocumentCommand",
            "NewDocumentCommand",
            "RenewDocumentCommand",
            "ProvideDocumentCommand",
            "DeclareExpandableDocumentCommand",
            "NewExpandableDocumentCommand",
        ):
            h[n] = self.h_xparse
        h["DeclareMathOperator"] = self.h_mathop
        for n in (
            "newenvironment",
            "renewenvironment",
            "NewEnviron",
            "RenewEnviron",
            "lstnewenvironment",
            "NewDocumentEnvironment",
            "RenewDocumentEnvironment",
            "DeclareDocumentEnvironment",
        ):
            h[n] = self.h_newenv
        for n in ("newtheorem", "spnewtheorem", "newmdtheoremenv"):
            h[n] = self.h_newtheorem
        h["declaretheorem"] = self.h_declaretheorem
        for n in INCLUDE_MACROS:
            h[n] = self.h_include
        h["IfFileExists"] = self.h_iffileexists
        for n in _BRANCHES:
            h[n] = self.h_branch
        for n in ("toggletrue", "togglefalse", "settoggle", "newtoggle", "providetoggle"):
            h[n] = self.h_toggle
        h["docsvlist"] = self.h_docsvlist
        h["csuse"] = self.h_csuse
        h["csname"] = self.h_csuse
        h["newif"] = self.h_newif
        for n in _PRIM_IFS:
            h[n] = self.h_if
        h["else"] = self.h_else
        h["begingroup"] = self.h_begingroup
        h["endgroup"] = self.h_endgroup
        h["title"] = self.h_title
        h["AtBeginDocument"] = self.h_atbegindocument
        h["settexttoken"] = self.h_settexttoken
        h["endinput"] = self.h_endinput
        h["documentclass"] = self.h_skip_args
        return h

    # ---------------------------------------------------------------------------------------- structure
    def h_begin(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        a = _mandatory(src.masked, i, n)
        if a is None:
            return i
        env, j = a[0].strip(), a[2]
        if env == "document":
            if not self.in_document:
                self.in_document = True
                self.begin_document(src, start)
            return j
        if env == "appendices":
            self.appendix()
            return j
        if src.origin is not None or not self.in_document:
            return j
        use = self.env_use(env)
        if use is None:
            return j
        if use.role == "proof":
            return self.open_proof(env, use, src, start, j, n, depth)
        return self.open_unit(env, use, src, start, j, n, depth)

    def open_unit(self, env: str, use: _EnvUse, src: _Src, start: int, j: int, n: int, depth: int) -> int:
        s = src.masked
        self.close_headed(start)
        title = ""
        title_at = -1
        thm = use.thm
        if use.restatable:
            opt = _optional(s, j, n)
            if opt:
                title, j = opt[0].strip(), opt[1]
            a = _mandatory(s, j, n)
            b = _mandatory(s, a[2], n) if a else None
            if a is None or b is None:
                return j
            inner = self.env_use(a[0].strip())
            if inner is None or inner.role != "unit" or inner.thm is None:
                return b[2]
            thm, j = inner.thm, b[2]
        elif use.spec:
            got = self.read_args(s, j, n, EnvDef(use.spec, use.defaults, "", ""))
            if got is not None:
                vals, j = got
                if use.title_arg >= 0 and use.title_arg < len(vals) and vals[use.title_arg] != NOVALUE:
                    title = vals[use.title_arg].strip()
            if use.title_arg == -2:
                title = use.fixed_title
        else:
            opt = _optional(s, j, n)
            if opt:
                k = _OPT_WS.match(s, j, n).end()
                title, title_at, j = src.text[k + 1 : opt[1] - 1].strip(), k, opt[1]
        assert thm is not None
        if thm.fallback and not self.fallback_used:
            self.fallback_used = True
            self.warnings.append(
                f"{self.rel(self.root)}: no \\newtheorem declarations found; using the usual environment names"
            )
        if len(self.units) >= self.limits.max_units:
            raise IngestError(
                f"{self.where(src, start)}: more than {self.limits.max_units} theorem-like units in "
                "one book ([ingest] max_units in autoform.toml)"
            )
        self.check_nesting(env, src, start)
        unit = RawUnit(
            kind=thm.kind,
            number=self.number(thm.counter),
            title=title,
            statement="",
            chapter=self.chapter,
            section=self.section,
        )
        self.units.append(unit)
        fr = _Frame("unit", env, src, start, j, unit)
        self.frames.append(fr)
        if title_at >= 0 and "\\" in title:  # references in the title count
            self.run(src, title_at, j, depth)
        return j

    def open_proof(self, env: str, use: _EnvUse, src: _Src, start: int, j: int, n: int, depth: int) -> int:
        self.close_headed(start)
        title = ""
        if use.spec:
            got = self.read_args(src.masked, j, n, EnvDef(use.spec, use.defaults, "", ""))
            if got is not None:
                vals, j = got
                if 0 <= use.title_arg < len(vals) and vals[use.title_arg] != NOVALUE:
                    title = vals[use.title_arg]
        else:
            opt = _optional(src.masked, j, n)
            if opt:
                title, j = opt[0], opt[1]
        target: RawUnit | None = None
        by_title = False
        if "\\" in title:  # "Proof of Theorem~\ref{x}" proves x
            probe = _Frame("proof", env, src, start, j)
            self.frames.append(probe)
            self.run_inline(title, src, start, depth)
            self.frames.pop()
            for lab in probe.refs:
                if lab in self.label_unit:
                    target, by_title = self.label_unit[lab], self.label_unit[lab] is not self.last_unit
                    break
        if target is None:
            enclosing = self.innermost_unit()
            if self.last_unit is not None and self.last_parent is enclosing:
                target = self.last_unit  # the unit just before (at the same nesting level)
            elif enclosing is not None:
                target = enclosing.unit  # a proof inside the unit it proves
        self.check_nesting(env, src, start)
        fr = _Frame("proof", env, src, start, j, None, target, adjacent=not by_title)
        self.frames.append(fr)
        return j

    def check_nesting(self, env: str, src: _Src, pos: int) -> None:
        if len(self.frames) >= self.limits.max_nesting:
            raise IngestError(
                f"{self.where(src, pos)}: \\begin{{{env}}} nested {len(self.frames) + 1} deep, over "
                f"the limit of {self.limits.max_nesting} ([ingest] max_nesting in autoform.toml)"
            )

    def h_end(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        a = _mandatory(src.masked, i, n)
        if a is None:
            return i
        env, j = a[0].strip(), a[2]
        if env == "document":
            if src.origin is None and self.in_document:
                self.close_file_frames(src, start)
                return _STOP
            return j
        if src.origin is not None:
            return j
        for k in range(len(self.frames) - 1, -1, -1):
            fr = self.frames[k]
            if fr.env == env and fr.role != "headed" and fr.src is src:
                while len(self.frames) > k + 1:
                    inner = self.frames.pop()
                    if inner.role == "headed":
                        self.finish_unit(inner, start, start)
                    else:
                        self.warn(src, inner.begin, f"\\begin{{{inner.env}}} is closed by \\end{{{env}}}")
                        (self.finish_proof if inner.role == "proof" else self.finish_unit)(inner, start, start)
                self.frames.pop()
                if fr.role == "proof":
                    self.finish_proof(fr, start, j)
                else:
                    self.finish_unit(fr, start, j)
                break
        return j

    def begin_document(self, src: _Src, pos: int) -> None:
        if not self.thm and not any(k != "proof" for k in self.env_map.values()):
            for name in KINDS + (
                "problem",
                "note",
                "conjecture",
                "fact",
                "notation",
                "observation",
                "thm",
                "lem",
                "prop",
                "cor",
                "defn",
            ):
                self.thm[name] = TheoremEnv(name, NAME_TO_KIND[name], name.capitalize(), name, fallback=True)
                self.newcounter(name, None)
        for name, kind in self.env_map.items():
            if kind == "proof":
                self.proof_envs.add(name)
            elif name not in self.thm:
                self.thm[name] = TheoremEnv(name, kind, kind.capitalize(), name)
                self.newcounter(name, None)
            else:
                self.thm[name].kind = kind
        self._use_cache.clear()
        for code, s, p in self.at_begin_document:
            self.run_inline(code, s, p, 1)

    def h_section(self, name: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        star, j = _star(s, i, n)
        while True:
            opt = _optional(s, j, n)
            if opt is None:
                break
            j = opt[1]
        a = _mandatory(s, j, n)
        if a is None or not self.in_document:
            return j
        raw_title, j = a[0], a[2]
        self.close_headed(start)
        level = SECTION_LEVELS.get(name, 0 if name == "addchap" else 1)
        title = " ".join(self.expand(raw_title, strings=True).replace("{}", "").split())
        if star or name in ("addchap", "addsec"):
            pass
        elif name == "chapter":
            if self.matter == "main":
                self.step("chapter")
        else:
            self.step(name)
        if level == 0:
            self.chapter, self.section = title, ""
            self.last_unit = None
        elif level == 1:
            self.section = title
            self.last_unit = None
        elif level == -1:
            self.last_unit = None
        if (
            level >= 1
            and src.origin is None
            and self.innermost_unit() is None
            and not any(f.role == "proof" for f in self.frames)
        ):
            hm = _HEADED_RE.match(_plain_heading(raw_title))
            if hm and hm.group(1).lower() in NAME_TO_KIND and NAME_TO_KIND[hm.group(1).lower()] != "proof":
                unit = RawUnit(
                    kind=NAME_TO_KIND[hm.group(1).lower()],
                    number=hm.group(2),
                    title=(hm.group(3) or "").strip(),
                    statement="",
                    chapter=self.chapter,
                    section=self.section,
                )
                self.units.append(unit)
                self.frames.append(_Frame("headed", name, src, start, j, unit))
        return j

    def appendix(self) -> None:
        c = "chapter" if self.has_chapters else "section"
        self.values[c] = 0
        self.macros[f"the{c}"] = Macro.make("", rf"\Alph{{{c}}}")

    def h_appendix(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        self.appendix()
        return i

    def h_matter(self, name: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        self.matter = name[:-6]
        return i

    def h_counter(self, name: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        if name in ("numberwithin", "counterwithin", "counterwithout"):
            _, i = _star(s, i, n)
            opt = _optional(s, i, n)
            i = opt[1] if opt else i
        a = _mandatory(s, i, n)
        if a is None:
            return i
        c = self.expand(a[0], strings=True).strip()
        j = a[2]
        if name in ("stepcounter", "refstepcounter"):
            self.step(c)
            return j
        if name == "newcounter":
            opt = _optional(s, j, n)
            self.newcounter(c, opt[0].strip() if opt else None)
            return opt[1] if opt else j
        b = _mandatory(s, j, n)
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

    def h_label(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        opt = _optional(src.masked, i, n)
        j = opt[1] if opt else i
        a = _mandatory(src.masked, j, n)
        if a is None:
            return j
        self.add_label(self.expand(a[0], strings=True).strip())
        return a[2]

    def h_ref(self, name: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        _, j = _star(s, i, n)
        opt = _optional(s, j, n)  # \cref[...] is rare; skip it
        j = opt[1] if opt else j
        labels: list[str] = []
        for _k in range(REF_MACROS[name]):
            a = _mandatory(s, j, n)
            if a is None:
                break
            labels += [x.strip() for x in self.expand(a[0], strings=True).split(",")]
            j = a[2]
        self.add_refs(labels)
        return j

    def h_hyperref(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        opt = _optional(src.masked, i, n)
        if opt is not None:
            self.add_refs([self.expand(opt[0], strings=True).strip()])
            return opt[1]
        return i

    # --------------------------------------------------------------------------------------- definitions
    def _cs_name(self, s: str, i: int, n: int) -> tuple[str, int] | None:
        a = _mandatory(s, i, n)
        if a is None:
            return None
        m = re.fullmatch(r"\s*\\([A-Za-z@]+|.)\s*", a[0])
        return (m.group(1), a[2]) if m else None

    def h_newcommand(self, name: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        _, j = _star(s, i, n)
        got = self._cs_name(s, j, n)
        if got is None:
            return j
        cs, j = got
        nargs = _optional(s, j, n)
        j = nargs[1] if nargs else j
        default = _optional(s, j, n)
        j = default[1] if default else j
        body = _mandatory(s, j, n)
        if body is None:
            return j
        try:
            k = int(nargs[0]) if nargs else 0
        except ValueError:
            return body[2]
        if name == "providecommand" and cs in self.macros:
            return body[2]
        spec = ("O" + "m" * (k - 1)) if default and k else "m" * k
        self.define(cs, Macro.make(spec, body[0], (default[0] if default else None,) + (None,) * max(0, k - 1)))
        return body[2]

    def h_def(self, name: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        m = re.compile(r"\s*\\([A-Za-z@]+|.)([^{}\n]{0,60})").match(s, i, n)
        if m is None:
            return i
        cs, params = m.group(1), m.group(2)
        body = _mandatory(s, m.end(), n)
        if body is None or not s.startswith("{", m.end()):
            return m.end()
        p = params.replace(" ", "")
        simple = re.fullmatch(r"(#[1-9])*", p) is not None
        text = body[0]
        if name in ("edef", "xdef"):
            text = self.expand(text, strings=True)
        if name in ("gdef", "xdef"):
            self.global_next = True
        self.define(cs, Macro.make("m" * (len(p) // 2) if simple else "", text, expandable=simple))
        return body[2]

    def h_global(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        self.global_next = True
        return i

    def h_let(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        m = re.compile(r"\s*\\([A-Za-z@]+|.)\s*=?\s*(\\([A-Za-z@]+|.)|.)").match(src.masked, i, n)
        if m is None:
            return i
        a, b = m.group(1), m.group(3)
        if b is None:
            self.define(a, Macro.make("", m.group(2)))
        elif b in self.macros:
            self.define(a, self.macros[b])
        elif b in ("relax", "undefined"):
            self.define(a, None)
        else:
            self.define(a, Macro.make("", "\\" + b))
        if b in self.thm:
            self.thm[a] = self.thm[b]
            self._use_cache.clear()
        elif b in self.proof_envs:
            self.proof_envs.add(a)
            self._use_cache.clear()
        return m.end()

    def h_xparse(self, name: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        got = self._cs_name(s, i, n)
        if got is None:
            return i
        cs, j = got
        spec = _mandatory(s, j, n)
        if spec is None:
            return j
        body = _mandatory(s, spec[2], n)
        if body is None:
            return spec[2]
        if name == "ProvideDocumentCommand" and cs in self.macros:
            return body[2]
        parsed = _xparse_spec(spec[0])
        if parsed is None:
            self.define(cs, Macro.make("", body[0], expandable=False))
        else:
            self.define(cs, Macro.make(parsed[0], body[0], parsed[1], parsed[2]))
        return body[2]

    def h_mathop(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        star, j = _star(s, i, n)
        got = self._cs_name(s, j, n)
        if got is None:
            return j
        body = _mandatory(s, got[1], n)
        if body is None:
            return got[1]
        self.define(got[0], Macro.make("", rf"\operatorname{'*' if star else ''}{{{body[0]}}}"))
        return body[2]

    def h_newenv(self, name: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        _, j = _star(s, i, n)
        a = _mandatory(s, j, n)
        if a is None:
            return j
        env, j = a[0].strip(), a[2]
        if name in ("NewDocumentEnvironment", "RenewDocumentEnvironment", "DeclareDocumentEnvironment"):
            sp = _mandatory(s, j, n)
            if sp is None:
                return j
            parsed = _xparse_spec(sp[0]) or ("", (), ())
            spec, defaults = parsed[0], parsed[1]
            j = sp[2]
        else:
            nargs = _optional(s, j, n)
            j = nargs[1] if nargs else j
            default = _optional(s, j, n)
            j = default[1] if default else j
            try:
                k = int(nargs[0]) if nargs else 0
            except ValueError:
                k = 0
            spec = ("O" + "m" * (k - 1)) if default and k else "m" * k
            defaults = (default[0] if default else None,) + (None,) * max(0, k - 1)
        b = _mandatory(s, j, n)
        if b is None:
            return j
        j = b[2]
        end_code = ""
        if name in ("NewEnviron", "RenewEnviron"):
            e = _optional(s, j, n)
            if e:
                end_code, j = e[0], e[1]
        else:
            e2 = _mandatory(s, j, n)
            if e2 is not None:
                end_code, j = e2[0], e2[2]
        if name == "lstnewenvironment":
            self.verbatim.add(env)
            return j
        self.envdefs[env] = EnvDef(spec, defaults, b[0], end_code)
        if env in self.thm and name.startswith(("renew", "Renew")):
            del self.thm[env]
        self._use_cache.clear()
        return j

    def h_newtheorem(self, name: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        j = i
        if name == "newmdtheoremenv":
            opt = _optional(s, j, n)
            j = opt[1] if opt else j
        star, j = _star(s, j, n)
        a = _mandatory(s, j, n)
        if a is None:
            return j
        env, j = a[0].strip(), a[2]
        shared = _optional(s, j, n)
        j = shared[1] if shared else j
        printed = _mandatory(s, j, n)
        if printed is None:
            return j
        j = printed[2]
        within = _optional(s, j, n) if not shared else None
        j = within[1] if within else j
        if name == "spnewtheorem":
            for _k in range(2):
                x = _mandatory(s, j, n)
                j = x[2] if x else j
        self.declare_theorem(env, printed[0], not star, shared[0] if shared else None, within[0] if within else None)
        return j

    def h_declaretheorem(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        opt = _optional(s, i, n)
        j = opt[1] if opt else i
        a = _mandatory(s, j, n)
        if a is None:
            return j
        j = a[2]
        opt2 = _optional(s, j, n)
        if opt2:
            j = opt2[1]
        kv = _keyvals((opt[0] if opt else "") + "," + (opt2[0] if opt2 else ""))
        for env in a[0].split(","):
            env = env.strip()
            printed = kv.get("name", kv.get("title", env.rstrip("*").capitalize()))
            unnumbered = (
                kv.get("numbered", "yes").strip() == "no" or "unnumbered" in kv or "nonumber" in kv or env.endswith("*")
            )
            shared = kv.get("sibling") or kv.get("numberlike") or kv.get("sharenumber") or kv.get("sharecounter")
            within = kv.get("numberwithin") or kv.get("parent") or kv.get("within")
            refname = kv.get("refname", "") or kv.get("Refname", "")
            self.declare_theorem(env, printed, not unnumbered, shared, within, refname)
        return j

    # ----------------------------------------------------------------------------------------- inclusion
    def h_include(self, name: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        if name in ("usepackage", "RequirePackage"):
            opt = _optional(s, i, n)
            j = opt[1] if opt else i
            a = _mandatory(s, j, n)
            if a is None:
                return j
            for pkg in a[0].split(","):
                pkg = pkg.strip()
                if pkg and self.resolve(name, pkg, src, start) is not None:
                    self.include(name, pkg, src, start, silent=True)
            opt2 = _optional(s, a[2], n)
            return opt2[1] if opt2 else a[2]
        if name in ("import", "subimport", "includefrom", "subincludefrom", "inputfrom", "subinputfrom"):
            _, j = _star(s, i, n)
            a = _mandatory(s, j, n)
            b = _mandatory(s, a[2], n) if a else None
            if a is None or b is None:
                return j
            d = self.expand(a[0], strings=True).strip()
            target = (d.rstrip("/") + "/" if d else "") + b[0].strip()
            self.include(name, target, src, start)
            return b[2]
        if name == "InputIfFileExists":
            a = _mandatory(s, i, n)
            if a is None:
                return i
            t = _mandatory(s, a[2], n)
            f = _mandatory(s, t[2], n) if t else None
            ok = self.include(name, a[0], src, start, silent=True)
            if t is None or f is None:
                return a[2]
            self.run(src, t[1], t[1] + len(t[0]), depth) if ok else self.run(src, f[1], f[1] + len(f[0]), depth)
            return f[2]
        j = _WS.match(s, i, n).end()
        if name == "input" and j < n and s[j] != "{":
            m = re.compile(r"[^\s{}%\\]+").match(s, j, n)
            if m is None:
                return j
            self.include(name, m.group(), src, start)
            return m.end()
        a = _mandatory(s, i, n)
        if a is None:
            return i
        if src.origin is not None or self.in_document or name != "include":
            self.include(name, a[0], src, start)
        return a[2]

    def h_iffileexists(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        a = _mandatory(s, i, n)
        t = _mandatory(s, a[2], n) if a else None
        f = _mandatory(s, t[2], n) if t else None
        if a is None or t is None or f is None:
            return i
        target = self.expand(a[0], strings=True).strip()
        found = "\\" not in target and self.resolve("input", target, src, start) is not None
        c = t if found else f
        self.run(src, c[1], c[1] + len(c[0]), depth)
        return f[2]

    # -------------------------------------------------------------------------------------- conditionals
    def h_branch(self, name: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        nargs, test = _BRANCHES[name]
        spans: list[tuple[str, int, int]] = []
        j = i
        for _k in range(nargs):
            a = _mandatory(src.masked, j, n)
            if a is None:
                return j
            spans.append(a)
            j = a[2]
        first = test(self, spans[0][0]) if test else True
        k_arg = _pick_branch(name, nargs, first)
        if k_arg >= 0:
            text, a, _b = spans[k_arg]
            if a > 0 and src.masked[a - 1] == "{":
                r = self.run(src, a, a + len(text), depth)
                if r == _STOP:
                    return _STOP
            else:
                self.run_inline(text, src, start, depth)
        return j

    def h_toggle(self, name: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        a = _mandatory(src.masked, i, n)
        if a is None:
            return i
        t = self.expand(a[0], strings=True).strip()
        if self.toggle_groups and t not in self.toggle_groups[-1]:  # etoolbox toggles are local to a group
            self.toggle_groups[-1][t] = self.toggles.get(t)
        if name == "toggletrue":
            self.toggles[t] = True
        elif name == "togglefalse":
            self.toggles[t] = False
        elif name == "settoggle":
            b = _mandatory(src.masked, a[2], n)
            if b is None:
                return a[2]
            self.toggles[t] = b[0].strip() == "true"
            return b[2]
        else:
            self.toggles.setdefault(t, False)
        return a[2]

    def h_docsvlist(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        a = _mandatory(src.masked, i, n)
        if a is None:
            return i
        do = self.macros.get("do")
        if do is not None and depth < _MAX_DEPTH:
            for item in self.expand(a[0], strings=True).split(","):
                if item.strip():
                    self.run_inline(_substitute(do.body, [item.strip()]), src, start, depth)
        return a[2]

    def h_csuse(self, name: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        got = self._csname(name, src.masked, i, n)
        if got is None or depth >= _MAX_DEPTH:
            return i
        cs, j = got
        if cs not in self.handlers and cs not in self.macros:
            return j
        # read on as if \<cs> were written here: the command with the arguments that follow it
        ext = self._args_extent(cs, "\\" + cs + src.masked[j:n])
        view = "\\" + cs + src.masked[j : j + ext]
        self.run(_Src(view, view, None, src.at(start)), 0, len(view), depth + 1)
        return j + ext

    def _args_extent(self, cs: str, text: str) -> int:
        """How many characters after '\\cs' in ``text`` the command's arguments take (best effort)."""
        k = len(cs) + 1
        mac = self.macros.get(cs)
        if mac is not None:
            got = self.read_args(text, k, len(text), mac)
            return (got[1] - k) if got else 0
        if cs in SECTION_LEVELS:
            _, j = _star(text, k, len(text))
            while (opt := _optional(text, j, len(text))) is not None:
                j = opt[1]
            a = _mandatory(text, j, len(text))
            return (a[2] - k) if a else 0
        a = _mandatory(text, k, len(text))
        return (a[2] - k) if a and text[a[1] - 1 : a[1]] == "{" else 0

    def h_newif(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        m = re.compile(r"\s*\\(if[A-Za-z@]+)").match(src.masked, i, n)
        if m is None:
            return i
        self.ifs[m.group(1)] = False
        return m.end()

    def h_if(self, name: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        value: bool | None = None
        j = i
        if name == "ifdefined":
            m = re.compile(r"\s*\\([A-Za-z@]+|.)").match(s, i, n)
            if m:
                value, j = (m.group(1) in self.macros or m.group(1) in self.handlers), m.end()
        elif name == "ifcsname":
            k = s.find(r"\endcsname", i, n)
            if k >= 0:
                cs = self.expand(s[i:k], strings=True).strip()
                value, j = cs in self.macros, k + len(r"\endcsname")
        elif name == "ifx":
            m = re.compile(r"\s*\\([A-Za-z@]+|.)\s*\\([A-Za-z@]+|.)").match(s, i, n)
            if m and m.group(2) in ("undefined", "relax") and m.group(1) not in ("undefined", "relax"):
                value, j = m.group(1) not in self.macros, m.end()
        elif name == "iftrue":
            value = True
        elif name == "iffalse":
            value = False
        if value is False:
            return self.skip_conditional(src, j, n, to_else=True)
        return j

    def h_else(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        return self.skip_conditional(src, i, n, to_else=False)

    # -------------------------------------------------------------------------------------------- misc
    def h_begingroup(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        if len(self.groups) < 64:
            self.groups.append({})
            self.toggle_groups.append({})
        return i

    def h_endgroup(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        if self.groups:
            for t, was in self.toggle_groups.pop().items():
                if was is None:
                    self.toggles.pop(t, None)
                else:
                    self.toggles[t] = was
            for name, old in self.groups.pop().items():
                if old is None:
                    self.macros.pop(name, None)
                else:
                    self.macros[name] = old
            self._int_cache.clear()
            self._content_cache.clear()
        return i

    def h_title(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        opt = _optional(src.masked, i, n)
        j = opt[1] if opt else i
        a = _mandatory(src.masked, j, n)
        if a is None:
            return j
        if not self.title:
            self.title = " ".join(a[0].split())
        return a[2]

    def h_atbegindocument(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        a = _mandatory(src.masked, i, n)
        if a is None:
            return i
        if not self.in_document:
            self.at_begin_document.append((a[0], src, start))
        return a[2]

    def h_settexttoken(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        a = _mandatory(s, i, n)
        if a is None:
            return i
        _, j = _star(s, a[2], n)
        b = _mandatory(s, j, n)
        c = _mandatory(s, b[2], n) if b else None
        if b is None or c is None:
            return j
        j = c[2]
        d = _optional(s, j, n)
        j = d[1] if d else j
        e = _optional(s, j, n)
        j = e[1] if e else j
        sing, plur = b[0].strip(), c[0].strip()
        self.tokens[a[0].strip()] = (
            sing,
            plur,
            d[0].strip() if d else sing[:1].upper() + sing[1:],
            e[0].strip() if e else plur[:1].upper() + plur[1:],
        )
        for letter, form in zip("spSP", self.tokens[a[0].strip()], strict=True):
            self.macros[f"OLtok@{letter}@{a[0].strip()}"] = Macro.make("", form)
        return j

    def h_endinput(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        return n if src.origin is None else i  # the rest of the file is not read

    def h_skip_args(self, _: str, src: _Src, i: int, n: int, start: int, depth: int) -> int:
        opt = _optional(src.masked, i, n)
        j = opt[1] if opt else i
        a = _mandatory(src.masked, j, n)
        return a[2] if a else j


# ====================================================================================== module-level tables
def _substitute(body: str, args: list[str]) -> str:
    if "#" not in body:
        return body

    def rep(m: re.Match[str]) -> str:
        g = m.group(1)
        if g == "#":
            return "#"
        k = int(g)
        return args[k - 1] if k <= len(args) else ""

    return _PARAM_RE.sub(rep, body)


def _xparse_spec(spec: str) -> tuple[str, tuple[str | None, ...], tuple[str, ...]] | None:
    letters: list[str] = []
    defaults: list[str | None] = []
    tokens: list[str] = []
    i, n = 0, len(spec)
    while i < n:
        c = spec[i]
        i += 1
        if c in " \t\n+!":
            continue
        if c in "mos":
            letters.append(c)
            defaults.append(None)
            tokens.append("*")
        elif c == "O":
            g = _mandatory(spec, i, n)
            if g is None:
                return None
            letters.append("O")
            defaults.append(g[0])
            tokens.append("")
            i = g[2]
        elif c == "t":
            g = _mandatory(spec, i, n)
            if g is None:
                return None
            letters.append("t")
            defaults.append(None)
            tokens.append(g[0].strip() or "*")
            i = g[2]
        else:
            return None
    return "".join(letters), tuple(defaults), tuple(tokens)


def _letters(k: int) -> str:
    out = ""
    while True:
        k, r = divmod(k, 26)
        out = chr(ord("a") + r) + out
        if k == 0:
            return out


def _alpha(k: int) -> str:
    return chr(ord("a") + k - 1) if 1 <= k <= 26 else str(k)


def _roman(k: int) -> str:
    if k <= 0:
        return str(k)
    out = ""
    for v, r in (
        (1000, "m"),
        (900, "cm"),
        (500, "d"),
        (400, "cd"),
        (100, "c"),
        (90, "xc"),
        (50, "l"),
        (40, "xl"),
        (10, "x"),
        (9, "ix"),
        (5, "v"),
        (4, "iv"),
        (1, "i"),
    ):
        while k >= v:
            out += r
            k -= v
    return out


_COUNTER_FORMATS: dict[str, Callable[[int], str]] = {
    "arabic": str,
    "alph": _alpha,
    "Alph": lambda k: _alpha(k).upper(),
    "roman": _roman,
    "Roman": lambda k: _roman(k).upper(),
    "value": str,
    "number": str,
}


def _novalue(_: _Reader, a: str) -> bool:
    return a.strip() == NOVALUE


def _boolean(_: _Reader, a: str) -> bool:
    return a.strip() == TRUE


def _toggle(r: _Reader, a: str) -> bool:
    return r.toggles.get(r.expand(a, strings=True).strip(), False)


def _undefined(r: _Reader, a: str) -> bool:
    return r.expand(a, strings=True).strip() not in r.macros


def _always(_: _Reader, a: str) -> bool:
    return True


#: argument-taking conditionals: name -> (number of arguments, test of the first one or None)
_BRANCHES: dict[str, tuple[int, Callable[[_Reader, str], bool] | None]] = {
    "IfNoValueTF": (3, _novalue),
    "IfNoValueT": (2, _novalue),
    "IfNoValueF": (2, _novalue),
    "IfValueTF": (3, _novalue),
    "IfValueT": (2, _novalue),
    "IfValueF": (2, _novalue),
    "IfBooleanTF": (3, _boolean),
    "IfBooleanT": (2, _boolean),
    "IfBooleanF": (2, _boolean),
    "iftoggle": (3, _toggle),
    "@ifundefined": (3, _undefined),
    "@ifpackageloaded": (3, _always),
    "@ifclassloaded": (3, _always),
    "@ifpackagelater": (4, _always),
    "@ifclasslater": (4, _always),
    "@firstoftwo": (2, None),
    "@secondoftwo": (2, None),
    "@firstofone": (1, None),
    "@gobble": (1, None),
    "@gobbletwo": (2, None),
}


def _pick_branch(name: str, nargs: int, first: bool) -> int:
    """Which argument a conditional leaves (-1: none)."""
    if name in ("@firstoftwo", "@firstofone"):
        return 0
    if name == "@secondoftwo":
        return 1
    if name in ("@gobble", "@gobbletwo"):
        return -1
    if name.startswith("IfValue"):
        first = not first
    if name in ("@ifpackagelater", "@ifclasslater"):
        return 2
    if nargs == 3:
        return 1 if first else 2
    if name.endswith("T"):
        return 1 if first else -1
    return -1 if first else 1


_PRIM_IFS = frozenset({"ifdefined", "ifcsname", "ifx", "iftrue", "iffalse"})
_UNIT_BEGIN = re.compile(r"\\begin\s*\{([^{}]*)\}")
_HEADED_RE = re.compile(
    r"^\s*([A-Z][A-Za-z]+)\s+(\d[\w]*(?:[.\-][\w]+)*|[A-Z]?\d[\w]*(?:[.\-][\w]+)*)\s*[.:]?\s*(?:\((.*)\))?\s*[.:]?\s*$"
)


def _plain_heading(s: str) -> str:
    s = re.sub(r"\\(?:textbf|textit|emph|textsc|bfseries|itshape|noindent)\b\s*", "", s)
    return s.replace("{", "").replace("}", "")


# ================================================================================================== entry
def textual_refs(text: str) -> list[tuple[str, str]]:
    """("lemma", "1.3") for phrases like "by Lemma 1.3" (a reference without \\ref), unresolved."""
    return [(k, num) for k, num, _ in textual_mentions(text) if num]


def ingest_latex(path: Path, *, env_map: dict[str, str] | None = None, limits: Limits | None = None) -> IngestResult:
    """Read a .tex root file (or a directory holding one) into units with dependencies."""
    limits = limits or Limits()
    root = _find_root(path, limits)
    reader = _Reader(root, dict(env_map or {}), limits)
    try:
        reader.run_file(root)
    except _ExpansionLimit as e:
        if e.nested:
            raise IngestError(
                f"{e.where or reader.rel(root)}: expanding \\{e.name}: macros nested {e.nested} deep, "
                "a macro that expands into itself without end (TeX stops such a book with 'TeX "
                "capacity exceeded')"
            ) from None
        raise IngestError(
            f"{e.where or reader.rel(root)}: expanding \\{e.name} went past the limit of "
            f"{limits.max_expansion} expansion steps for one book ([ingest] max_expansion): a macro "
            "bomb, whose uses multiply without end? (TeX would stop at its own stack limits)"
        ) from None
    while reader.frames:
        fr = reader.frames.pop()
        (reader.finish_proof if fr.role == "proof" else reader.finish_unit)(fr, len(fr.src.text), len(fr.src.text))
    units = [u for u in reader.units if u.kind in KINDS]
    link_textual(units)
    return IngestResult(title=reader.title, source_kind="latex", units=units, warnings=reader.warnings, root=str(root))


def _find_root(path: Path, limits: Limits) -> Path:
    if path.is_file():
        return path
    if not path.exists():
        raise IngestError(f"{path}: no such file or directory")
    cands = sorted(
        p
        for p in path.glob("*.tex")
        if p.stat().st_size <= limits.max_file_bytes and "\\documentclass" in p.read_text(errors="replace")
    )
    if not cands:
        raise IngestError(f"{path}: no .tex file with \\documentclass in this directory; pass the root file")
    for preferred in ("main.tex", "book.tex"):
        for c in cands:
            if c.name == preferred:
                return c
    return cands[0]


__all__ = ["IngestError", "KINDS", "Limits", "NAME_TO_KIND", "ingest_latex", "textual_refs"]
