"""The Atlas library files: deterministic, atomic, namespaced, with docstrings and provenance."""

from __future__ import annotations

import time

import pytest
from conftest import SAMPLE_BOOK

from autoform.atlas import chapter_modules, lean_ident, render_book, write_atlas
from autoform.config import Settings
from autoform.ingest import ingest
from autoform.store import Store


@pytest.fixture
def setup(tmp_path):
    s = Settings(home=tmp_path)
    store = Store(s.db_path)
    ingest(store, SAMPLE_BOOK, "ent")
    book = store.book("ent")
    units = {u.label: u for u in store.units(book.id)}
    with store.tx() as c:
        job = c.execute("INSERT INTO jobs (book_id, status, started_at) VALUES (?, 'done', ?)",
                        (book.id, time.time())).lastrowid

        def add(label, name, status, code):
            c.execute("INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code,"
                      " job_id, model, attempts, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                      (units[label].id, book.id, name, status, code.split(" :=")[0], code, job, "m", 1, 1.0))

        # inserted out of book order on purpose
        add("lem:even-add", "isEven_add", "proved",
            "theorem isEven_add {m n : ℤ} (hm : IsEven m) (hn : IsEven n) : IsEven (m + n) := by\n  omega")
        add("def:even", "IsEven", "defined", "def IsEven (n : ℤ) : Prop := ∃ k, n = 2 * k")
        add("thm:bezout", "bezout", "stated",
            "theorem bezout (a b : ℤ) : ∃ x y, a * x + b * y = Int.gcd a b := by\n  sorry")
    return s, store, book


def test_names():
    assert lean_ident("elementary-number-theory", "Book") == "ElementaryNumberTheory"
    assert lean_ident("2nd edition", "Book") == "Book2ndEdition"
    assert lean_ident("", "Chapter") == "Chapter"


def test_files_order_namespace_docstrings(setup):
    s, store, book = setup
    files = render_book(store, book, "import Mathlib")
    main = files["Atlas/Ent/ElementaryNumberTheory.lean"]
    assert main.startswith("import Mathlib\n")
    assert "namespace Atlas.Ent" in main and main.rstrip().endswith("end Atlas.Ent")
    assert main.index("def IsEven") < main.index("theorem isEven_add")  # book order, not insertion order
    assert "sorry" not in main and "bezout" not in main  # stated statements are kept apart
    doc = main[: main.index("def IsEven")]
    assert "Source: ent, Definition 1.1, label `def:even`" in doc and "Span: main.tex:" in doc
    assert "\\mathbb{Z}" in doc  # the informal statement, as LaTeX
    stated = files["AtlasStated/Ent/ElementaryNumberTheory.lean"]
    assert "theorem bezout" in stated and "import Atlas.Ent.ElementaryNumberTheory" in stated


def test_write_is_deterministic_and_atomic(setup):
    s, store, book = setup
    changed = write_atlas(store, s)
    assert {p.relative_to(s.atlas_dir).as_posix() for p in changed} == {
        "Atlas.lean", "AtlasStated.lean", "Atlas/Ent/ElementaryNumberTheory.lean",
        "AtlasStated/Ent/ElementaryNumberTheory.lean"}
    snapshot = {p: p.read_bytes() for p in s.atlas_dir.rglob("*.lean")}
    mtimes = {p: p.stat().st_mtime_ns for p in snapshot}
    assert write_atlas(store, s) == []  # a rerun changes nothing
    assert {p: p.stat().st_mtime_ns for p in snapshot} == mtimes
    assert not [p for p in s.atlas_dir.rglob("*") if p.name.startswith(".")]  # no temporary files left
    assert (s.atlas_dir / "Atlas.lean").read_text() == "import Atlas.Ent.ElementaryNumberTheory\n"


def test_stale_modules_are_removed(setup):
    s, store, book = setup
    write_atlas(store, s)
    with store.tx() as c:
        c.execute("DELETE FROM atlas_entries WHERE status = 'stated'")
    changed = write_atlas(store, s)
    assert s.atlas_dir / "AtlasStated" / "Ent" / "ElementaryNumberTheory.lean" in changed
    assert not (s.atlas_dir / "AtlasStated" / "Ent" / "ElementaryNumberTheory.lean").exists()
    assert (s.atlas_dir / "AtlasStated.lean").read_text() == "-- no modules yet\n"


def test_chapter_modules_unique(setup):
    s, store, book = setup
    units = store.units(book.id)
    units[0].chapter = "Elementary Number Theory!"
    mods = chapter_modules(units)
    assert len(set(mods.values())) == len(mods)
