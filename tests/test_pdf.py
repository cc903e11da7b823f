"""PDF ingest (autoform/ingest/pdf.py) and the optional LaTeX restoration (agents/reader/restore.py).

The small PDFs are written by hand here (a Helvetica text layer with a ToUnicode map, so that □ ∎ ◁ ∈ ... come
out of pypdf as Unicode); pypdf adds outlines and encryption to them. ``python tests/test_pdf.py`` rewrites
the checked-in fixture tests/fixtures/pdf/sample.pdf from the same source.
"""

from __future__ import annotations

import difflib
import io
import re
import sys
import time
from collections import Counter
from pathlib import Path

import pypdf
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import SHARED, autoform  # noqa: E402
from fake_llm import FakeLLM, Reply  # noqa: E402

from agents.reader.restore import parse_reply, restore_latex, restore_messages, restore_unit  # noqa: E402
from autoform.config import LLMConfig, Settings  # noqa: E402
from autoform.ingest import IngestError, read_book, store_book  # noqa: E402
from autoform.ingest.model import KINDS, RawUnit  # noqa: E402
from autoform.ingest.pdf import PRINTED_KINDS, PdfText, extract, ingest_pdf, parse, textual_refs  # noqa: E402
from autoform.llm import LLMClient, MalformedReply  # noqa: E402
from autoform.store import Store  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "pdf"
SAMPLE_PDF = FIXTURES / "sample.pdf"
INFDESC = SHARED / "textbooks" / "infdesc"
INFDESC_PDF = INFDESC / "pdf" / "infdesc.pdf"
INFDESC_TEX = INFDESC / "book.tex"

# ============================================================================================ PDF writer
_SPECIAL = "□∎◁∈≤≥≠→∀∃ℤℕ√∑αβ–—’‘“”•ﬁ·"


def _pdf_string(line: str) -> str:
    out = []
    for ch in line:
        if ch in "()\\":
            out.append("\\" + ch)
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        elif ch in _SPECIAL:
            out.append(f"\\{128 + _SPECIAL.index(ch):03o}")
        else:
            raise ValueError(f"the test PDF writer has no glyph for {ch!r}")
    return "(" + "".join(out) + ")"


def make_pdf(pages: list[list[str]], *, image_only: bool = False) -> bytes:
    """A minimal PDF: one text line per entry (Helvetica, 14 pt leading), or pages holding only an image."""
    objs: dict[int, bytes] = {}
    font, tounicode, image, first = 3, 4, 5, 6
    kids = [first + 2 * i for i in range(len(pages))]
    objs[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objs[2] = f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(pages)} >>".encode()
    diffs = " ".join(f"/g{128 + i}" for i in range(len(_SPECIAL)))
    objs[font] = (
        f"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding << /Type /Encoding "
        f"/BaseEncoding /WinAnsiEncoding /Differences [128 {diffs}] >> /ToUnicode {tounicode} 0 R >>"
    ).encode()
    cmap = "\n".join(
        [
            "/CIDInit /ProcSet findresource begin",
            "12 dict begin",
            "begincmap",
            "/CMapName /Autoform-Test def",
            "/CMapType 2 def",
            "1 begincodespacerange",
            "<00> <FF>",
            "endcodespacerange",
            "1 beginbfrange",
            "<20> <7E> <0020>",
            "endbfrange",
            f"{len(_SPECIAL)} beginbfchar",
            *[f"<{128 + i:02X}> <{ord(ch):04X}>" for i, ch in enumerate(_SPECIAL)],
            "endbfchar",
            "endcmap",
            "CMapName currentdict /CMap defineresource pop",
            "end",
            "end",
        ]
    ).encode()
    objs[tounicode] = b"<< /Length %d >>\nstream\n" % len(cmap) + cmap + b"\nendstream"
    objs[image] = (
        b"<< /Type /XObject /Subtype /Image /Width 2 /Height 2 /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Length 4 >>\nstream\n\x00\xff\xff\x00\nendstream"
    )
    for i, lines in enumerate(pages):
        if image_only:
            content = b"q 200 0 0 200 100 400 cm /Im1 Do Q"
        else:
            body = " T* ".join(f"{_pdf_string(x)} Tj" for x in lines)
            content = f"BT /F1 11 Tf 14 TL 72 740 Td {body} ET".encode()
        objs[kids[i]] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 {font} "
            f"0 R >> /XObject << /Im1 {image} 0 R >> >> /Contents {kids[i] + 1} 0 R >>"
        ).encode()
        objs[kids[i] + 1] = b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for num in sorted(objs):
        offsets[num] = out.tell()
        out.write(f"{num} 0 obj\n".encode() + objs[num] + b"\nendobj\n")
    xref, size = out.tell(), max(objs) + 1
    out.write(f"xref\n0 {size}\n0000000000 65535 f \n".encode())
    out.write("".join(f"{offsets[n]:010d} 00000 n \n" for n in range(1, size)).encode())
    out.write(f"trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def with_pypdf(
    data: bytes, *, outline: list[tuple[str, int, int]] | None = None, user_password: str | None = None
) -> bytes:
    """Add an outline ((title, page index, depth) in order) and/or RC4 encryption with pypdf."""
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(data))
    parents: dict[int, object] = {}
    for title, page, depth in outline or []:
        parents[depth] = writer.add_outline_item(title=title, page_number=page, parent=parents.get(depth - 1))
    if user_password is not None:
        writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


