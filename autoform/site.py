"""A static, offline HTML site of the Atlas: one page per book and per unit, MathML statements, highlighted Lean.

Everything shown comes from the store and nothing else. Textbook content (titles, labels, statements, proofs,
Lean code, Lean messages) is always escaped; the only markup that is not produced by the templates themselves
is MathML from latex2mathml, which is re-parsed and rebuilt from a whitelist of MathML elements and attributes
(latex2mathml does *not* escape ``\\text{...}`` contents nor vet ``\\href``/``\\style``), and Pygments output,
which escapes its input. The output is deterministic: the same store gives byte-identical files.
"""

from __future__ import annotations

import contextlib
import functools
import html
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jinja2
import networkx as nx
from markupsafe import Markup
from pydantic import BaseModel

from autoform import dataset
from autoform.atlas import full_decl_name
from autoform.blueprint import LEGEND, NodeState, chapter_graph_svg, node_states
from autoform.config import Settings
from autoform.graph import book_graph
from autoform.store import AtlasEntry, Attempt, Book, Store, Unit, UnitStatus
from autoform.subgoals import subgoal_tree
from autoform.unit_cost import UnitCost, unit_costs

TEMPLATES = Path(__file__).parent / "templates" / "site"
#: the classes of the status badges (a definition in the Atlas shows as "defined", in the colour of "proved")
STATUSES = (UnitStatus.PROVED, UnitStatus.STATED, UnitStatus.FAILED, UnitStatus.PENDING)
_RESERVED_DIRS = {"static"}


class SiteSummary(BaseModel):
    pages: int
    books: int
    units: int


# -- status ------------------------------------------------------------------------------------------------------
def unit_status(unit: Unit, entry: AtlasEntry | None) -> tuple[str, str]:
    """(class, label) of a unit's status badge, from the store only.

    The class is one of :data:`STATUSES`; the label is the same except that a definition in the Atlas is
    "defined" (with the colour of "proved").
    """
    if entry is not None and entry.status in (UnitStatus.PROVED, UnitStatus.DEFINED):
        return UnitStatus.PROVED, entry.status
    if entry is not None and entry.status == UnitStatus.STATED:
        return UnitStatus.STATED, UnitStatus.STATED
    if unit.status == UnitStatus.FAILED:
        return UnitStatus.FAILED, UnitStatus.FAILED
    return UnitStatus.PENDING, UnitStatus.PENDING


# -- MathML sanitizing ---------------------------------------------------------------------------------------------
_MATHML_TAGS = frozenset(
    {
        "math",
        "mrow",
        "mi",
        "mn",
        "mo",
        "ms",
        "mtext",
        "mspace",
        "msub",
        "msup",
        "msubsup",
        "mfrac",
        "msqrt",
        "mroot",
        "mtable",
        "mtr",
        "mtd",
        "mlabeledtr",
        "mstyle",
        "mover",
        "munder",
        "munderover",
        "menclose",
        "mpadded",
        "mphantom",
        "merror",
        "mfenced",
        "mmultiscripts",
        "mprescripts",
        "none",
        "semantics",
        "annotation",
    }
)
_MATHML_ATTRS = frozenset(
    {
        "xmlns",
        "display",
        "mathvariant",
        "linebreak",
        "stretchy",
        "fence",
        "form",
        "separator",
        "lspace",
        "rspace",
        "width",
        "height",
        "depth",
        "columnalign",
        "rowalign",
        "columnspacing",
        "rowspacing",
        "columnlines",
        "rowlines",
        "frame",
        "framespacing",
        "columnspan",
        "rowspan",
        "mathcolor",
        "mathbackground",
        "mathsize",
        "displaystyle",
        "scriptlevel",
        "accent",
        "accentunder",
        "movablelimits",
        "notation",
        "minsize",
        "maxsize",
        "symmetric",
        "largeop",
        "linethickness",
        "bevelled",
        "open",
        "close",
        "separators",
        "encoding",
        "voffset",
    }
)

#: attribute values latex2mathml produces (lengths, colours, names, alignments); anything else is dropped
_ATTR_VALUE_RE = re.compile(r"[A-Za-z0-9#.%:/+\-\s]*")


