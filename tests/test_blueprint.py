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
    # 1 defined, uses nothing: green border, light green (leanblueprint never fills a definition dark green)
    assert (st[1].border, st[1].fill) == (BORDER_STATED, FILL_DEFINED)
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
    # a definition ready to be formalized: blue border and blue background (leanblueprint's fillcolorizer)
    assert (st[1].border, st[1].fill) == (BORDER_CAN_STATE, FILL_CAN_PROVE)
    # 2 is still proved; its only ancestor is a definition, which leanblueprint counts as done: dark green
    assert (st[2].border, st[2].fill) == (BORDER_STATED, FILL_FULLY_PROVED)
    # 4 uses 1, which is not formalized: neither ready to state nor to prove
    assert (st[4].border, st[4].fill) == ("", "") and "not ready" in st[4].summary
    with store.tx() as c:
        c.execute(
            "INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code,"
            " created_at) VALUES (1, 1, 'square', 'defined', 'def square', 'def square := 1', 1.0)"
        )
        c.execute("UPDATE atlas_entries SET status = 'stated' WHERE unit_id = 2")
    g, units, st = _states(store)
    assert st[1].fill == FILL_DEFINED
    # 2 is now stated only: its proof is not formalized, though everything it uses is (blue background)
    assert (st[2].border, st[2].fill) == (BORDER_STATED, FILL_CAN_PROVE) and not st[2].fully_proved
    with store.tx() as c:
        c.execute(
            "INSERT INTO units (id, book_id, ident, seq, kind, number, statement) "
            "VALUES (7, 1, 'def:x', 7, 'definition', '3.1', 'x')"
        )
        c.execute("INSERT INTO unit_deps (unit_id, dep_id) VALUES (7, 2)")
        c.execute(
            "INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code,"
            " created_at) VALUES (7, 1, 'x', 'defined', 'def x', 'def x := 1', 1.0)"
        )
    g, units, st = _states(store)
    assert st[7].fill == FILL_DEFINED  # a formalized definition whose ancestors are not all proved


def test_statement_uses():
    def unit(uid: int, kind: str, number: str, label: str, statement: str, proof: str = "") -> Unit:
        return Unit(
            id=uid,
            book_id=1,
            ident=label or str(uid),
            seq=uid,
            kind=kind,
            number=number,
            label=label,
            statement=statement,
            proof=proof,
        )

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
    defn = text[text.index("\\begin{definition}") : text.index("\\end{definition}")]
    assert "\\label{def:square}" in defn and "\\lean{Atlas.Numbers.Numbers.square}" in defn and "\\leanok" in defn
    # a proved theorem: \leanok on the statement and on the proof; its uses
    thm = text[text.index("\\label{thm:sq}") :]
    thm_stmt, thm_proof = thm.split("\\begin{proof}", 1)
    assert "\\leanok" in thm_stmt and "\\uses{def:square}" in thm_stmt  # cited in the statement
    assert thm_proof.split("\\end{proof}")[0].lstrip().startswith("\\proves{thm:sq}\n\\leanok")
    assert "\\begin{theorem}[{Squares are $\\ge 0$}]" in text
    # stated only: \leanok on the statement, not on the proof; the hostile label made safe and unique
    lem = text[text.index("\\begin{lemma}") :]
    lem_stmt, lem_proof = lem.split("\\begin{proof}", 1)
    assert "\\label{lem:-x-}" in lem_stmt and "\\leanok" in lem_stmt
    assert "\\leanok" not in lem_proof.split("\\end{proof}")[0]
    # failed and pending: no \lean, no \leanok; failed uses both (statement without proof: statement uses)
    fail = text[text.index("\\label{thm:fail}") : text.index("\\label{autoform:thm:todo}")]
    assert "\\lean{" not in fail and "\\leanok" not in fail and "\\uses{def:square, thm:sq}" in fail
    # no second \label from the book's own text, and every \uses names a label of the blueprint
    labels = re.findall(r"\\label\{([^}]*)\}", text)
    assert len(labels) == len(set(labels)) == 5
    for uses in re.findall(r"\\uses\{([^}]*)\}", text):
        assert set(uses.split(", ")) <= set(labels)
    assert text.count("\\begin{proof}") == text.count("\\end{proof}") == 4


