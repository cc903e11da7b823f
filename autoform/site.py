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
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from pydantic import BaseModel

from autoform import dataset
from autoform.atlas import full_decl_name
from autoform.blueprint import LEGEND, chapter_graph_svg, node_states
from autoform.graph import book_graph
from autoform.store import AtlasEntry, Book, Store, Unit

TEMPLATES = Path(__file__).parent / "templates" / "site"
STATUSES = ("proved", "stated", "failed", "pending")
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
    if entry is not None and entry.status in ("proved", "defined"):
        return "proved", entry.status
    if entry is not None and entry.status == "stated":
        return "stated", "stated"
    if unit.status == "failed":
        return "failed", "failed"
    return "pending", "pending"


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


def render_tex(text: str, *, block: bool = True, refs: dict[str, tuple[str, str]] | None = None) -> Markup:
    """Textbook LaTeX as safe HTML: math to MathML, everything else escaped (paragraphs kept when `block`).

    `refs` maps a label to (href, text) for ``\\ref``-like macros. A few text-mode macros are understood
    (``\\emph``, ``\\textbf``, ``\\item``, ``~``, quotes, dashes); other macros are shown as written.
    """
    refs = refs or {}
    o = _Out(block=block)
    n, i = len(text), 0
    while i < n:
        m = _PLAIN_RUN_RE.match(text, i)
        if m:
            o.text(m.group(0))
            i = m.end()
            continue
        c = text[i]
        if c == "\\":
            nxt = text[i + 1] if i + 1 < n else ""
            if nxt == "\\":
                o.markup("<br>" if block else " ")
                i += 2
                continue
            if nxt in _ESCAPED_CHARS:
                o.text(nxt)
                i += 2
                continue
            if nxt in "([":
                close = "\\)" if nxt == "(" else "\\]"
                j = text.find(close, i + 2)
                if j >= 0:
                    o.markup(math_html(text[i + 2 : j], nxt == "["))
                    i = j + 2
                    continue
            m = _ENV_RE.match(text, i)
            if m:
                kind, env = m.groups()
                if kind == "begin" and env in _MATH_ENVS:
                    end = text.find(f"\\end{{{env}}}", m.end())
                    if end >= 0:
                        o.markup(math_html(_math_env_source(env, text[m.end() : end]), True))
                        i = end + len(f"\\end{{{env}}}")
                        continue
                # lists become line breaks (items are bullets); other text-mode environments are transparent
                o.markup("<br>" if block and env in _LIST_ENVS else "")
                i = m.end()
                continue
            m = _MACRO_RE.match(text, i)
            if m:
                name = m.group(1)
                arg = _balanced(text, m.end())
                if name in _STYLE_MACROS and m.end() < n and text[m.end()] == "{":
                    tag = _STYLE_MACROS[name]
                    o.stack.append(tag)
                    o.markup(f"<{tag}>")
                    i = m.end() + 1
                    continue
                if name in _DROP_ARG_MACROS and arg is not None:
                    i = arg[1]
                    continue
                if name in _REF_MACROS and arg is not None:
                    label = arg[0].strip()
                    if label in refs:
                        href, shown = refs[label]
                        o.markup(f'<a class="ref" href="{html.escape(href)}">{html.escape(shown)}</a>')
                    else:
                        o.markup(f'<code class="ref">{html.escape(label)}</code>')
                    i = arg[1]
                    continue
                if name == "cite" and arg is not None:
                    o.text(f"[{arg[0].strip()}]")
                    i = arg[1]
                    continue
                if name == "item":
                    o.markup("<br>\u2022 " if block else " \u2022 ")
                    i = m.end()
                    continue
                o.text(m.group(0))
                i = m.end()
                continue
            o.text(c)
            i += 1
            continue
        if c == "$":
            if text.startswith("$$", i):
                j = text.find("$$", i + 2)
                if j >= 0:
                    o.markup(math_html(text[i + 2 : j], True))
                    i = j + 2
                    continue
            else:
                j = _find_dollar(text, i + 1)
                if j >= 0:
                    o.markup(math_html(text[i + 1 : j], False))
                    i = j + 1
                    continue
            o.text(c)
            i += 1
            continue
        if c == "{":
            o.stack.append(None)
            i += 1
            continue
        if c == "}":
            if o.stack:
                tag = o.stack.pop()
                if tag:
                    o.markup(f"</{tag}>")
            i += 1
            continue
        if c == "\n":
            m = _PAR_RE.match(text, i)
            if m:
                o.par()
                i = m.end()
                continue
        if c == "~":
            o.text("\u00a0")
            i += 1
            continue
        for src, dst in (("``", "\u201c"), ("''", "\u201d"), ("---", "\u2014"), ("--", "\u2013")):
            if text.startswith(src, i):
                o.text(dst)
                i += len(src)
                break
        else:
            o.text(c)
            i += 1
    return Markup(o.result())


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