class _MathSanitizer(HTMLParser):
    """Rebuild latex2mathml output keeping only whitelisted MathML; everything else becomes escaped text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.stack: list[str] = []

    def _text(self, s: str) -> None:
        self.out.append(html.escape(s, quote=False))

    def _open(self, tag: str, attrs: list[tuple[str, str | None]], close: bool) -> None:
        if tag not in _MATHML_TAGS:
            self._text(html.unescape(self.get_starttag_text() or f"<{tag}>"))
            return
        parts = [tag]
        for name, value in attrs:
            if name in _MATHML_ATTRS and value is not None and _ATTR_VALUE_RE.fullmatch(value):
                parts.append(f'{name}="{html.escape(value, quote=True)}"')
        if close:
            self.out.append("<" + " ".join(parts) + " />")
        else:
            self.out.append("<" + " ".join(parts) + ">")
            self.stack.append(tag)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs, close=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs, close=True)

    def handle_endtag(self, tag: str) -> None:
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()
            self.out.append(f"</{tag}>")
        else:
            self._text(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self._text(data)

    def handle_comment(self, data: str) -> None:
        self._text(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self._text(f"<!{decl}>")

    def unknown_decl(self, data: str) -> None:
        self._text(f"<![{data}]>")

    def handle_pi(self, data: str) -> None:
        self._text(f"<?{data}>")

    def result(self) -> str:
        self.close()
        while self.stack:
            self.out.append(f"</{self.stack.pop()}>")
        return "".join(self.out)


def sanitize_mathml(markup: str) -> str:
    p = _MathSanitizer()
    p.feed(markup)
    return p.result()


# -- LaTeX -> HTML ---------------------------------------------------------------------------------------------------
_ALIGN_ENVS = {"align", "align*", "eqnarray", "eqnarray*", "alignat", "alignat*", "flalign", "flalign*"}
_GATHER_ENVS = {"gather", "gather*", "multline", "multline*"}
_PLAIN_ENVS = {"equation", "equation*", "displaymath", "math"}
_MATH_ENVS = _ALIGN_ENVS | _GATHER_ENVS | _PLAIN_ENVS
_LIST_ENVS = {"itemize", "enumerate", "description"}
_STYLE_MACROS = {"emph": "em", "textit": "em", "textsl": "em", "textbf": "strong", "texttt": "code"}
_REF_MACROS = {"ref", "eqref", "cref", "Cref", "autoref", "nameref", "vref", "Vref"}
_DROP_ARG_MACROS = {"label", "index"}
_ESCAPED_CHARS = set("{}%$&_#")
_MACRO_RE = re.compile(r"\\([A-Za-z]+)\*?")
_ENV_RE = re.compile(r"\\(begin|end)\s*\{([A-Za-z*]+)\}")
_PLAIN_RUN_RE = re.compile(r"[^\\$\{\}\n~`'\-]+")
_PAR_RE = re.compile(r"\n[ \t]*\n\s*")
_MATH_NOISE_RE = re.compile(r"\\(?:label|tag)\s*\{[^{}]*\}|\\nonumber\b|\\notag\b")


def _balanced(text: str, i: int) -> tuple[str, int] | None:
    """The argument of a brace group opening at text[i] ('{'), and the index after its '}'."""
    if i >= len(text) or text[i] != "{":
        return None
    depth = 0
    for j in range(i, len(text)):
        c = text[j]
        if c == "\\":
            continue
        if c == "{" and (j == 0 or text[j - 1] != "\\"):
            depth += 1
        elif c == "}" and text[j - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j], j + 1
    return None


def _find_dollar(text: str, i: int) -> int:
    """The index of the next unescaped single '$' at or after i, or -1."""
    while True:
        j = text.find("$", i)
        if j < 0:
            return -1
        k, bs = j - 1, 0
        while k >= 0 and text[k] == "\\":
            bs, k = bs + 1, k - 1
        if bs % 2 == 0:
            return j
        i = j + 1


def _math_env_source(env: str, body: str) -> str:
    body = _MATH_NOISE_RE.sub("", body).strip()
    if env in _PLAIN_ENVS:
        return body
    rows = re.split(r"\\\\", body)
    cols = max(r.count("&") for r in rows) + 1
    spec = ("rl" * cols)[:cols] if env in _ALIGN_ENVS else "c" * cols
    return "\\begin{array}{" + spec + "}" + body + "\\end{array}"


@functools.lru_cache(maxsize=4096)
def math_html(latex: str, display: bool) -> str:
    """MathML for one formula (sanitized), or the escaped source in a <code> if latex2mathml fails."""
    from latex2mathml.converter import convert

    src = _MATH_NOISE_RE.sub("", latex).strip()
    try:
        out = convert(src, display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - any failure of the converter falls back to the source
        cls = "tex tex-block" if display else "tex"
        return f'<code class="{cls}">{html.escape(latex, quote=False)}</code>'
    return sanitize_mathml(out)


@dataclass
class _Out:
    """Paragraph builder for :func:`render_tex`."""

    block: bool
    paragraphs: list[str] = field(default_factory=list)
    cur: list[str] = field(default_factory=list)
    stack: list[str | None] = field(default_factory=list)

    def text(self, s: str) -> None:
        self.cur.append(html.escape(s, quote=False))

    def markup(self, s: str) -> None:
        self.cur.append(s)

    def par(self) -> None:
        tags = [t for t in self.stack if t]
        self.cur.extend(f"</{t}>" for t in reversed(tags))
        body = "".join(self.cur).strip()
        if body and not re.fullmatch(r"(?:<[^>]*>)*", body):
            self.paragraphs.append(f"<p>{body}</p>" if self.block else body)
        self.cur = [f"<{t}>" for t in tags]

    def result(self) -> str:
        self.par()
        return "\n".join(self.paragraphs) if self.block else " ".join(self.paragraphs)


#: quotes and dashes in text mode, tried in this order
_TYPOGRAPHY = (("``", "\u201c"), ("''", "\u201d"), ("---", "\u2014"), ("--", "\u2013"))


class _TexReader:
    """One pass over textbook LaTeX for :func:`render_tex`. Each ``_on_*`` handler reads what starts at its
    index and returns the index after it, or None when it does not apply (then the character is shown as it is);
    the handlers are chosen by the character (:data:`_CHAR_HANDLERS`) and, for macros, by name
    (:data:`_MACRO_HANDLERS`)."""

    def __init__(self, text: str, block: bool, refs: dict[str, tuple[str, str]]) -> None:
        self.text, self.n, self.block, self.refs = text, len(text), block, refs
        self.o = _Out(block=block)

    def run(self) -> str:
        i = 0
        while i < self.n:
            i = self.step(i)
        return self.o.result()

    def step(self, i: int) -> int:
        m = _PLAIN_RUN_RE.match(self.text, i)
        if m:
            self.o.text(m.group(0))
            return m.end()
        handler = _CHAR_HANDLERS.get(self.text[i], _TexReader._on_other)
        j = handler(self, i)
        if j is not None:
            return j
        self.o.text(self.text[i])
        return i + 1

    # -- by character ------------------------------------------------------------------------------------------
    def _on_backslash(self, i: int) -> int | None:
        text, nxt = self.text, self.text[i + 1 : i + 2]
        if nxt == "\\":
            self.o.markup("<br>" if self.block else " ")
            return i + 2
        if nxt in _ESCAPED_CHARS:
            self.o.text(nxt)
            return i + 2
        if nxt in "([":  # also at the very end (nxt == ""), where no closing delimiter is found
            close = "\\)" if nxt == "(" else "\\]"
            j = text.find(close, i + 2)
            if j >= 0:
                self.o.markup(math_html(text[i + 2 : j], nxt == "["))
                return j + 2
        m = _ENV_RE.match(text, i)
        if m:
            return self._environment(m)
        m = _MACRO_RE.match(text, i)
        return self._macro(m) if m else None

    def _on_dollar(self, i: int) -> int | None:
        text = self.text
        if text.startswith("$$", i):
            j = text.find("$$", i + 2)
            if j < 0:
                return None
            self.o.markup(math_html(text[i + 2 : j], True))
            return j + 2
        j = _find_dollar(text, i + 1)
        if j < 0:
            return None
        self.o.markup(math_html(text[i + 1 : j], False))
        return j + 1

    def _on_open(self, i: int) -> int:
        self.o.stack.append(None)
        return i + 1

    def _on_close(self, i: int) -> int:
        if self.o.stack:
            tag = self.o.stack.pop()
            if tag:
                self.o.markup(f"</{tag}>")
        return i + 1

    def _on_newline(self, i: int) -> int | None:
        m = _PAR_RE.match(self.text, i)
        if not m:
            return None
        self.o.par()
        return m.end()

    def _on_tilde(self, i: int) -> int:
        self.o.text("\u00a0")
        return i + 1

    def _on_other(self, i: int) -> int | None:
        for src, dst in _TYPOGRAPHY:
            if self.text.startswith(src, i):
                self.o.text(dst)
                return i + len(src)
        return None

    # -- environments and macros ---------------------------------------------------------------------------------
    def _environment(self, m: re.Match[str]) -> int:
        kind, env = m.groups()
        if kind == "begin" and env in _MATH_ENVS:
            end = self.text.find(f"\\end{{{env}}}", m.end())
            if end >= 0:
                self.o.markup(math_html(_math_env_source(env, self.text[m.end() : end]), True))
                return end + len(f"\\end{{{env}}}")
        # lists become line breaks (items are bullets); other text-mode environments are transparent
        self.o.markup("<br>" if self.block and env in _LIST_ENVS else "")
        return m.end()

    def _macro(self, m: re.Match[str]) -> int:
        name = m.group(1)
        if name in _STYLE_MACROS and self.text[m.end() : m.end() + 1] == "{":
            tag = _STYLE_MACROS[name]
            self.o.stack.append(tag)
            self.o.markup(f"<{tag}>")
            return m.end() + 1
        handler = _MACRO_HANDLERS.get(name)
        j = handler(self, m, _balanced(self.text, m.end())) if handler is not None else None
        if j is not None:
            return j
        self.o.text(m.group(0))
        return m.end()

    def _drop(self, m: re.Match[str], arg: tuple[str, int] | None) -> int | None:
        return arg[1] if arg is not None else None

    def _ref(self, m: re.Match[str], arg: tuple[str, int] | None) -> int | None:
        if arg is None:
            return None
        label = arg[0].strip()
        if label in self.refs:
            href, shown = self.refs[label]
            self.o.markup(f'<a class="ref" href="{html.escape(href)}">{html.escape(shown)}</a>')
        else:
            self.o.markup(f'<code class="ref">{html.escape(label)}</code>')
        return arg[1]

    def _cite(self, m: re.Match[str], arg: tuple[str, int] | None) -> int | None:
        if arg is None:
            return None
        self.o.text(f"[{arg[0].strip()}]")
        return arg[1]

    def _item(self, m: re.Match[str], arg: tuple[str, int] | None) -> int:
        self.o.markup("<br>\u2022 " if self.block else " \u2022 ")
        return m.end()


_CHAR_HANDLERS: dict[str, Callable[[_TexReader, int], int | None]] = {
    "\\": _TexReader._on_backslash,
    "$": _TexReader._on_dollar,
    "{": _TexReader._on_open,
    "}": _TexReader._on_close,
    "\n": _TexReader._on_newline,
    "~": _TexReader._on_tilde,
}
_MacroHandler = Callable[[_TexReader, re.Match[str], tuple[str, int] | None], int | None]
_MACRO_HANDLERS: dict[str, _MacroHandler] = {
    **dict.fromkeys(_DROP_ARG_MACROS, _TexReader._drop),
    **dict.fromkeys(_REF_MACROS, _TexReader._ref),
    "cite": _TexReader._cite,
    "item": _TexReader._item,
}


def render_tex(text: str, *, block: bool = True, refs: dict[str, tuple[str, str]] | None = None) -> Markup:
    """Textbook LaTeX as safe HTML: math to MathML, everything else escaped (paragraphs kept when `block`).

    `refs` maps a label to (href, text) for ``\\ref``-like macros. A few text-mode macros are understood
    (``\\emph``, ``\\textbf``, ``\\item``, ``~``, quotes, dashes); other macros are shown as written.
    """
    return Markup(_TexReader(text, block, refs or {}).run())


# -- Lean ---------------------------------------------------------------------------------------------------------
@functools.cache
def _lean_lexer() -> Any:
    from pygments.lexers import TextLexer, get_lexer_by_name
    from pygments.util import ClassNotFound

    try:  # Pygments >= 2.18 (pyproject.toml); never the `lean` lexer, which is Lean 3's
        return get_lexer_by_name("lean4")
    except ClassNotFound:
        return TextLexer()


def highlight_lean(code: str) -> Markup:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter

    return Markup(highlight(code, _lean_lexer(), HtmlFormatter(cssclass="highlight")))


def pygments_css() -> str:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(cssclass="highlight").get_style_defs(".highlight") + "\n"


# -- the site -----------------------------------------------------------------------------------------------------
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


def book_dir_names(books: Iterable[Book]) -> dict[int, str]:
    """A safe, unique directory name per book (its slug when that is already safe)."""
    names: dict[int, str] = {}
    used = set(_RESERVED_DIRS)
    for b in sorted(books, key=lambda b: (b.slug, b.id)):
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", b.slug).strip(".-") or f"book-{b.id}"
        if name in used:
            name = f"{name}-{b.id}"
        used.add(name)
        names[b.id] = name
    return names


def _unit_name(u: Unit) -> str:
    return f"{u.kind.capitalize()} {u.number}".strip()


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _progress(counts: dict[str, int]) -> list[dict[str, Any]]:
    total = sum(counts.values())
    return [
        {"status": s, "count": counts[s], "width": f"{(100.0 * counts[s] / total) if total else 0:.3f}%"}
        for s in STATUSES
    ]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def _fidelity(store: Store, book_id: int) -> dict[int, str]:
    out: dict[int, str] = {}
    for p in store.posts(book_id, kind="critique"):  # by id: the latest critique wins
        if p.unit_id is not None and p.data.get("fidelity") is not None:
            v = p.data["fidelity"]
            out[p.unit_id] = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    return out


def _checked_text(store: Store, book_id: int, unit_id: int, last: Attempt) -> list[dict[str, Any]]:
    """The text Lean checked for the last attempt, line by line with its numbers (Lean's message positions
    refer to it), and which lines a message points at; empty when the store has no record of it."""
    module = ""
    for p in store.posts(book_id, unit_id=unit_id, kind="verdict"):  # by id: the latest wins
        if p.data.get("attempt") == last.id and isinstance(p.data.get("module"), str):
            module = p.data["module"]
    if not module:
        return []
    marked = {int(m["line"]) for m in last.messages if isinstance(m.get("line"), int)}
    return [{"n": k, "text": line, "marked": k in marked} for k, line in enumerate(module.splitlines(), start=1)]


def _in_mathlib(store: Store, book_id: int) -> dict[int, str]:
    """Units closed by one Mathlib lemma (``exact?`` found it): unit id -> the note of its admission."""
    out: dict[int, str] = {}
    for p in store.posts(book_id, kind="admission"):
        note = p.data.get("note")
        if p.unit_id is not None and isinstance(note, str) and note.startswith("in Mathlib as"):
            out[p.unit_id] = note
    return out


def _people(store: Store, book_id: int) -> tuple[dict[int, list[str]], set[int]]:
    """What people gave each unit: (unit id -> their hints, oldest first; the units whose lock a person
    stated)."""
    hints: dict[int, list[str]] = {}
    stated: set[int] = set()
    for p in store.posts(book_id):
        if p.unit_id is None or p.author != "person":
            continue
        if p.kind == "hint":
            hints.setdefault(p.unit_id, []).append(p.body)
        elif p.kind == "lock":
            stated.add(p.unit_id)
    return hints, stated


def _ordered(ids: Iterable[int], g: nx.DiGraph) -> list[int]:
    return sorted(ids, key=lambda v: g.nodes[v]["seq"])


@dataclass
class _BookPages:
    """One book as its pages show it: units, dependency graph, Atlas entries, badges, Blueprint states."""

    book: Book
    dir: str
    units: list[Unit]
    by_id: dict[int, Unit]
    g: nx.DiGraph
    entries: dict[int, AtlasEntry | None]
    fidelity: dict[int, str]
    in_mathlib: dict[int, str]
    status: dict[int, tuple[str, str]]  # unit id -> (class, label) of its badge
    refs: dict[str, tuple[str, str]]  # label -> (href, text) for \ref
    states: dict[int, NodeState]
    reviews: dict[int, str]  # unit id -> its review state (approved, unreviewed; rejected when out of the Atlas)
    hints: dict[int, list[str]]  # unit id -> the hints people gave it
    person_stated: set[int]  # the units whose statement a person supplied
    costs: dict[int, UnitCost]  # unit id -> how it was closed and what it cost

    @classmethod
    def of(cls, store: Store, book: Book, bdir: str, settings: Settings) -> _BookPages:
        units = store.units(book.id)
        g = book_graph(store, book.id)
        entries = {u.id: store.atlas_entry(u.id) for u in units}
        hints, person_stated = _people(store, book.id)
        return cls(
            book=book,
            dir=bdir,
            units=units,
            by_id={u.id: u for u in units},
            g=g,
            entries=entries,
            fidelity=_fidelity(store, book.id),
            in_mathlib=_in_mathlib(store, book.id),
            status={u.id: unit_status(u, entries[u.id]) for u in units},
            refs={u.label: (f"{u.id}.html", u.number or _unit_name(u) or u.label) for u in units if u.label},
            states=node_states(g, units, entries),
            reviews=store.review_states(book.id),
            hints=hints,
            person_stated=person_stated,
            costs={c.unit_id: c for c in unit_costs(store, settings, book)},
        )

    def link(self, uid: int) -> dict[str, Any]:
        """A unit as another page lists it: link, name, title and badge."""
        u = self.by_id[uid]
        return {
            "href": f"{u.id}.html",
            "name": _unit_name(u),
            "label": u.label,
            "title": render_tex(u.title, block=False, refs=self.refs),
            "status": self.status[uid][0],
            "status_label": self.status[uid][1],
        }

    def context(self) -> dict[str, Any]:
        """The book's figures, as the index page and every page of the book show them."""
        counts = dict.fromkeys(STATUSES, 0)
        for cls, _ in self.status.values():
            counts[cls] += 1
        return {
            "slug": self.book.slug,
            "dir": self.dir,
            "title": self.book.title or self.book.slug,
            "counts": counts,
            "n_defined": sum(1 for _, label in self.status.values() if label == UnitStatus.DEFINED),
            "total": len(self.units),
            "progress": _progress(counts),
            **self.review_share(),
        }

    def review_share(self) -> dict[str, Any]:
        """How much of the book's Atlas a person has reviewed (approved)."""
        in_atlas = sum(1 for e in self.entries.values() if e is not None)
        reviewed = sum(1 for uid, e in self.entries.items() if e is not None and self.reviews.get(uid) == "approved")
        share = f"{reviewed / in_atlas:.0%}" if in_atlas else "-"
        return {"in_atlas": in_atlas, "reviewed": reviewed, "reviewed_share": share}

    def chapters(self) -> list[dict[str, Any]]:
        """The chapters in order of first appearance, units in seq order, section headings where they change,
        each with its dependency graph."""
        chapters: dict[str, list[dict[str, Any]]] = {}
        for u in self.units:
            rows = chapters.setdefault(u.chapter, [])
            row = self.link(u.id)
            row["section"] = render_tex(u.section, block=False) if u.section else ""
            row["new_section"] = bool(u.section) and (not rows or rows[-1]["raw_section"] != u.section)
            row["raw_section"] = u.section
            row["fidelity"] = self.fidelity.get(u.id)
            row["review"] = self.reviews.get(u.id)
            rows.append(row)
        hrefs = {u.id: f"{u.id}.html" for u in self.units}
        out = []
        for i, (c, rows) in enumerate(chapters.items(), start=1):
            members = [u for u in self.units if u.chapter == c]
            svg = chapter_graph_svg(
                self.g, members, self.by_id, self.states, hrefs, graph_id=f"graph-{i}", title=_plain(c)
            )
            out.append(
                {
                    "title": render_tex(c, block=False) if c else "",
                    "units": rows,
                    "graph": Markup(svg),
                    "graph_id": f"graph-{i}",
                }
            )
        return out

    def unit_context(self, store: Store, u: Unit) -> dict[str, Any]:
        """Everything the page of one unit shows (besides the book's figures)."""
        g, entry = self.g, self.entries[u.id]
        cls, label = self.status[u.id]
        deps = _ordered(g.successors(u.id), g) if u.id in g else []
        dependents = _ordered(g.predecessors(u.id), g) if u.id in g else []
        return {
            "unit": u,
            "name": _unit_name(u),
            "title": render_tex(u.title, block=False, refs=self.refs),
            "chapter": render_tex(u.chapter, block=False) if u.chapter else "",
            "section": render_tex(u.section, block=False) if u.section else "",
            "statement": render_tex(u.statement, refs=self.refs),
            "proof": render_tex(u.proof, refs=self.refs) if u.proof.strip() else "",
            "status": cls,
            "status_label": label,
            "fidelity": self.fidelity.get(u.id),
            "review": self.reviews.get(u.id),
            "hints": self.hints.get(u.id, []),
            "subgoals": subgoal_tree(store, u.id),
            "person_stated": u.id in self.person_stated,
            "in_mathlib": self.in_mathlib.get(u.id) if entry is not None else None,
            "cost": self.costs.get(u.id),
            "entry": entry,
            "decl": full_decl_name(self.book, entry) if entry is not None else "",
            "blueprint": self.states[u.id].summary,
            "lean": highlight_lean(entry.lean_code) if entry is not None else "",
            "deps": [dict(self.link(v), via=g.edges[u.id, v]["via"]) for v in deps],
            "dependents": [dict(self.link(v), via=g.edges[v, u.id]["via"]) for v in dependents],
            **_attempts_context(store, self.book.id, u.id, failed=cls == UnitStatus.FAILED),
        }

    def search_row(self, u: Unit) -> dict[str, Any]:
        entry = self.entries[u.id]
        return {
            "book": self.book.slug,
            "url": f"{self.dir}/{u.id}.html",
            "kind": u.kind,
            "number": u.number,
            "label": u.label,
            "title": u.title,
            "status": self.status[u.id][1],
            "text": _plain(u.statement)[:2000],
            "decl": full_decl_name(self.book, entry) if entry is not None else "",
        }


