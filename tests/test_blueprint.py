"""Lean Blueprint semantics: node states, the LaTeX export (\\lean, \\leanok, \\uses), the chapter graph SVG,
and the `autoform atlas blueprint` / `autoform atlas docs` commands."""

from __future__ import annotations

import re
import stat
import time
from pathlib import Path
from xml.etree import ElementTree

import networkx as nx
import pytest
from conftest import SAMPLE_BOOK, autoform
from test_site import _make_store

from autoform.blueprint import (
    BORDER_CAN_STATE,
    BORDER_STATED,
    FILL_CAN_PROVE,
    FILL_DEFINED,
    FILL_FULLY_PROVED,
    FILL_PROVED,
    NODE_H,
    blueprint_labels,
    chapter_graph_svg,
    export_blueprint,
    layout,
    node_states,
    render_blueprint,
    statement_uses,
)
from autoform.graph import book_graph
from autoform.store import Store, Unit

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def store(tmp_path) -> Store:
    return _make_store(tmp_path)


def _states(store: Store):
    units = store.units(1)
    g = book_graph(store, 1)
    return g, units, node_states(g, units, {u.id: store.atlas_entry(u.id) for u in units})


def test_node_states_follow_blueprint_meanings(store):
    g, units, st = _states(store)
    # 1 defined, uses nothing: green border, and (all ancestors done) dark green
    assert (st[1].border, st[1].fill) == (BORDER_STATED, FILL_FULLY_PROVED)
    # 2 proved, uses 1 (defined): dark green as well
    assert st[2].proved and (st[2].border, st[2].fill) == (BORDER_STATED, FILL_FULLY_PROVED)
    # 3 stated (no proof), uses 2: green border, blue background (the proof is ready to be formalized)
    assert (st[3].border, st[3].fill) == (BORDER_STATED, FILL_CAN_PROVE) and not st[3].proved
    # 4 failed, uses 1 and 2 (both formalized): blue border and background, marked failed
    assert (st[4].border, st[4].fill) == (BORDER_CAN_STATE, FILL_CAN_PROVE) and st[4].failed
    # 5 pending, uses nothing: ready
    assert st[5].border == BORDER_CAN_STATE and st[5].summary == "ready to be formalized"


def test_node_states_not_ready_and_partial_proofs(store):
    with store.tx() as c:
        c.execute("DELETE FROM atlas_entries WHERE unit_id = 1")  # the definition is no longer formalized
        c.execute("UPDATE units SET status = 'pending' WHERE id = 4")
    g, units, st = _states(store)
    assert (st[1].border, st[1].fill) == (BORDER_CAN_STATE, "")
    # 2 is still proved, but an ancestor is not formalized: light green, not dark green
    assert (st[2].border, st[2].fill) == (BORDER_STATED, FILL_PROVED)
    # 4 uses 1, which is not formalized: neither ready to state nor to prove
    assert (st[4].border, st[4].fill) == ("", "") and "not ready" in st[4].summary
    with store.tx() as c:
        c.execute("INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code,"
                  " created_at) VALUES (1, 1, 'square', 'defined', 'def square', 'def square := 1', 1.0)")
        c.execute("UPDATE atlas_entries SET status = 'stated' WHERE unit_id = 2")
    g, units, st = _states(store)
    assert st[1].fill == FILL_FULLY_PROVED
    with store.tx() as c:
        c.execute("INSERT INTO units (id, book_id, ident, seq, kind, number, statement) "
                  "VALUES (7, 1, 'def:x', 7, 'definition', '3.1', 'x')")
        c.execute("INSERT INTO unit_deps (unit_id, dep_id) VALUES (7, 2)")
        c.execute("INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code,"
                  " created_at) VALUES (7, 1, 'x', 'defined', 'def x', 'def x := 1', 1.0)")
    g, units, st = _states(store)
    assert st[7].fill == FILL_DEFINED  # a formalized definition whose ancestors are not all proved


def test_statement_uses():
    def unit(uid: int, kind: str, number: str, label: str, statement: str, proof: str = "") -> Unit:
        return Unit(id=uid, book_id=1, ident=label or str(uid), seq=uid, kind=kind, number=number, label=label,
                    statement=statement, proof=proof)

    d = unit(1, "definition", "1.1", "def:a", "A thing.")
    lem = unit(2, "lemma", "1.2", "lem:b", "Fact.")
    thm = unit(3, "theorem", "1.3", "thm:c", r"For $x$ as in \ref{def:a}, by Lemma~1.2.", proof=r"Use \cref{lem:b}.")
    other = unit(4, "theorem", "1.4", "", "Plain.", proof=r"By \ref{def:a}.")
    assert statement_uses(thm, d) and statement_uses(thm, lem)
    assert not statement_uses(other, d)  # only cited in the proof
    assert statement_uses(unit(5, "definition", "", "", "x", ""), d)  # definitions have no proof
    assert not statement_uses(unit(6, "theorem", "", "", "By Lemma 1.21.", "p"), lem)


