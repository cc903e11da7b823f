"""PDF ingest: theorem-like units, proofs, chapters and sections from the text layer of a PDF (pypdf).

A PDF has no structure to parse, only lines of text per page. The reader works in passes:

1. extraction (:func:`extract`): the text of every page, the page labels and the outline (bookmarks); a
   corrupt, encrypted or image-only PDF is an :class:`IngestError` naming the file;
2. clean-up: ligatures and the ``⁄=`` overlay of ``≠`` repaired, icon glyphs (control and private-use
   characters) dropped, running headers and footers (lines carrying the page number, or repeated at the top or
   bottom of many pages) removed; with the layout, margin notes and a figure's labels and caption too (the
   statement goes on below a figure);
3. structure: chapters and sections from the outline when it has numbered entries, else from heading lines
   ("Chapter 3" near the top of a page, "Section 1.2", "1.2 Title");
4. headings: "Theorem 3.2 (Name)" on its own line, or "Theorem 3.2 (Name). Text" starting a paragraph, after
   an optional icon glyph; printed names map to kinds with the readers' shared table (``model.NAME_TO_KIND``,
   so "Notation" is a definition), and boxed asides the LaTeX reader files as remarks ("Strategy 1.1.7",
   "Aside") are remarks here too. Numbered candidates are kept when their numbers increase within the chapter
   for their kind (a weighted longest increasing run), which drops references that happen to start a line
   ("Lemma 7.3.21. Now ..."); a number printed a second time is a restatement and no unit. Unnumbered
   headings need an icon, a full stop or a title ("Remark.", "Theorem (Fermat)");
5. segmentation: a unit's statement runs to "Proof", an end mark (□ ∎ ■ QED for proofs; ◁ ♦ for examples),
   the next heading or a chapter/section; a proof runs to its end mark. "Proof of Theorem 3.2" attaches to
   that unit. In a section titled "Exercises" / "Chapter 3 exercises", the consecutively numbered items
   "3.1. ...", "3.2. ..." are exercises. Textual references ("by Lemma 3.1", "the previous theorem") become
   ``text_refs``, resolved as the LaTeX reader resolves them (``model.link_textual``).

Sources are physical page numbers, 1-based ("page 19", "pages 19-20"), as a PDF viewer counts them.
Nothing here calls an LLM; ``agents/reader/restore.py`` can restore LaTeX for a garbled statement on request.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

from autoform.ingest.model import NAME_TO_KIND, IngestError, IngestResult, RawUnit, link_textual
from autoform.ingest.pdf_layout import LineBox, StatementShape, built_up_math, margins, read_page, spacing

#: environment-name abbreviations in the shared table that a book does not print as headings
_ABBREVIATIONS = {"theo", "lemm", "prop", "coro", "corol", "defn", "defi", "exer", "prob", "conj", "nota", "exmp"}
#: boxed asides that the LaTeX reader files as remarks (a theorem-like environment with no usual name)
REMARK_WORDS = (
    "strategy",
    "discussion",
    "extract",
    "aside",
    "warning",
    "caution",
    "digression",
    "intuition",
    "motivation",
    "heuristic",
    "summary",
    "convention",
)
#: printed heading words -> unit kinds: the readers' shared table (model.NAME_TO_KIND), without the proof words
PRINTED_KINDS: dict[str, str] = {
    **{w: k for w, k in NAME_TO_KIND.items() if k != "proof" and len(w) >= 4 and w not in _ABBREVIATIONS},
    **{w: "remark" for w in REMARK_WORDS if w not in NAME_TO_KIND},
}
#: words that start a proof ("Proof.", "Solution.")
PROOF_WORDS = tuple(sorted({w for w, k in NAME_TO_KIND.items() if k == "proof" and len(w) >= 5}, key=len, reverse=True))
#: numbered things that are not units but end the unit before them
BOUNDARY_WORDS = ("Algorithm", "Figure", "Table", "Listing", "Hint")

PROOF_END_MARKS = ("□", "∎", "■", "▪", "◻", "◼", "☐", "Q.E.D.", "QED", "q.e.d.")
UNIT_END_MARKS = ("◁", "♦", "◇", "♢", "⊲", "▲", "△", "◀")

_NUM = r"(?:\d+|[A-Z](?![A-Za-z]))(?:\.(?:\d+|[A-Z](?![A-Za-z])))*"
_NUM_RE = re.compile(_NUM)


def _word_alternation(words: list[str]) -> str:
    forms: list[str] = []
    for w in sorted(words, key=len, reverse=True):
        forms += [w.capitalize(), w.upper()]
    return "|".join(re.escape(f) for f in forms)


#: a kind word, possibly with a glued superscript tag ("PropositionAC 3.2.34", "Theorem* 2")
_KIND_WORDS = _word_alternation(list(PRINTED_KINDS))
_TAG = r"(?:[A-Z]{1,3}|\*)?"
_ICON = r"(?:(?P<icon>[^\w\s(\[{]|[a-zO])\s+)?"
#: "Theorem 3.2", "Theorem 3.2 (Name)", "! Definition 1.1.4." alone on a line
_OWN_LINE_RE = re.compile(
    rf"^{_ICON}(?P<word>{_KIND_WORDS}){_TAG}\s+(?P<num>{_NUM})\.?(?:\s*\((?P<title>.*)\))?\s*[.:]?$"
)
#: an unnumbered heading: "Remark.", "Theorem (Fermat).", "O Aside" (an icon, a full stop or a title is needed:
#: a bare "Examples" line is more often a subsection title)
_UNNUMBERED_RE = re.compile(rf"^{_ICON}(?P<word>{_KIND_WORDS}){_TAG}(?:\s*\((?P<title>[^()]*)\))?\s*(?P<stop>\.)?$")
#: an item of an end-of-chapter exercise list: "3.4. Prove that ..."
_ITEM_RE = re.compile(r"^(?P<ch>\d+|[A-Z])\.(?P<n>\d+)(?:\.\s*$|\.?\s+(?P<rest>\S.*)$)")
_EXERCISE_SECTION_RE = re.compile(r"^(?:(?:chapter|section)\s+\S+\s+)?(?:exercises|problems)\b", re.I)
#: the same with an unclosed title, completed from the next line(s)
_OPEN_TITLE_RE = re.compile(rf"^{_ICON}(?P<word>{_KIND_WORDS}){_TAG}\s+(?P<num>{_NUM})\.?\s*\((?P<title>[^)]*)$")
#: "Theorem 3.2 (Name). Let ..." starting a paragraph (amsthm's run-in heading)
_INLINE_RE = re.compile(
    rf"^(?:(?P<icon>[^\w\s(\[{{]|[a-zO])\s+)?(?P<word>{_KIND_WORDS}){_TAG}\s+(?P<num>{_NUM})"
    r"(?:\s*\((?P<title>[^()]*(?:\([^()]*\)[^()]*)*)\))?\s*[.:]\s+(?P<rest>\S.*)$"
)
#: "Construction 2.4", "Strategy 1.1.7 (Name)", or an unnumbered "Aside" alone on a line
_BOUNDARY_RE = re.compile(
    rf"^(?:(?:[^\w\s(\[{{]|[a-zO])\s+)?(?:{_word_alternation(list(BOUNDARY_WORDS))})s?"
    rf"(?:\s+(?P<num>{_NUM})(?:\s*\(.*\))?\s*[.:]?(?:\s|$)|\s*$)"
)
_PROOF_RE = re.compile(
    rf"^(?:[^\w\s(\[{{]\s+)?(?P<word>{_word_alternation(list(PROOF_WORDS))}|Idea of proof|Sketch of proof|"
    rf"Proof sketch)(?:\s+of\s+(?P<of>(?:{_KIND_WORDS})\s+{_NUM}|[^.:]{{1,50}}?)|\s*\((?P<note>[^()]{{0,60}})\))?"
    r"\s*(?:(?P<sep>[.:])\s*(?P<rest>.*))?$"
)
_OF_UNIT_RE = re.compile(rf"^(?P<word>{_KIND_WORDS})\s+(?P<num>{_NUM})\b")

_CHAPTER_RE = re.compile(
    r"^(?P<word>Chapter|CHAPTER|Appendix|APPENDIX)\s+(?P<num>\d+|[A-Z]|[IVXLC]+)\b\.?\s*(?P<title>.*)$"
)
_SECTION_RE = re.compile(
    r"^(?:(?:Section|SECTION|§)\s*)?(?P<num>(?:\d+|[A-Z])\.(?:\d+|[A-Z])(?:\.\d+)?)\.?\s+(?P<title>[A-Z].*)$"
)
_SECTION_WORD_RE = re.compile(
    r"^(?:Section|SECTION|§)\s*(?P<num>(?:\d+|[A-Z])(?:\.(?:\d+|[A-Z]))*)\.?\s*(?P<title>.*)$"
)
#: an outline entry: "3 Title", "Chapter 3 Title", "3.2 Title", "A.1 Title"
_OUTLINE_RE = re.compile(
    r"^(?:(?:Chapter|Section|Appendix|CHAPTER|SECTION|APPENDIX)\s+)?(?P<num>(?:\d+|[A-Z])(?:\.(?:\d+|[A-Z]))*)"
    r"\.?\s+(?P<title>\S.*)$"
)

_TEXT_REF_RE = re.compile(rf"\b(?P<word>{_KIND_WORDS})s?(?:~|\s)+(?P<nums>{_NUM}(?:\s*(?:,|and|or|&)\s*{_NUM})*)")

_LIGATURES = {
    "ﬀ": "ff",
    "ﬁ": "fi",
    "ﬂ": "fl",
    "ﬃ": "ffi",
    "ﬄ": "ffl",
    "ﬅ": "st",
    "ﬆ": "st",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\u00ad": "",
    "\u2010": "-",
    "\u2011": "-",
}
_LIG_RE = re.compile("|".join(map(re.escape, _LIGATURES)))
_OVERLAY_RE = re.compile(r"⁄\s?([=∈⊆⊂≡∼|])")
_OVERLAY = {"=": "≠", "∈": "∉", "⊆": "⊈", "⊂": "⊄", "≡": "≢", "∼": "≁", "|": "∤"}
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ue000-\uf8ff]")
_SENTENCE_END = tuple(".?!:;)]") + PROOF_END_MARKS + UNIT_END_MARKS

#: a statement or proof running this many lines without an end is cut there (prose after an unboxed statement,
#: a proof without an end mark)
MAX_STATEMENT_LINES = 60
MAX_PROOF_LINES = 200


@dataclass
class OutlineEntry:
    title: str
    page: int  # 0-based
    depth: int
    n_children: int = 0
    child_titles: list[str] = field(default_factory=list)


@dataclass
class PdfText:
    """What :func:`extract` reads from a PDF: one string per page, page labels, the outline, the title."""

    path: str
    pages: list[str]
    labels: list[str] = field(default_factory=list)
    outline: list[OutlineEntry] = field(default_factory=list)
    title: str = ""
    warnings: list[str] = field(default_factory=list)
    #: per page, a box for each line of its text (``pages[i].split("\n")``); None: the text-only reading
    layout: list[list[LineBox]] | None = None


@dataclass
class _Line:
    page: int  # 0-based
    text: str  # normalized
    raw: str  # as extracted (control characters removed)
    top: bool = False  # among the first lines of its page
    box: LineBox | None = None  # where and in which fonts it is set (None: text only)
    math: str = ""  # normalized, raised and lowered pieces marked ("x^{2}"); "" = as text
    after_figure: bool = False  # a figure (its labels, its caption) left out just before it


@dataclass
class _Heading:
    idx: int  # line index
    kind: str
    number: str
    title: str
    rest: str  # statement text on the heading line (run-in headings)
    weight: int
    end_idx: int  # last line index the heading occupies (a title may wrap)
    by_font: bool = False  # shown as a heading by its font alone: no reference, kept whatever its number's order


@dataclass
class _Struct:
    idx: int
    level: str  # 'chapter' | 'section'
    number: str
    title: str


# ------------------------------------------------------------------------------------------ extraction


@contextlib.contextmanager
def _pypdf_warnings(into: list[str], path: Path) -> Iterator[None]:
    """pypdf's log messages (broken xref, ...) become ingest warnings instead of stderr noise."""

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            msg = f"{path}: pypdf: {record.getMessage()}"
            if msg not in into and len(into) < 50:
                into.append(msg)

    logger = logging.getLogger("pypdf")
    handler = _Collect(level=logging.WARNING)
    old = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = old