# A small book: title page, chapter 1 over three pages (running headers, page numbers in the footer),
# chapter 2 on a page of its own.
SAMPLE_PAGES: list[list[str]] = [
    ["A Small Book of Numbers", "by A. Tester"],
    [
        "Chapter 1",
        "Numbers",
        "This chapter is about the integers.",
        "1.1 Divisibility",
        "Definition 1.1 (Divisibility). Let a, b ∈ ℤ. We say that a divides b if b = ka",
        "for some k ∈ ℤ.",
        "Lemma 1.2",
        "If a divides b and b divides c, then a divides c.",
        "Proof. Write b = ka and c = lb. Then c = (lk)a, so a divides c by Deﬁni-",
        "tion 1.1. □",
        "Divisibility is transitive, as we saw in",
        "Lemma 1.2. Hence we may chain divisibilities.",
        "Theorem 1.3 (Euclid). There are inﬁnitely many primes.",
        "Proof. Suppose there are ﬁnitely many primes p1, . . . , pn, and let N = p1 · · · pn + 1.",
        "2",
    ],
    [
        "Chapter 1. Numbers 3",
        "No pi divides N, by Lemma 1.2 and Deﬁnition 1.1, a contradiction.",
        "QED",
        "Example 1.4",
        "The number 6 is divisible by 2 and by 3. ◁",
        "1.2 Primes",
        "Corollary 1.5. Every integer n ≥ 2 has a prime divisor.",
        "Exercise 1.6",
        "Prove Theorems 1.3 and 1.5 again, using Lemma 1.2. ◁",
        "Remark 1.7. There is no largest prime.",
        "3",
    ],
    [
        "4 Chapter 1. Numbers",
        "Proposition 1.8",
        "For all n ∈ ℕ we have n ≥ 0.",
        "Proof of Corollary 1.5. Take the least divisor d ≥ 2 of n; by Lemma 1.2 it is prime. ∎",
        "4",
    ],
    [
        "Chapter 2",
        "Sums",
        "Theorem 2.1 (Gauss)",
        "For all n ∈ ℕ, ∑ k = n(n + 1)/2, the sum over 1 ≤ k ≤ n.",
        "Proof",
        "By induction on n, using Proposition 1.8.",
        "∎",
        "5",
    ],
]
SAMPLE_OUTLINE = [("1 Numbers", 1, 0), ("1.1 Divisibility", 1, 1), ("1.2 Primes", 2, 1), ("2 Sums", 4, 0)]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def by_number(units: list[RawUnit]) -> dict[str, RawUnit]:
    return {u.number: u for u in units}


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return write(tmp_path, "sample.pdf", make_pdf(SAMPLE_PAGES))


# ============================================================================================ reading
def test_sample_pdf_units_kinds_numbers_titles(sample: Path) -> None:
    result = ingest_pdf(sample)
    assert result.source_kind == "pdf" and result.root == str(sample)
    got = [(u.kind, u.number, u.title) for u in result.units]
    assert got == [
        ("definition", "1.1", "Divisibility"),
        ("lemma", "1.2", ""),
        ("theorem", "1.3", "Euclid"),
        ("example", "1.4", ""),
        ("corollary", "1.5", ""),
        ("exercise", "1.6", ""),
        ("remark", "1.7", ""),
        ("proposition", "1.8", ""),
        ("theorem", "2.1", "Gauss"),
    ]
    assert all(u.kind in KINDS for u in result.units)