def test_blueprint_tex(store):
    text, n, ok = render_blueprint(store, store.book("numbers"))
    assert (n, ok) == (5, 3)
    assert "\\chapter{1 Numbers}" in text and "\\section{1.1 Squares}" in text
    # a definition in the Atlas: \lean with the full name, \leanok, no proof environment
    defn = text[text.index("\\begin{definition}"): text.index("\\end{definition}")]
    assert "\\label{def:square}" in defn and "\\lean{Atlas.Numbers.Numbers.square}" in defn and "\\leanok" in defn
    # a proved theorem: \leanok on the statement and on the proof; its uses
    thm = text[text.index("\\label{thm:sq}"):]
    thm_stmt, thm_proof = thm.split("\\begin{proof}", 1)
    assert "\\leanok" in thm_stmt and "\\uses{def:square}" in thm_stmt  # cited in the statement
    assert thm_proof.split("\\end{proof}")[0].lstrip().startswith("\\leanok")
    assert "\\begin{theorem}[{Squares are $\\ge 0$}]" in text
    # stated only: \leanok on the statement, not on the proof; the hostile label made safe and unique
    lem = text[text.index("\\begin{lemma}"):]
    lem_stmt, lem_proof = lem.split("\\begin{proof}", 1)
    assert "\\label{lem:-x-}" in lem_stmt and "\\leanok" in lem_stmt
    assert "\\leanok" not in lem_proof.split("\\end{proof}")[0]
    # failed and pending: no \lean, no \leanok; failed uses both (statement without proof: statement uses)
    fail = text[text.index("\\label{thm:fail}"):text.index("\\label{autoform:thm:todo}")]
    assert "\\lean{" not in fail and "\\leanok" not in fail and "\\uses{def:square, thm:sq}" in fail
    # no second \label from the book's own text, and every \uses names a label of the blueprint
    labels = re.findall(r"\\label\{([^}]*)\}", text)
    assert len(labels) == len(set(labels)) == 5
    for uses in re.findall(r"\\uses\{([^}]*)\}", text):
        assert set(uses.split(", ")) <= set(labels)
    assert text.count("\\begin{proof}") == text.count("\\end{proof}") == 4


def test_blueprint_labels_unique_and_safe():
    units = [Unit(id=i, book_id=1, ident=f"u{i}", seq=i, kind="lemma", label=lab, statement="x")
             for i, lab in enumerate(["a b", "a-b", "", "ok:1", "{x}"], start=1)]
    labels = blueprint_labels(units)
    assert labels == {1: "a-b", 2: "a-b-2", 3: "autoform:u3", 4: "ok:1", 5: "-x-"}


def test_export_is_deterministic(store, tmp_path):
    a = export_blueprint(store, tmp_path / "a")
    b = export_blueprint(store, tmp_path / "b")
    assert a.path == tmp_path / "a" / "src" / "content.tex"
    assert a.path.read_bytes() == b.path.read_bytes()
    assert "\\part{" not in a.path.read_text()  # one book with units (the empty one is left out)
    assert a.books == 1 and a.units == 5 and a.leanok == 3


def _svg(store: Store, chapter: str) -> tuple[str, ElementTree.Element]:
    g, units, st = _states(store)
    members = [u for u in units if u.chapter == chapter]
    svg = chapter_graph_svg(g, members, {u.id: u for u in units}, st, {u.id: f"{u.id}.html" for u in units},
                            graph_id="graph-x", title=chapter)
    return svg, ElementTree.fromstring(svg)


