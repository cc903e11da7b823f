"""PDF ingest: theorem-like units, proofs, chapters and sections from the text layer of a PDF (pypdf).

A PDF has no structure to parse, only lines of text per page. The reader works in passes:

1. extraction (:func:`extract`): the text of every page, the page labels and the outline (bookmarks); a
   corrupt, encrypted or image-only PDF is an :class:`IngestError` naming the file;
2. clean-up: ligatures and the ``⁄=`` overlay of ``≠`` repaired, icon glyphs (control and private-use
   characters) dropped, running headers and footers (lines carrying the page number, or repeated at the top or
   bottom of many pages) removed;
3. structure: chapters and sections from the outline when it has numbered entries, else from heading lines
   ("Chapter 3", "Section 1.2", "1.2 Title");
4. headings: "Theorem 3.2 (Name)." on its own line or starting a paragraph, after an optional icon glyph.
   Candidates are kept when their numbers increase within the chapter for their kind (a weighted longest
   increasing run), which drops references that happen to start a line ("Lemma 7.3.21. Now ...");
5. segmentation: a unit's statement runs to "Proof", an end mark (□ ∎ ■ QED for proofs; ◁ ♦ for examples),
   the next heading or a chapter/section; a proof runs to its end mark. "Proof of Theorem 3.2" attaches to
   that unit. Textual references ("by Lemma 3.1") become ``text_refs``.

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

from autoform.ingest.latex import IngestError
from autoform.ingest.model import IngestResult, RawUnit

#: printed heading words -> unit kinds (the same names as the LaTeX reader's table, plus plurals)
PRINTED_KINDS: dict[str, str] = {
    "theorem": "theorem", "lemma": "lemma", "proposition": "proposition", "corollary": "corollary",
    "definition": "definition", "example": "example", "exercise": "exercise", "problem": "exercise",
    "axiom": "axiom", "axioms": "axiom", "remark": "remark", "note": "remark", "claim": "claim",
    "fact": "proposition", "conjecture": "claim", "observation": "remark", "notation": "definition",
}
#: numbered environments that are not units but end the unit before them
BOUNDARY_WORDS = (
    "Construction", "Strategy", "Vocabulary", "Discussion", "Assumption", "Algorithm", "Question", "Figure",
    "Table", "Hint", "Convention", "Summary", "Solution", "Answer",
)

PROOF_END_MARKS = ("□", "∎", "■", "▪", "◻", "◼", "☐", "Q.E.D.", "QED", "q.e.d.")
UNIT_END_MARKS = ("◁", "♦", "◇", "♢", "⊲", "▲", "△", "◀")

_NUM = r"(?:\d+|[A-Z])(?:\.(?:\d+|[A-Z]))*"
_NUM_RE = re.compile(_NUM)


def _word_alternation(words: list[str]) -> str:
    forms: list[str] = []
    for w in sorted(words, key=len, reverse=True):
        forms += [w.capitalize(), w.upper()]
    return "|".join(re.escape(f) for f in forms)


_KIND_WORDS = _word_alternation(list(PRINTED_KINDS))
_ICON = r"(?:(?P<icon>[^\w\s(\[{]|[a-zO])\s+)?"
#: "Theorem 3.2", "Theorem 3.2 (Name)", "! Definition 1.1.4." alone on a line
_OWN_LINE_RE = re.compile(
    rf"^{_ICON}(?P<word>{_KIND_WORDS})\s+(?P<num>{_NUM})\.?(?:\s*\((?P<title>.*)\))?\s*[.:]?$"
)
#: the same with an unclosed title, completed from the next line(s)
_OPEN_TITLE_RE = re.compile(rf"^{_ICON}(?P<word>{_KIND_WORDS})\s+(?P<num>{_NUM})\.?\s*\((?P<title>[^)]*)$")
#: "Theorem 3.2 (Name). Let ..." starting a paragraph (amsthm's run-in heading)
_INLINE_RE = re.compile(
    rf"^(?:(?P<icon>[^\w\s(\[{{]|[a-zO])\s+)?(?P<word>{_KIND_WORDS})\s+(?P<num>{_NUM})"
    r"(?:\s*\((?P<title>[^()]*(?:\([^()]*\)[^()]*)*)\))?\s*[.:]\s+(?P<rest>\S.*)$"
)
_BOUNDARY_RE = re.compile(
    rf"^(?:[^\w\s(\[{{]|[a-zO])?\s*(?:{_word_alternation(list(BOUNDARY_WORDS))})s?\s+{_NUM}"
    r"(?:\s*\(.*\))?\s*[.:]?(?:\s|$)"
)
_PROOF_RE = re.compile(
    r"^(?:[^\w\s(\[{]\s+)?(?P<word>Proof|PROOF|Idea of proof|Sketch of proof|Proof sketch)"
    r"(?:\s+of\s+(?P<of>[^.:]{1,80}?)|\s*\((?P<note>[^()]{0,60})\))?\s*(?:(?P<sep>[.:])\s*(?P<rest>.*))?$"
)
_OF_UNIT_RE = re.compile(rf"^(?P<word>{_KIND_WORDS})\s+(?P<num>{_NUM})\b")

_CHAPTER_RE = re.compile(r"^(?P<word>Chapter|CHAPTER|Appendix|APPENDIX)\s+(?P<num>\d+|[A-Z]|[IVXLC]+)\b\.?\s*(?P<title>.*)$")
_SECTION_RE = re.compile(
    r"^(?:(?:Section|SECTION|§)\s*)?(?P<num>(?:\d+|[A-Z])\.(?:\d+|[A-Z])(?:\.\d+)?)\.?\s+(?P<title>[A-Z].*)$"
)
_SECTION_WORD_RE = re.compile(r"^(?:Section|SECTION|§)\s*(?P<num>(?:\d+|[A-Z])(?:\.(?:\d+|[A-Z]))*)\.?\s*(?P<title>.*)$")
#: an outline entry: "3 Title", "Chapter 3 Title", "3.2 Title", "A.1 Title"
_OUTLINE_RE = re.compile(
    r"^(?:(?:Chapter|Section|Appendix|CHAPTER|SECTION|APPENDIX)\s+)?(?P<num>(?:\d+|[A-Z])(?:\.(?:\d+|[A-Z]))*)"
    r"\.?\s+(?P<title>\S.*)$"
)

_TEXT_REF_RE = re.compile(
    rf"\b(?P<word>{_KIND_WORDS})s?(?:~|\s)+(?P<nums>{_NUM}(?:\s*(?:,|and|or|&)\s*{_NUM})*)"
)

_LIGATURES = {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st",
              "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u00ad": "", "\u2010": "-", "\u2011": "-"}
_LIG_RE = re.compile("|".join(map(re.escape, _LIGATURES)))
_OVERLAY_RE = re.compile(r"⁄\s?([=∈⊆⊂≡∼|])")
_OVERLAY = {"=": "≠", "∈": "∉", "⊆": "⊈", "⊂": "⊄", "≡": "≢", "∼": "≁", "|": "∤"}
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ue000-\uf8ff]")
_SENTENCE_END = tuple(".?!:;)]") + PROOF_END_MARKS + UNIT_END_MARKS

#: statements longer than this many lines without an end are cut (prose after an unboxed statement)
MAX_STATEMENT_LINES = 60


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


@dataclass
class _Line:
    page: int  # 0-based
    text: str  # normalized
    raw: str  # as extracted (control characters removed)
    top: bool = False  # among the first lines of its page


@dataclass
class _Heading:
    idx: int  # line index
    kind: str
    number: str
    title: str
    rest: str  # statement text on the heading line (run-in headings)
    weight: int
    end_idx: int  # last line index the heading occupies (a title may wrap)


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


def extract(path: Path) -> PdfText:
    """The text layer of a PDF, page by page. Raises :class:`IngestError` for a PDF that cannot be read."""
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    warnings: list[str] = []
    with _pypdf_warnings(warnings, path):
        try:
            reader = PdfReader(str(path), strict=False)
        except Exception as e:  # pypdf raises many types (PdfReadError, ValueError, KeyError...) on bad files
            raise IngestError(f"{path}: not a readable PDF ({type(e).__name__}: {e})") from e
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")  # permissions-only encryption opens with the empty password
            except DependencyError as e:
                raise IngestError(f"{path}: the PDF is encrypted ({e}); decrypt it first, e.g. "
                                  "`qpdf --decrypt in.pdf out.pdf`") from e
            except Exception as e:
                raise IngestError(f"{path}: the PDF is encrypted and cannot be opened ({e})") from e
            if not opened:
                raise IngestError(f"{path}: the PDF is encrypted (password-protected); decrypt it first, e.g. "
                                  "`qpdf --password=... --decrypt in.pdf out.pdf`, and ingest the result")
        try:
            n = len(reader.pages)
        except FileNotDecryptedError as e:
            raise IngestError(f"{path}: the PDF is encrypted (password-protected); decrypt it first") from e
        except Exception as e:
            raise IngestError(f"{path}: not a readable PDF: its page tree is broken ({type(e).__name__}: {e})") from e
        if n == 0:
            raise IngestError(f"{path}: the PDF has no pages")
        pages: list[str] = []
        failed: list[int] = []
        for i in range(n):
            try:
                pages.append(reader.pages[i].extract_text() or "")
            except Exception as e:
                failed.append(i + 1)
                pages.append("")
                if len(failed) <= 5:
                    warnings.append(f"{path}: page {i + 1}: text extraction failed ({type(e).__name__}: {e})")
        if failed and len(failed) == n:
            raise IngestError(f"{path}: not a readable PDF: text extraction failed on all {n} pages")
        if not any(re.search(r"\w", p) for p in pages):
            raise IngestError(f"{path}: no text layer on any of its {n} pages (a scanned or image-only PDF?); "
                              "run OCR on it first (e.g. `ocrmypdf`) or ingest the LaTeX source")
        empty = [i + 1 for i, p in enumerate(pages) if not p.strip() and i + 1 not in failed]
        if len(empty) > max(2, n // 4):
            warnings.append(f"{path}: {len(empty)} of {n} pages have no text layer (scanned pages?); "
                            "their content is missing")
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
    return PdfText(str(path), pages, labels, outline, title, warnings)


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


_PAGE_NUM_EDGE_RE = re.compile(r"^(?P<a>[0-9ivxlcdm]+)\b|\b(?P<b>[0-9ivxlcdm]+)$", re.I)
_EDGE = 3  # lines at the top and bottom of a page examined as header/footer candidates


def _shape(line: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", " ", line.strip().lower()))


def _strip_running(pages: list[list[str]], labels: list[str]) -> list[list[str]]:
    """Remove running headers and footers: edge lines carrying the page's number or label (with text that recurs
    on other pages), and edge lines that recur (digits aside) on a large share of the pages."""
    n = len(pages)
    edge_shapes: Counter[str] = Counter()
    for lines in pages:
        seen = {_shape(x) for x in lines[:_EDGE] + lines[-_EDGE:]}
        edge_shapes.update(seen)
    frequent = {s for s, c in edge_shapes.items() if n >= 3 and c >= max(3, 0.3 * n)}
    # the printed page number as an offset from the page index, learnt from edge lines
    offsets: Counter[int] = Counter()
    for i, lines in enumerate(pages):
        found = set()
        for x in lines[:2] + lines[-2:]:
            for tok in (x.split()[:1] + x.split()[-1:]) if x.split() else []:
                if tok.isdigit():
                    found.add(int(tok) - i)
        offsets.update(found)
    offset = offsets.most_common(1)[0][0] if offsets and offsets.most_common(1)[0][1] >= max(2, n // 5) else None

    def page_number_tokens(i: int) -> set[str]:
        toks = set()
        if i < len(labels) and labels[i]:
            toks.add(labels[i].lower())
        if offset is not None:
            toks.add(str(i + offset))
        return toks

    # text of header lines once the page number is removed, to confirm a number-carrying header
    stripped_shapes: Counter[str] = Counter()
    for i, lines in enumerate(pages):
        toks = page_number_tokens(i)
        for x in lines[:_EDGE] + lines[-_EDGE:]:
            rest = _without_number(x, toks)
            if rest is not None:
                stripped_shapes[_shape(rest)] += 1

    out: list[list[str]] = []
    for i, lines in enumerate(pages):
        toks = page_number_tokens(i)
        keep = list(lines)
        for pos in list(range(min(_EDGE, len(lines)))) + list(range(max(0, len(lines) - _EDGE), len(lines))):
            x = lines[pos]
            rest = _without_number(x, toks)
            drop = _shape(x) in frequent
            if rest is not None:
                drop = drop or not rest.strip() or (stripped_shapes[_shape(rest)] >= 2 and len(rest) < 100)
            if drop:
                keep[pos] = None  # type: ignore[call-overload]
        out.append([x for x in keep if x is not None])
    return out


def _without_number(line: str, toks: set[str]) -> str | None:
    """The line without the page number at its start or end, or None when it carries none."""
    words = line.split()
    if not words:
        return None
    if words[0].lower() in toks:
        return " ".join(words[1:])
    if words[-1].lower() in toks:
        return " ".join(words[:-1])
    return None


def _lines(doc: PdfText) -> list[_Line]:
    raw_pages = [[_clean_raw(x).strip() for x in p.split("\n")] for p in doc.pages]
    raw_pages = [[x for x in p if x] for p in raw_pages]
    kept = _strip_running(raw_pages, doc.labels)
    out: list[_Line] = []
    for i, lines in enumerate(kept):
        for k, x in enumerate(lines):
            out.append(_Line(i, re.sub(r"\s+", " ", _normalize(x)).strip(), x, top=k < 4))
    return out


# ------------------------------------------------------------------------------------------ structure


def _sort_key(number: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in number.split("."))


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
    out: list[_Struct] = []
    chapter_no = ""
    last_section: tuple = ()
    for k, ln in enumerate(lines):
        t = ln.text
        m = _CHAPTER_RE.match(t)
        if m and ln.top and not _looks_like_toc(t):
            title = m.group("title").strip()
            if not title and k + 1 < len(lines) and lines[k + 1].page == ln.page and len(lines[k + 1].text) < 80:
                title = lines[k + 1].text
            out.append(_Struct(k, "chapter", m.group("num"), title))
            chapter_no, last_section = m.group("num"), ()
            continue
        m = _SECTION_WORD_RE.match(t) or _SECTION_RE.match(t)
        if not m or _looks_like_toc(t):
            continue
        number, title = m.group("num"), m.group("title").strip()
        if "." not in number:
            continue
        if not title and k + 1 < len(lines) and len(lines[k + 1].text) < 80:
            title = lines[k + 1].text
        if not _title_like(title):
            continue
        if chapter_no and number.split(".")[0] != chapter_no:
            continue
        key = _sort_key(number)
        if last_section and key <= last_section:
            continue
        last_section = key
        out.append(_Struct(k, "section", number, title))
    return out


def _looks_like_toc(t: str) -> bool:
    return bool(re.search(r"(\.\s?){3,}|\s\d+$", t))


def _title_like(t: str) -> bool:
    return (0 < len(t) <= 80 and t[:1].isupper() and not t.endswith((".", ",", ";"))
            and re.fullmatch(r"[\w\s,:;'’‘\-–—()&/]+", t) is not None)


# ------------------------------------------------------------------------------------------ headings


def _heading_candidates(lines: list[_Line]) -> tuple[list[_Heading], set[int]]:
    cands: list[_Heading] = []
    boundaries: set[int] = set()
    for k, ln in enumerate(lines):
        t = ln.text
        if _BOUNDARY_RE.match(t):
            boundaries.add(k)
            continue
        m = _OWN_LINE_RE.match(t)
        end = k
        if m is None and (mo := _OPEN_TITLE_RE.match(t)):
            joined = t
            for j in range(k + 1, min(k + 3, len(lines))):
                joined += " " + lines[j].text
                m = _OWN_LINE_RE.match(joined)
                if m:
                    end = j
                    break
                if ")" in lines[j].text:
                    break
            del mo
        if m:
            weight = 3 if m.group("icon") else 2
            cands.append(_Heading(k, PRINTED_KINDS[m.group("word").lower()], m.group("num"),
                                  (m.group("title") or "").strip(), "", weight, end))
            continue
        m = _INLINE_RE.match(t)
        if m and (k == 0 or lines[k - 1].text.endswith(_SENTENCE_END) or k - 1 in boundaries
                  or lines[k - 1].page != ln.page and lines[k - 1].text.endswith(_SENTENCE_END)):
            cands.append(_Heading(k, PRINTED_KINDS[m.group("word").lower()], m.group("num"),
                                  (m.group("title") or "").strip(), m.group("rest"), 1, k))
    return cands, boundaries


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
        tree: list[tuple[int, int]] = [(0, -1)] * (size + 1)  # Fenwick tree of (best weight, index) prefix max
        best: list[tuple[int, int]] = []
        for i, h in enumerate(group):
            r = rank[_sort_key(h.number)]
            q, j = (0, -1), r  # best over ranks < r
            while j > 0:
                q = max(q, tree[j])
                j -= j & -j
            cur = (q[0] + h.weight, i)
            best.append((cur[0], q[1]))
            j = r + 1
            while j <= size:
                tree[j] = max(tree[j], cur)
                j += j & -j
        i = max(range(len(group)), key=lambda x: best[x][0])
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
    proof_page: int = -1


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


def _page_span(a: int, b: int) -> str:
    return f"page {a + 1}" if a == b else f"pages {a + 1}-{b + 1}"


def parse(doc: PdfText) -> IngestResult:
    """Units from extracted page texts (no I/O; :func:`ingest_pdf` = :func:`extract` + this)."""
    warnings = list(doc.warnings)
    lines = _lines(doc)
    structs = _structure_from_outline(doc, lines) or _structure_from_text(lines)
    chapters = sorted({s.idx for s in structs if s.level == "chapter"})
    cands, boundaries = _heading_candidates(lines)
    headings = {h.idx: h for h in _keep_increasing(cands, chapters)}
    dropped = len(cands) - len(headings)
    struct_at: dict[int, list[_Struct]] = {}
    for s in structs:
        struct_at.setdefault(s.idx, []).append(s)

    units: list[RawUnit] = []
    built: dict[int, _Building] = {}  # id(unit) -> its lines
    by_number: dict[tuple[str, str], RawUnit] = {}
    chapter = section = ""
    cur: _Building | None = None
    mode = ""  # 'statement' | 'proof' | ''
    last: _Building | None = None  # the latest unit, for a proof that follows a closed statement

    def close() -> None:
        nonlocal cur, mode
        cur, mode = None, ""

    skip_until = -1
    for k, ln in enumerate(lines):
        if k <= skip_until:
            continue
        for s in struct_at.get(k, []):
            close()
            last = None
            if s.level == "chapter":
                chapter, section = s.title, ""
            else:
                section = s.title
        t = ln.text
        if k in headings:
            h = headings[k]
            unit = RawUnit(kind=h.kind, number=h.number, title=h.title, statement="", chapter=chapter,
                           section=section)
            b = _Building(unit, ln.page, lines[h.end_idx].page)
            built[id(unit)] = b
            units.append(unit)
            by_number.setdefault((h.kind, h.number), unit)
            cur, mode, last = b, "statement", b
            skip_until = h.end_idx
            if h.rest:
                rest_line = _Line(ln.page, h.rest, h.rest)
                if (mark := _ends_with(h.rest, UNIT_END_MARKS + PROOF_END_MARKS)) is not None:
                    b.stmt.append(_Line(ln.page, _strip_mark(h.rest, mark), _strip_mark(h.rest, mark)))
                    close()
                else:
                    b.stmt.append(rest_line)
            continue
        if k in boundaries:
            close()
            last = None
            continue
        pm = _PROOF_RE.match(t)
        if pm and (pm.group("sep") or not pm.group("rest")):
            target: _Building | None = None
            of = pm.group("of")
            om = _OF_UNIT_RE.match(of) if of else None
            if om:
                u = by_number.get((PRINTED_KINDS[om.group("word").lower()], om.group("num")))
                target = built.get(id(u)) if u is not None else None
            if target is None:
                target = cur if cur is not None else last
            if target is None:
                warnings.append(f"{doc.path}: page {ln.page + 1}: a proof with no statement before it; ignored")
                close()
                continue
            cur, mode = target, "proof"
            if target.proof:
                target.proof.append(_Line(ln.page, "", ""))
            if target.proof_page < 0:
                target.proof_page = ln.page
            rest = (pm.group("rest") or "").strip()
            if rest:
                mark = _ends_with(rest, PROOF_END_MARKS)
                target.proof.append(_Line(ln.page, _strip_mark(rest, mark) if mark else rest, rest))
                if target is last:
                    target.last_page = max(target.last_page, ln.page)
                if mark:
                    close()
            continue
        if cur is None:
            continue
        if mode == "statement":
            mark = _ends_with(t, UNIT_END_MARKS + PROOF_END_MARKS)
            if mark:
                cur.stmt.append(_Line(ln.page, _strip_mark(t, mark), ln.raw))
                cur.last_page = max(cur.last_page, ln.page)
                close()
            elif len(cur.stmt) >= MAX_STATEMENT_LINES:
                close()
            else:
                cur.stmt.append(ln)
                cur.last_page = max(cur.last_page, ln.page)
        elif mode == "proof":
            mark = _ends_with(t, PROOF_END_MARKS)
            cur.proof.append(_Line(ln.page, _strip_mark(t, mark), ln.raw) if mark else ln)
            if cur is last:
                cur.last_page = max(cur.last_page, ln.page)
            if mark:
                close()

    for u in units:
        b = built[id(u)]
        raw = "\n".join(x.raw for x in b.stmt).strip()
        u.statement_raw = raw
        u.statement = _dehyphenate([x.text for x in b.stmt]).strip()
        u.proof_raw = "\n".join(x.raw for x in b.proof).strip()
        u.proof = _dehyphenate([x.text for x in b.proof]).strip()
        u.source = _page_span(b.first_page, b.last_page)
        refs = textual_refs(u.statement + "\n" + u.proof)
        u.text_refs = [r for r in refs if r != (u.kind, u.number)]
        if not u.statement:
            warnings.append(f"{doc.path}: {u.source}: {u.kind} {u.number} has no statement text")
    if dropped:
        warnings.append(f"{doc.path}: {dropped} heading-like lines out of numbering order were read as text "
                        "(references at the start of a line, or a misread heading)")
    return IngestResult(title=doc.title, source_kind="pdf", root=doc.path, units=units, warnings=warnings)


def ingest_pdf(path: Path) -> IngestResult:
    """Read a PDF textbook into units (kind, number, title, statement, proof, chapter, section, page span)."""
    result = parse(extract(path))
    if not result.units:
        result.warnings.append(f"{path}: no theorem-like headings (\"Theorem 3.2\", \"Definition 1.4\", ...) found")
    return result


__all__ = ["PdfText", "extract", "ingest_pdf", "parse", "textual_refs"]
