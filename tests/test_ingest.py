"""Ingest: the sample textbook (units, numbers, titles, labels, proofs, macros, locations, source spans,
dependencies), a synthetic multi-file book, bad input, re-ingest keeping work, the CLI contract, and real books."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import SAMPLE_BOOK, SHARED, autoform

from autoform.ingest import IngestError, IngestSummary, ingest, read_book, store_book
from autoform.store import Store, Unit

SAMPLE_TEXT = SAMPLE_BOOK.read_text(encoding="utf-8")
SAMPLE_LINES = SAMPLE_TEXT.splitlines()


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, int, IngestSummary]:
    store = Store(tmp_path_factory.mktemp("sample") / "autoform.sqlite")
    summary = ingest(store, SAMPLE_BOOK, "ent")
    book = store.book("ent")
    assert book is not None
    return store, book.id, summary


def by_label(store: Store, book_id: int, *, present_only: bool = True) -> dict[str, Unit]:
    return {u.label: u for u in store.units(book_id, present_only=present_only)}


def dep_labels(store: Store, book_id: int) -> dict[str, set[str]]:
    label_of = {u.id: u.label for u in store.units(book_id, present_only=False)}
    out: dict[str, set[str]] = {}
    for uid, dep, _via in store.deps(book_id):
        out.setdefault(label_of[uid], set()).add(label_of[dep])
    return out


def line_of(text: str, needle: str) -> int:
    """1-based line number of the first line containing `needle`."""
    for k, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return k
    raise AssertionError(f"{needle!r} not found")


# ============================================================================================ sample book
def test_sample_kinds_and_count(sample) -> None:
    store, bid, summary = sample
    units = store.units(bid)
    assert len(units) == 39
    assert Counter(u.kind for u in units) == {
        "definition": 5,
        "lemma": 11,
        "theorem": 11,
        "proposition": 3,
        "corollary": 7,
        "exercise": 2,
    }
    assert (summary.units, summary.added, summary.updated, summary.unchanged, summary.removed) == (39, 39, 0, 0, 0)
    assert summary.warnings == []
    book = store.book("ent")
    assert book.title == "A Short Course in Elementary Number Theory"
    assert book.source_kind == "latex" and Path(book.source_path) == SAMPLE_BOOK


def test_sample_numbers_follow_the_shared_chapter_counter(sample) -> None:
    store, bid, _ = sample
    units = store.units(bid)
    assert [u.number for u in units] == [f"1.{k}" for k in range(1, 40)]
    assert [u.seq for u in units] == sorted(u.seq for u in units)
    # the order is the order of \begin{...} in the file
    begins = [
        m.group(1)
        for m in re.finditer(r"\\begin\{(definition|lemma|theorem|proposition|corollary|exercise)\}", SAMPLE_TEXT)
    ]
    assert [u.kind for u in units] == begins


def test_sample_titles_and_labels(sample) -> None:
    store, bid, _ = sample
    units = by_label(store, bid)
    labels_in_file = re.findall(
        r"\\begin\{(?:definition|lemma|theorem|proposition|corollary|exercise)\}(?:\[[^\]]*\])?\\label\{([^}]*)\}",
        SAMPLE_TEXT,
    )
    assert [u.label for u in store.units(bid)] == labels_in_file
    assert len(set(labels_in_file)) == 39
    assert units["thm:bezout"].title == "Bézout's identity"
    assert units["thm:bezout"].number == "1.29"
    assert units["thm:bezout"].display == "Theorem 1.29 (Bézout's identity)"
    assert units["lem:even-or-odd"].title == "Every integer has a parity"
    assert units["thm:divides-trans"].title == "Transitivity of divisibility"
    assert units["def:even"].title == "" and units["cor:gcd-comm"].title == ""
    titled = {u.label for u in store.units(bid) if u.title}
    assert titled == {
        "lem:even-or-odd",
        "thm:sq-even-iff",
        "thm:consecutive-even",
        "thm:divides-trans",
        "thm:divides-linear-comb",
        "thm:gcd-unique",
        "thm:bezout",
        "thm:sum-odd",
    }


def test_sample_proofs_are_attached(sample) -> None:
    store, bid, _ = sample
    for u in store.units(bid):
        if u.kind in ("definition", "exercise"):
            assert u.proof == "", u.label
        else:
            assert u.proof.strip(), f"{u.label} has no proof"
            assert "\\begin{proof}" not in u.proof and "\\end{proof}" not in u.proof
            assert "\\begin{proof}" not in u.statement
    units = by_label(store, bid)
    assert units["thm:divides-trans"].proof.startswith("By Definition~\\ref{def:divides} there are integers")
    assert units["cor:gcd-comm"].proof.rstrip().endswith("the two integers coincide.")
    # the \label is not part of the statement
    assert "\\label" not in units["def:even"].statement


def test_sample_macros_expanded_in_statement_not_in_raw(sample) -> None:
    store, bid, _ = sample
    units = by_label(store, bid)
    d = units["def:even"]
    assert d.statement_raw.startswith("An integer $n \\in \\Z$ is \\emph{even}")
    assert d.statement.startswith("An integer $n \\in \\mathbb{Z}$ is \\emph{even}")
    with_z = [u for u in store.units(bid) if "\\Z" in u.statement_raw]
    assert len(with_z) > 20
    for u in store.units(bid):
        assert not re.search(r"\\[ZN](?![A-Za-z])", u.statement), u.label
        assert not re.search(r"\\[ZN](?![A-Za-z])", u.proof), u.label
    assert "\\mathbb{N}" in units["thm:sum-odd"].statement and "\\N" in units["thm:sum-odd"].statement_raw
    # apart from the macros the text is the same
    for u in with_z:
        assert u.statement_raw.replace("\\Z", "\\mathbb{Z}").replace("\\N", "\\mathbb{N}") == u.statement


def test_sample_chapter_and_section(sample) -> None:
    store, bid, _ = sample
    units = by_label(store, bid)
    assert {u.chapter for u in units.values()} == {"Elementary Number Theory"}
    assert units["def:even"].section == "Parity"
    assert units["ex:odd-sub"].section == "Parity"
    assert units["def:divides"].section == "Divisibility"
    assert units["thm:bezout"].section == "Greatest common divisors"
    assert units["ex:five-divides"].section == "Induction"
    assert units["thm:bezout"].location == "Elementary Number Theory / Greatest common divisors"
    assert Counter(u.section for u in units.values()) == {
        "Parity": 12,
        "Divisibility": 10,
        "Greatest common divisors": 11,
        "Induction": 6,
    }


def test_sample_source_spans_point_at_the_environments(sample) -> None:
    store, bid, _ = sample
    for u in store.units(bid):
        m = re.fullmatch(r"main\.tex:(\d+)-(\d+)", u.source)
        assert m, u.source
        l1, l2 = int(m.group(1)), int(m.group(2))
        assert l1 < l2
        assert f"\\begin{{{u.kind}}}" in SAMPLE_LINES[l1 - 1], (u.label, u.source)
        assert f"\\label{{{u.label}}}" in SAMPLE_LINES[l1 - 1]
        end = "\\end{proof}" if u.proof else f"\\end{{{u.kind}}}"
        assert end in SAMPLE_LINES[l2 - 1], (u.label, u.source, SAMPLE_LINES[l2 - 1])
        # nothing else starts inside the span
        inner = "\n".join(SAMPLE_LINES[l1:l2])
        assert not re.search(r"\\begin\{(definition|lemma|theorem|proposition|corollary|exercise)\}", inner)
    assert by_label(store, bid)["def:even"].source == "main.tex:37-40"


def test_sample_dependencies_from_refs(sample) -> None:
    store, bid, summary = sample
    deps = dep_labels(store, bid)
    assert deps["cor:gcd-comm"] == {"thm:gcd-is-gcd", "lem:gcd-swap", "thm:gcd-unique"}
    assert deps["thm:gcd-is-gcd"] == {"lem:gcd-common-divisor", "thm:gcd-greatest", "def:gcd"}
    assert deps["ex:five-divides"] == {"prop:three-divides"}  # a \ref in the statement counts too
    assert "def:even" not in deps and "thm:bezout" not in deps
    # every \ref of the book is a dependency of the unit it is written in (51 \ref, one repeated in a proof)
    assert len(re.findall(r"\\ref\{", SAMPLE_TEXT)) == 51
    assert summary.edges == 50 == len(store.deps(bid))
    assert summary.unresolved_refs == []
    for u in store.units(bid):
        assert deps.get(u.label, set()) == set(u.refs), u.label
    assert {via for _, _, via in store.deps(bid)} == {"ref"}
    # edges only go backwards in this book
    seq = {u.id: u.seq for u in store.units(bid)}
    assert all(seq[d] < seq[u] for u, d, _ in store.deps(bid))


# ========================================================================================= synthetic book
SYN_MAIN = r"""\documentclass{book}
\usepackage{amsmath,amsthm,cleveref}
\newtheorem{theorem}{Theorem}[section]
\newtheorem{lemma}[theorem]{Lemma}
\newtheorem{definition}{Definition}
\newtheorem*{remark}{Remark}
\newcommand{\R}{\mathbb{R}}
\title{A Synthetic Book}
\begin{document}
\chapter{Foundations}
Some prose. % \input{commented-out}
\input{chap1}
\include{chap2}
\end{document}
"""

SYN_CHAP1 = r"""\section{Alpha}
\begin{definition}\label{def:pos}
A real $x \in \R$ is positive if $x > 0$.
\end{definition}