def test_chapter_graph_svg(store):
    svg, root = _svg(store, "2 <i>Hostile</i>")
    assert "<i>" not in svg and "&lt;i&gt;Hostile" in svg and "&lt;b&gt;bold&lt;/b&gt;" in svg
    nodes = {int(a.get("data-unit")): a for a in root.iter(f"{SVG}a")}
    assert set(nodes) == {1, 2, 3, 4, 5}  # the chapter's units and the ones of chapter 1 they use
    assert {n for n, a in nodes.items() if "external" in a.get("class")} == {1, 2}
    assert all(a.get("href") == f"{n}.html" for n, a in nodes.items())
    assert nodes[1].find(f"{SVG}rect") is not None and nodes[2].find(f"{SVG}ellipse") is not None  # box, ellipse
    assert nodes[3].find(f"{SVG}ellipse").get("stroke") == BORDER_STATED
    assert nodes[3].find(f"{SVG}ellipse").get("fill") == FILL_CAN_PROVE
    assert "failed" in nodes[4].get("class") and nodes[4].find(f"{SVG}text").text == "Thm 2.1"
    edges = {(int(p.get("data-from")), int(p.get("data-to"))): p for p in root.iter(f"{SVG}path")
             if p.get("class") == "edge"}
    # 4 uses 1 and 2, 2 uses 1 (in chapter 1: not drawn here), 3 uses 2 (by text, in its proof)
    assert set(edges) == {(1, 4), (2, 4), (2, 3)}
    assert edges[(2, 3)].get("stroke-dasharray") is None  # proof use: solid
    assert edges[(1, 4)].get("stroke-dasharray") == "5 4"  # statement use: dashed
    assert svg == _svg(store, "2 <i>Hostile</i>")[0]  # deterministic


def _dag(edges: list[tuple[int, int]], n: int) -> nx.DiGraph:
    h = nx.DiGraph()
    for i in range(1, n + 1):
        h.add_node(i, seq=i, text=f"Thm {i}", box=False)
    h.add_edges_from(edges)
    return h


def test_layout_layers_and_no_overlap():
    # 5 uses 4 uses 3 uses 2 uses 1, and 5 uses 1 directly: a long edge with bend points
    h = _dag([(2, 1), (3, 2), (4, 3), (5, 4), (5, 1), (6, 1)], 6)
    lay = layout(h)
    ys = {n: lay.nodes[n].y for n in h}
    assert ys[1] < ys[2] < ys[3] < ys[4] < ys[5]  # what is used sits above what uses it
    assert ys[6] == ys[2]
    assert len(lay.routes[(5, 1)]) == 5  # 1, a bend point in each of the three layers between, 5
    by_row: dict[float, list] = {}
    for p in lay.nodes.values():
        by_row.setdefault(p.y, []).append(p)
    for row in by_row.values():
        row.sort(key=lambda p: p.x)
        for a, b in zip(row, row[1:], strict=False):
            assert a.x + a.w / 2 <= b.x - b.w / 2  # nothing overlaps within a layer
    assert lay.height >= 5 * NODE_H and all(p.x - p.w / 2 >= 0 and p.x + p.w / 2 <= lay.width
                                            for p in lay.nodes.values())


def test_graph_with_a_cycle_is_drawn(store):
    with store.tx() as c:
        c.execute("INSERT INTO unit_deps (unit_id, dep_id, via) VALUES (1, 2, 'text')")  # 1 <-> 2
    svg, root = _svg(store, "1 Numbers")
    assert len([a for a in root.iter(f"{SVG}a")]) == 2
    assert len([p for p in root.iter(f"{SVG}path") if p.get("class") == "edge"]) == 1