def _attempts_context(store: Store, book_id: int, unit_id: int, *, failed: bool) -> dict[str, Any]:
    """A unit's attempts as its page shows them: how many, the last one, and for a failed unit the code Lean
    rejected, the text it checked and its messages."""
    attempts = store.attempts(unit_id)
    last = attempts[-1] if attempts else None
    shown = last if failed else None  # the last attempt of a failed unit
    return {
        "n_attempts": len(attempts),
        "last": last,
        "last_failed": shown is not None,
        "last_lean": highlight_lean(shown.lean_code) if shown is not None else "",
        "checked": _checked_text(store, book_id, unit_id, shown) if shown is not None else [],
        "messages": [
            {
                "severity": str(m.get("severity", "")),
                "line": m.get("line", ""),
                "column": m.get("column", ""),
                "text": str(m.get("text", m.get("message", ""))),
            }
            for m in (last.messages if last is not None else [])
        ],
        "reasons": [str(r.get("message", r.get("code", ""))) for r in (last.reasons if last else [])],
    }


def _remove_stale_pages(bdir: Path, units: list[Unit]) -> None:
    """Unit pages of units that are gone (re-ingest): only files named like ours, in this book's directory."""
    keep = {f"{u.id}.html" for u in units}
    for stale in sorted(bdir.glob("*.html")):
        if re.fullmatch(r"[0-9]+\.html", stale.name) and stale.name not in keep:
            stale.unlink()