def _declares_encryption(path: Path, window: int = 1 << 20) -> bool:
    """Whether the file's trailer (or xref stream) names an /Encrypt dictionary: read in its last and first
    megabyte, where PDF writers put them, so a huge file costs no more."""
    try:
        with open(path, "rb") as f:
            head = f.read(window)
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - window))
            tail = f.read(window)
    except OSError:
        return False
    return re.search(rb"/Encrypt\s*(?:\d+\s+\d+\s+R|<<)", head + tail) is not None


def extract(path: Path, *, layout: bool = True) -> PdfText:
    """The text layer of a PDF, page by page, with each line's place and fonts (``layout``: see
    :mod:`autoform.ingest.pdf_layout`). Raises :class:`IngestError` for a PDF that cannot be read."""
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    warnings: list[str] = []
    boxes: list[list[LineBox]] | None = [] if layout else None
    with _pypdf_warnings(warnings, path):
        reader = _open(path)
        pages = _page_texts(reader, path, warnings, boxes)
        labels: list[str] = []
        with contextlib.suppress(Exception):
            labels = list(reader.page_labels)
        outline: list[OutlineEntry] = []
        try:
            _walk_outline(reader, reader.outline, 0, outline)
        except Exception as e:
            warnings.append(f"{path}: the outline (bookmarks) could not be read ({type(e).__name__}); ignored")
            outline = []
        title = ""
        with contextlib.suppress(Exception):
            title = str((reader.metadata or {}).get("/Title") or "").strip()
    return PdfText(str(path), pages, labels, outline, title, warnings, boxes)