def test_sample_pdf_statements_and_proofs(sample: Path) -> None:
    u = by_number(ingest_pdf(sample).units)
    # run-in heading: the statement starts on the heading line and runs over the next line
    assert u["1.1"].statement == "Let a, b ∈ ℤ. We say that a divides b if b = ka\nfor some k ∈ ℤ."
    assert u["1.2"].statement == "If a divides b and b divides c, then a divides c."
    # the proof ends at □; the hyphenated "Defini-/tion" is joined in `proof`, kept in `proof_raw`
    assert u["1.2"].proof == "Write b = ka and c = lb. Then c = (lk)a, so a divides c by Definition 1.1."
    assert u["1.2"].proof_raw.endswith("Defini-\ntion 1.1. □")
    # the reference "Lemma 1.2." at the start of a line inside prose is not a heading, and the prose
    # between a proof's end and the next heading belongs to no unit
    assert "chain" not in u["1.2"].proof and "chain" not in u["1.3"].statement
    # a proof across a page break, ended by QED, with the running header of page 3 removed
    assert u["1.3"].statement == "There are infinitely many primes."
    assert u["1.3"].proof.startswith("Suppose there are finitely many primes")
    assert u["1.3"].proof.endswith("a contradiction.")
    assert "Chapter 1. Numbers" not in u["1.3"].proof
    # an example ends at ◁; the mark is not part of the statement
    assert u["1.4"].statement == "The number 6 is divisible by 2 and by 3."
    # "Proof of Corollary 1.5." two units later attaches to the corollary, not to Proposition 1.8
    assert u["1.5"].proof.startswith("Take the least divisor")
    assert u["1.8"].proof == ""
    # "Proof" alone on a line, the end mark alone on the last line
    assert u["2.1"].proof == "By induction on n, using Proposition 1.8."


def test_sample_pdf_pages_chapters_sections(sample: Path) -> None:
    u = by_number(ingest_pdf(sample).units)
    assert u["1.1"].source == "page 2"
    assert u["1.3"].source == "pages 2-3"  # statement on page 2, proof ends on page 3
    assert u["1.4"].source == "page 3"
    assert u["1.5"].source == "page 3"  # its proof comes later (page 4): the span stays where it is stated
    assert u["2.1"].source == "page 5"
    assert (u["1.1"].chapter, u["1.1"].section) == ("Numbers", "Divisibility")
    assert (u["1.5"].chapter, u["1.5"].section) == ("Numbers", "Primes")
    assert (u["1.8"].chapter, u["1.8"].section) == ("Numbers", "Primes")
    assert (u["2.1"].chapter, u["2.1"].section) == ("Sums", "")


def test_sample_pdf_text_refs(sample: Path) -> None:
    u = by_number(ingest_pdf(sample).units)
    assert u["1.2"].text_refs == [("definition", "1.1")]
    assert u["1.3"].text_refs == [("lemma", "1.2"), ("definition", "1.1")]
    # a plural with several numbers gives each of them, resolved to the units that exist: the book numbers
    # everything on one counter, so "Theorem 1.5" is Corollary 1.5
    assert u["1.6"].text_refs == [("theorem", "1.3"), ("corollary", "1.5"), ("lemma", "1.2")]
    assert u["1.5"].text_refs == [("lemma", "1.2")]
    assert u["2.1"].text_refs == [("proposition", "1.8")]
    assert textual_refs("by Lemmas 3.1, 3.2 and 3.4 and Corollary A.2") == [
        ("lemma", "3.1"),
        ("lemma", "3.2"),
        ("lemma", "3.4"),
        ("corollary", "A.2"),
    ]


def test_outline_gives_chapters_and_sections(tmp_path: Path) -> None:
    pages = [list(p) for p in SAMPLE_PAGES]
    pages[1][3] = "Divisibility"  # the section heading without its number: only the outline knows it
    path = write(tmp_path, "outlined.pdf", with_pypdf(make_pdf(pages), outline=SAMPLE_OUTLINE))
    doc = extract(path)
    assert [(e.title, e.page, e.depth) for e in doc.outline] == SAMPLE_OUTLINE
    u = by_number(parse(doc).units)
    assert (u["1.1"].chapter, u["1.1"].section) == ("Numbers", "Divisibility")
    assert (u["1.5"].chapter, u["1.5"].section) == ("Numbers", "Primes")
    assert (u["2.1"].chapter, u["2.1"].section) == ("Sums", "")