def test_blueprint_labels_unique_and_safe():
    units = [
        Unit(id=i, book_id=1, ident=f"u{i}", seq=i, kind="lemma", label=lab, statement="x")
        for i, lab in enumerate(["a b", "a-b", "", "ok:1", "{x}"], start=1)
    ]
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
    svg = chapter_graph_svg(
        g,
        members,
        {u.id: u for u in units},
        st,
        {u.id: f"{u.id}.html" for u in units},
        graph_id="graph-x",
        title=chapter,
    )
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
    edges = {
        (int(p.get("data-from")), int(p.get("data-to"))): p for p in root.iter(f"{SVG}path") if p.get("class") == "edge"
    }
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
    assert lay.height >= 5 * NODE_H and all(
        p.x - p.w / 2 >= 0 and p.x + p.w / 2 <= lay.width for p in lay.nodes.values()
    )


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
        c.execute(
            "INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code, job_id,"
            " model, attempts, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                units["def:even"].id,
                book.id,
                "IsEven",
                "defined",
                "def IsEven (n : ℤ) : Prop",
                "def IsEven (n : ℤ) : Prop := ∃ k, n = 2 * k",
                1,
                "m",
                1,
                1.0,
            ),
        )
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
    update = (
        'mkdir -p ../.lake/packages/doc-gen4; echo "updated doc-gen4"; exit 0'
        if update_ok
        else 'echo "error: could not reach github.com" >&2; exit 1'
    )
    script.write_text(f"""#!/bin/sh
echo "$PWD|$*|MATHLIB_NO_CACHE_ON_UPDATE=${{MATHLIB_NO_CACHE_ON_UPDATE:-}}" >> '{log}'
echo "DOCGEN_SRC=${{DOCGEN_SRC:-}}" >> '{log}.env'
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
    assert calls == [
        f"{home / 'docbuild'}|update doc-gen4|MATHLIB_NO_CACHE_ON_UPDATE=1",
        f"{home / 'docbuild'}|build Atlas:docs AtlasStated:docs|MATHLIB_NO_CACHE_ON_UPDATE=",
    ]
    assert "docbuild/.lake/build/doc" in " ".join(r.stdout.split()).replace("\n", "")
    assert (home / "atlas" / "Atlas.lean").exists()  # the Atlas is written before its docs are built
    db = Store(home / "autoform.sqlite")
    assert [tuple(r) for r in db.query("SELECT ok, command FROM builds")] == [
        (1, f"{lake} build Atlas:docs AtlasStated:docs")
    ]

    r = autoform(home, "atlas", "docs")  # installed now: no fetch needed
    assert r.returncode == 0, r.stderr


def test_cli_docs_fetch_failure_is_reported(tmp_path):
    home = _home_with_book(tmp_path)
    _use_lake(home, _standin_lake(tmp_path, update_ok=False))
    r = autoform(home, "atlas", "docs", "--fetch")
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert "could not reach github.com" in r.stdout and "fetching doc-gen4 failed" in " ".join(r.stderr.split())


# -- issue 21: what leanblueprint and plasTeX make of the export -------------------------------------------------------
def _add_exercise(store: Store) -> None:
    """An exercise with no proof in the book, stated in the Atlas (as `autoform run` admits one), using 2."""
    with store.tx() as c:
        c.execute(
            "INSERT INTO units (id, book_id, ident, seq, kind, number, label, statement, chapter, status) "
            "VALUES (8, 1, 'ex:1', 8, 'exercise', '2.9', 'ex:1', 'Prove that $n^2 \\ge 0$ again.', "
            "'2 <i>Hostile</i>', 'stated')"
        )
        c.execute("INSERT INTO unit_deps (unit_id, dep_id, via) VALUES (8, 2, 'text')")
        c.execute(
            "INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code,"
            " created_at) VALUES (8, 1, 'ex1', 'stated', 'theorem ex1 : True', 'theorem ex1 : True := sorry', 1)"
        )


def test_exercise_is_theorem_like_with_a_proof_that_names_it(store):
    _add_exercise(store)
    text, _, _ = render_blueprint(store, store.book("numbers"))
    ex = text[text.index("\\begin{exercise}") :]
    assert ex.index("\\label{ex:1}") < ex.index("\\end{exercise}") < ex.index("\\begin{proof}")
    proof = ex[ex.index("\\begin{proof}") : ex.index("\\end{proof}")]
    assert "\\proves{ex:1}" in proof and "\\leanok" not in proof  # stated only: the proof is not formalized
    assert "\\begin{definition}" not in text.replace("\\begin{definition}[{Square}]", "", 1)
    # every environment but a definition has a proof naming it
    assert text.count("\\begin{proof}") == text.count("\\proves{") == 5
    g, units, st = _states(store)
    assert not st[8].is_definition and st[8].stated and not st[8].proved


def test_several_books_get_prefixed_labels_and_references(store, tmp_path):
    with store.tx() as c:  # a second book whose labels collide with the first's
        c.execute(
            "INSERT INTO books (id, slug, title, source_path, source_kind, ingested_at) "
            "VALUES (3, 'other', 'Other', '/o/main.tex', 'latex', 3.0)"
        )
        c.execute(
            "INSERT INTO units (id, book_id, ident, seq, kind, number, label, statement, proof) VALUES "
            "(20, 3, 'def:square', 1, 'definition', '1', 'def:square', 'Another square.', ''), "
            "(21, 3, 'thm:sq', 2, 'theorem', '2', 'thm:sq', 'By \\ref{def:square}.', 'Clear.')"
        )
        c.execute("INSERT INTO unit_deps (unit_id, dep_id, via) VALUES (21, 20, 'ref')")
    text = export_blueprint(store, tmp_path / "bp").path.read_text()
    labels = re.findall(r"\\label\{([^}]*)\}", text)
    assert len(labels) == len(set(labels)) == 7
    assert "numbers:def:square" in labels and "other:def:square" in labels
    other = text[text.index("\\part{Other}") :]
    assert "\\ref{other:def:square}" in other and "\\uses{other:def:square}" in other
    for ref in re.findall(r"\\(?:ref|uses|proves)\{([^}]*)\}", text):
        assert set(ref.split(", ")) <= set(labels), ref
    one = export_blueprint(store, tmp_path / "one", [store.book("numbers")]).path.read_text()
    assert "\\label{def:square}" in one  # one book: labels as in the book


def test_export_writes_a_complete_blueprint_then_keeps_the_users_files(store, tmp_path):
    out = tmp_path / "blueprint"
    first = export_blueprint(store, out)
    assert first.layout == "created"
    src = out / "src"
    for rel in (
        "web.tex",
        "print.tex",
        "content.tex",
        "plastex.cfg",
        "macros/common.tex",
        "macros/web.tex",
        "macros/print.tex",
        "macros/autoform.tex",
        "blueprint.sty",
        "latexmkrc",
        "extra_styles.css",
    ):
        assert (src / rel).is_file(), rel
    assert "\\input{content}" in (src / "web.tex").read_text() and "\\input{content}" in (src / "print.tex").read_text()
    assert "thms=definition+lemma+proposition+theorem+corollary+exercise" in (src / "web.tex").read_text()
    (src / "web.tex").write_text("% mine\n\\usepackage[dep_graph]{blueprint}\n\\input{content}\n")
    second = export_blueprint(store, out)
    assert second.layout == "updated" and (src / "web.tex").read_text().startswith("% mine")
    assert second.written == ["src/macros/autoform.tex", "src/content.tex"]
    assert second.notes and "thms=" in second.notes[0]  # the user's web.tex leaves exercises out of the graph


def test_gitignore_does_not_hide_the_blueprint_sources():
    root = Path(__file__).resolve().parent.parent
    lines = [ln.strip() for ln in (root / ".gitignore").read_text().splitlines()]
    assert "/blueprint/" not in lines and "blueprint/" not in lines
    assert "/blueprint/web/" in lines and "/blueprint/print/" in lines  # what leanblueprint builds


def test_atlas_stated_is_a_default_target():
    """`leanblueprint all` runs `lake build` (default targets) before checkdecls looks the \\lean names up."""
    root = Path(__file__).resolve().parent.parent
    text = (root / "lakefile.lean").read_text()
    libs = re.findall(r"((?:@\[[^\]]*\]\s*)?)lean_lib\s+(\w+)", text)
    assert {name for _, name in libs} >= {"Atlas", "AtlasStated"}
    for attrs, name in libs:
        assert "default_target" in attrs, f"lean_lib {name} is not a default target"


def _plastex() -> tuple[str, Path]:
    """plasTeX's command and a directory with `kpsewhich` (TeX Live's, else a stand-in: plasTeX 3.1 finds
    `\\input{macros/common}` only through kpsewhich, and no TeX is installed here)."""
    import shutil
    import sys

    exe = Path(sys.executable).parent / "plastex"
    try:
        import leanblueprint  # noqa: F401
        import plastexdepgraph  # noqa: F401
    except ImportError as e:
        pytest.skip(f"leanblueprint is not installed (pip install -e '.[blueprint]'): {e}")
    if not exe.exists():
        pytest.skip("the plastex command is not installed")
    return str(exe), Path(shutil.which("kpsewhich") or "").parent if shutil.which("kpsewhich") else Path()


def _run_plastex(src: Path, tmp_path: Path) -> Path:
    import os
    import subprocess

    exe, kpse_dir = _plastex()
    env = dict(os.environ)
    if kpse_dir == Path():
        kpse_dir = tmp_path / "kpse"
        kpse_dir.mkdir()
        stand_in = kpse_dir / "kpsewhich"
        stand_in.write_text(
            '#!/bin/sh\nIFS=:\nfor d in $TEXINPUTS .; do\n  [ -n "$d" ] || continue\n'
            '  for f in "$d/$1" "$d/$1.tex"; do [ -f "$f" ] && { echo "$f"; exit 0; }; done\n'
            "done\nexit 1\n"
        )
        stand_in.chmod(0o755)
        env["PATH"] = f"{kpse_dir}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [exe, "-c", "plastex.cfg", "web.tex"], cwd=src, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return src.parent / "web"


def _dot_nodes(page: str) -> dict[str, dict[str, str]]:
    """Node attributes of the Graphviz source leanblueprint's dependency graph page carries."""
    nodes: dict[str, dict[str, str]] = {}
    for m in re.finditer(r'(?<!->)\s"([^"]+)"\s*\[([^\]]*)\]', page):  # not an edge's target
        attrs = dict(re.findall(r'(\w+)=("[^"]*"|[^,\s\]]+)', m.group(2)))
        nodes[m.group(1)] = {k: v.strip('"') for k, v in attrs.items()}
    return nodes