def _open(path: Path) -> PdfReader:
    """The PDF opened (and decrypted when its encryption needs no password); :class:`IngestError` saying what to
    do when it cannot be."""
    try:
        reader = PdfReader(str(path), strict=False)
    except Exception as e:  # pypdf raises many types (PdfReadError, ValueError, KeyError...) on bad files
        if isinstance(e, DependencyError) or _declares_encryption(path):
            # AES (needs the `cryptography` package) or public-key security (/Adobe.PubSec): pypdf cannot
            # even open it, but the trailer says why
            raise IngestError(
                f"{path}: the PDF is encrypted and cannot be opened here ({type(e).__name__}: "
                f"{e}); decrypt it first, e.g. `qpdf --decrypt in.pdf out.pdf`, and ingest the "
                "result"
            ) from e
        raise IngestError(f"{path}: not a readable PDF ({type(e).__name__}: {e})") from e
    if reader.is_encrypted:
        _decrypt(reader, path)
    return reader


def _decrypt(reader: PdfReader, path: Path) -> None:
    try:
        opened = reader.decrypt("")  # permissions-only encryption opens with the empty password
    except DependencyError as e:
        raise IngestError(
            f"{path}: the PDF is encrypted ({e}); decrypt it first, e.g. `qpdf --decrypt in.pdf out.pdf`"
        ) from e
    except Exception as e:
        raise IngestError(f"{path}: the PDF is encrypted and cannot be opened ({e})") from e
    if not opened:
        raise IngestError(
            f"{path}: the PDF is encrypted (password-protected); decrypt it first, e.g. "
            "`qpdf --password=... --decrypt in.pdf out.pdf`, and ingest the result"
        )


def _page_count(reader: PdfReader, path: Path) -> int:
    try:
        n = len(reader.pages)
    except FileNotDecryptedError as e:
        raise IngestError(f"{path}: the PDF is encrypted (password-protected); decrypt it first") from e
    except Exception as e:
        raise IngestError(f"{path}: not a readable PDF: its page tree is broken ({type(e).__name__}: {e})") from e
    if n == 0:
        raise IngestError(f"{path}: the PDF has no pages")
    return n