def test_read_book_and_store_book_take_a_pdf(sample: Path, tmp_path: Path) -> None:
    result = read_book(sample)
    assert result.source_kind == "pdf" and len(result.units) == 9
    store = Store(tmp_path / "autoform.sqlite")
    summary = store_book(store, "small", result)
    assert summary.units == 9 and summary.added == 9
    # textual references become graph edges ("Proof ... by Lemma 1.2 and Definition 1.1")
    assert summary.edges >= 8
    row = store.query("SELECT source_kind FROM books WHERE slug = 'small'")[0]
    assert row["source_kind"] == "pdf"
    again = store_book(store, "small", read_book(sample))  # re-ingest: identity by kind and number
    assert again.unchanged == 9 and again.added == 0
    store.close()


def test_checked_in_fixture_is_current() -> None:
    assert SAMPLE_PDF.read_bytes() == make_pdf(SAMPLE_PAGES), (
        "tests/fixtures/pdf/sample.pdf is stale: run `python tests/test_pdf.py` to rewrite it"
    )
    assert len(ingest_pdf(SAMPLE_PDF).units) == 9


# ============================================================================================ heuristics
def _doc(pages: list[str], **kw: object) -> PdfText:
    return PdfText("mem.pdf", pages, **kw)  # type: ignore[arg-type]


def test_heading_forms_and_icons() -> None:
    pages = [
        "\n".join(
            [
                "! Definition 1.1.4",
                "A set is a collection.",
                "\x1e Theorem 1.1.5 (Cantor, strong form)",
                "No surjection X → P(X).",
                "THEOREM 1.1.6. Capital headings work too.",
                "i Example 1.1.7",
                "Sets of sets. ◁",
                "PropositionAC 1.1.8",
                "Choice is needed here.",
                "Lemma 1.1.9 (A title that wraps over",
                "two lines). Every set is small.",
                "Lemma 1.1.10 (A title that wraps over",
                "two lines)",
                "Its statement.",
            ]
        )
    ]
    units = parse(_doc(pages)).units
    got = [(u.kind, u.number, u.title, u.statement) for u in units]
    assert got[:5] == [
        ("definition", "1.1.4", "", "A set is a collection."),
        ("theorem", "1.1.5", "Cantor, strong form", "No surjection X → P(X)."),
        ("theorem", "1.1.6", "", "Capital headings work too."),
        ("example", "1.1.7", "", "Sets of sets."),
        ("proposition", "1.1.8", "", "Choice is needed here."),
    ]
    assert got[5] == ("lemma", "1.1.9", "A title that wraps over two lines", "Every set is small.")
    assert got[6] == ("lemma", "1.1.10", "A title that wraps over two lines", "Its statement.")


def test_references_at_line_start_and_restatements_are_not_units() -> None:
    pages = [
        "Chapter 3\nFunctions\nTheorem 3.1\nEvery function has a graph.\nThe proof of this is\n"
        "Theorem 3.1. It is short.\nso we also refer forward to\nTheorem 3.4.\nLemma 3.2\nA lemma.",
        "Theorem 3.3\nAnother theorem.\nProof. Easy. □\nLemma 3.5\nA statement.\nTheorem 3.1\n"
        "Every function has a graph.\nProof. Deferred to here. □\nNow back to the text.",
    ]
    result = parse(_doc(pages))
    assert [(u.kind, u.number) for u in result.units] == [
        ("theorem", "3.1"),
        ("lemma", "3.2"),
        ("theorem", "3.3"),
        ("lemma", "3.5"),
    ]
    u = by_number(result.units)
    assert u["3.1"].statement.startswith("Every function has a graph.")
    assert u["3.3"].proof == "Easy."
    # the restated Theorem 3.1 ends Lemma 3.5's statement and adds nothing but the proof the original lacked
    assert u["3.5"].statement == "A statement."
    assert u["3.1"].proof == "Deferred to here."
    assert any("restatement" in w for w in result.warnings)


def test_per_chapter_numbering_restarts_are_kept() -> None:
    pages = ["Chapter 1\nOne\nTheorem 1\nFirst.\nTheorem 2\nSecond.", "Chapter 2\nTwo\nTheorem 1\nThird.\n"]
    units = parse(_doc(pages)).units
    assert [(u.number, u.chapter, u.statement) for u in units] == [
        ("1", "One", "First."),
        ("2", "One", "Second."),
        ("1", "Two", "Third."),
    ]