def _write_book(store: Store, env: jinja2.Environment, out: Path, b: _BookPages) -> dict[str, Any]:
    """The book's page and one page per unit; returns the book's figures."""
    book_ctx = b.context()
    _write(
        out / b.dir / "index.html",
        env.get_template("book.html").render(root="../", book=book_ctx, chapters=b.chapters(), legend=LEGEND),
    )
    unit_page = env.get_template("unit.html")
    for u in b.units:
        _write(out / b.dir / f"{u.id}.html", unit_page.render(root="../", book=book_ctx, **b.unit_context(store, u)))
    _remove_stale_pages(out / b.dir, b.units)
    return book_ctx


def _write_shared(out: Path, env: jinja2.Environment, store: Store, books: list[Book], book_rows: list[dict]) -> None:
    """The index page, the Atlas as a dataset next to the pages that show it (see autoform/dataset.py), and
    the static files."""
    recs = dataset.records(store, books)
    _write(out / "atlas.jsonl", dataset.to_jsonl(recs))
    _write(
        out / "index.html", env.get_template("index.html").render(root="", books=book_rows, dataset_records=len(recs))
    )
    _write(out / "static" / "search.js", (TEMPLATES / "search.js").read_text(encoding="utf-8"))
    _write(out / "static" / "style.css", (TEMPLATES / "style.css").read_text(encoding="utf-8"))
    _write(out / "static" / "pygments.css", pygments_css())