\begin{theorem}[Squares are nonnegative]\label{thm:sq}
For every $x \in \R$ we have
\begin{equation}\label{eq:sq}
x^2 \ge 0.
\end{equation}
\end{theorem}

\begin{proof}
Split into cases using \cref{def:pos}.
\end{proof}

\begin{lemma}\label{lem:aux}
If $x \in \R$ is positive then $x^2 > 0$.
\end{lemma}

\begin{proof}
This sharpens \Cref{thm:sq}.
\end{proof}

\begin{remark}
An unnumbered remark.
\end{remark}
"""

SYN_CHAP2 = r"""\section{Beta}
\begin{theorem}\label{thm:beta}
By Lemma 1.1.2 the square of a positive real is positive.
\end{theorem}

\begin{proof}
Combine \cref{def:pos,thm:sq}.
\end{proof}

\chapter{Second}
\section{Gamma}
\begin{lemma}\label{lem:gamma}
Another lemma, see \eqref{eq:sq}.
\end{lemma}
"""


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    d = tmp_path / "syn"
    d.mkdir()
    (d / "main.tex").write_text(SYN_MAIN, encoding="utf-8")
    (d / "chap1.tex").write_text(SYN_CHAP1, encoding="utf-8")
    (d / "chap2.tex").write_text(SYN_CHAP2, encoding="utf-8")
    return d


def test_synthetic_multifile_book(synthetic: Path, tmp_path: Path) -> None:
    result = read_book(synthetic)  # a directory: the root is found by \documentclass
    assert Path(result.root) == synthetic / "main.tex"
    assert result.title == "A Synthetic Book"
    assert result.warnings == []
    units = {u.label or f"{u.kind}:{u.number or '-'}": u for u in result.units}
    assert [u.label for u in result.units] == ["def:pos", "thm:sq", "lem:aux", "", "thm:beta", "lem:gamma"]
    # numbers: [section] counter shared by lemma; a separate global definition counter; starred unnumbered
    assert units["def:pos"].number == "1"
    assert units["thm:sq"].number == "1.1.1"
    assert units["lem:aux"].number == "1.1.2"
    assert units["remark:-"].number == "" and units["remark:-"].kind == "remark"
    assert units["thm:beta"].number == "1.2.1"  # reset by \section
    assert units["lem:gamma"].number == "2.1.1"  # reset by \chapter
    assert units["thm:sq"].title == "Squares are nonnegative"
    assert units["thm:sq"].statement.startswith("For every $x \\in \\mathbb{R}$ we have")
    assert units["thm:sq"].proof == "Split into cases using \\cref{def:pos}."
    assert (units["thm:beta"].chapter, units["thm:beta"].section) == ("Foundations", "Beta")
    assert (units["lem:gamma"].chapter, units["lem:gamma"].section) == ("Second", "Gamma")
    # sources point into the sub-files, with the lines of that file
    c1, c2 = SYN_CHAP1, SYN_CHAP2
    assert units["def:pos"].source == f"chap1.tex:{line_of(c1, '{def:pos}')}-{line_of(c1, '{definition}') + 2}"
    assert units["thm:sq"].source == f"chap1.tex:{line_of(c1, '{thm:sq}')}-{line_of(c1, 'into cases') + 1}"
    assert units["lem:aux"].source == f"chap1.tex:{line_of(c1, '{lem:aux}')}-{line_of(c1, 'sharpens') + 1}"
    assert units["remark:-"].source == f"chap1.tex:{line_of(c1, '{remark}')}-{line_of(c1, 'unnumbered') + 1}"
    assert units["thm:beta"].source == f"chap2.tex:{line_of(c2, '{thm:beta}')}-{line_of(c2, 'Combine') + 1}"
    assert units["lem:gamma"].source == f"chap2.tex:{line_of(c2, '{lem:gamma}')}-{line_of(c2, 'Another') + 1}"
    for u in result.units:
        fname, l1, _ = re.fullmatch(r"(.+):(\d+)-(\d+)", u.source).groups()
        assert (synthetic / fname).read_text().splitlines()[int(l1) - 1].startswith("\\begin{")

    # references: \cref, \Cref, multi-label \cref, \eqref, and a textual one
    assert units["thm:sq"].refs == ["def:pos"]
    assert units["lem:aux"].refs == ["thm:sq"]
    assert units["thm:beta"].refs == ["def:pos", "thm:sq"]
    assert units["thm:beta"].text_refs == [("lemma", "1.1.2")]
    assert units["lem:gamma"].refs == ["eq:sq"]

    store = Store(tmp_path / "autoform.sqlite")
    summary = store_book(store, "syn", result)
    bid = store.book("syn").id
    assert summary.units == 6 and summary.added == 6
    ids = {u.label: u.id for u in store.units(bid)}
    edges = {(a, b): via for a, b, via in store.deps(bid)}
    assert edges[(ids["thm:beta"], ids["lem:aux"])] == "text"  # "by Lemma 1.1.2", no \ref
    assert edges[(ids["thm:beta"], ids["thm:sq"])] == "ref"
    assert edges[(ids["thm:beta"], ids["def:pos"])] == "ref"
    assert edges[(ids["lem:aux"], ids["thm:sq"])] == "ref"
    assert edges[(ids["thm:sq"], ids["def:pos"])] == "ref"
    # the unlabelled remark has a stable identity and is stored
    assert sum(1 for u in store.units(bid) if u.kind == "remark") == 1


def test_reference_to_an_equation_inside_a_unit_depends_on_that_unit(synthetic: Path, tmp_path: Path) -> None:
    store = Store(tmp_path / "autoform.sqlite")
    summary = ingest(store, synthetic, "syn")
    bid = store.book("syn").id
    ids = {u.label: u.id for u in store.units(bid)}
    assert (ids["lem:gamma"], ids["thm:sq"], "ref") in store.deps(bid)
    assert "eq:sq" not in summary.unresolved_refs


def test_textual_reference_needs_a_matching_number(tmp_path: Path) -> None:
    root = tmp_path / "main.tex"
    root.write_text(
        r"""\documentclass{article}