def test_running_headers_and_watermarks_are_removed() -> None:
    prose = "\n".join(f"Prose line {k} of the page." for k in range(12))
    body = "Lemma {n}.1\nStatement {n}.\n" + prose + "\nProof. This proof goes on"
    pages = [f"preview\nSection {n}. Topics {n + 10}\n" + body.format(n=n) + f"\n{n + 10}" for n in range(1, 6)]
    units = parse(_doc(pages, labels=[str(n + 10) for n in range(1, 6)])).units
    assert [u.number for u in units] == [f"{n}.1" for n in range(1, 6)]
    # the proofs run to the next page's heading: no watermark, running header or page number in between
    for u in units[:-1]:
        assert u.proof == "This proof goes on", u.proof


def test_proof_without_statement_warns() -> None:
    result = parse(_doc(["Some prose.\nProof. Of nothing. □\nTheorem 1.1\nA claim."]))
    assert [u.number for u in result.units] == ["1.1"]
    assert any("a proof with no statement before it" in w and "page 1" in w for w in result.warnings)


def test_unnumbered_aside_ends_a_statement_but_not_its_proof() -> None:
    pages = ["Theorem 2.1\nStatement.\nO Strategy\nSome advice about proofs.\nProof\nThe argument. □"]
    u = parse(_doc(pages)).units[0]
    assert (u.statement, u.proof) == ("Statement.", "The argument.")


def test_end_of_chapter_exercise_lists() -> None:
    pages = [
        "Chapter 2\nSets\nDefinition 2.1\nA set is a collection.",
        "Some prose.\nSection 2.E\nChapter 2 exercises\n2.1. Prove that A ⊆ A.\n2.2.\n∀x, x = x\n"
        "True–False questions\nIn Questions 2.3 to 2.4, decide.\n2.3. Every set is empty.\n(a) Really?\n"
        "2.5. Not the next number, so part of 2.3.\n2.4. The last one.",
    ]
    units = parse(_doc(pages)).units
    assert [(u.kind, u.number) for u in units] == [
        ("definition", "2.1"),
        ("exercise", "2.1"),
        ("exercise", "2.2"),
        ("exercise", "2.3"),
        ("exercise", "2.4"),
    ]
    u = units
    assert (u[1].statement, u[1].section) == ("Prove that A ⊆ A.", "Chapter 2 exercises")
    assert u[2].statement == "∀x, x = x"  # the subheading "True–False questions" ends it
    assert u[3].statement == "Every set is empty.\n(a) Really?\n2.5. Not the next number, so part of 2.3."
    assert u[4].source == "page 2"


def test_unnumbered_headings() -> None:
    pages = [
        "Remark.\nSome remark.\nTheorem (Fermat)\nNo solutions.\nProof. Margin. □\nO Aside\nAn aside. ◁\n"
        "Examples\nA subsection title, not a unit.\nNote\nNor is a bare word."
    ]
    units = parse(_doc(pages)).units
    assert [(u.kind, u.number, u.title, u.statement, u.proof) for u in units] == [
        ("remark", "", "", "Some remark.", ""),
        ("theorem", "", "Fermat", "No solutions.", "Margin."),
        ("remark", "", "", "An aside.", ""),
    ]


def test_printed_kinds_cover_the_model_kinds() -> None:
    assert set(PRINTED_KINDS.values()) <= set(KINDS)
    assert {
        "theorem",
        "lemma",
        "proposition",
        "corollary",
        "definition",
        "example",
        "exercise",
        "remark",
        "axiom",
        "claim",
    } <= set(PRINTED_KINDS.values())


