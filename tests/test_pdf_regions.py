"""Margin notes and figures read as regions of the page, and math read as math (autoform/ingest/pdf_regions.py,
pdf_layout.py; issue 19), on PDFs built here and on the shared books' real pages.

The built pages hold body prose in Times at a 72 pt margin (see ``test_pdf_layout``), plus what a LaTeX book puts
around it: a margin note beside the statement, a drawing with its labels and caption inside a statement, a frame
and a fraction bar (which are no figures).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import SHARED  # noqa: E402
from test_pdf_layout import FILLER, PITCH, Page, _read, _unit, make_pdf  # noqa: E402

from autoform.ingest.pdf import PdfText, extract, parse  # noqa: E402
from autoform.ingest.pdf_layout import read_page  # noqa: E402
from autoform.ingest.pdf_regions import (  # noqa: E402
    Piece,
    Shape,
    estimate_widths,
    figures,
    mark_margin,
    text_block,
)

INFDESC_PDF = SHARED / "textbooks" / "infdesc" / "pdf" / "infdesc.pdf"
PROOFNET = SHARED / "textbooks" / "proofnet-informal" / "informal"
needs_infdesc = pytest.mark.skipif(not INFDESC_PDF.is_file(), reason=f"shared infdesc PDF absent ({INFDESC_PDF})")
needs_proofnet = pytest.mark.skipif(not PROOFNET.is_dir(), reason=f"ProofNet's informal PDFs absent ({PROOFNET})")

NOTE = "See Euclid, Book IX, for the ancient proof"
MARGIN_X = 72.0


def _lines(text: str) -> list[str]:
    return [x.strip() for x in text.split("\n")]


# ============================================================================================ margin notes


def _page_with_margin_notes() -> Page:
    page = Page().prose(3)
    page.line(("B", "Theorem 2.1."), ("I", " There are infinitely many prime numbers, and"), gap=2 * PITCH)
    y = page.y
    page.line(("I", "for every number n there is a prime larger than n."))
    # a note in the margin column (right of the text block, which ends at 72 + 430), on the statement's baseline
    page.pieces.append(("R", 8.0, 515.0, y, NOTE))
    page.pieces.append(("R", 8.0, 515.0, y - 9.0, "and for modern ones"))
    page.prose(4, first_gap=2 * PITCH)
    return page


def test_margin_note_does_not_run_into_the_statement(tmp_path: Path) -> None:
    units, text_only, _ = _read(tmp_path, [_page_with_margin_notes()])
    stmt = _unit(units, "theorem", "2.1").statement
    assert "for every number n there is a prime larger than n." in stmt
    assert "Euclid" not in stmt and "modern" not in stmt
    assert "Euclid" in _unit(text_only, "theorem", "2.1").statement  # the text layer alone runs the note in


def test_margin_pieces_on_a_body_line_are_cut_from_it() -> None:
    """A note that the text layer runs into a body line (one baseline, one line of text) is cut from that line."""
    from autoform.ingest.pdf_layout import _line_boxes

    pieces = [Piece(FILLER + "\n", "Times-Roman", 10.0, 72.0, 700.0 - 12 * k) for k in range(4)]
    pieces += [
        Piece("for every number n there is a prime larger than n.", "Times-Italic", 10.0, 72.0, 652.0),
        Piece(" " + NOTE + "\n", "Times-Roman", 8.0, 515.0, 652.0),
        Piece(FILLER, "Times-Roman", 10.0, 72.0, 640.0),
    ]
    boxes = _line_boxes(pieces)
    assert [b.region for b in boxes] == [""] * 6
    assert boxes[4].kept == "for every number n there is a prime larger than n."
    assert boxes[4].italic == 1.0 and all(b.kept is None for b in boxes[:4] + boxes[5:])


def _piece_lines(rows: list[list[tuple[float, float, str]]]) -> list[list[Piece]]:
    lines = [[Piece(t, "Times-Roman", 10.0, x, y) for x, y, t in row] for row in rows]
    for line in lines:
        for p in line:
            p.width = 0.5 * 10.0 * len(p.text)
    return lines


def test_a_second_column_is_not_a_margin() -> None:
    body = "words of the left column set in one line of prose here"  # 55 characters: 275 pt
    right = "and words of the right column, a second column of prose"
    lines = _piece_lines([[(50.0, 700.0 - 12 * k, body), (340.0, 700.0 - 12 * k, right)] for k in range(12)])
    block = text_block(lines)
    assert block is not None and block.left == 50.0
    mark_margin(lines, block)
    assert not any(p.region for line in lines for p in line)


def test_text_block_needs_prose_that_shows_it() -> None:
    short = _piece_lines([[(72.0, 700.0 - 12 * k, "x = y + 1")] for k in range(8)])
    assert text_block(short) is None  # displays are no prose
    lines = [[Piece("a line of prose with several words", "Times-Roman", 10.0, 72.0, 700.0)]]
    estimate_widths(lines)
    assert lines[0][0].width == pytest.approx(0.5 * 10.0 * 34)  # nothing learnt on the page: half an em a letter


# ============================================================================================ figures

#: axes and a parabola (curves: a drawing), painted in the region 150..350 x 520..630
PARABOLA = "0.5 w 150 560 m 350 560 l S 250 530 m 250 630 l S 160 620 m 200 500 300 500 340 620 c S"


def _page_with_a_figure() -> Page:
    page = Page().prose(3)
    page.line(("B", "Theorem 4.2."), ("I", " Every parabola drawn below has a lowest point, and"), gap=2 * PITCH)
    page.line(("I", "its axis of symmetry passes through that point, so that"))
    # the figure's labels, then its caption below it
    page.pieces += [("R", 8.0, 354.0, 557.0, "x"), ("R", 8.0, 253.0, 633.0, "y"), ("R", 8.0, 238.0, 550.0, "O")]
    page.pieces.append(("R", 10.0, 170.0, 505.0, "Figure 1: A parabola and its axis of symmetry."))
    page.y = 505.0
    page.line(("I", "the curve meets its axis of symmetry exactly once."), gap=3 * PITCH)
    page.prose(3, first_gap=2 * PITCH)
    return page


def test_a_figure_inside_a_statement_is_left_out_and_does_not_cut_it(tmp_path: Path) -> None:
    path = tmp_path / "f.pdf"
    path.write_bytes(make_pdf([_page_with_a_figure().pieces], {0: PARABOLA}))
    doc = extract(path)
    result = parse(doc)
    stmt = _unit(result.units, "theorem", "4.2").statement
    assert "its axis of symmetry passes through that point, so that" in stmt
    assert "the curve meets its axis of symmetry exactly once." in stmt  # the statement goes on below the figure
    assert "Figure 1" not in stmt and not {"x", "y", "O"} & set(_lines(stmt))
    assert any("theorem 4.2: a figure inside the statement" in w for w in result.warnings)
    # read as text only, the labels run in and the caption cuts the statement
    text_only = _unit(parse(PdfText(doc.path, doc.pages)).units, "theorem", "4.2").statement
    assert "y" in _lines(text_only) and "exactly once" not in text_only


def test_frames_rules_and_small_drawings_are_no_figures(tmp_path: Path) -> None:
    page = Page().prose(3)
    page.line(("B", "Definition 3.1."), ("R", " A number is even when it is twice an integer, and"), gap=2 * PITCH)
    page.line(("R", "1"), x=200.0)
    page.line(("R", "2 is no integer, as one half of it is not whole."))
    page.prose(3, first_gap=2 * PITCH)
    frame = "70 640 440 44 re S 199 646 8 0.4 re f 300 650 m 302 655 304 650 306 655 c S"
    path = tmp_path / "d.pdf"
    path.write_bytes(make_pdf([page.pieces], {0: frame}))
    result = parse(extract(path))
    stmt = _unit(result.units, "definition", "3.1").statement
    assert "1" in _lines(stmt) and "2 is no integer" in stmt
    assert not any("figure" in w for w in result.warnings)


def test_figure_rules() -> None:
    prose = [[Piece(FILLER, "Times-Roman", 10.0, 72.0, 700.0 - 12 * k)] for k in range(3)]
    drawn = Shape(150, 520, 350, 630, True)
    assert figures([drawn], prose) == [drawn]
    assert figures([Shape(150, 520, 350, 630, False)], prose) == []  # axis-parallel rules: a table, a frame
    assert figures([Shape(60, 660, 520, 720, True)], prose) == []  # holds prose: a rounded frame
    assert figures([Shape(150, 520, 160, 525, True)], prose) == []  # a small symbol drawn inline
    # touching parts make one figure
    assert figures([Shape(150, 520, 250, 560, True), Shape(251, 540, 350, 630, False)], prose) == [
        Shape(150, 520, 350, 630, True)
    ]


# ============================================================================================ math


def test_a_small_fraction_in_the_line_reads_as_a_fraction(tmp_path: Path) -> None:
    page = Page().prose(3)
    page.line(("B", "Lemma 6.1."), ("R", " If x + "), gap=2 * PITCH)
    y, x = page.y, MARGIN_X + 5.0 * len("Lemma 6.1. If x + ")
    # \frac{a+b}{2} in the line: the numerator raised over the lowered denominator, both small; then x^{2}
    page.pieces += [("R", 7.0, x, y + 3.9, "a+b"), ("R", 7.0, x + 2.0, y - 3.4, "2")]
    page.pieces += [("R", 10.0, x + 12.0, y, " = 0 then x"), ("R", 7.0, x + 67.0, y + 3.6, "2")]
    page.pieces.append(("R", 10.0, x + 71.0, y, " is small."))
    page.prose(3, first_gap=2 * PITCH)
    units, text_only, _ = _read(tmp_path, [page])
    stmt = _unit(units, "lemma", "6.1").statement
    assert "If x + (a+b)/2 = 0 then x" in stmt and "^{2} is small." in stmt  # a fraction; a superscript after x
    assert "a+b2" in _unit(text_only, "lemma", "6.1").statement.replace(" ", "")  # glued: a+b over 2 reads a+b2


# ============================================================================================ real pages


def _real_pages(path: Path, numbers: list[int]) -> PdfText:
    """Only the given pages (1-based) of a book, read with their layout."""
    reader = PdfReader(str(path))
    read = [read_page(reader.pages[n - 1]) for n in numbers]
    return PdfText(str(path), [t for t, _ in read], layout=[b for _, b in read])


@needs_infdesc
def test_infdesc_figures_are_left_out_of_statements() -> None:
    result = parse(_real_pages(INFDESC_PDF, [20, 105, 106, 134, 135]))
    number_line = _unit(result.units, "definition", "0.5").statement
    assert "0 1 2 3 4 5" not in number_line  # the number line's labels
    assert "In more familiar terms, they are the non-negative whole numbers." in number_line  # after the figure
    interval = _unit(result.units, "example", "2.1.12").statement
    assert "−2 5" not in interval and "The hollow circles" in interval
    items = _lines(_unit(result.units, "exercise", "2.1.13").statement)
    assert [x for x in items if re.fullmatch(r"\([a-d]\)", x)] == ["(a)", "(b)", "(c)", "(d)"]  # labels of items
    assert "−2 5" not in items  # the illustrations' labels
    graph = _unit(result.units, "example", "3.1.7").statement
    assert "Graph of the function" not in graph and "−7 −6" not in graph
    flagged = [w for w in result.warnings if "a figure inside the statement" in w]
    assert any("definition 0.5" in w for w in flagged) and any("example 2.1.12" in w for w in flagged)


@needs_infdesc
def test_infdesc_math_reads_as_math() -> None:
    result = parse(_real_pages(INFDESC_PDF, [204]))
    stmt = _unit(result.units, "example", "5.1.9").statement
    assert "f : [0, 1] → ℝ" in stmt  # blackboard R double-struck, the arrow kept
    assert "x^{2} + y^{2} = 1" in stmt  # superscripts kept apart from their base
    assert "{(x, y) ∈ ℝ × ℝ" in stmt


@needs_infdesc
def test_infdesc_has_no_margin_notes_and_loses_no_body_text() -> None:
    reader = PdfReader(str(INFDESC_PDF))
    for n in (20, 105, 135, 184, 204, 393, 541):
        _, boxes = read_page(reader.pages[n - 1])
        cut = [b for b in boxes if b.region == "margin" or b.kept is not None]
        assert all(b.letters == 0 or b.size > 20 for b in cut), (n, cut)  # at most the rotated "preview" mark


@needs_proofnet
@pytest.mark.parametrize(("book", "page"), [("Munkres", 4), ("Munkres", 17), ("Dummit-Foote", 23), ("Shakarchi", 4)])
def test_displays_that_overflow_the_block_are_not_margin_notes(book: str, page: int) -> None:
    """Math wider than the text block (an overfull display) runs on past its right edge with no gap: not a note."""
    text, boxes = read_page(PdfReader(str(PROOFNET / f"{book}.pdf")).pages[page - 1])
    wide = [x for x, b in zip(text.split("\n"), boxes, strict=True) if b.region or b.kept is not None]
    assert not wide


@needs_proofnet
@pytest.mark.parametrize(
    ("book", "numbers"),
    [
        ("Shakarchi", ["2.2", "3.3", "3.4", "3.9"]),
        ("Cambridge-Tripos", ["2022.IA.4-I-1E-a", "2022.IA.4-I-2D-a", "2022.IB.3-II-13G-a-i"]),
        ("Axler", ["1.2", "6.3"]),
        ("Rudin", ["3.3"]),
    ],
)
def test_proofnet_bold_headings_before_math(book: str, numbers: list[str]) -> None:
    """A bold "Exercise 3.3" before a displayed integral outweighs the line's few upright words; it is told from
    the page's body font, so the heading is found."""
    units = parse(extract(PROOFNET / f"{book}.pdf")).units
    got = {u.number: u for u in units if u.kind == "exercise"}
    for n in numbers:
        assert n in got, (book, n, sorted(got))
        assert got[n].statement.split()[0] in ("Show", "Prove", "Let", "If"), got[n].statement[:60]


@needs_proofnet
def test_proofnet_math_kept_apart_or_flagged() -> None:
    result = parse(extract(PROOFNET / "Axler.pdf"))
    ex63 = _unit(result.units, "exercise", "6.3").statement
    assert "a_{1},...,a_{n}" in re.sub(r"\s+", "", ex63) and "b_{1},...,b_{n}" in re.sub(r"\s+", "", ex63)
    flagged = {m.group(1) for w in result.warnings if (m := re.search(r"exercise (\S+): math built up", w))}
    assert {"1.2", "6.3"} <= flagged  # a fraction and sums with limits: spread over lines, so flagged
    assert "3.1" not in flagged  # a statement with no built-up math is not


@needs_proofnet
def test_proofnet_fractions_in_the_line() -> None:
    units = parse(extract(PROOFNET / "Rudin.pdf")).units
    assert "C_{0} + C1/2 + ··· + (Cn−1)/n + Cn/(n+1) = 0" in _unit(units, "exercise", "5.4").statement
    assert "g(x) = (f (x))/x" in _unit(units, "exercise", "5.6").statement
    assert "⋂^{∞} _{1} G_{n}" in _unit(units, "exercise", "3.22").statement  # limits of a big operator: no fraction