def _checked_text(store: Store, book_id: int, unit_id: int, last: Any) -> list[dict[str, Any]]:
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


def build_site(store: Store, out: Path) -> SiteSummary:
    """Write the static site of every book in `store` to `out` (existing files are overwritten, none removed)."""
    out = Path(out)
    env = _env()
    books = store.books()
    dirs = book_dir_names(books)
    pages = n_units = 0
    search: list[dict[str, Any]] = []
    book_rows: list[dict[str, Any]] = []

    for book in books:
        bdir = dirs[book.id]
        units = store.units(book.id)
        g = book_graph(store, book.id)
        entries = {u.id: store.atlas_entry(u.id) for u in units}
        fidelity = _fidelity(store, book.id)
        in_mathlib = _in_mathlib(store, book.id)
        by_id = {u.id: u for u in units}
        status = {u.id: unit_status(u, entries[u.id]) for u in units}
        counts = dict.fromkeys(STATUSES, 0)
        for cls, _ in status.values():
            counts[cls] += 1
        n_defined = sum(1 for _, label in status.values() if label == "defined")
        refs = {u.label: (f"{u.id}.html", u.number or _unit_name(u) or u.label) for u in units if u.label}

        def link(uid: int, *, by_id: dict[int, Unit] = by_id, status: dict = status, refs: dict = refs) -> dict:
            u = by_id[uid]
            return {
                "href": f"{u.id}.html",
                "name": _unit_name(u),
                "label": u.label,
                "title": render_tex(u.title, block=False, refs=refs),
                "status": status[uid][0],
                "status_label": status[uid][1],
            }

        # chapters in order of first appearance, units in seq order, section headings where they change
        chapters: dict[str, list[dict[str, Any]]] = {}
        for u in units:
            rows = chapters.setdefault(u.chapter, [])
            row = link(u.id)
            row["section"] = render_tex(u.section, block=False) if u.section else ""
            row["new_section"] = bool(u.section) and (not rows or rows[-1]["raw_section"] != u.section)
            row["raw_section"] = u.section
            row["fidelity"] = fidelity.get(u.id)
            rows.append(row)
        states = node_states(g, units, entries)
        hrefs = {u.id: f"{u.id}.html" for u in units}
        chapter_list = []
        for i, (c, rows) in enumerate(chapters.items(), start=1):
            members = [u for u in units if u.chapter == c]
            svg = chapter_graph_svg(g, members, by_id, states, hrefs, graph_id=f"graph-{i}", title=_plain(c))
            chapter_list.append(
                {
                    "title": render_tex(c, block=False) if c else "",
                    "units": rows,
                    "graph": Markup(svg),
                    "graph_id": f"graph-{i}",
                }
            )

        book_ctx = {
            "slug": book.slug,
            "dir": bdir,
            "title": book.title or book.slug,
            "counts": counts,
            "n_defined": n_defined,
            "total": len(units),
            "progress": _progress(counts),
        }
        book_rows.append(book_ctx)
        _write(
            out / bdir / "index.html",
            env.get_template("book.html").render(root="../", book=book_ctx, chapters=chapter_list, legend=LEGEND),
        )
        pages += 1

        for u in units:
            entry = entries[u.id]
            attempts = store.attempts(u.id)
            last = attempts[-1] if attempts else None
            cls, label = status[u.id]
            deps = sorted(g.successors(u.id), key=lambda v: g.nodes[v]["seq"]) if u.id in g else []
            dependents = sorted(g.predecessors(u.id), key=lambda v: g.nodes[v]["seq"]) if u.id in g else []
            ctx = {
                "book": book_ctx,
                "unit": u,
                "name": _unit_name(u),
                "title": render_tex(u.title, block=False, refs=refs),
                "chapter": render_tex(u.chapter, block=False) if u.chapter else "",
                "section": render_tex(u.section, block=False) if u.section else "",
                "statement": render_tex(u.statement, refs=refs),
                "proof": render_tex(u.proof, refs=refs) if u.proof.strip() else "",
                "status": cls,
                "status_label": label,
                "fidelity": fidelity.get(u.id),
                "in_mathlib": in_mathlib.get(u.id) if entry is not None else None,
                "entry": entry,
                "decl": full_decl_name(book, entry) if entry is not None else "",
                "blueprint": states[u.id].summary,
                "lean": highlight_lean(entry.lean_code) if entry is not None else "",
                "deps": [dict(link(v), via=g.edges[u.id, v]["via"]) for v in deps],
                "dependents": [dict(link(v), via=g.edges[v, u.id]["via"]) for v in dependents],
                "n_attempts": len(attempts),
                "last": last,
                "last_failed": cls == "failed" and last is not None,
                "last_lean": highlight_lean(last.lean_code) if cls == "failed" and last is not None else "",
                "checked": _checked_text(store, book.id, u.id, last) if cls == "failed" and last is not None else [],
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
            _write(out / bdir / f"{u.id}.html", env.get_template("unit.html").render(root="../", **ctx))
            pages += 1
            n_units += 1
            search.append(
                {
                    "book": book.slug,
                    "url": f"{bdir}/{u.id}.html",
                    "kind": u.kind,
                    "number": u.number,
                    "label": u.label,
                    "title": u.title,
                    "status": label,
                    "text": _plain(u.statement)[:2000],
                    "decl": full_decl_name(book, entries[u.id]) if entries[u.id] is not None else "",
                }
            )

        # unit pages of units that are gone (re-ingest): only files named like ours, in this book's directory
        keep = {f"{u.id}.html" for u in units}
        for stale in sorted((out / bdir).glob("*.html")):
            if re.fullmatch(r"[0-9]+\.html", stale.name) and stale.name not in keep:
                stale.unlink()

    # the Atlas as a dataset, next to the pages that show it (see autoform/dataset.py)
    recs = dataset.records(store, books)
    _write(out / "atlas.jsonl", dataset.to_jsonl(recs))
    _write(
        out / "index.html", env.get_template("index.html").render(root="", books=book_rows, dataset_records=len(recs))
    )
    pages += 1
    data = "[\n" + ",\n".join(json.dumps(d, ensure_ascii=False, sort_keys=True) for d in search) + "\n]"
    _write(out / "search.json", data + "\n")
    _write(out / "static" / "search-data.js", "window.AUTOFORM_SEARCH = " + data + ";\n")
    _write(out / "static" / "search.js", (TEMPLATES / "search.js").read_text(encoding="utf-8"))
    _write(out / "static" / "style.css", (TEMPLATES / "style.css").read_text(encoding="utf-8"))
    _write(out / "static" / "pygments.css", pygments_css())
    return SiteSummary(pages=pages, books=len(books), units=n_units)


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