def test_plastex_builds_the_exported_blueprint_and_agrees_with_our_colours(store, tmp_path):
    """The real leanblueprint/plasTeX build of `export_blueprint`'s output: it succeeds, every unit is a node
    of the right shape (an exercise an ellipse), the Lean names are listed for checkdecls, and leanblueprint's
    colours are the site's colours (NodeState), node by node."""
    _add_exercise(store)
    with store.tx() as c:  # a definition ready to be formalized but not formalized
        c.execute(
            "INSERT INTO units (id, book_id, ident, seq, kind, number, label, statement, chapter) VALUES "
            "(9, 1, 'def:cube', 9, 'definition', '2.10', 'def:cube', 'A cube, from squares.', "
            "'2 <i>Hostile</i>')"
        )
        c.execute("INSERT INTO unit_deps (unit_id, dep_id, via) VALUES (9, 1, 'ref')")
    out = tmp_path / "blueprint"
    export_blueprint(store, out)
    web = _run_plastex(out / "src", tmp_path)
    decls = (out / "lean_decls").read_text().split()
    assert "Atlas.Numbers.ex1" in decls and "Atlas.Numbers.Numbers.square" in decls
    nodes = _dot_nodes((web / "dep_graph_document.html").read_text())
    g, units, st = _states(store)
    labels = blueprint_labels(units)
    assert set(nodes) == set(labels.values())
    for u in units:
        n = nodes[labels[u.id]]
        assert n["shape"] == ("box" if u.kind == "definition" else "ellipse"), u.label
        assert n.get("color", "") == st[u.id].border, (u.label, n, st[u.id])
        assert n.get("fillcolor", "") == st[u.id].fill, (u.label, n, st[u.id])
    # the cases the issue names: a formalized definition is light green, a ready one blue, an exercise no box
    assert nodes["def:square"]["fillcolor"] == FILL_DEFINED
    assert nodes["def:cube"]["fillcolor"] == FILL_CAN_PROVE
    assert nodes["ex:1"]["shape"] == "ellipse" and nodes["ex:1"]["color"] == BORDER_STATED
    page = "".join(p.read_text() for p in web.glob("sect*.html"))
    assert "Exercise" in page and "Definition 8" not in page