# -- the commands ------------------------------------------------------------------------------------------------------
def _home_with_book(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    autoform(home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    store = Store(home / "autoform.sqlite")
    book = store.book("ent")
    units = {u.label: u for u in store.units(book.id)}
    with store.tx() as c:
        c.execute("INSERT INTO jobs (id, book_id, status, started_at) VALUES (1, ?, 'done', ?)", (book.id, time.time()))
        c.execute("INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code, job_id,"
                  " model, attempts, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                  (units["def:even"].id, book.id, "IsEven", "defined", "def IsEven (n : ℤ) : Prop",
                   "def IsEven (n : ℤ) : Prop := ∃ k, n = 2 * k", 1, "m", 1, 1.0))
    store.close()
    return home


def test_cli_blueprint(tmp_path):
    home = _home_with_book(tmp_path)
    out = tmp_path / "bp"
    r = autoform(home, "atlas", "blueprint", "--out", str(out), check=True)
    assert "39 units, 1 in Lean" in r.stdout
    text = (out / "src" / "content.tex").read_text()
    assert "\\chapter{Elementary Number Theory}" in text
    assert "\\lean{Atlas.Ent.IsEven}\n\\leanok" in text
    assert text.count("\\begin{proof}") >= 30 and "\\uses{def:even}" in text
    r = autoform(home, "atlas", "blueprint", "--out", str(out), "--book", "nope")
    assert r.returncode == 2 and "no book 'nope'" in r.stderr and "Traceback" not in r.stderr
    for cmd in ("blueprint", "docs"):
        r = autoform(home, "atlas", cmd, "--help")
        assert r.returncode == 0 and "Usage" in r.stdout


def _standin_lake(tmp_path: Path, *, update_ok: bool = True) -> Path:
    """A `lake` that logs its arguments and working directory, fetches a fake doc-gen4 on `update` and writes
    an index.html on `build ...:docs`."""
    log = tmp_path / "lake.log"
    script = tmp_path / "bin" / "lake"
    script.parent.mkdir()
    update = ('mkdir -p ../.lake/packages/doc-gen4; echo "updated doc-gen4"; exit 0' if update_ok
              else 'echo "error: could not reach github.com" >&2; exit 1')
    script.write_text(f"""#!/bin/sh
echo "$PWD|$*|MATHLIB_NO_CACHE_ON_UPDATE=${{MATHLIB_NO_CACHE_ON_UPDATE:-}}" >> '{log}'
case "$1" in
  update) {update} ;;
  build) mkdir -p .lake/build/doc && echo '<html>docs</html>' > .lake/build/doc/index.html
         echo "Build completed"; exit 0 ;;
  *) exit 1 ;;
esac
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _use_lake(home: Path, lake: Path) -> None:
    (home / "autoform.toml").write_text(f'[lean]\nlake_path = "{lake}"\n')
    (home / "lakefile.lean").write_text("-- the workspace\n")
    (home / "lean-toolchain").write_text("leanprover/lean4:v4.24.0\n")


def test_cli_docs_without_lake_says_how_to_get_it(tmp_path):
    home = _home_with_book(tmp_path)
    (home / "autoform.toml").write_text(f'[lean]\nlake_path = "{tmp_path / "no-such" / "lake"}"\n')
    r = autoform(home, "atlas", "docs")
    assert r.returncode == 3
    assert "Traceback" not in r.stderr + r.stdout
    assert "lake" in r.stderr and "elan" in r.stderr


def test_cli_docs_without_docgen_then_fetch_and_build(tmp_path):
    home = _home_with_book(tmp_path)
    lake = _standin_lake(tmp_path)
    _use_lake(home, lake)
    r = autoform(home, "atlas", "docs")
    assert r.returncode == 3 and "Traceback" not in r.stderr
    err = " ".join(r.stderr.split())
    assert "doc-gen4 is not installed" in err and "--fetch" in err
    assert not (tmp_path / "lake.log").exists()  # nothing downloaded without --fetch
    toml = (home / "docbuild" / "lakefile.toml").read_text()
    assert 'name = "doc-gen4"' in toml and 'rev = "v4.24.0"' in toml and 'path = "../"' in toml
    assert 'packagesDir = "../.lake/packages"' in toml
    assert (home / "docbuild" / "lean-toolchain").read_text() == "leanprover/lean4:v4.24.0\n"

    r = autoform(home, "atlas", "docs", "--fetch")
    assert r.returncode == 0, r.stderr
    calls = (tmp_path / "lake.log").read_text().splitlines()
    assert calls == [f"{home / 'docbuild'}|update doc-gen4|MATHLIB_NO_CACHE_ON_UPDATE=1",
                     f"{home / 'docbuild'}|build Atlas:docs AtlasStated:docs|MATHLIB_NO_CACHE_ON_UPDATE="]
    assert "docbuild/.lake/build/doc" in " ".join(r.stdout.split()).replace("\n", "")
    assert (home / "atlas" / "Atlas.lean").exists()  # the Atlas is written before its docs are built
    db = Store(home / "autoform.sqlite")
    assert [tuple(r) for r in db.query("SELECT ok, command FROM builds")] == [
        (1, f"{lake} build Atlas:docs AtlasStated:docs")]

    r = autoform(home, "atlas", "docs")  # installed now: no fetch needed
    assert r.returncode == 0, r.stderr


def test_cli_docs_fetch_failure_is_reported(tmp_path):
    home = _home_with_book(tmp_path)
    _use_lake(home, _standin_lake(tmp_path, update_ok=False))
    r = autoform(home, "atlas", "docs", "--fetch")
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert "could not reach github.com" in r.stdout and "fetching doc-gen4 failed" in " ".join(r.stderr.split())