\newtheorem{theorem}{Theorem}
\newtheorem{lemma}[theorem]{Lemma}
\begin{document}
\begin{lemma}\label{a} First. \end{lemma}
\begin{theorem}\label{b} By Lemma~1 and by Theorem 7, and by Theorem 2 itself. \end{theorem}
\end{document}
""",
        encoding="utf-8",
    )
    store = Store(tmp_path / "s.sqlite")
    summary = ingest(store, root, "t")
    bid = store.book("t").id
    ids = {u.label: u.id for u in store.units(bid)}
    assert store.deps(bid) == [(ids["b"], ids["a"], "text")]  # no edge for Theorem 7 (absent) or to itself
    assert summary.edges == 1


# ============================================================================================= bad input
def _write_root(d: Path, body: str, *, name: str = "main.tex") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    root = d / name
    root.write_text(
        "\\documentclass{article}\n\\newtheorem{theorem}{Theorem}\n\\begin{document}\n" + body + "\\end{document}\n",
        encoding="utf-8",
    )
    return root


def test_missing_input_file_warns_and_ingests_the_rest(tmp_path: Path) -> None:
    root = _write_root(
        tmp_path / "b",
        "\\begin{theorem}\\label{t1}\nOne.\n\\end{theorem}\n"
        "\\input{chapters/missing}\n"
        "\\begin{theorem}\\label{t2}\nTwo.\n\\end{theorem}\n",
    )
    result = read_book(root)
    warn = [w for w in result.warnings if "missing" in w]
    assert len(warn) == 1
    assert f"main.tex:{line_of(root.read_text(), 'chapters/missing')}:" in warn[0]
    assert "not found" in warn[0]
    assert [u.label for u in result.units] == ["t1", "t2"]
    assert [u.number for u in result.units] == ["1", "2"]
    assert result.units[1].source == "main.tex:8-10"


def test_unbalanced_brace_warns_with_file_and_line(tmp_path: Path) -> None:
    root = _write_root(
        tmp_path / "b", "\\begin{theorem}\\label{t1}\nA set $\\{x\\}$ and {an open brace.\n\\end{theorem}\n"
    )
    result = read_book(root)
    assert any(re.search(r"main\.tex:5: unclosed '\{'", w) for w in result.warnings), result.warnings
    assert [u.label for u in result.units] == ["t1"]

    root2 = _write_root(tmp_path / "c", "\\begin{theorem}\\label{t1}\nStray } brace.\n\\end{theorem}\n")
    result2 = read_book(root2)
    assert any(re.search(r"main\.tex:5: unbalanced '\}'", w) for w in result2.warnings), result2.warnings
    assert [u.label for u in result2.units] == ["t1"]


def test_unbalanced_brace_does_not_swallow_the_following_units(tmp_path: Path) -> None:
    root = _write_root(
        tmp_path / "b",
        "\\begin{theorem}\\label{t1}\nOne {with an open brace.\n\\end{theorem}\n\n"
        "\\begin{theorem}\\label{t2}\nTwo.\n\\end{theorem}\n",
    )
    result = read_book(root)
    assert any("main.tex:5:" in w for w in result.warnings)
    assert [u.label for u in result.units] == ["t1", "t2"]
    assert "\\begin{theorem}" not in result.units[0].statement


def test_latin1_file_warns_and_is_still_ingested(tmp_path: Path) -> None:
    d = tmp_path / "b"
    root = _write_root(d, "\\input{legacy}\n")
    (d / "legacy.tex").write_bytes(
        b"\\begin{theorem}\\label{t1}\nPlain ASCII line.\n\\end{theorem}\n\n"
        b"\\begin{theorem}\\label{t2}\nCaf\xe9 na\xefve, per Poincar\xe9.\n\\end{theorem}\n"
    )
    result = read_book(root)
    warn = [w for w in result.warnings if "UTF-8" in w]
    assert len(warn) == 1
    assert "legacy.tex:6:" in warn[0]  # the first bad byte is on line 6
    assert [u.label for u in result.units] == ["t1", "t2"]
    assert result.units[1].statement == "Café naïve, per Poincaré."
    assert result.units[1].source == "legacy.tex:5-7"


def test_directory_without_documentclass_is_an_error_naming_it(tmp_path: Path) -> None:
    d = tmp_path / "notes"
    d.mkdir()
    (d / "chapter.tex").write_text("\\begin{theorem}x\\end{theorem}\n", encoding="utf-8")
    (d / "readme.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(IngestError) as ei:
        read_book(d)
    assert str(d) in str(ei.value)
    assert "documentclass" in str(ei.value)


def test_nonexistent_path_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "book.tex"
    with pytest.raises(IngestError) as ei:
        read_book(missing)
    assert str(missing) in str(ei.value)
    store = Store(tmp_path / "s.sqlite")
    with pytest.raises(IngestError):
        ingest(store, missing, "x")
    assert store.books() == []


def test_self_including_file_is_skipped_with_a_warning(tmp_path: Path) -> None:
    d = tmp_path / "b"
    root = _write_root(d, "\\input{loop}\n")
    (d / "loop.tex").write_text("\\begin{theorem}\\label{t}\nT.\n\\end{theorem}\n\\input{loop}\n", encoding="utf-8")
    result = read_book(root)
    assert [u.label for u in result.units] == ["t"]
    assert any("loop.tex:4:" in w and "includes itself" in w for w in result.warnings), result.warnings


# ============================================================================================= re-ingest
def _edit_sample(tmp_path: Path) -> Path:
    text = SAMPLE_TEXT
    # 1. change the statement of lem:even-add (same number of lines)
    old = "If $m, n \\in \\Z$ are both even, then $m + n$ is even."
    assert text.count(old) == 1
    text = text.replace(old, "If $m, n \\in \\Z$ are even, then so is their sum $m + n$.")
    # 2. delete ex:odd-sub and 3. add lem:new in its place (same number of lines, so nothing else moves)
    old_ex = (
        "\\begin{exercise}\\label{ex:odd-sub}\n"
        "Show that if $m, n \\in \\Z$ are both odd, then $m - n$ is even.\n"
        "\\emph{Hint:} adapt the proof of Lemma~\\ref{lem:odd-add-odd}.\n"
        "\\end{exercise}\n"
    )
    assert text.count(old_ex) == 1
    text = text.replace(
        old_ex,
        "\\begin{lemma}\\label{lem:new}\n"
        "If $n \\in \\Z$ is even, then $n + 2$ is even,\n"
        "by Definition~\\ref{def:even}.\n"
        "\\end{lemma}\n",
    )
    d = tmp_path / "edited"
    d.mkdir()
    (d / "main.tex").write_text(text, encoding="utf-8")
    return d / "main.tex"


def test_reingest_keeps_work_on_unchanged_units(tmp_path: Path) -> None:
    store = Store(tmp_path / "autoform.sqlite")
    first = ingest(store, SAMPLE_BOOK, "ent")
    bid = store.book("ent").id
    before = by_label(store, bid)
    keep = before["cor:gcd-comm"]
    now = time.time()
    with store.tx() as c:
        c.execute("UPDATE units SET status = 'proved' WHERE book_id = ?", (bid,))
        c.execute(
            "INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code,"
            " created_at) VALUES (?,?,?,?,?,?,?)",
            (
                keep.id,
                bid,
                "ENT.gcd_comm",
                "proved",
                "theorem gcd_comm : True",
                "theorem gcd_comm : True :=\n  trivial",
                now,
            ),
        )
    pid = store.add_post(book_id=bid, unit_id=keep.id, author="prover", kind="note", body="used Nat.gcd_comm")

    edited = _edit_sample(tmp_path)
    summary = ingest(store, edited, "ent")
    assert store.book("ent").id == bid  # same book
    assert (summary.added, summary.updated, summary.unchanged, summary.removed) == (1, 1, 37, 1), summary
    assert summary.units == 39

    after = by_label(store, bid)
    everything = by_label(store, bid, present_only=False)
    # unchanged units: same id, status and work kept
    for lab, u in before.items():
        if lab in ("lem:even-add", "ex:odd-sub"):
            continue
        assert after[lab].id == u.id, lab
        assert after[lab].status == "proved", lab
    entry = store.atlas_entry(keep.id)
    assert entry is not None and entry.decl_name == "ENT.gcd_comm"
    assert [a.unit_id for a in store.atlas_entries(bid)] == [keep.id]
    assert [p.id for p in store.posts(bid, unit_id=keep.id)] == [pid]
    # the changed unit: same id, new statement, back to pending
    changed = after["lem:even-add"]
    assert changed.id == before["lem:even-add"].id
    assert changed.status == "pending"
    assert "so is their sum" in changed.statement and "\\mathbb{Z}" in changed.statement
    # the deleted unit: kept but absent
    gone = everything["ex:odd-sub"]
    assert gone.id == before["ex:odd-sub"].id
    assert gone.present is False
    assert "ex:odd-sub" not in after
    assert gone.id not in {u.id for u in store.units(bid)}
    # the new unit: a new id, pending, with its dependency, in book order
    new = after["lem:new"]
    assert new.id not in {u.id for u in before.values()}
    assert new.status == "pending" and new.number == "1.12"
    assert dep_labels(store, bid)["lem:new"] == {"def:even"}
    assert [u.label for u in store.units(bid)].index("lem:new") == 11
    # the dependency graph holds no edge from or to the absent unit
    assert all(gone.id not in (a, b) for a, b, _ in store.deps(bid))
    assert first.edges == 50 and summary.edges == 50  # one \ref gone with ex:odd-sub, one added by lem:new

    # re-ingesting the same text again changes nothing
    again = ingest(store, edited, "ent")
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 39, 0)
    # and the original brings the deleted unit back under its old id
    back = ingest(store, SAMPLE_BOOK, "ent")
    assert (back.added, back.removed) == (0, 1)
    assert by_label(store, bid)["ex:odd-sub"].id == gone.id
    assert "lem:new" not in by_label(store, bid)


def test_reingest_after_lines_move_keeps_ids_and_status(tmp_path: Path) -> None:
    store = Store(tmp_path / "autoform.sqlite")
    ingest(store, SAMPLE_BOOK, "ent")
    bid = store.book("ent").id
    before = by_label(store, bid)
    store.set_unit_status(before["thm:bezout"].id, "proved")
    moved = tmp_path / "moved" / "main.tex"
    moved.parent.mkdir()
    moved.write_text(
        SAMPLE_TEXT.replace("\\begin{document}\n", "\\begin{document}\nA new line of prose.\n", 1), encoding="utf-8"
    )
    ingest(store, moved, "ent")
    after = by_label(store, bid)
    assert {lab: u.id for lab, u in after.items()} == {lab: u.id for lab, u in before.items()}
    assert after["thm:bezout"].status == "proved"
    for lab, u in after.items():  # the spans follow the text
        l1, l2 = map(int, u.source.split(":")[1].split("-"))
        o1, o2 = map(int, before[lab].source.split(":")[1].split("-"))
        assert (l1, l2) == (o1 + 1, o2 + 1)


def test_reingest_summary_ignores_units_that_only_moved(tmp_path: Path) -> None:
    store = Store(tmp_path / "autoform.sqlite")
    ingest(store, SAMPLE_BOOK, "ent")
    moved = tmp_path / "moved" / "main.tex"
    moved.parent.mkdir()
    moved.write_text(
        SAMPLE_TEXT.replace("\\begin{document}\n", "\\begin{document}\nA new line of prose.\n", 1), encoding="utf-8"
    )
    summary = ingest(store, moved, "ent")
    assert (summary.added, summary.updated, summary.unchanged, summary.removed) == (0, 0, 39, 0)


# ================================================================================================== CLI
@pytest.fixture(scope="module")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("clihome")
    proc = autoform(home, "ingest", str(SAMPLE_BOOK), "--book", "ent")
    assert proc.returncode == 0, proc.stderr
    assert "39 units" in proc.stdout
    assert (home / "autoform.sqlite").exists()
    return home


def test_cli_units_json(cli_home: Path) -> None:
    proc = autoform(cli_home, "units", "ent", "--json", check=True)
    lines = proc.stdout.splitlines()
    assert len(lines) == 39
    rows = [json.loads(line) for line in lines]
    required = {"id", "kind", "number", "title", "label", "statement", "proof", "location", "source", "depends_on"}
    for r in rows:
        assert required <= r.keys(), r.keys()
    ids = {r["id"] for r in rows}
    assert len(ids) == 39
    for r in rows:
        assert isinstance(r["depends_on"], list)
        assert set(r["depends_on"]) <= ids
    by = {r["label"]: r for r in rows}
    bez = by["thm:bezout"]
    assert (bez["kind"], bez["number"], bez["title"]) == ("theorem", "1.29", "Bézout's identity")
    assert bez["location"] == "Elementary Number Theory / Greatest common divisors"
    assert bez["source"].startswith("main.tex:320-")
    assert "\\mathbb{Z}" in bez["statement"] and bez["proof"]
    assert set(by["cor:gcd-comm"]["depends_on"]) == {
        by[x]["id"] for x in ("thm:gcd-is-gcd", "lem:gcd-swap", "thm:gcd-unique")
    }
    assert sum(len(r["depends_on"]) for r in rows) == 50
    assert [r["number"] for r in rows] == [f"1.{k}" for k in range(1, 40)]


def test_cli_graph_json_and_dot(cli_home: Path) -> None:
    data = json.loads(autoform(cli_home, "graph", "ent", "--format", "json", check=True).stdout)
    assert len(data["nodes"]) == 39
    assert len(data["edges"]) == 50
    node_ids = {n["id"] for n in data["nodes"]}
    assert all(e["from"] in node_ids and e["to"] in node_ids for e in data["edges"])
    assert data["cycles"] == []
    dot = autoform(cli_home, "graph", "ent", "--format", "dot", check=True).stdout
    assert dot.startswith("digraph")
    assert dot.count(" -> ") == 50
    assert dot.rstrip().endswith("}")


def test_cli_unknown_book_fails_naming_it(cli_home: Path) -> None:
    proc = autoform(cli_home, "units", "nosuch", "--json")
    assert proc.returncode != 0
    assert "nosuch" in proc.stderr
    assert proc.stdout.strip() == ""  # nothing that could be mistaken for JSON output
    assert "(books: ent)" in " ".join(proc.stderr.split())  # lists the books that exist


@pytest.mark.parametrize("kind", ["missing", "binary", "no-documentclass"])
def test_cli_ingest_of_a_corrupt_path_exits_2_without_a_store(tmp_path: Path, kind: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    if kind == "missing":
        target = tmp_path / "nope.tex"
    elif kind == "binary":
        target = tmp_path / "garbage.tex"
        target.write_bytes(bytes(range(256)) * 16)
    else:
        target = tmp_path / "notes"
        target.mkdir()
        (target / "part.tex").write_text("\\begin{theorem}x\\end{theorem}\n", encoding="utf-8")
    proc = autoform(home, "ingest", str(target), "--book", "x", env={"COLUMNS": "400"})
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert target.name in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (home / "autoform.sqlite").exists()


def test_cli_ingest_of_a_corrupt_pdf_exits_2_without_a_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    target = tmp_path / "broken.pdf"
    target.write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    proc = autoform(home, "ingest", str(target), "--book", "x", env={"COLUMNS": "400"})
    assert proc.returncode == 2, proc.stderr
    assert "broken.pdf" in proc.stderr and "Traceback" not in proc.stderr
    assert not (home / "autoform.sqlite").exists()


# ========================================================================================= real textbooks
TEXTBOOKS = SHARED / "textbooks"


@pytest.mark.slow
@pytest.mark.skipif(not (TEXTBOOKS / "infdesc" / "book.tex").exists(), reason=f"real textbooks absent ({TEXTBOOKS})")
def test_infdesc_ingests(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    result = read_book(TEXTBOOKS / "infdesc" / "book.tex")
    store = Store(tmp_path / "autoform.sqlite")
    summary = store_book(store, "infdesc", result)
    elapsed = time.perf_counter() - t0
    kinds = Counter(u.kind for u in result.units)
    print(
        f"\ninfdesc: {len(result.units)} units in {elapsed:.2f}s: {dict(kinds)}; {summary.edges} edges; "
        f"{len(result.warnings)} warnings"
    )
    numbered = [u for u in result.units if u.number]
    assert len(numbered) > 300
    assert summary.units == len(result.units)
    assert not any("file not found" in w for w in result.warnings), result.warnings[:5]


# ============================================================================== constructs (tests/fixtures/latex)
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "latex"


def units_of(name: str, **kw: object) -> tuple[list, list[str]]:
    from autoform.ingest.latex import ingest_latex

    result = ingest_latex(FIXTURES / name, **kw)  # type: ignore[arg-type]
    return result.units, result.warnings


def test_inclusion_commands_and_book_defined_inclusion_macros() -> None:
    result = read_book(FIXTURES / "include")
    assert result.title == "Inclusion"
    got = [(u.kind, u.number, u.label, u.source, u.chapter) for u in result.units]
    assert got == [
        ("theorem", "1.1", "thm:one", "chapters/one.tex:2-4", "One"),  # \chapterfile{one}, from bookmacros.sty
        ("lemma", "2.1", "lem:two", "parts/two.tex:5-7", "Two"),  # \subfile: only the subfile's body
        ("theorem", "3.1", "thm:four", "parts/deep/four.tex:1-3", "Three"),  # \import, then \subimport
        ("lemma", "3.2", "lem:five", "parts/deep/five.tex:1-3", "Three"),  # \input relative to the imported file
    ]
    assert result.units[0].statement == "Every $x \\in \\mathbb{R}$ is real."  # macro from the local package
    assert result.warnings == ["main.tex:11: \\include{chapters/missing}: file not found; skipped"]


def test_theorem_declarations_and_numbering_as_printed() -> None:
    units, warnings = units_of("numbering", env_map={"thing": "claim"})
    assert warnings == []
    got = [(u.kind, u.number, u.title, u.chapter, u.section) for u in units]
    assert got == [
        ("remark", "", "", "Preface", ""),  # \newtheorem*; front matter
        ("theorem", "0.1.1", "Named", "Zero", "Start"),  # \setcounter{chapter}{-1}; [section] counter
        ("lemma", "0.1.2", "", "Zero", "Start"),  # shares the theorem counter
        ("remark", "0.1.3", "", "Zero", "Start"),  # an unusual name still counts on the shared counter
        ("definition", "0.1.4", "", "Zero", "Start"),  # thmtools sibling=theorem
        ("theorem", "0.1.5", "Key theorem", "Zero", "Start"),  # \newenvironment alias passing its title on
        ("axiom", "", "", "Zero", "Start"),  # numbered=no
        ("exercise", "0.1", "", "Zero", "Start"),  # numberwithin=chapter
        ("exercise", "0.2", "", "Zero", "Start"),  # alias with a mandatory argument
        ("theorem", "0.1.6", "Restated", "Zero", "Start"),  # thm-restate's restatable
        ("claim", "1", "", "Zero", "Start"),  # "Conjecture", its own counter
        ("claim", "1", "", "Zero", "Start"),  # named in [ingest] environments
        ("theorem", "1.0.1", "", "One", ""),  # \chapter* does not count
        ("theorem", "1.1.1", "", "One", "Alpha"),
        ("lemma", "1.2", "", "One", "Alpha"),  # after \numberwithin{theorem}{chapter}
        ("lemma", "A.1", "", "Extra", "Beta"),  # \appendix
        ("exercise", "A.1", "", "Extra", "Beta"),
    ]


def test_proofs_are_attached_including_custom_proof_environments() -> None:
    units, warnings = units_of("proofs-refs")
    by = {u.label: u for u in units}
    assert by["lem:base"].proof == "Trivial."
    assert by["thm:main"].proof.startswith("Use \\autoref{lem:base}")  # \declaretheorem[name=Proof]{cproof}
    assert by["lem:second"].proof == "A sketch first.\n\nThen the proof."  # "Sketch of proof", then a proof
    assert by["ex:nested"].proof == "Inside, see \\ref{lem:second}."  # a proof inside its unit...
    assert by["ex:nested"].statement == "An example with its proof inside."  # ...is not part of the statement
    assert by["thm:late"].proof.startswith("The late proof")  # [Proof of \cref{thm:late}], after another unit
    assert by["thm:late"].source == "main.tex:55-57" and by["lem:inbetween"].proof == ""
    assert by["ex:sol"].proof == "Solved."  # \newenvironment{solution}{\begin{proof}[Solution]}...
    assert by["lem:base"].source == "main.tex:16-21"  # the span reaches the end of the proof
    assert warnings == ["main.tex:72: a proof with no statement before it; ignored"]


def test_labels_and_references_including_book_defined_macros() -> None:
    units, _ = units_of("proofs-refs")
    by = {u.label: u for u in units}
    assert "lem:base" in by  # \lemlabel{base} -> \label{lem:base}
    assert by["thm:main"].labels == ["thm:main", "eq:x"]
    assert "lem:second" in by  # \label[lemma]{...} (cleveref's optional type)
    assert by["thm:main"].refs == ["lem:base", "eq:x", "thm:main"]  # \cref, \eqref, then the proof's
    assert by["lem:second"].refs == ["thm:main", "lem:base"]  # \thmref{main} -> Theorem~\ref{thm:main}; \Crefrange
    assert by["lem:second"].statement.startswith("Uses Theorem~\\ref{thm:main}")
    assert by["beta:third"].refs == ["beta:third", "alpha:x"]  # label and xparse reference macros with state
    assert by["ex:nested"].refs == ["lem:second"]


def test_references_become_graph_edges(tmp_path: Path) -> None:
    result = read_book(FIXTURES / "proofs-refs" / "main.tex")
    store = Store(tmp_path / "s.sqlite")
    summary = store_book(store, "pr", result)
    bid = store.book("pr").id
    assert summary.unresolved_refs == ["alpha:x"]
    deps = dep_labels(store, bid)
    assert deps["thm:main"] == {"lem:base"}  # \eqref{eq:x} is inside thm:main itself
    assert deps["lem:second"] == {"thm:main", "lem:base"}
    assert deps["thm:late"] == {"lem:inbetween"}


def test_user_macros_expanded_with_the_original_kept() -> None:
    units, warnings = units_of("macros")
    assert warnings == []
    assert units[0].statement == (
        "For $n \\in \\mathbb{Z}$, $\\left|n\\right| \\ge 0$, $\\|x\\|_{2} \\le \\|x\\|_{1}$ and $\\varepsilon > 0$."
    )
    assert units[0].statement_raw.startswith("For $n \\in \\Z$, $\\abs{n} \\ge 0$")
    assert units[1].statement == (
        "$\\langle u, v\\rangle$, $\\operatorname{Hom}(A, B)$, "
        "$\\operatorname*{arg\\,max}_x f$, $(a_n)_{n \\in \\mathbb{N}}$, $(b_n)$, "
        "$(c_n)_{n \\geq 3}$, abab."
    )
    # \renewcommand takes effect from where it is; programming and unknown macros are kept as written
    assert units[2].statement == (
        "Redefined: $\\mathbf{Z}$. Programming macros stay as written: \\setprefix{x}. "
        "Unknown ones too: \\undefinedmacro[opt]{arg} \\foo."
    )


def test_comments_verbatim_and_switched_off_text_hold_no_units() -> None:
    units, warnings = units_of("masking")
    assert [u.label for u in units] == ["t:real", "t:open"]
    assert units[0].statement == (
        "The only real one, with 100\\% of a \\verb|%| sign and \\unknown{macro}[with]{args}."
    )
    assert units[1].statement == "Never closed." and units[1].source == "main.tex:23-24"
    assert warnings == ["main.tex:23: \\begin{theorem} is never closed; it ends with its file"]


def test_units_announced_by_headings() -> None:
    units, _ = units_of("headed")
    got = [(u.kind, u.number, u.title, u.statement, u.proof, u.source) for u in units]
    assert got == [
        ("exercise", "1.1a", "", "Prove that $\\sqrt{2}$ is irrational.", "Suppose not.", "main.tex:5-8"),
        ("exercise", "1.2", "", "Show that there are infinitely many primes.", "", "main.tex:10-10"),
        (
            "theorem",
            "2.3",
            "Cantor",
            "Every set is smaller than its power set.",
            "Diagonalize, as in Exercise 1.2.",
            "main.tex:12-15",
        ),
    ]
    assert units[2].text_refs == [("exercise", "1.2")]


def test_textual_references_resolved_against_numbers_and_order(tmp_path: Path) -> None:
    units, _ = units_of("textual")
    refs = {u.label: u.text_refs for u in units}
    assert refs == {
        "l1": [],
        "l2": [("lemma", "1.1")],  # "the previous lemma"
        "t3": [("lemma", "1.1"), ("lemma", "1.2")],  # "Lemmas 1.1 and 1.2" (in the proof)
        "c4": [("theorem", "1.3")],  # "the theorem above"
        "t5": [("theorem", "1.3")],  # "Theorem~1.3"; "Theorem 3 above" names nothing in chapter 2; no Lemma 9.9
        "c6": [("lemma", "2.3")],  # "the following lemma"
        "l7": [],
    }
    store = Store(tmp_path / "s.sqlite")
    store_book(store, "tx", read_book(FIXTURES / "textual" / "main.tex"))
    deps = dep_labels(store, store.book("tx").id)
    assert deps["c6"] == {"l7"} and deps["t3"] == {"l1", "l2"}
    assert {via for _, _, via in store.deps(store.book("tx").id)} == {"text"}


def test_openlogic_style_labels_references_tags_and_tokens() -> None:
    units, warnings = units_of("ollike")
    assert warnings == []
    got = [(u.kind, u.number, u.label, u.refs) for u in units]
    assert got == [
        ("theorem", "1.1", "fol:log:sem:thm:a", []),
        ("proposition", "1.2", "fol:log:sem:prop:b", ["fol:log:sem:thm:a", "fol:log:sem:thm:q"]),
        ("theorem", "1.3", "fol:log:sem:thm:q", []),
        # the same file again with the FOL tag off: other labels, and the FOL-only theorem left out
        ("theorem", "1.4", "pl:log:sem:thm:a", []),
        ("proposition", "1.5", "pl:log:sem:prop:b", ["pl:log:sem:thm:a"]),
    ]
    assert units[0].statement == "Every formula is an element of the set of formulas; Formulas are finite."
    assert units[0].statement_raw.startswith("Every !!{formula} is !!a{element}")
    assert units[0].section == "Semantics of formulas" and units[0].chapter == "Logic"
    assert units[0].source == "content/fol.tex:5-7"


def test_stray_end_and_unknown_macros_do_not_stop_the_reader(tmp_path: Path) -> None:
    root = _write_root(
        tmp_path / "b",
        "\\end{theorem}\n\\weird[1]{2}{\\begin{theorem}\\label{t0}Zero.\\end{theorem}}\n"
        "\\begin{theorem}\\label{t1}\nOne \\mystery{x}.\n\\end{theorem}\n\\end{lemma}\n",
    )
    result = read_book(root)
    assert [u.label for u in result.units] == ["t0", "t1"]
    assert result.units[1].statement == "One \\mystery{x}."


def test_binary_root_file_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "book.tex"
    f.write_bytes(b"\\documentclass{article}\x00\x01\x02")
    with pytest.raises(IngestError, match="binary"):
        read_book(f)


def test_configured_environment_names_override_and_add_proofs(tmp_path: Path) -> None:
    from autoform.ingest.latex import ingest_latex

    root = tmp_path / "main.tex"
    root.write_text(
        "\\documentclass{article}\n\\newtheorem{thm}{Theorem}\n\\providecommand{\\lemmaname}{Lemma}\n"
        "\\newtheorem{lm}[thm]{\\lemmaname}\n\\begin{document}\n"
        "\\begin{thm}\\label{a} A. \\end{thm}\n\\begin{argument} Because. \\end{argument}\n"
        "\\begin{lm} B. \\end{lm}\n\\end{document}\n",
        encoding="utf-8",
    )
    result = ingest_latex(root, env_map={"argument": "proof", "thm": "proposition"})
    assert [(u.kind, u.number, u.proof) for u in result.units] == [("proposition", "1", "Because."), ("lemma", "2", "")]
