"""Characters with their fonts and positions, read from a PDF page through pypdf's visitor functions.

pypdf's ``extract_text(visitor_text=...)`` calls the visitor with every piece of text it writes, with the current
transformation matrices and font; the pieces concatenate to exactly the text it returns. So each character of a
page's text is known with its font, size and position, and each line of that text (split on newlines) gets a
:class:`LineBox`: where it starts (x of its first visible character, baseline y), its main font size, the share
of its letters set in an italic text font (amsthm's plain style sets statements in italics; math fonts such as
CMMI are not counted), and a math reading in which raised and lowered pieces are kept apart (``x^{2}``,
``X_{1}``) instead of glued to their base (``x2``). pypdf is already a dependency and its visitor gives all of this
in the one pass the text extraction makes anyway; pdfminer.six (under pdfplumber) would add a dependency and read
the 626 pages of infdesc several times slower. The same pass sees the page's drawing operators, so a line set in the
margin column or a figure's labels and caption is marked with its region (:mod:`autoform.ingest.pdf_regions`), and
blackboard capitals read as ℝ, ℕ, ℤ.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass

from pypdf import PageObject

from autoform.ingest.pdf_regions import (
    Graphics,
    Piece,
    estimate_widths,
    figures,
    image_names,
    mark_figures,
    mark_margin,
    text_block,
)

#: text fonts set in italics (Times-Italic, NimbusRomNo9L-ReguItal, CharterBT-Italic, CMTI10, LMRoman10-Italic)
_ITALIC_RE = re.compile(r"ital|oblique|slant|-it\b|cmti\d|cmsl\d|lmromanslant", re.I)
#: math and symbol fonts: their letters are variables, not prose (CMMI, CMSY, CMEX, MSAM/MSBM, Symbol, ...)
_MATH_RE = re.compile(
    r"^(?:cm(?:mi|sy|ex|bsy|mib)\d|msa[mb]\d|msbm\d|eu[fmrs]m|rsfs|stmary|wasy|symbol|standardsym)", re.I
)
#: symbol fonts whose letters are glyphs (end marks, icons), not letters
_GLYPH_RE = re.compile(r"^(?:msa[mb]\d|.*dingbat|wasy|.*zapf)", re.I)
#: a smaller piece is raised (superscript) or lowered (subscript) when its baseline moves by this share of the
#: line's size (TeX lowers a subscript by 0.15 em, raises a superscript by 0.36 em)
_SHIFT = 0.1


@dataclass(frozen=True)
class LineBox:
    """One line of a page's text as placed on the page (PDF units, origin bottom left)."""

    x0: float  # where the first visible character starts
    y: float  # its baseline
    size: float  # the main font size of the line (by characters)
    italic: float  # share of the line's prose letters set in an italic text font
    letters: int  # prose letters counted (text fonts, not math fonts)
    math: str  # the line with raised and lowered pieces marked: "x^{2}", "X_{1}"
    bold_start: bool = False  # the line starts with a run in a bold or italic font other than the body's
    end_glyph: bool = False  # it ends with a letter from a symbol font (an end mark with no Unicode: MSAM's "d")
    lead: str = ""  # with ``bold_start``, the text of that first run ("Exercise 1.1a" in bold)
    stacked: bool = False  # full-size pieces above or below its baseline: a fraction or limits glued into it
    region: str = ""  # the whole line is out of the body: "margin", "figure" (a figure's labels) or "caption"
    kept: str | None = None  # the line's text without its pieces in the margin (None: nothing left out)


def _base_font(font_dict: object) -> str:
    if not isinstance(font_dict, dict):
        return ""
    name = str(font_dict.get("/BaseFont", "") or "")
    return name.split("+", 1)[-1].lstrip("/")


def read_page(page: PageObject) -> tuple[str, list[LineBox]]:
    """The page's text (as ``page.extract_text()`` gives it) and a :class:`LineBox` for each of its lines."""
    pieces: list[Piece] = []
    graphics = Graphics(images=image_names(page.get("/Resources")))

    def visit(text: str, cm: list[float], tm: list[float], font_dict: object, font_size: float) -> None:
        if not text:
            return
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        scale = abs(tm[3] * cm[3]) or abs(tm[0] * cm[0]) or 1.0
        pieces.append(Piece(text, _base_font(font_dict), float(font_size) * scale, float(x), float(y)))

    text = page.extract_text(visitor_text=visit, visitor_operand_before=graphics) or ""
    if "".join(p.text for p in pieces) != text:  # never seen; the layout is then unknown rather than wrong
        return text, []
    return text, _line_boxes(pieces, graphics)