def _write_search(out: Path, search: list[dict[str, Any]]) -> None:
    data = "[\n" + ",\n".join(json.dumps(d, ensure_ascii=False, sort_keys=True) for d in search) + "\n]"
    _write(out / "search.json", data + "\n")
    _write(out / "static" / "search-data.js", "window.AUTOFORM_SEARCH = " + data + ";\n")


def build_site(store: Store, out: Path, settings: Settings | None = None) -> SiteSummary:
    """Write the static site of every book in `store` to `out` (existing files are overwritten, none removed).
    ``settings``: for ``[llm] prices``, the units' cost in USD (without, tokens and calls only)."""
    out = Path(out)
    env = _env()
    books = store.books()
    dirs = book_dir_names(books)
    n_units = 0
    search: list[dict[str, Any]] = []
    book_rows: list[dict[str, Any]] = []
    for book in books:
        b = _BookPages.of(store, book, dirs[book.id], settings or Settings())
        book_rows.append(_write_book(store, env, out, b))
        search += [b.search_row(u) for u in b.units]
        n_units += len(b.units)
    _write_shared(out, env, store, books, book_rows)
    _write_search(out, search)
    return SiteSummary(pages=len(books) + n_units + 1, books=len(books), units=n_units)


class SiteRequestHandler(SimpleHTTPRequestHandler):
    """Serves files of one directory only: a path that resolves outside it (``..``, a symbolic link leading
    out) is a 404, and directories are never listed."""

    quiet = False

    def send_head(self) -> Any:
        root = Path(self.directory).resolve()
        try:
            real = Path(self.translate_path(self.path)).resolve()
        except (OSError, ValueError):
            real = None
        if real is None or (real != root and root not in real.parents):
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        return super().send_head()

    def list_directory(self, path: str | os.PathLike[str]) -> None:  # type: ignore[override]
        self.send_error(HTTPStatus.NOT_FOUND, "File not found")
        return None

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if not self.quiet:
            super().log_message(format, *args)


def make_server(
    directory: Path, host: str = "127.0.0.1", port: int = 8000, *, quiet: bool = False
) -> ThreadingHTTPServer:
    """An HTTP server for `directory` (and nothing else), bound but not yet serving; port 0 picks a free one."""
    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such directory (build the site first)")
    handler_cls = type("Handler", (SiteRequestHandler,), {"quiet": quiet})
    handler = functools.partial(handler_cls, directory=str(directory))
    return ThreadingHTTPServer((host, port), handler)


def serve_site(directory: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve `directory` (and nothing else) over HTTP until interrupted (Ctrl-C)."""
    with make_server(directory, host, port) as httpd:
        print(
            f"Serving {Path(directory).resolve()} at http://{host}:{httpd.server_address[1]}/ (Ctrl-C to stop)",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            httpd.serve_forever()
