"""The Atlas library files: deterministic, atomic, namespaced, with docstrings and provenance."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from conftest import SAMPLE_BOOK, needs_lean

from autoform.atlas import (
    build_atlas,
    chapter_modules,
    full_decl_name,
    lean_ident,
    module_paths,
    render_book,
    write_atlas,
)
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
        job = c.execute(
            "INSERT INTO jobs (book_id, status, started_at) VALUES (?, 'done', ?)", (book.id, time.time())
        ).lastrowid

        def add(label, name, status, code):
            c.execute(
                "INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code,"
                " job_id, model, attempts, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (units[label].id, book.id, name, status, code.split(" :=")[0], code, job, "m", 1, 1.0),
            )

        # inserted out of book order on purpose
        add(
            "lem:even-add",
            "isEven_add",
            "proved",
            "theorem isEven_add {m n : ℤ} (hm : IsEven m) (hn : IsEven n) : IsEven (m + n) := by\n  omega",
        )
        add("def:even", "IsEven", "defined", "def IsEven (n : ℤ) : Prop := ∃ k, n = 2 * k")
        add(
            "thm:bezout",
            "bezout",
            "stated",
            "theorem bezout (a b : ℤ) : ∃ x y, a * x + b * y = Int.gcd a b := by\n  sorry",
        )
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
    # a module imports what its units were checked with: bezout depends on no admitted unit
    assert "theorem bezout" in stated and "import Atlas.Ent" not in stated


def test_write_is_deterministic_and_atomic(setup):
    s, store, book = setup
    changed = write_atlas(store, s)
    assert {p.relative_to(s.atlas_dir).as_posix() for p in changed} == {
        "Atlas.lean",
        "AtlasStated.lean",
        "Atlas/Ent/ElementaryNumberTheory.lean",
        "AtlasStated/Ent/ElementaryNumberTheory.lean",
    }
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


def _entry_code(store, unit_id: int, code: str, name: str) -> None:
    with store.tx() as c:
        c.execute("UPDATE atlas_entries SET lean_code = ?, decl_name = ? WHERE unit_id = ?", (code, name, unit_id))


def test_docstring_goes_on_the_main_declaration(setup):
    s, store, book = setup
    units = {u.label: u for u in store.units(book.id)}
    uid = units["lem:even-add"].id
    code = (
        "/-- helper -/\ntheorem aux_two : (2 : ℤ) = 1 + 1 := by norm_num\n\n"
        "/-- The model's own doc. -/\n@[simp] theorem isEven_add {m n : ℤ} (hm : IsEven m) (hn : IsEven n) :"
        " IsEven (m + n) := by\n  omega"
    )
    _entry_code(store, uid, code, "isEven_add")
    path = module_paths(store, book)[uid]
    assert path == "Atlas/Ent/ElementaryNumberTheory/IsEvenAdd.lean"  # a global @[simp]: a module of its own
    main = render_book(store, book, "import Mathlib")[path]
    aux = main.index("/-- helper -/\ntheorem aux_two")  # the auxiliary lemma keeps its own docstring
    ours = main.index("/-- If $m, n")
    assert aux < ours < main.index("@[simp] theorem isEven_add")
    doc = main[ours : main.index("@[simp] theorem isEven_add")]
    assert doc.rstrip().endswith("The model's own doc.\n-/")  # merged: Lean allows one docstring
    assert doc.count("/--") == 1 and "Source: ent, Lemma 1.3, label `lem:even-add`" in doc
    assert "autoform job" in doc and "model m, 1 attempt(s); status proved" in doc
    assert "Kind: lemma; number: 1.3; chapter: Elementary Number Theory / Parity" in doc


def test_comment_markers_in_book_text_cannot_end_the_docstring(setup):
    s, store, book = setup
    units = {u.label: u for u in store.units(book.id)}
    with store.tx() as c:
        c.execute(
            "UPDATE units SET statement = ?, chapter = ? WHERE id = ?",
            ("Evil -/ #eval IO.println 1 /- open $a/-b$", "Ch -/ x", units["def:even"].id),
        )
        c.execute("UPDATE books SET title = ? WHERE id = ?", ("Book -/ title", book.id))
    book = store.book("ent")
    files = render_book(store, book, "import Mathlib")
    text = "\n".join(files.values())
    assert "Evil - / #eval IO.println 1 / - open $a/ -b$" in text
    assert "# Book - / title: Ch - / x" in text
    for body in files.values():  # every block comment closes where it should: no stray "-/" or "/-" inside
        for m in re.finditer(r"/-[-!]?(.*?)-/", body, re.S):
            assert "/-" not in m.group(1) and "-/" not in m.group(1)


def test_library_roots_in_textbook_order(setup):
    s, store, book = setup
    units = store.units(book.id)
    with store.tx() as c:  # a later chapter whose module name sorts first
        c.execute("UPDATE units SET chapter = 'Appendix' WHERE id = ?", (units[-1].id,))
        c.execute(
            "INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code,"
            " created_at) VALUES (?,?,?,?,?,?,?)",
            (units[-1].id, book.id, "last", "proved", "theorem last : True", "theorem last : True := trivial", 1.0),
        )
    write_atlas(store, s)
    assert (s.atlas_dir / "Atlas.lean").read_text() == (
        "import Atlas.Ent.ElementaryNumberTheory\nimport Atlas.Ent.Appendix\n"
    )
    appendix = (s.atlas_dir / "Atlas" / "Ent" / "Appendix.lean").read_text()
    # only what its units were checked with is imported (tests/test_atlas_modules.py): `last` uses nothing
    assert "import Atlas.Ent.ElementaryNumberTheory\n" not in appendix
    assert write_atlas(store, s) == []


def test_full_decl_name(setup):
    s, store, book = setup
    e = store.atlas_entries(book.id)[0]
    assert full_decl_name(book, e) == "Atlas.Ent.IsEven"
    assert full_decl_name(book, e.model_copy(update={"decl_name": "Atlas.Ent.IsEven"})) == "Atlas.Ent.IsEven"


def _fake_lake(tmp_path: Path, code: int) -> Path:
    script = tmp_path / "fake-lake"
    script.write_text(f'#!/bin/sh\necho "lake $* in $PWD"\nexit {code}\n')
    script.chmod(0o755)
    return script


@pytest.mark.parametrize("code", [0, 1])
def test_build_runs_lake_and_records_the_result(setup, tmp_path, code):
    s, store, book = setup
    s = Settings(home=s.home, lean={"lake_path": str(_fake_lake(tmp_path, code))})
    ok, output = build_atlas(store, s)
    assert ok is (code == 0)
    assert f"lake build Atlas AtlasStated in {s.home}" in output
    rows = store.query("SELECT ok, command, output FROM builds")
    assert [(r["ok"], r["command"]) for r in rows] == [(int(code == 0), f"{s.lean.lake_path} build Atlas AtlasStated")]
    assert "lake build" in rows[0]["output"]


def test_build_without_lake_is_recorded_as_failed(setup, tmp_path):
    s, store, book = setup
    s = Settings(home=s.home, lean={"lake_path": str(tmp_path / "no-such-lake")})
    ok, output = build_atlas(store, s)
    assert not ok and "not found" in output
    assert store.query("SELECT ok FROM builds")[0]["ok"] == 0


LAKEFILE = """import Lake
open Lake DSL