# ============================================================================================ bad input
def test_truncated_pdf_is_an_error_naming_the_file(tmp_path: Path) -> None:
    data = make_pdf(SAMPLE_PAGES)
    path = write(tmp_path, "truncated.pdf", data[: len(data) // 3])
    with pytest.raises(IngestError, match=r"truncated\.pdf"):
        ingest_pdf(path)


@pytest.mark.parametrize("data", [b"", b"%PDF-1.4\nthis is not really a pdf\n", b"GIF89a" + bytes(200)])
def test_garbage_is_an_error_naming_the_file(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, "garbage.pdf", data)
    with pytest.raises(IngestError, match=r"garbage\.pdf") as e:
        ingest_pdf(path)
    assert "Traceback" not in str(e.value)


def test_encrypted_pdf_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "locked.pdf", with_pypdf(make_pdf(SAMPLE_PAGES), user_password="secret"))
    with pytest.raises(IngestError, match=r"locked\.pdf.*encrypted.*password"):
        ingest_pdf(path)


def test_pdf_encrypted_with_empty_user_password_opens(tmp_path: Path) -> None:
    """Permission-only encryption (any viewer opens it) is read as usual."""
    path = write(tmp_path, "perms.pdf", with_pypdf(make_pdf(SAMPLE_PAGES), user_password=""))
    assert len(ingest_pdf(path).units) == 9


@pytest.mark.parametrize("image_only", [True, False])
def test_pdf_without_text_is_an_error(tmp_path: Path, image_only: bool) -> None:
    data = make_pdf([[], [], []], image_only=image_only)
    path = write(tmp_path, "scan.pdf", data)
    with pytest.raises(IngestError, match=r"scan\.pdf.*no text layer.*3 pages.*OCR"):
        ingest_pdf(path)


def test_pdf_with_text_but_no_headings_gives_no_units_and_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "prose.pdf", make_pdf([["Just some prose.", "Nothing numbered here."]]))
    result = ingest_pdf(path)
    assert result.units == [] and any("no theorem-like headings" in w for w in result.warnings)