def _page_texts(reader: PdfReader, path: Path, warnings: list[str], boxes: list[list[LineBox]] | None) -> list[str]:
    """The text of every page ("" where extraction failed, with a warning), and into ``boxes`` (unless None) each
    page's line boxes; :class:`IngestError` when no page has text."""
    n = _page_count(reader, path)
    pages: list[str] = []
    failed: list[int] = []
    for i in range(n):
        try:
            if boxes is None:
                pages.append(reader.pages[i].extract_text() or "")
            else:
                text, page_boxes = read_page(reader.pages[i])
                pages.append(text)
                boxes.append(page_boxes)
        except Exception as e:
            failed.append(i + 1)
            pages.append("")
            if boxes is not None and len(boxes) < len(pages):
                boxes.append([])
            if len(failed) <= 5:
                warnings.append(f"{path}: page {i + 1}: text extraction failed ({type(e).__name__}: {e})")
    if failed and len(failed) == n:
        raise IngestError(f"{path}: not a readable PDF: text extraction failed on all {n} pages")
    if not any(re.search(r"\w", p) for p in pages):
        raise IngestError(
            f"{path}: no text layer on any of its {n} pages (a scanned or image-only PDF?); "
            "run OCR on it first (e.g. `ocrmypdf`) or ingest the LaTeX source"
        )
    empty = [i + 1 for i, p in enumerate(pages) if not p.strip() and i + 1 not in failed]
    if len(empty) > max(2, n // 4):
        warnings.append(
            f"{path}: {len(empty)} of {n} pages have no text layer (scanned pages?); their content is missing"
        )
    return pages


def _walk_outline(reader: PdfReader, items: list, depth: int, out: list[OutlineEntry]) -> None:
    parent: OutlineEntry | None = None
    for item in items:
        if isinstance(item, list):
            if parent is not None:
                before = len(out)
                _walk_outline(reader, item, depth + 1, out)
                kids = [e for e in out[before:] if e.depth == depth + 1]
                parent.n_children = len(kids)
                parent.child_titles = [e.title for e in kids]
            continue
        try:
            page = reader.get_destination_page_number(item)
        except Exception:
            page = None
        title = re.sub(r"\s+", " ", _normalize(str(getattr(item, "title", "") or ""))).strip()
        if page is None or page < 0 or not title:
            parent = None
            continue
        parent = OutlineEntry(title, page, depth)
        out.append(parent)


# ------------------------------------------------------------------------------------------ clean-up


def _normalize(text: str) -> str:
    text = _LIG_RE.sub(lambda m: _LIGATURES[m.group(0)], text)
    text = _OVERLAY_RE.sub(lambda m: _OVERLAY[m.group(1)], text)
    return text


def _clean_raw(text: str) -> str:
    return _CONTROL_RE.sub("", text).replace("\r", "")


#: the digit-normalized, lower-cased shape of a theorem or proof heading (never a running header)
_HEADINGISH_RE = re.compile(rf"^\W?\s*(?:{'|'.join(PRINTED_KINDS)}|proof)\b")
_EDGE = 3  # lines at the top and bottom of a page examined as header/footer candidates


def _shape(line: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", " ", line.strip().lower()))


def _strip_running(pages: list[list[str]], labels: list[str]) -> list[list[int]]:
    """Remove running headers and footers: edge lines carrying the page's number or label (with text that recurs
    on other pages), and edge lines that recur (digits aside) on a large share of the pages."""
    frequent = _frequent_edge_shapes(pages)
    offset = _page_number_offset(pages)
    tokens = [_page_number_tokens(i, labels, offset) for i in range(len(pages))]
    # text of header lines once the page number is removed, to confirm a number-carrying header
    stripped_shapes: Counter[str] = Counter()
    for lines, toks in zip(pages, tokens, strict=True):
        for x in lines[:_EDGE] + lines[-_EDGE:]:
            rest = _without_number(x, toks)
            if rest is not None:
                stripped_shapes[_shape(rest)] += 1

    def running(x: str, toks: set[str]) -> bool:
        rest = _without_number(x, toks)
        if _shape(x) in frequent:
            return True
        return rest is not None and (not rest.strip() or (stripped_shapes[_shape(rest)] >= 2 and len(rest) < 100))

    out: list[list[int]] = []
    for lines, toks in zip(pages, tokens, strict=True):
        edges = set(range(min(_EDGE, len(lines)))) | set(range(max(0, len(lines) - _EDGE), len(lines)))
        out.append([pos for pos, x in enumerate(lines) if pos not in edges or not running(x, toks)])
    return out


def _frequent_edge_shapes(pages: list[list[str]]) -> set[str]:
    """The shapes (digits aside) of edge lines that recur on a large share of the pages, headings excepted."""
    n = len(pages)
    edge_shapes: Counter[str] = Counter()
    for lines in pages:
        edge_shapes.update({_shape(x) for x in lines[:_EDGE] + lines[-_EDGE:]})
    frequent = {s for s, c in edge_shapes.items() if n >= 3 and c >= max(3, 0.3 * n)}
    return {s for s in frequent if not _HEADINGISH_RE.match(s)}


def _page_number_offset(pages: list[list[str]]) -> int | None:
    """The printed page number as an offset from the page index, learnt from edge lines (None: no clear one)."""
    offsets: Counter[int] = Counter()
    for i, lines in enumerate(pages):
        found = set()
        for x in lines[:2] + lines[-2:]:
            words = x.split()
            for tok in words[:1] + words[-1:]:
                if tok.isdigit():
                    found.add(int(tok) - i)
        offsets.update(found)
    if not offsets:
        return None
    offset, count = offsets.most_common(1)[0]
    return offset if count >= max(2, len(pages) // 5) else None


def _page_number_tokens(i: int, labels: list[str], offset: int | None) -> set[str]:
    """How page ``i`` prints its number: its label, and its index plus the offset."""
    toks = set()
    if i < len(labels) and labels[i]:
        toks.add(labels[i].lower())
    if offset is not None:
        toks.add(str(i + offset))
    return toks


def _without_number(line: str, toks: set[str]) -> str | None:
    """The line without the page number at its start or end, or None when it carries none."""
    words = line.split()
    if not words or (len(words) == 2 and words[0].lower() in ("chapter", "appendix", "part", "section")):
        return None  # "Chapter 3" printed on page 3 is a heading, not a running header
    if words[0].lower() in toks:
        return " ".join(words[1:])
    if words[-1].lower() in toks:
        return " ".join(words[:-1])
    return None


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", _normalize(_clean_raw(text))).strip()


def _lines(doc: PdfText) -> list[_Line]:
    """The pages' lines without running heads and footers, each with its box when the layout is known."""
    pages = [
        _page_lines(p, doc.layout[i] if doc.layout and i < len(doc.layout) else []) for i, p in enumerate(doc.pages)
    ]
    kept = _strip_running([[x for x, _, _ in p] for p in pages], doc.labels)
    out: list[_Line] = []
    for i, positions in enumerate(kept):
        for k, pos in enumerate(positions):
            x, box, after_figure = pages[i][pos]
            # `raw` keeps a leading icon glyph (a control character) as a hint that the line is a heading
            math = _flat(box.math) if box is not None and box.math != x else ""
            out.append(_Line(i, _flat(x), x, top=k < 4, box=box, math=math, after_figure=after_figure))
    return out


def _page_lines(text: str, layout: list[LineBox]) -> list[tuple[str, LineBox | None, bool]]:
    """A page's non-empty lines (text, box, whether a figure comes between it and the line before), without the
    lines the layout shows are out of the body (a margin note, a figure's labels or caption) and without the
    pieces of a line set in the margin."""
    # not str.strip(): it would also drop \x1c-\x1f, which some fonts use for heading icons
    texts = [x.strip(" \t\u00a0") for x in text.split("\n")]
    boxes: list[LineBox | None] = list(layout)
    if len(boxes) != len(texts):
        boxes = [None] * len(texts)
    out: list[tuple[str, LineBox | None, bool]] = []
    figure = False
    for x, b in zip(texts, boxes, strict=True):
        if b is not None and b.region:
            figure = figure or b.region != "margin"
            continue
        if b is not None and b.kept is not None:
            x = b.kept.strip(" \t\u00a0")
        if _clean_raw(x).strip():
            out.append((x.replace("\r", ""), b, figure))
            figure = False
    return out


# ------------------------------------------------------------------------------------------ structure


def _sort_key(number: str) -> tuple[tuple[tuple[int, int | str], ...], ...]:
    """Numbers in print order: "1.2" < "1.10", "1.1a" < "1.1b" < "1.2", "13.4a1" < "13.4a2", "A.1" after digits."""
    return tuple(
        tuple((0, int(t)) if t.isdigit() else (1, t) for t in re.findall(r"\d+|\D+", part))
        for part in number.split(".")
    )


def _structure_from_outline(doc: PdfText, lines: list[_Line]) -> list[_Struct]:
    entries = doc.outline
    numbered = [e for e in entries if _OUTLINE_RE.match(e.title)]
    if len(numbered) < 2:
        return []
    page_start = {}
    for k, ln in enumerate(lines):
        page_start.setdefault(ln.page, k)
    starts = sorted(page_start.items())
    out: list[_Struct] = []
    for e in entries:
        m = _OUTLINE_RE.match(e.title)
        chapterish = [t for t in e.child_titles if (c := _OUTLINE_RE.match(t)) and "." not in c.group("num")]
        if chapterish and len(chapterish) >= max(1, e.n_children // 2):
            continue  # a part ("I Core concepts", "Appendices") holding chapters
        if m is None:
            if e.depth == 0:  # an unnumbered top-level entry (Preface, Index): a chapter without a number
                level, number, title = "chapter", "", e.title
            else:
                continue
        else:
            number, title = m.group("num"), m.group("title").strip()
            level = "section" if "." in number else "chapter"
            if level == "chapter" and re.fullmatch(r"[IVXLC]+", number) and len(number) > 1:
                continue
        idx = _find_title_line(lines, e.page, title, starts)
        if idx is not None:
            out.append(_Struct(idx, level, number, title))
    out.sort(key=lambda s: s.idx)
    return out


def _find_title_line(lines: list[_Line], page: int, title: str, starts: list[tuple[int, int]]) -> int | None:
    """Index of the line on `page` where the heading `title` is printed (else the page's first line)."""
    pos = bisect.bisect_left(starts, (page, -1))
    if pos >= len(starts):
        return None
    first = starts[pos][1]
    end = starts[pos + 1][1] if pos + 1 < len(starts) else len(lines)
    if starts[pos][0] != page:
        return first
    want = re.sub(r"\W+", "", title.lower())
    for k in range(first, end):
        got = re.sub(r"\W+", "", lines[k].text.lower())
        if want and (got == want or (got.endswith(want) and len(got) - len(want) <= 12)):
            # the number may sit on the line before ("Chapter 3" / "Title")
            return k - 1 if k > first and _CHAPTER_RE.match(lines[k - 1].text) else k
    return first


def _structure_from_text(lines: list[_Line]) -> list[_Struct]:
    """Chapters ("Chapter 3" near the top of a page) and sections ("Section 1.2", "1.2 Title") from heading lines;
    a section must belong to the current chapter and come after the section before."""
    out: list[_Struct] = []
    chapter_no = ""
    last_section: tuple[tuple[int, int | str], ...] = ()
    for k in range(len(lines)):
        chapter = _chapter_at(lines, k)
        if chapter is not None:
            out.append(chapter)
            chapter_no, last_section = chapter.number, ()
            continue
        section = _section_at(lines, k, chapter_no)
        if section is None:
            continue
        key = _sort_key(section.number)
        if last_section and key <= last_section:
            continue
        last_section = key
        out.append(section)
    return out


def _chapter_at(lines: list[_Line], k: int) -> _Struct | None:
    ln = lines[k]
    m = _CHAPTER_RE.match(ln.text)
    if not m or not ln.top or _looks_like_toc(m.group("title")) or m.group("title")[:1].islower():
        return None
    title = m.group("title").strip()
    if not title and k + 1 < len(lines) and lines[k + 1].page == ln.page and len(lines[k + 1].text) < 80:
        title = lines[k + 1].text
    return _Struct(k, "chapter", m.group("num"), title)


def _section_at(lines: list[_Line], k: int, chapter_no: str) -> _Struct | None:
    t = lines[k].text
    m = _SECTION_WORD_RE.match(t) or _SECTION_RE.match(t)
    if not m or _looks_like_toc(m.group("title")):
        return None
    number, title = m.group("num"), m.group("title").strip()
    if "." not in number:
        return None
    if not title and k + 1 < len(lines) and len(lines[k + 1].text) < 80:
        title = lines[k + 1].text
    if not _title_like(title) or (chapter_no and number.split(".")[0] != chapter_no):
        return None
    return _Struct(k, "section", number, title)


def _short_heading(t: str) -> bool:
    """An unnumbered subsection heading ("Number bases") rather than a line of prose."""
    return _title_like(t) and len(t) <= 50 and len(t.split()) <= 6 and "," not in t


def _looks_like_toc(t: str) -> bool:
    return bool(re.search(r"(\.\s?){3,}|\s\d+$", t))


def _title_like(t: str) -> bool:
    return (
        0 < len(t) <= 80
        and t[:1].isupper()
        and not t.endswith((".", ",", ";"))
        and re.fullmatch(r"[\w\s,:;'’‘\-–—()&/]+", t) is not None
    )


# ------------------------------------------------------------------------------------------ headings


def _heading_candidates(lines: list[_Line], struct_lines: set[int]) -> tuple[list[_Heading], dict[int, bool]]:
    """Heading-like lines, and the lines of other environments that end a unit (True when numbered: a proof
    after those is theirs; False for an unnumbered aside between a statement and its proof). A run-in heading
    ("Lemma 2.1. Text") must start a paragraph: the line before ends a sentence or is a heading."""
    cands: list[_Heading] = []
    boundaries: dict[int, bool] = {}
    for k, ln in enumerate(lines):
        if bm := _BOUNDARY_RE.match(ln.text):
            boundaries[k] = bm.group("num") is not None
            continue
        cands += _headings_at(lines, k, boundaries, struct_lines)
    return cands, boundaries


def _headings_at(lines: list[_Line], k: int, boundaries: dict[int, bool], struct_lines: set[int]) -> list[_Heading]:
    """The heading line ``k`` starts, if any: a numbered heading on its own line (its title maybe wrapped onto
    the next lines), an unnumbered one, or a run-in heading starting a paragraph."""
    ln = lines[k]
    m = _OWN_LINE_RE.match(ln.text)
    if m is None and _OPEN_TITLE_RE.match(ln.text):  # "Theorem 3.2 (A title that" / "wraps)" [". Statement"]
        m, end, wrapped = _wrapped_heading(lines, k)
        if wrapped is not None:
            return [wrapped]
        if m is None and end != k:
            return []
    else:
        end = k
    if m:
        # an icon before the heading makes it surer; a full stop after it makes it a sentence end more likely
        weight = 3 if m.group("icon") or _CONTROL_RE.match(ln.raw) else 1 if ln.text.endswith(".") else 2
        return [_heading(m, k, end, weight, number=m.group("num"), rest="")]
    mu = _UNNUMBERED_RE.match(ln.text)
    if (
        mu
        and not mu.group("word").lower().endswith("s")
        and (mu.group("icon") or _CONTROL_RE.match(ln.raw) or mu.group("stop") or mu.group("title"))
    ):
        return [_heading(mu, k, k, 2, number="", rest="")]
    m = _INLINE_RE.match(ln.text)
    if m and _starts_paragraph(lines, k, boundaries, struct_lines):
        return [_heading(m, k, k, 1, number=m.group("num"), rest=m.group("rest"))]
    return _bold_heading(ln, k)


#: a heading set in its own font, with no full stop after it: "Exercise 1.1a" in bold, then the statement
_BOLD_LEAD_RE = re.compile(rf"^(?P<word>{_KIND_WORDS})\s+(?P<num>\d[\w.\-]*?)\.?(?:\s*\((?P<title>[^()]*)\))?$")


def _bold_heading(ln: _Line, k: int) -> list[_Heading]:
    """A run-in heading the page shows by its font alone (LaTeX's ``\\paragraph{Exercise 1.1a}``)."""
    lead = ln.box.lead if ln.box is not None else ""
    m = _BOLD_LEAD_RE.match(lead) if lead else None
    if m is None or not ln.text.startswith(lead):
        return []
    h = _heading(m, k, k, 2, number=m.group("num"), rest=ln.text[len(lead) :].strip())
    h.by_font = True
    return [h]


def _wrapped_heading(lines: list[_Line], k: int) -> tuple[re.Match[str] | None, int, _Heading | None]:
    """A heading whose title wraps onto the next two lines: (its own-line match, the line its title ends on, or
    the run-in heading when the statement follows the title); (None, k, None) when the title never closes."""
    joined = lines[k].text
    for j in range(k + 1, min(k + 3, len(lines))):
        joined += " " + lines[j].text
        if ")" in lines[j].text:
            m = _OWN_LINE_RE.match(joined)
            if m is None and (mi := _INLINE_RE.match(joined)):
                return None, j, _heading(mi, k, j, 2, number=mi.group("num"), rest=mi.group("rest"))
            return m, j, None
    return None, k, None


def _starts_paragraph(lines: list[_Line], k: int, boundaries: dict[int, bool], struct_lines: set[int]) -> bool:
    """Whether line ``k`` starts a paragraph: the line before ends a sentence or is a heading."""
    if k == 0:
        return True
    prev = lines[k - 1].text
    return prev.endswith(_SENTENCE_END) or k - 1 in boundaries or k - 1 in struct_lines or _short_heading(prev)


def _heading(m: re.Match[str], k: int, end: int, weight: int, *, number: str, rest: str) -> _Heading:
    return _Heading(
        k, PRINTED_KINDS[m.group("word").lower()], number, (m.group("title") or "").strip(), rest, weight, end
    )


def _keep_increasing(cands: list[_Heading], chapters: list[int]) -> list[_Heading]:
    """Per chapter and kind, the heaviest run of candidates whose numbers strictly increase (duplicates and
    stray references that start a line fall out)."""
    groups: dict[tuple[int, str], list[_Heading]] = {}
    for h in cands:
        ch = bisect.bisect_right(chapters, h.idx)
        groups.setdefault((ch, h.kind), []).append(h)
    kept: list[_Heading] = []
    for group in groups.values():
        keys = sorted({_sort_key(h.number) for h in group})
        rank = {key: r for r, key in enumerate(keys)}
        size = len(keys)
        # Fenwick tree of prefix maxima of (best total weight, -index): on a tie the earlier line wins, since a
        # heading comes before the references to it
        tree: list[tuple[int, int]] = [(0, 1)] * (size + 1)
        best: list[tuple[int, int]] = []  # (total weight of the best run ending here, previous index or -1)
        for i, h in enumerate(group):
            r = rank[_sort_key(h.number)]
            q, j = (0, 1), r  # best over ranks < r
            while j > 0:
                q = max(q, tree[j])
                j -= j & -j
            total = q[0] + h.weight
            best.append((total, -q[1] if q[1] <= 0 else -1))
            j = r + 1
            while j <= size:
                tree[j] = max(tree[j], (total, -i))
                j += j & -j
        i = max(range(len(group)), key=lambda x: (best[x][0], -x))
        while i >= 0:
            kept.append(group[i])
            i = best[i][1]
    kept.sort(key=lambda h: h.idx)
    return kept


# ------------------------------------------------------------------------------------------ segmentation


@dataclass
class _Building:
    unit: RawUnit
    first_page: int
    last_page: int
    stmt: list[_Line] = field(default_factory=list)
    proof: list[_Line] = field(default_factory=list)
    shape: StatementShape | None = None  # how its statement is set (None: text only)
    marked: bool = False  # its statement ended at an end mark


def _ends_with(t: str, marks: tuple[str, ...]) -> str | None:
    s = t.rstrip()
    for mark in marks:
        if s.endswith(mark):
            if mark[0].isalpha() and len(s) > len(mark) and s[-len(mark) - 1].isalnum():
                continue  # "QED" inside a word
            return mark
    return None


def _strip_mark(t: str, mark: str) -> str:
    return t.rstrip()[: -len(mark)].rstrip()


def _rest_of(ln: _Line, rest: str) -> _Line:
    """The statement text after a run-in heading on line ``ln``, with the line's box and its math."""
    head = len(ln.text) - len(rest)
    math = ln.math[head:].strip() if ln.math and ln.text.endswith(rest) and ln.math[:head] == ln.text[:head] else ""
    return _Line(ln.page, rest, rest, box=ln.box, math=math)


def _without_mark(ln: _Line, mark: str, *, keep_raw: bool = False) -> _Line:
    """The line without its end mark (in ``raw`` too, unless ``keep_raw``)."""
    math = _strip_mark(ln.math, mark) if ln.math and _ends_with(ln.math, (mark,)) else ln.math
    raw = ln.raw if keep_raw else _strip_mark(ln.raw, mark)
    return _Line(ln.page, _strip_mark(ln.text, mark), raw, ln.top, ln.box, math, ln.after_figure)


def _dehyphenate(lines: list[str]) -> str:
    text = "\n".join(lines)
    return re.sub(r"(?<=[a-z])-\n(?=[a-z])", "", text)


def textual_refs(text: str) -> list[tuple[str, str]]:
    """("lemma", "3.1") for "by Lemma 3.1"; "Theorems 2.1 and 2.3" gives both."""
    out: list[tuple[str, str]] = []
    for m in _TEXT_REF_RE.finditer(text):
        kind = PRINTED_KINDS[m.group("word").lower()]
        for num in _NUM_RE.findall(m.group("nums")):
            if re.search(r"\d", num) and (kind, num) not in out:
                out.append((kind, num))
    return out


def _link_refs(units: list[RawUnit]) -> None:
    """Textual references, resolved to units the way the LaTeX reader does it (model.link_textual: numbers,
    "the previous theorem", "Theorem 2 above"), on the de-hyphenated text; plus appendix numbers ("Lemma B.2.7"),
    which the shared matcher does not read."""
    shadows = [
        u.model_copy(update={"statement_raw": u.statement, "proof_raw": u.proof, "text_refs": []}) for u in units
    ]
    link_textual(shadows)
    have = {(u.kind, u.number) for u in units if u.number}
    kind_of = {u.number: u.kind for u in reversed(units) if u.number}
    for u, shadow in zip(units, shadows, strict=True):
        refs = list(shadow.text_refs)
        for kind, number in textual_refs(u.statement + "\n" + u.proof):
            if re.search(r"[A-Z]", number):
                target = (kind, number) if (kind, number) in have else (kind_of.get(number, ""), number)
                if target[0] and target != (u.kind, u.number) and target not in refs:
                    refs.append(target)
        u.text_refs = refs


def _page_span(a: int, b: int) -> str:
    return f"page {a + 1}" if a == b else f"pages {a + 1}-{b + 1}"


_RADICALS = ("√", "∛", "∜")


def _math_lines(lines: list[_Line], *, layout: bool) -> list[str]:
    """The lines' text, with the page's math where it is known: raised and lowered pieces marked, and a radical
    sign that the text layer puts on a line of its own (its glyph sits above the baseline) joined to its
    radicand: "The number" / "√" / "2 is irrational." reads "The number √2 is irrational."."""
    if not layout:
        return [x.text for x in lines]
    out: list[str] = []
    glue = False
    for x in lines:
        t = x.math or x.text
        if t in _RADICALS:
            out.append(f"{out.pop()} {t}" if out else t)
            glue = True
        elif glue and out:
            out[-1] += t
            glue = False
        else:
            out.append(t)
    return out


def _marked_kinds(doc: PdfText, lines: list[_Line], plan: _Plan) -> set[str]:
    """The kinds whose statements the book ends with a mark (◁, ♦, ...), read by the text alone: where the book
    marks an end, the mark is trusted over the page's spacing."""
    seg = _Segmenter(doc, lines, plan)
    seg.margins = None
    seg.run()
    marked: dict[str, list[int]] = {}
    for b in seg.built.values():
        counts = marked.setdefault(b.unit.kind, [0, 0])
        counts[0] += b.marked
        counts[1] += 1
    return {kind for kind, (a, n) in marked.items() if a >= 0.5 * n}


def parse(doc: PdfText) -> IngestResult:
    """Units from extracted page texts (no I/O; :func:`ingest_pdf` = :func:`extract` + this)."""
    lines = _lines(doc)
    plan = _plan(doc, lines)
    seg = _Segmenter(doc, lines, plan, marked=_marked_kinds(doc, lines, plan) if doc.layout else set())
    seg.run()
    warnings = seg.warnings
    for u in seg.units:
        b = seg.built[id(u)]
        u.statement_raw = "\n".join(_clean_raw(x.raw) for x in b.stmt).strip()
        u.statement = _dehyphenate(_math_lines(b.stmt, layout=bool(doc.layout))).strip()
        u.proof_raw = "\n".join(_clean_raw(x.raw) for x in b.proof).strip()
        u.proof = _dehyphenate(_math_lines(b.proof, layout=bool(doc.layout))).strip()
        u.source = _page_span(b.first_page, b.last_page)
        u.flags = _unit_flags(doc, b) if u.statement else []
        warnings += _unit_warnings(doc, u)
    _link_refs(seg.units)
    if plan.restated:
        warnings.append(
            f"{doc.path}: {len(plan.restated)} headings repeat an earlier number (restatements); not made units"
        )
    if plan.dropped:
        warnings.append(
            f"{doc.path}: {plan.dropped} heading-like lines out of numbering order were read as text "
            "(references at the start of a line, or a misread heading)"
        )
    return IngestResult(title=doc.title, source_kind="pdf", root=doc.path, units=seg.units, warnings=warnings)


def _unit_flags(doc: PdfText, b: _Building) -> list[str]:
    """What the unit's statement could not keep from the page: math built up over lines, a figure. Kept on the
    unit (its ``flags``: its page shows them, the drafter is told) and named in the book's warnings."""
    out = []
    if doc.layout and built_up_math([(x.box, x.page, x.text) for x in b.stmt if x.text not in _RADICALS]):
        out.append(
            "math built up over lines (a fraction, limits under a sum or a radical) is spread over the "
            "statement's lines; check it against the page"
        )
    if any(x.after_figure for x in b.stmt[1:]):
        out.append("a figure inside the statement (its labels, its caption) is left out; see the page")
    return out


def _unit_warnings(doc: PdfText, u: RawUnit) -> list[str]:
    """The book's warnings about one unit: no statement text, or its flags."""
    where = f"{doc.path}: {u.source}: {u.kind} {u.number}"
    if not u.statement:
        return [f"{where} has no statement text"]
    return [f"{where}: {flag}" for flag in u.flags]


@dataclass
class _Plan:
    """What passes 3 and 4 found in the lines: chapters and sections by line, the headings kept as units, the
    lines that end a unit (True: numbered, a proof after them is theirs), the restatements among them, and how
    many heading-like lines were read as text."""

    structs_at: dict[int, list[_Struct]]
    headings: dict[int, _Heading]
    boundaries: dict[int, bool]
    restated: dict[int, tuple[str, str]]  # line -> the (kind, number) it restates
    dropped: int


def _plan(doc: PdfText, lines: list[_Line]) -> _Plan:
    structs = _structure_from_outline(doc, lines) or _structure_from_text(lines)
    chapters = sorted({s.idx for s in structs if s.level == "chapter"})
    struct_lines = {s.idx for s in structs} | {
        s.idx + 1 for s in structs if s.idx + 1 < len(lines) and lines[s.idx + 1].text == s.title
    }
    cands, boundaries = _heading_candidates(lines, struct_lines)
    headings, restated = _accept_headings(cands, chapters, boundaries)
    structs_at: dict[int, list[_Struct]] = {}
    for s in structs:
        structs_at.setdefault(s.idx, []).append(s)
    return _Plan(structs_at, headings, boundaries, restated, len(cands) - len(headings) - len(restated))


def _accept_headings(
    cands: list[_Heading], chapters: list[int], boundaries: dict[int, bool]
) -> tuple[dict[int, _Heading], dict[int, tuple[str, str]]]:
    """The candidates kept as unit headings (numbers increasing within their chapter), and the restatements (a
    number printed again), which become boundaries in ``boundaries``."""
    headings: dict[int, _Heading] = {}
    seen: dict[tuple[str, str], int] = {}
    restated: dict[int, tuple[str, str]] = {}
    kept = _keep_increasing([h for h in cands if h.number and not h.by_font], chapters)
    kept = sorted(kept + [h for h in cands if not h.number or h.by_font], key=lambda h: h.idx)
    for h in kept:
        if h.number and (h.kind, h.number) in seen and not h.number.isdigit():
            # a book-wide number printed again: a restatement ("Theorem 5.2.11" recalled in a later chapter) or
            # a reference alone on a line; it ends the unit before it but is not a unit
            boundaries[h.idx] = True
            restated[h.idx] = (h.kind, h.number)
            continue
        seen[(h.kind, h.number)] = h.idx
        headings[h.idx] = h
    kept_idx = {h.idx for h in kept}
    for h in cands:
        if h.idx not in kept_idx and h.weight >= 2 and seen.get((h.kind, h.number), h.idx) < h.idx:
            boundaries[h.idx] = True  # a heading printed again, out of order within its chapter: a restatement
            restated[h.idx] = (h.kind, h.number)
    return headings, restated


class _Segmenter:
    """Pass 5: walks the lines once, with the unit (statement or proof) open at each, and cuts them into units."""

    def __init__(self, doc: PdfText, lines: list[_Line], plan: _Plan, *, marked: set[str] | None = None) -> None:
        self.doc, self.lines, self.plan = doc, lines, plan
        self.warnings = list(doc.warnings)
        self.units: list[RawUnit] = []
        self.built: dict[int, _Building] = {}  # id(unit) -> its lines
        self.by_number: dict[tuple[str, str], RawUnit] = {}
        self.chapter = self.section = self.chapter_no = ""
        self.in_exercises = False  # inside an end-of-chapter exercise section ("Chapter 3 exercises")
        self.item_no = 0  # the last exercise item number seen there
        self.cur: _Building | None = None
        self.mode = ""  # 'statement' | 'proof' | ''
        self.last: _Building | None = None  # the latest unit that can have a proof, for a proof after a closed one
        self.margins = margins(doc.layout) if doc.layout else None  # the body's left margin, by page parity
        self.spacing = spacing(doc.layout, self.margins) if doc.layout and self.margins else None
        self.marked = marked or set()  # kinds whose statements end with a mark: no end read from the layout

    def run(self) -> None:
        skip_until = -1
        for k, ln in enumerate(self.lines):
            if k <= skip_until:
                continue
            for st in self.plan.structs_at.get(k, []):
                self.enter(st)
            if k in self.plan.headings:
                skip_until = self.heading(self.plan.headings[k], ln)
            elif k in self.plan.boundaries:
                self.boundary(k)
            elif not self.exercise_item(ln) and not self.proof_start(ln):
                self.body_line(ln)

    def close(self) -> None:
        self.cur, self.mode = None, ""

    def start(self, kind: str, number: str, title: str, page: int, last_page: int) -> _Building:
        unit = RawUnit(kind=kind, number=number, title=title, statement="", chapter=self.chapter, section=self.section)
        shape = StatementShape(self.margins, self.spacing) if self.margins and kind not in self.marked else None
        b = _Building(unit, page, last_page, shape=shape)
        self.built[id(unit)] = b
        self.units.append(unit)
        if number:
            self.by_number.setdefault((kind, number), unit)
        self.cur, self.mode = b, "statement"
        if kind != "remark":
            self.last = b
        return b

    def add_statement(self, b: _Building, ln: _Line) -> bool:
        """Add a statement line; True when it ends the statement."""
        mark = _ends_with(ln.text, UNIT_END_MARKS + PROOF_END_MARKS)
        if mark is None and ln.box is not None and ln.box.end_glyph and ln.text[-1:].isalpha():
            mark = ln.text[-1]  # an end mark drawn from a symbol font with no Unicode (MSAM's "d")
        b.stmt.append(_without_mark(ln, mark) if mark else ln)
        b.marked = mark is not None
        if b.shape is not None:
            b.shape.learn(ln.box, ln.page)
        b.last_page = max(b.last_page, ln.page)
        return mark is not None

    def enter(self, st: _Struct) -> None:
        """A chapter or section begins: no unit is open, and no proof that follows is of a unit before."""
        self.close()
        self.last = None
        if st.level == "chapter":
            self.chapter, self.section, self.chapter_no = st.title, "", st.number
        else:
            self.section = st.title
        self.in_exercises, self.item_no = bool(_EXERCISE_SECTION_RE.match(self.section)), 0

    def heading(self, h: _Heading, ln: _Line) -> int:
        """A unit's heading opens it; the last line the heading occupies."""
        b = self.start(h.kind, h.number, h.title, ln.page, self.lines[h.end_idx].page)
        if h.rest and self.add_statement(b, _rest_of(ln, h.rest)):
            self.close()
        return h.end_idx

    def boundary(self, k: int) -> None:
        self.close()
        if self.plan.boundaries[k]:
            self.last = None
        again = self.plan.restated.get(k)
        u = self.by_number.get(again) if again is not None else None
        if u is not None and not self.built[id(u)].proof:
            self.last = self.built[id(u)]  # a restatement followed by the proof the original still lacks

    def exercise_item(self, ln: _Line) -> bool:
        """An item "3.1. ..." of an exercise section opens an exercise; whether ``ln`` was one."""
        im = _ITEM_RE.match(ln.text) if self.in_exercises else None
        if im is None or im.group("ch") != self.chapter_no or int(im.group("n")) != self.item_no + 1:
            return False
        self.item_no += 1
        b = self.start("exercise", f"{self.chapter_no}.{self.item_no}", "", ln.page, ln.page)
        rest = im.group("rest") or ""
        if rest and self.add_statement(b, _rest_of(ln, rest)):
            self.close()
        return True

    def proof_start(self, ln: _Line) -> bool:
        """A "Proof." line opens the proof of the unit it names, or of the unit before; whether ``ln`` was one."""
        pm = _PROOF_RE.match(ln.text)
        if not pm or not (pm.group("sep") or not pm.group("rest")):
            return False
        target = self.proof_target(pm)
        if target is None:
            self.warnings.append(f"{self.doc.path}: page {ln.page + 1}: a proof with no statement before it; ignored")
            self.close()
            return True
        self.cur, self.mode = target, "proof"
        if target.proof:
            target.proof.append(_Line(ln.page, "", ""))
        rest = (pm.group("rest") or "").strip()
        if rest:
            mark = _ends_with(rest, PROOF_END_MARKS)
            target.proof.append(_Line(ln.page, _strip_mark(rest, mark) if mark else rest, rest))
            if target is self.last:
                target.last_page = max(target.last_page, ln.page)
            if mark:
                self.close()
        return True

    def proof_target(self, pm: re.Match[str]) -> _Building | None:
        om = _OF_UNIT_RE.match(pm.group("of") or "")
        if om:  # "Proof of Theorem 3.2"
            u = self.by_number.get((PRINTED_KINDS[om.group("word").lower()], om.group("num")))
            if u is not None and id(u) in self.built:
                return self.built[id(u)]
        if self.cur is not None and self.cur.unit.kind != "remark":
            return self.cur
        return self.last

    def body_line(self, ln: _Line) -> None:
        cur = self.cur
        if cur is None:
            return
        if self.mode == "statement":
            # a statement ends at its end mark; one that runs on too long, or meets a subheading of an exercise
            # list ("True-False questions"), is cut before the line
            if (
                len(cur.stmt) >= MAX_STATEMENT_LINES
                or (self.in_exercises and _short_heading(ln.text))
                or self.ends_by_layout(cur, ln)
                or self.add_statement(cur, ln)
            ):
                self.close()
        elif self.mode == "proof":
            self.proof_line(cur, ln)

    def ends_by_layout(self, cur: _Building, ln: _Line) -> bool:
        """Whether the page shows that ``ln`` is past the statement (out of its frame, upright after italics)."""
        if cur.shape is None or not cur.stmt:
            return False
        last = cur.stmt[-1]
        # the space a figure takes is no space after the statement: it goes on below the figure
        before = (None, last.page) if ln.after_figure else (last.box, last.page)
        return cur.shape.ends_before(ln.box, ln.page, before, last.text.endswith((".", "?", "!")))

    def proof_line(self, cur: _Building, ln: _Line) -> None:
        if len(cur.proof) >= MAX_PROOF_LINES:
            self.warnings.append(
                f"{self.doc.path}: page {ln.page + 1}: the proof of {cur.unit.kind} {cur.unit.number} "
                f"has no end mark within {MAX_PROOF_LINES} lines; cut there"
            )
            self.close()
            return
        mark = _ends_with(ln.text, PROOF_END_MARKS)
        cur.proof.append(_without_mark(ln, mark, keep_raw=True) if mark else ln)
        if cur is self.last:
            cur.last_page = max(cur.last_page, ln.page)
        if mark:
            self.close()


def ingest_pdf(path: Path) -> IngestResult:
    """Read a PDF textbook into units (kind, number, title, statement, proof, chapter, section, page span)."""
    result = parse(extract(path))
    if not result.units:
        result.warnings.append(f'{path}: no theorem-like headings ("Theorem 3.2", "Definition 1.4", ...) found')
    return result


__all__ = ["PdfText", "extract", "ingest_pdf", "parse", "textual_refs"]
