"""Atlas modules that build (issue 12, point 4), on the generated atlas/ text: helper lemmas get names reserved
per unit, each unit is closed in its own section, a chapter imports the chapters its units depend on (a later one
too), and the header's imports come first whatever else the header holds."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace

import pytest
from conftest import SAMPLE_BOOK

from autoform.atlas import render_book, write_atlas
from autoform.config import LeanConfig, Settings
from autoform.ingest import ingest
from autoform.pipeline import UnitPipeline, helper_names
from autoform.store import Store


@pytest.fixture
def book(tmp_path):
    s = Settings(home=tmp_path, lean=LeanConfig(header="import Mathlib\nopen Real\nset_option maxHeartbeats 400000"))
    store = Store(s.db_path)
    ingest(store, SAMPLE_BOOK, "ent")
    b = store.book("ent")
    return s, store, b


def _add(store, book, unit, name, code, status="proved"):
    with store.tx() as c:
        job = c.execute(
            "INSERT INTO jobs (book_id, status, started_at) VALUES (?, 'done', ?)", (book.id, time.time())
        ).lastrowid
        c.execute(
            "INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code,"
            " job_id, model, attempts, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (unit.id, book.id, name, status, code.split(" :=")[0], code, job, "m", 1, 1.0),
        )


def _two_chapters(store, book):
    units = store.units(book.id)
    first, later = units[0], units[-1]
    with store.tx() as c:
        c.execute("UPDATE units SET chapter = 'Later' WHERE id = ?", (later.id,))
        c.execute("INSERT OR IGNORE INTO unit_deps (unit_id, dep_id, via) VALUES (?,?,'ref')", (first.id, later.id))
    return store.unit(first.id), store.unit(later.id)


def test_a_dependency_in_a_later_chapter_is_imported_and_imports_come_first(book):
    s, store, b = book
    first, later = _two_chapters(store, b)
    _add(store, b, later, "base_fact", "theorem base_fact : True := trivial")
    _add(store, b, first, "uses_later", "theorem uses_later : True := base_fact")
    files = render_book(store, b, s.lean.header)
    text = files["Atlas/Ent/ElementaryNumberTheory.lean"]
    lines = text.splitlines()
    assert lines[:2] == ["import Mathlib", "import Atlas.Ent.Later"]  # every import before any other line
    last_import = max(i for i, ln in enumerate(lines) if ln.startswith("import "))
    assert last_import < lines.index("open Real") < lines.index("set_option maxHeartbeats 400000")
    assert lines.index("set_option maxHeartbeats 400000") < lines.index("namespace Atlas.Ent")
    # the later chapter imports nothing of the first: no import cycle
    assert "import Atlas.Ent.ElementaryNumberTheory" not in files["Atlas/Ent/Later.lean"]


def test_transitive_dependencies_and_the_stated_library(book):
    s, store, b = book
    units = store.units(b.id)
    a, mid, top = units[0], units[1], units[2]
    with store.tx() as c:
        c.execute("UPDATE units SET chapter = 'Second' WHERE id = ?", (a.id,))
        c.executemany(
            "INSERT OR IGNORE INTO unit_deps (unit_id, dep_id, via) VALUES (?,?,'ref')",
            [(top.id, mid.id), (mid.id, a.id)],
        )
    _add(store, b, store.unit(a.id), "a_fact", "theorem a_fact : True := trivial")
    _add(store, b, mid, "mid_fact", "theorem mid_fact : True := by\n  sorry", status="stated")
    _add(store, b, top, "top_fact", "theorem top_fact : True := a_fact")
    files = render_book(store, b, "import Mathlib")
    main = files["Atlas/Ent/ElementaryNumberTheory.lean"]
    assert "import Atlas.Ent.Second" in main  # through the stated unit: what the prelude carried
    assert "AtlasStated" not in main  # Atlas never imports the statements without proof
    stated = files["AtlasStated/Ent/ElementaryNumberTheory.lean"]
    assert "import Atlas.Ent.Second" in stated


def test_each_unit_is_closed_in_its_own_section(book):
    s, store, b = book
    units = store.units(b.id)
    _add(
        store,
        b,
        units[0],
        "one",
        "open Nat in\nattribute [local simp] Nat.add_comm\n\nvariable (n : ℕ)\n\ntheorem one : n + 0 = n := by simp",
    )
    _add(store, b, units[1], "two", "theorem two : True := trivial")
    text = render_book(store, b, "import Mathlib")["Atlas/Ent/ElementaryNumberTheory.lean"]
    body = text[text.index("namespace Atlas.Ent") :]
    blocks = re.findall(r"^section\n(.*?)^end\n", body, re.S | re.M)
    assert len(blocks) == 2
    assert "variable (n : ℕ)" in blocks[0] and "theorem one" in blocks[0]
    assert "theorem two" in blocks[1] and "variable" not in blocks[1]
    # the docstring sits inside the section, just before its declaration
    assert re.search(r"-/\ntheorem two", blocks[1])


def test_helper_lemmas_get_names_reserved_per_unit(book, tmp_path):
    s, store, b = book
    u1, u2 = store.units(b.id)[:2]
    pipe = SimpleNamespace(store=store, book=b)
    aux = "lemma key_lemma (n : ℕ) : n + 0 = n := by simp"
    proof = "exact key_lemma n"
    a1, p1 = UnitPipeline._reserve_helpers(pipe, u1, aux, proof)
    assert (a1, p1) == (aux, proof)  # first come: the name is the unit's
    a2, p2 = UnitPipeline._reserve_helpers(
        pipe, u2, aux + "\n\ntheorem key_lemma' : True := trivial", "exact key_lemma n"
    )
    assert a2.startswith("lemma key_lemma_2 (n") and "theorem key_lemma' :" in a2 and p2 == "exact key_lemma_2 n"
    assert helper_names(a2) == ["key_lemma_2", "key_lemma'"]
    # the same unit asking again keeps its name (racing attempts of one unit)
    assert UnitPipeline._reserve_helpers(pipe, u1, aux, proof) == (aux, proof)
    _add(store, b, u1, "t1", a1 + "\n\ntheorem t1 (n : ℕ) : n + 0 = n := by\n  " + p1)
    _add(store, b, u2, "t2", a2 + "\n\ntheorem t2 (n : ℕ) : n + 0 = n := by\n  " + p2)
    write_atlas(store, s)
    text = (s.atlas_dir / "Atlas" / "Ent" / "ElementaryNumberTheory.lean").read_text()
    declared = re.findall(r"^(?:lemma|theorem) (\S+)", text, re.M)
    assert sorted(declared) == sorted(set(declared)) and "key_lemma_2" in declared


def test_a_unit_with_a_global_effect_gets_a_module_of_its_own(book):
    """A global instance or @[simp] lemma is not closed by a section: its unit goes into a module of its own,
    which only the units that depend on it import, so the units after it are compiled as Lean checked them."""
    from autoform.atlas import global_effect, module_paths

    s, store, b = book
    u1, u2, u3 = store.units(b.id)[:3]
    with store.tx() as c:
        c.execute("INSERT OR IGNORE INTO unit_deps (unit_id, dep_id, via) VALUES (?,?,'ref')", (u3.id, u1.id))
    _add(store, b, u1, "inst_fact", "instance instFact : Fact (1 < 2) := ⟨by norm_num⟩")
    _add(store, b, u2, "plain", "theorem plain : True := trivial")
    _add(store, b, u3, "uses_inst", "@[simp] theorem uses_inst : (1 : ℕ) < 2 := Fact.out")
    files = render_book(store, b, "import Mathlib")
    chapter = files["Atlas/Ent/ElementaryNumberTheory.lean"]
    own1 = files["Atlas/Ent/ElementaryNumberTheory/InstFact.lean"]
    own3 = files["Atlas/Ent/ElementaryNumberTheory/UsesInst.lean"]
    assert "theorem plain" in chapter and "instFact" not in chapter and "uses_inst" not in chapter
    assert "import Atlas.Ent.ElementaryNumberTheory.InstFact" not in chapter  # `plain` was checked without it
    assert "instance instFact" in own1
    assert "import Atlas.Ent.ElementaryNumberTheory.InstFact" in own3  # its dependency, as when it was checked
    paths = module_paths(store, b)
    assert paths[u1.id] == "Atlas/Ent/ElementaryNumberTheory/InstFact.lean"
    assert paths[u2.id] == "Atlas/Ent/ElementaryNumberTheory.lean"
    write_atlas(store, s)
    root = (s.atlas_dir / "Atlas.lean").read_text()
    assert "import Atlas.Ent.ElementaryNumberTheory.InstFact" in root  # the library holds every module
    # what counts as global, and what a section does close
    assert global_effect("attribute [local simp] Nat.add_comm\ntheorem t : True := trivial") is None
    assert global_effect("local instance : Fact (1 < 2) := ⟨by norm_num⟩") is None
    assert global_effect("open Nat in\ntheorem t : True := trivial -- instance in a comment") is None
    assert global_effect("attribute [instance] foo") == "the attribute `instance`"
    assert global_effect("deriving instance Repr for Foo") == "`instance`"
    assert global_effect('notation "‖" x "‖" => abs x') == "`notation`"
    assert global_effect('local notation "‖" x "‖" => abs x') is None