def _body_font(pieces: list[Piece]) -> str:
    """The page's body font: the text font (math fonts aside) most of its characters are set in. A heading is
    told from the body by this, not by the commonest font of its own line, where a bold "Exercise 2022.IA.4-I-2D-a"
    before two words outweighs them."""
    fonts: Counter[str] = Counter()
    for p in pieces:
        if not _MATH_RE.match(p.font):
            fonts[p.font] += len(p.text.strip())
    return fonts.most_common(1)[0][0] if fonts else ""


def _line_boxes(pieces: list[Piece], graphics: Graphics | None = None) -> list[LineBox]:
    body = _body_font(pieces)
    lines: list[list[Piece]] = [[]]
    for p in pieces:
        parts = p.text.split("\n")
        for k, part in enumerate(parts):
            if k:
                lines.append([])
            if part:
                lines[-1].append(Piece(part, p.font, p.size, p.x, p.y))
    estimate_widths(lines)
    block = text_block(lines)
    if block is not None:
        mark_margin(lines, block)
    if graphics is not None and graphics.shapes:
        mark_figures(lines, figures(graphics.shapes, lines))
    return [_region_box(line, body) for line in lines]


def _region_box(line: list[Piece], body: str) -> LineBox:
    """The box of a line, of its pieces in the body: a line wholly out of it has its region, one partly out of
    it (a margin note on a body line's baseline) the text of the rest."""
    inside = [p for p in line if not p.region]
    outside = [p for p in line if p.region and p.text.strip()]
    if not outside:
        return _box(line, body)
    if not any(p.text.strip() for p in inside):
        return dataclasses.replace(_box(line, body), region=outside[0].region)
    return dataclasses.replace(_box(inside, body), kept="".join(p.text for p in inside))


def _box(line: list[Piece], body: str = "") -> LineBox:
    visible = [p for p in line if p.text.strip()]
    if not visible:
        return LineBox(0.0, 0.0, 0.0, 0.0, 0, "")
    sizes: Counter[float] = Counter()
    italic = letters = 0
    for p in visible:
        sizes[round(p.size, 1)] += len(p.text.strip())
        if _MATH_RE.match(p.font):
            continue
        n = sum(c.isalpha() for c in p.text)
        letters += n
        italic += n if _ITALIC_RE.search(p.font) else 0
    size = sizes.most_common(1)[0][0]
    first, last = visible[0], visible[-1]
    end_glyph = (
        bool(_GLYPH_RE.match(last.font)) and last.text.strip()[-1:].isascii() and last.text.strip()[-1:].isalpha()
    )
    bold_start = bool(body) and first.font != body and not _MATH_RE.match(first.font)
    return LineBox(
        x0=round(first.x, 2),
        y=round(first.y, 2),
        size=size,
        italic=italic / letters if letters else 0.0,
        letters=letters,
        math=_math_text(line, size),
        bold_start=bold_start,
        end_glyph=end_glyph,
        lead=_lead(visible) if bold_start else "",
        stacked=_stacked(visible, size),
    )


def _stacked(visible: list[Piece], size: float) -> bool:
    """Whether full-size pieces of the line sit well off its baseline (a numerator, a denominator)."""
    base = _baseline(visible, size)
    return any(p.size >= 0.9 * size and abs(p.y - base) > 0.3 * size for p in visible)


def _lead(visible: list[Piece]) -> str:
    """The text of the line's first run in one font (icons in a symbol font before it skipped)."""
    pieces = visible[1:] if _GLYPH_RE.match(visible[0].font) and len(visible) > 1 else visible
    run = ""
    for p in pieces:
        if p.font != pieces[0].font:
            break
        run += p.text
    return re.sub(r"\s+", " ", run).strip()


#: blackboard-bold fonts (AMS's MSBM, bbold, bbm, dsfont), whose capitals the text layer gives as plain "R"
_BLACKBOARD_RE = re.compile(r"^(?:msbm\d|bbold|bbm|dsrom|.*doublestruck)", re.I)
_DOUBLE_STRUCK = {"C": "ℂ", "H": "ℍ", "N": "ℕ", "P": "ℙ", "Q": "ℚ", "R": "ℝ", "Z": "ℤ"}