package autoform

@[default_target]
lean_lib Atlas where
  srcDir := "atlas"
  roots := #[`Atlas]

lean_lib AtlasStated where
  srcDir := "atlas"
  roots := #[`AtlasStated]
"""


@pytest.mark.lean
@needs_lean
def test_generated_library_builds_with_real_lake(tmp_path):
    """Core Lean only (no Mathlib): the generated modules, docstrings and namespaces elaborate."""
    import subprocess

    s = Settings(home=tmp_path, lean={"header": ""})
    tc = subprocess.run(["lean", "--version"], capture_output=True, text=True)
    if tc.returncode != 0:
        pytest.skip("`lean` is not runnable")
    (tmp_path / "lakefile.lean").write_text(LAKEFILE)
    store = Store(s.db_path)
    ingest(store, SAMPLE_BOOK, "ent")
    book = store.book("ent")
    units = {u.label: u for u in store.units(book.id)}
    with store.tx() as c:
        job = c.execute("INSERT INTO jobs (book_id, status, started_at) VALUES (?, 'done', 1.0)", (book.id,)).lastrowid
        for label, name, status, code in [
            ("def:even", "IsEven", "defined", "def IsEven (n : Int) : Prop := ∃ k, n = 2 * k"),
            (
                "lem:even-add",
                "isEven_add",
                "proved",
                "theorem isEven_add {m n : Int} (hm : IsEven m) (hn : IsEven n) : IsEven (m + n) := by\n"
                "  obtain ⟨a, rfl⟩ := hm\n  obtain ⟨b, rfl⟩ := hn\n  exact ⟨a + b, by omega⟩",
            ),
            (
                "thm:bezout",
                "bezout",
                "stated",
                "theorem bezout (a b : Int) : ∃ x y : Int, a * x + b * y = a := by\n  sorry",
            ),
        ]:
            c.execute(
                "INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code,"
                " job_id, model, attempts, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (units[label].id, book.id, name, status, code.split(" :=")[0], code, job, "m", 1, 1.0),
            )
    write_atlas(store, s)
    ok, output = build_atlas(store, s)
    assert ok, output