@pytest.mark.parametrize("kind", ["encrypted", "image-only", "truncated"])
def test_cli_bad_pdf_exits_2_and_stores_nothing(tmp_path: Path, kind: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    data = make_pdf(SAMPLE_PAGES)
    if kind == "encrypted":
        data = with_pypdf(data, user_password="secret")
    elif kind == "image-only":
        data = make_pdf([[], []], image_only=True)
    else:
        data = data[: len(data) // 3]
    target = write(tmp_path, f"{kind}.pdf", data)
    proc = autoform(home, "ingest", str(target), "--book", "x", env={"COLUMNS": "400"})
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert target.name in proc.stderr and "Traceback" not in proc.stderr
    assert not (home / "autoform.sqlite").exists()


def test_cli_ingests_a_pdf(tmp_path: Path, sample: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    proc = autoform(home, "ingest", str(sample), "--book", "small", "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"units": 9' in proc.stdout


# ============================================================================================ restoration
@pytest.fixture
def llm_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AUTOFORM_MODEL"):
        monkeypatch.delenv(var, raising=False)
    return Settings(
        home=tmp_path,
        llm=LLMConfig(base_url="http://127.0.0.1:9/v1", api_key="k", model="m", max_retries=0, timeout_s=5),
    )


GARBLED = RawUnit(
    kind="theorem",
    number="1.1.31",
    title="Quadratic formula",
    chapter="Logical structure",
    section="Propositional logic",
    source="pages 57-58",
    statement="Let a, b ∈ C. Then α is a root of x2 + ax + b iff\nα = −a +\n√\na2 − 4b\n2",
    statement_raw="Let a, b ∈ C. Then α is a root of x2 + ax + b iff\nα = −a +\n√\na2 − 4b\n2",
)
RESTORED = (
    r"Let $a, b \in \mathbb{C}$. Then $\alpha$ is a root of $x^2 + ax + b$ iff "
    r"$\alpha = \frac{-a + \sqrt{a^2 - 4b}}{2}$."
)


def test_restore_latex_makes_one_call_with_the_raw_text(tmp_path: Path, llm_settings: Settings) -> None:
    with FakeLLM(lambda body: f"Here:\n```latex\n{RESTORED}\n```\n") as srv:
        llm_settings.llm.base_url = srv.base_url
        store = Store(tmp_path / "autoform.sqlite")
        client = LLMClient(llm_settings, store, retry_initial_s=0.01)
        assert restore_latex(GARBLED, client) == RESTORED
        assert len(srv.requests) == 1
        body = srv.requests[0]
        system, user = body["messages"][0]["content"], body["messages"][1]["content"]
        assert system.startswith("You are the reader") and "```latex" in system
        assert "Theorem 1.1.31 (Quadratic formula)" in user and GARBLED.statement_raw in user
        assert "pages 57-58" in user
        # a second time: from the cache, no new request
        assert restore_latex(GARBLED, client) == RESTORED
        assert len(srv.requests) == 1
        rows = store.query("SELECT role, cached FROM llm_calls ORDER BY id")
        assert [(r["role"], r["cached"]) for r in rows] == [("reader", 0), ("reader", 1)]
        store.close()


def test_restore_unit_keeps_the_raw_text(llm_settings: Settings) -> None:
    with FakeLLM(lambda body: f"```latex\n{RESTORED}\n```") as srv:
        llm_settings.llm.base_url = srv.base_url
        client = LLMClient(llm_settings, None, retry_initial_s=0.01)
        unit = GARBLED.model_copy(update={"statement_raw": ""})  # raw text only in `statement`
        restored = restore_unit(unit, client)
    assert restored.statement == RESTORED
    assert restored.statement_raw == GARBLED.statement
    assert (restored.kind, restored.number, restored.title) == (unit.kind, unit.number, unit.title)
    assert unit.statement == GARBLED.statement  # the input is not changed


def test_restore_latex_rejects_a_reply_without_a_latex_block(llm_settings: Settings) -> None:
    with FakeLLM(lambda body: Reply(text="I think it says x squared.")) as srv:
        llm_settings.llm.base_url = srv.base_url
        client = LLMClient(llm_settings, None, retry_initial_s=0.01)
        with pytest.raises(MalformedReply, match="no ```latex block"):
            restore_latex(GARBLED, client)


def test_parse_reply_forms() -> None:
    assert parse_reply("```tex\n$x^2$\n```") == "$x^2$"
    assert parse_reply("```\n$x^2$\n```") == "$x^2$"
    assert parse_reply("```latex\nfirst\n```\nbetter:\n```latex\nsecond\n```") == "second"
    with pytest.raises(MalformedReply, match="unclosed"):
        parse_reply("```latex\n$x^2")
    with pytest.raises(MalformedReply, match="no ```latex"):
        parse_reply("```lean\ntheorem x : True := trivial\n```")


def test_restore_prompt_renders_for_a_unit_without_title_or_location() -> None:
    messages = restore_messages(RawUnit(kind="exercise", number="2.3", statement="Prove x2 ⩾ 0."))
    assert messages[1].content.startswith("Unit: Exercise 2.3\n")
    assert "Location" not in messages[1].content and "Prove x2 ⩾ 0." in messages[1].content


# ============================================================================================ infdesc
needs_infdesc_pdf = pytest.mark.skipif(not INFDESC_PDF.exists(), reason=f"shared infdesc PDF absent ({INFDESC_PDF})")

THEOREM_LIKE = KINDS  # the kinds the readers give a unit


@pytest.fixture(scope="module")
def infdesc_pdf() -> tuple[PdfText, float]:
    t0 = time.perf_counter()
    doc = extract(INFDESC_PDF)
    return doc, time.perf_counter() - t0


@pytest.fixture(scope="module")
def infdesc_units(infdesc_pdf: tuple[PdfText, float]) -> list[RawUnit]:
    return parse(infdesc_pdf[0]).units


def _pairs(units: list[RawUnit]) -> set[tuple[str, str]]:
    return {(u.kind, u.number) for u in units if u.kind in THEOREM_LIKE and u.number}


def _per_kind(reference: set[tuple[str, str]], found: set[tuple[str, str]]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for kind in sorted({k for k, _ in reference}):
        ref = {p for p in reference if p[0] == kind}
        out[kind] = (len(ref & found), len(ref))
    return out


@needs_infdesc_pdf
def test_infdesc_pdf_extraction_time(infdesc_pdf: tuple[PdfText, float]) -> None:
    doc, seconds = infdesc_pdf
    assert len(doc.pages) == 626
    assert seconds < 60, f"pypdf took {seconds:.1f} s for 626 pages"


@needs_infdesc_pdf
def test_infdesc_pdf_against_its_hyperlink_anchors(
    infdesc_pdf: tuple[PdfText, float], infdesc_units: list[RawUnit]
) -> None:
    """LaTeX's hyperref leaves a named destination per numbered environment ("theorem.7.1.1",
    "lemma.a.B.2.7", "itheorem.1.1.31"): the book's own list of what is printed, independent of any reader."""
    reader = pypdf.PdfReader(str(INFDESC_PDF))
    anchors: set[tuple[str, str]] = set()
    for name in reader.named_destinations:
        if name.startswith("chapex."):  # the numbered items of the end-of-chapter exercise sections
            anchors.add(("exercise", name.removeprefix("chapex.")))
            continue
        m = re.fullmatch(r"(?:ch|pre|i|o)?([a-z]+?)(?:ac)?\.(?:a\.)?((?:\d+|[A-Z])(?:\.(?:\d+|[A-Z]))*)", name)
        if m and m.group(1) in PRINTED_KINDS:
            number = m.group(2)
            # chapter-exercise sections print as "0.E" but count as section 5 in the anchors
            number = re.sub(r"^(\d+)\.5\.(\d+)$", r"\1.E.\2", number)
            anchors.add((PRINTED_KINDS[m.group(1)], number))
    found = _pairs(infdesc_units)
    per_kind = _per_kind(anchors, found)
    recall = len(anchors & found) / len(anchors)
    precision = len(anchors & found) / len(found)
    assert len(anchors) > 1000
    assert recall >= 0.98, (recall, per_kind, sorted(anchors - found)[:20])
    assert precision >= 0.98, (precision, sorted(found - anchors)[:20])


@needs_infdesc_pdf
@pytest.mark.skipif(not INFDESC_TEX.exists(), reason=f"infdesc LaTeX source absent ({INFDESC_TEX})")
def test_infdesc_pdf_against_its_latex(infdesc_units: list[RawUnit]) -> None:
    """Issue 3: at least 90% of the theorem-like units of infdesc's LaTeX are found in its PDF with the right
    kind and number."""
    from autoform.ingest.latex import ingest_latex

    latex_units = [u for u in ingest_latex(INFDESC_TEX).units if u.kind in THEOREM_LIKE]
    pdf_units = [u for u in infdesc_units if u.kind in THEOREM_LIKE]
    # 1. kinds, whatever the numbers: both readers' units in book order, aligned
    matcher = difflib.SequenceMatcher(None, [u.kind for u in latex_units], [u.kind for u in pdf_units], autojunk=False)
    aligned = sum(b.size for b in matcher.get_matching_blocks())
    assert aligned / len(latex_units) >= 0.95, (aligned, len(latex_units))
    # 2. kinds and numbers
    latex = _pairs(latex_units)
    found = _pairs(pdf_units)
    per_kind = _per_kind(latex, found)
    rate = len(latex & found) / len(latex)
    report = ", ".join(f"{k} {a}/{b}" for k, (a, b) in per_kind.items())
    message = (
        f"{rate:.1%} of the LaTeX units found in the PDF with kind and number ({report}); "
        f"missing e.g. {sorted(latex - found)[:8]}; PDF-only e.g. {sorted(found - latex)[:8]}"
    )
    assert rate >= 0.90, message
    assert all(a / b >= 0.80 for a, b in per_kind.values() if b >= 10), message


@needs_infdesc_pdf
def test_infdesc_pdf_structure(infdesc_units: list[RawUnit]) -> None:
    units = infdesc_units
    kinds = Counter(u.kind for u in units)
    assert kinds["exercise"] > 350 and kinds["theorem"] > 100 and kinds["definition"] > 180
    u = {(x.kind, x.number): x for x in units}
    division = u[("theorem", "7.1.1")]
    assert division.title == "Division theorem"
    assert (division.chapter, division.section) == ("Number theory", "Division")
    assert division.statement.startswith("Let a, b ∈ ℤ with b ≠ 0.")  # MSBM's "Z" read as the blackboard ℤ
    assert division.statement_raw.startswith("Let a, b ∈ Z with b")  # the text layer as extracted
    assert division.proof and division.source.startswith("page")
    assert u[("definition", "0.1")].chapter == "Getting started"
    assert u[("lemma", "B.2.7")].chapter == "Mathematical miscellany"
    # "Proof of Proposition 4.3.12" comes after Lemma 4.3.13 and its proof
    assert u[("proposition", "4.3.12")].proof.startswith("Suppose")
    assert u[("lemma", "4.3.13")].proof.startswith("First note")
    with_proof = [x for x in units if x.kind in ("theorem", "lemma", "proposition", "corollary") and x.proof]
    results = [x for x in units if x.kind in ("theorem", "lemma", "proposition", "corollary")]
    assert len(with_proof) / len(results) > 0.9
    refs = sum(len(x.text_refs) for x in units)
    assert refs > 400
    assert all(re.fullmatch(r"pages? \d+(-\d+)?", x.source) for x in units)


if __name__ == "__main__":
    FIXTURES.mkdir(parents=True, exist_ok=True)
    SAMPLE_PDF.write_bytes(make_pdf(SAMPLE_PAGES))
    print(f"wrote {SAMPLE_PDF}")