def _as_math(p: Piece) -> str:
    """A piece's text as math: blackboard capitals as the double-struck letters they are (ℝ, ℕ, 𝔽, ...)."""
    if not _BLACKBOARD_RE.match(p.font):
        return p.text
    return "".join(_DOUBLE_STRUCK.get(c, chr(0x1D538 + ord(c) - ord("A"))) if "A" <= c <= "Z" else c for c in p.text)


@dataclass
class _Run:
    """Pieces side by side on the line's baseline (``mark`` ""), or raised ("^") or lowered ("_") and smaller."""

    mark: str
    text: str
    x0: float
    x1: float


def _math_text(line: list[Piece], size: float) -> str:
    """The line with pieces set smaller and off the baseline marked as superscripts or subscripts, a small fraction
    set in the line (its numerator raised over its lowered denominator) as ``a/b``, blackboard capitals
    double-struck."""
    base = _baseline(line, size)
    runs: list[_Run] = []
    for p in line:
        shift = p.y - base
        small = p.size < 0.9 * size and p.text.strip() and abs(shift) > _SHIFT * size
        mark = ("^" if shift > 0 else "_") if small else ""
        if runs and mark and runs[-1].mark == mark:
            runs[-1].text += _as_math(p)
            runs[-1].x1 = max(runs[-1].x1, p.x + p.width)
        else:
            runs.append(_Run(mark, _as_math(p), p.x, p.x + p.width))
    out: list[str] = []
    k = 0
    while k < len(runs):
        run = runs[k]
        lead = run.text[: len(run.text) - len(run.text.lstrip())]
        if k + 1 < len(runs) and _fraction(run, runs[k + 1], "".join(out)):
            out.append(f"{lead}{_operand(run.text)}/{_operand(runs[k + 1].text)}")
            k += 2
            continue
        out.append(f"{lead}{run.mark}{{{run.text.strip()}}}" if run.mark else run.text)
        k += 1
    return "".join(out)


#: big operators: a raised and a lowered run after one are its limits, not a fraction
_BIG_OPERATORS = set("∑∏⋃⋂∫∮⨁⨂∐⋁⋀")


def _fraction(num: _Run, den: _Run, before: str) -> bool:
    """A raised run over a lowered one that starts before it ends, after no base a script could belong to (an
    operator, a bracket, a space): a fraction in the line, not a superscript and a subscript."""
    attached = not before[-1:].isspace() and not num.text[:1].isspace()
    base = attached and (before[-1:].isalnum() or before[-1:] in ")]}|′'") or before.rstrip()[-1:] in _BIG_OPERATORS
    return num.mark == "^" and den.mark == "_" and den.x0 < num.x1 - 0.5 and not base


def _operand(text: str) -> str:
    """A numerator or denominator as an operand of ``/``: in parentheses unless a single term."""
    t = text.strip()
    return t if re.fullmatch(r"[\w′.]+", t) else f"({t})"


def _baseline(line: list[Piece], size: float) -> float:
    ys: Counter[float] = Counter()
    for p in line:
        if abs(p.size - size) < 0.05 * size:
            ys[round(p.y, 1)] += len(p.text)
    return ys.most_common(1)[0][0] if ys else (line[0].y if line else 0.0)


def margins(boxes: list[list[LineBox]]) -> dict[int, float]:
    """The left margin of the body text on even and odd pages (0 and 1): the commonest line start."""
    starts: dict[int, Counter[float]] = {0: Counter(), 1: Counter()}
    for i, page in enumerate(boxes):
        for b in page:
            if b.letters >= 20:
                starts[i % 2][round(b.x0, 1)] += 1
    return {parity: c.most_common(1)[0][0] for parity, c in starts.items() if c}


#: a statement set this far (PDF units) inside the body's margin is in a frame or box: its lines never start left of
#: that edge, and the first line that does is the body after it
_MAX_INSET = 2.0
_TOLERANCE = 0.05


@dataclass(frozen=True)
class Spacing:
    """The book's vertical rhythm, from consecutive lines of body text: the baseline pitch within a paragraph,
    and the gap between two paragraphs (the pitch when paragraphs are indented, not spaced)."""

    pitch: float
    paragraph: float