def test_docs_link_sources_locally_and_follow_the_toolchain(tmp_path):
    """doc-gen4 needs DOCGEN_SRC=file without a GitHub origin; the docbuild pins follow a toolchain change;
    a release candidate maps to doc-gen4's -rc tag."""
    from autoform.atlas import docgen_rev

    assert docgen_rev("leanprover/lean4:v4.29.0-rc2\n") == "v4.29.0-rc2"
    assert docgen_rev("leanprover/lean4:v4.28.0") == "v4.28.0"
    assert docgen_rev("leanprover/lean4:nightly-2025-01-01") == "main"
    home = _home_with_book(tmp_path)
    _use_lake(home, _standin_lake(tmp_path))
    r = autoform(home, "atlas", "docs", "--fetch")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "lake.log.env").read_text().splitlines()[-1] == "DOCGEN_SRC=file"  # not a GitHub checkout
    (home / "lean-toolchain").write_text("leanprover/lean4:v4.29.0-rc1\n")
    r = autoform(home, "atlas", "docs")
    assert r.returncode == 0, r.stderr
    assert 'rev = "v4.29.0-rc1"' in (home / "docbuild" / "lakefile.toml").read_text()
    assert (home / "docbuild" / "lean-toolchain").read_text() == "leanprover/lean4:v4.29.0-rc1\n"
    assert "regenerated" in " ".join(r.stdout.split())
    # a lakefile the user wrote is kept, with a warning naming the pin it should have
    (home / "docbuild" / "lakefile.toml").write_text('[[require]]\nname = "doc-gen4"\nrev = "v4.10.0"\n')
    r = autoform(home, "atlas", "docs")
    assert 'rev = "v4.10.0"' in (home / "docbuild" / "lakefile.toml").read_text()
    assert "v4.29.0-rc1" in " ".join(r.stdout.split())
