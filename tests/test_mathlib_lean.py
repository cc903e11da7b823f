"""The declaration index read from Lean's own environment (``autoform mathlib index --from-lean``).

Without Lean, the Python side is tested on lines in the format ``DumpDecls.lean`` prints (its own JSON objects,
written by Lean's ``Json.compress``: no spaces, non-ASCII kept); the Lean side runs in the ``lean``-marked test,
skipped where ``lake`` is absent.
"""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, needs_lean

from autoform.config import LeanConfig, Settings
from autoform.errors import MissingError
from autoform.mathlib.from_lean import SCRIPT, LeanExportFailed, build_from_lean, merge_source, parse_lines
from autoform.mathlib.index import MathlibIndex
from autoform.mathlib.search import lookup
from autoform.mathlib.source import Decl


def line(**fields: object) -> str:
    base = {"name": "", "kind": "theorem", "type": "", "module": "Mathlib.Logic.Basic", "line": 0, "doc": ""}
    base |= {"deprecated": False, "deprecated_to": None} | fields
    return json.dumps(base, ensure_ascii=False, separators=(",", ":"))


LINES = [
    line(name="not_not", type="∀ {a : Prop},\n  ¬¬a ↔ a", line=41, doc="Double negation.\n\nClassical."),
    line(name="Nat.Prime", kind="def", type="ℕ → Prop", module="Mathlib.Data.Nat.Prime.Defs"),
    line(name="Prod.mk.injEq", type="∀ {α β} (fst : α) (snd : β) ..., ((fst, snd) = (fst', snd')) = ...", line=0),
    line(name="Subgroup.mk", kind="constructor", type="..."),
    line(name="Subgroup.rec", kind="recursor", type="..."),
    line(name="old_name", deprecated=True, deprecated_to="not_not", type="∀ {a : Prop}, ¬¬a ↔ a"),
    "",
]


def test_lines_become_declarations_with_lean_s_types():
    decls = {d.name: d for d in parse_lines(LINES)}
    assert set(decls) == {"not_not", "Nat.Prime", "Prod.mk.injEq", "Subgroup.mk", "old_name"}  # recursors dropped
    assert decls["not_not"].signature == ": ∀ {a : Prop}, ¬¬a ↔ a"  # one line, as the index stores signatures
    assert decls["not_not"].doc == "Double negation. Classical."
    assert (decls["not_not"].line, decls["not_not"].module) == (41, "Mathlib.Logic.Basic")
    assert decls["Subgroup.mk"].kind == "def"  # a constructor is searched like a definition
    assert decls["Prod.mk.injEq"].kind == "theorem"  # a name Lean generates, kept
    assert (decls["old_name"].deprecated, decls["old_name"].deprecated_to) == (True, "not_not")
    assert decls["Nat.Prime"].deprecated_to is None


def test_a_line_that_is_not_a_declaration_names_itself():
    with pytest.raises(LeanExportFailed, match=r"line 2: not a declaration"):
        list(parse_lines([LINES[0], "uncaught exception: out of memory"]))
    with pytest.raises(LeanExportFailed, match=r"line 1"):
        list(parse_lines(['{"name": "x"}']))  # a truncated object is no declaration either


def test_merge_keeps_the_source_s_attributes_and_docs():
    lean = list(parse_lines(LINES))
    source = [
        Decl(name="not_not", kind="theorem", signature="{a : Prop} : ¬¬a ↔ a", module="M", line=1, attrs=["simp"]),
        Decl(name="Nat.Prime", kind="def", signature="(p : ℕ) : Prop", module="M", line=2, doc="Primes.", attrs=[]),
    ]
    merged = {d.name: d for d in merge_source(lean, source)}
    assert merged["not_not"].attrs == ["simp"]
    assert merged["not_not"].doc == "Double negation. Classical."  # Lean's own docstring wins
    assert merged["Nat.Prime"].doc == "Primes."  # where Lean had none
    assert merged["Prod.mk.injEq"].attrs == []


def test_without_lake_it_says_what_is_missing(tmp_path):
    s = Settings(home=tmp_path, lean=LeanConfig(lake_path=str(tmp_path / "no-such-lake"), project_dir=str(ROOT)))
    index = MathlibIndex(tmp_path / "index.sqlite")
    try:
        with pytest.raises(MissingError, match=r"--from-lean needs Lean: Lean's build tool .* was not found"):
            build_from_lean(index, s, roots=["Mathlib"], source=None)
    finally:
        index.close()


def test_the_script_is_shipped_with_the_package():
    text = SCRIPT.read_text(encoding="utf-8")
    assert SCRIPT.parent.name == "mathlib" and "def main (args : List String) : IO UInt32" in text
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"mathlib/*.lean"' in pyproject  # package data: installed beside the module that runs it


@pytest.mark.lean
@needs_lean
def test_lean_exports_a_module_s_declarations(tmp_path):
    """Real Lean: the declarations of one Mathlib module, with elaborated types and deprecations."""
    s = Settings(home=ROOT)
    index = MathlibIndex(tmp_path / "index.sqlite")
    try:
        n = build_from_lean(index, s, roots=["Mathlib.Logic.Basic"], source=None)
        assert n > 200
        hit = index.get("not_not")
        assert hit is not None and "¬¬" in hit.signature and hit.module == "Mathlib.Logic.Basic"
        assert hit.line > 0
        answer = lookup(index, "not_not")
        assert answer.status == "exists"
    finally:
        index.close()