def spacing(boxes: list[list[LineBox]], margin: dict[int, float]) -> Spacing | None:
    """The book's :class:`Spacing`, or None when too little body text is known."""
    gaps: Counter[float] = Counter()
    for i, page in enumerate(boxes):
        m = margin.get(i % 2)
        prose = [b for b in page if b.letters >= 20 and m is not None and abs(b.x0 - m) < _MAX_INSET]
        for a, b in zip(prose, prose[1:], strict=False):
            if 0 < a.y - b.y < 4 * a.size:
                gaps[round(a.y - b.y, 1)] += 1
    if sum(gaps.values()) < 20:
        return None
    pitch = gaps.most_common(1)[0][0]
    wider = Counter({g: c for g, c in gaps.items() if 1.3 * pitch < g < 3 * pitch})
    paragraph = wider.most_common(1)[0][0] if wider and wider.most_common(1)[0][1] >= 0.05 * gaps[pitch] else pitch
    return Spacing(pitch, paragraph)


@dataclass
class StatementShape:
    """What a statement's first lines show of how it is set, and so where it ends: inside a frame (its lines a
    hair right of the body's margin; a line back at the margin is the text after it), or in italics (amsthm's
    plain style; an upright paragraph after it is the body)."""

    margins: dict[int, float]
    spacing: Spacing | None = None
    inset: float | None = None
    italic: bool | None = None

    def learn(self, box: LineBox | None, page: int) -> None:
        if box is None or box.letters == 0:
            return
        margin = self.margins.get(page % 2)
        if self.inset is None and margin is not None and -_TOLERANCE < box.x0 - margin < _MAX_INSET:
            self.inset = box.x0 - margin
        if self.italic is None and box.letters >= 8:
            self.italic = box.italic > 0.7

    def ends_before(self, box: LineBox | None, page: int, before: tuple[LineBox | None, int], sentence: bool) -> bool:
        """Whether the line with ``box`` on ``page`` is no longer the statement; ``before`` is the statement's
        last line (its box and page), ``sentence`` whether that line ends a sentence."""
        if box is None or box.letters == 0:
            return False
        margin = self.margins.get(page % 2)
        if margin is not None and self._out_of_frame(box.x0 - margin):
            return True
        prev, prev_page = before
        if (
            sentence
            and margin is not None
            and prev is not None
            and prev_page == page
            and self._spaced_apart(prev, box, margin)
        ):
            return True
        return bool(self.italic) and sentence and box.letters >= 12 and box.italic < 0.3

    def _out_of_frame(self, offset: float) -> bool:
        """A statement set inside a frame; a line back at the body's margin is past it."""
        inset = self.inset if self.inset is not None and self.inset > _TOLERANCE else None
        return inset is not None and -_MAX_INSET < offset < inset - _TOLERANCE

    def _spaced_apart(self, prev: LineBox, box: LineBox, margin: float) -> bool:
        """Prose after prose with more space between them than between two paragraphs: the environment's own
        space after the statement (a display or a quotation before is not prose)."""
        return (
            self.spacing is not None
            and abs(box.x0 - margin) < _MAX_INSET
            and abs(prev.x0 - margin) < _MAX_INSET
            and prev.y - box.y > self.spacing.paragraph + 0.25 * box.size
        )


_BUILT_UP = set("∑∏⋃⋂∫∮√⨁⨂∐") | {"lim", "max", "min", "sup", "inf"}


def built_up_math(lines: list[tuple[LineBox | None, int, str]]) -> bool:
    """Whether lines (box, page, text) hold math built up over several lines that the text layer spreads out: a
    line closer to the one before than a line of text (a fraction's numerator and denominator, limits under a sum),
    or a big operator or radical alone on a line."""
    prev: tuple[LineBox | None, int] = (None, -1)
    for box, page, text in lines:
        if text.strip() in _BUILT_UP or (box is not None and box.stacked):
            return True
        before, before_page = prev
        # a line of text is at least 1.15 sizes below the one before; pieces on one baseline are one line
        if (
            box is not None
            and before is not None
            and before_page == page
            and 0.1 * box.size < abs(before.y - box.y) < 0.9 * max(box.size, before.size)
        ):
            return True
        prev = (box, page)
    return False


__all__ = ["LineBox", "Spacing", "built_up_math", "StatementShape", "margins", "read_page", "spacing"]
