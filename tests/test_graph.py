"""The dependency graph: work order (dependencies first, book order otherwise), cycles, hop distances, and the
JSON and DOT renderings, on graphs built from a real store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import networkx as nx
import pytest

from autoform import graph as graphs
from autoform.ingest import IngestResult, RawUnit, store_book
from autoform.store import Store


def _book(tmp_path: Path, units: list[tuple[str, str, list[str]]]) -> tuple[Store, int, dict[str, int]]:
    """A store holding one book whose units are (label, kind, refs) in book order."""
    store = Store(tmp_path / "autoform.sqlite")
    raw = [
        RawUnit(kind=k, number=f"1.{i + 1}", label=lab, statement=f"statement of {lab}", refs=refs)
        for i, (lab, k, refs) in enumerate(units)
    ]
    store_book(store, "b", IngestResult(source_kind="latex", root=str(tmp_path / "main.tex"), units=raw))
    book = store.book("b")
    assert book is not None
    ids = {u.label: u.id for u in store.units(book.id)}
    return store, book.id, ids


def _positions(order: list[int]) -> dict[int, int]:
    return {n: i for i, n in enumerate(order)}


def test_book_graph_nodes_and_edges(tmp_path: Path) -> None:
    store, bid, ids = _book(tmp_path, [("a", "definition", []), ("b", "lemma", ["a"]), ("c", "theorem", ["a", "b"])])
    g = graphs.book_graph(store, bid)
    assert set(g.nodes) == set(ids.values())
    assert set(g.edges) == {(ids["b"], ids["a"]), (ids["c"], ids["a"]), (ids["c"], ids["b"])}
    assert g.nodes[ids["b"]]["kind"] == "lemma" and g.nodes[ids["b"]]["label"] == "b"
    assert g.edges[ids["c"], ids["a"]]["via"] == "ref"


def test_work_order_without_edges_is_book_order(tmp_path: Path) -> None:
    labels = ["e", "d", "c", "b", "a"]  # ids ascend with book order; labels deliberately do not sort that way
    store, bid, ids = _book(tmp_path, [(lab, "lemma", []) for lab in labels])
    assert graphs.work_order(graphs.book_graph(store, bid)) == [ids[lab] for lab in labels]


def test_work_order_uses_seq_not_ids() -> None:
    g = nx.DiGraph()
    for node, seq in ((30, 0), (10, 1), (20, 2)):
        g.add_node(node, seq=seq)
    assert graphs.work_order(g) == [30, 10, 20]
    g.add_edge(30, 20, via="ref")  # the first unit uses the last one
    order = graphs.work_order(g)
    assert sorted(order) == [10, 20, 30]
    assert order.index(20) < order.index(30)


def test_work_order_puts_dependencies_first_and_keeps_book_order_otherwise(tmp_path: Path) -> None:
    # backward references only: book order is already a valid order and must be kept exactly
    spec = [
        ("d1", "definition", []),
        ("l1", "lemma", ["d1"]),
        ("d2", "definition", []),
        ("t1", "theorem", ["l1", "d2"]),
        ("c1", "corollary", ["t1"]),
        ("x", "exercise", []),
    ]
    store, bid, ids = _book(tmp_path, spec)
    assert graphs.work_order(graphs.book_graph(store, bid)) == [ids[lab] for lab, _, _ in spec]


def test_work_order_forward_reference_pulls_the_dependency_forward(tmp_path: Path) -> None:
    # l1 (early) cites t9 (late): t9 must come before l1; everything unrelated stays in book order
    spec = [
        ("a", "definition", []),
        ("l1", "lemma", ["t9"]),
        ("b", "lemma", []),
        ("c", "lemma", ["a"]),
        ("t9", "theorem", ["a"]),
    ]
    store, bid, ids = _book(tmp_path, spec)
    g = graphs.book_graph(store, bid)
    order = graphs.work_order(g)
    assert sorted(order) == sorted(ids.values())
    pos = _positions(order)
    for a, b in g.edges:  # a uses b
        assert pos[b] < pos[a]
    assert pos[ids["a"]] < pos[ids["b"]] < pos[ids["c"]]  # independent units keep book order
    assert order[0] == ids["a"]


def test_cycle_is_reported_and_work_order_still_lists_every_unit_once(tmp_path: Path) -> None:
    # p cites the later r (the one forward edge of the cycle p -> r -> q -> p); a and z hang off the cycle
    spec = [
        ("a", "definition", []),
        ("p", "lemma", ["r", "a"]),
        ("q", "lemma", ["p"]),
        ("r", "theorem", ["q"]),
        ("z", "corollary", ["r"]),
    ]
    store, bid, ids = _book(tmp_path, spec)
    g = graphs.book_graph(store, bid)
    cyc = graphs.cycles(g)
    assert cyc == [sorted([ids["p"], ids["q"], ids["r"]])]
    order = graphs.work_order(g)
    assert len(order) == len(spec)
    assert sorted(order) == sorted(ids.values())
    pos = _positions(order)
    # edges outside the cycle are honoured
    assert pos[ids["a"]] < pos[ids["p"]]
    assert pos[ids["r"]] < pos[ids["z"]]
    # the cycle is broken at its forward edge p -> r, so the backward edges r -> q -> p are honoured
    assert pos[ids["p"]] < pos[ids["q"]] < pos[ids["r"]]
    assert order == [ids[x] for x in ("a", "p", "q", "r", "z")]
    # the graph itself is not modified by work_order
    assert graphs.cycles(g) == cyc
    assert g.has_edge(ids["p"], ids["r"])


def test_two_cycle_and_acyclic_graph_have_expected_cycles() -> None:
    g = nx.DiGraph()
    for n in range(4):
        g.add_node(n, seq=n)
    g.add_edges_from([(1, 0), (2, 1), (3, 2)])
    assert graphs.cycles(g) == []
    g.add_edge(0, 3)
    assert graphs.cycles(g) == [[0, 1, 2, 3]]
    assert sorted(graphs.work_order(g)) == [0, 1, 2, 3]


def test_hops_are_undirected_distances(tmp_path: Path) -> None:
    # a <- b <- c <- d, and e isolated; e's unit is unreachable
    spec = [
        ("a", "definition", []),
        ("b", "lemma", ["a"]),
        ("c", "lemma", ["b"]),
        ("d", "theorem", ["c"]),
        ("e", "exercise", []),
        ("f", "corollary", ["a"]),
    ]
    store, bid, ids = _book(tmp_path, spec)
    g = graphs.book_graph(store, bid)
    h = graphs.hops(g, ids["c"])
    assert h[ids["c"]] == 0
    assert h[ids["b"]] == 1 and h[ids["d"]] == 1  # both directions count
    assert h[ids["a"]] == 2
    assert h[ids["f"]] == 3  # c -> b -> a <- f
    assert ids["e"] not in h
    assert graphs.hops(g, ids["e"]) == {ids["e"]: 0}


def test_absent_units_are_not_in_the_graph(tmp_path: Path) -> None:
    store, bid, ids = _book(tmp_path, [("a", "definition", []), ("b", "lemma", ["a"])])
    store_book(
        store,
        "b",
        IngestResult(
            source_kind="latex",
            root="x",
            units=[RawUnit(kind="lemma", number="1.2", label="b", statement="statement of b", refs=["a"])],
        ),
    )
    g = graphs.book_graph(store, bid)
    assert list(g.nodes) == [ids["b"]]
    assert list(g.edges) == []


def test_to_json(tmp_path: Path) -> None:
    spec = [
        ("def:a", "definition", []),
        ("lem:b", "lemma", ["def:a"]),
        ("thm:c", "theorem", ["lem:b", "thm:d"]),
        ("thm:d", "theorem", ["thm:c"]),
    ]
    store, bid, ids = _book(tmp_path, spec)
    data = json.loads(graphs.to_json(graphs.book_graph(store, bid)))
    assert [n["id"] for n in data["nodes"]] == [ids[lab] for lab, _, _ in spec]
    assert data["nodes"][1]["kind"] == "lemma" and data["nodes"][1]["label"] == "lem:b"
    assert data["nodes"][1]["number"] == "1.2" and data["nodes"][1]["status"] == "pending"
    edges = {(e["from"], e["to"], e["via"]) for e in data["edges"]}
    assert edges == {
        (ids["lem:b"], ids["def:a"], "ref"),
        (ids["thm:c"], ids["lem:b"], "ref"),
        (ids["thm:c"], ids["thm:d"], "ref"),
        (ids["thm:d"], ids["thm:c"], "ref"),
    }
    assert data["cycles"] == [sorted([ids["thm:c"], ids["thm:d"]])]


def test_to_dot() -> None:
    g = nx.DiGraph()
    g.add_node(1, kind="definition", number="1.1", label="def:a", title="", status="pending", seq=0)
    g.add_node(2, kind="theorem", number="1.2", label='thm:"q"', title="", status="pending", seq=1)
    g.add_node(3, kind="remark", number="", label="", title="", status="pending", seq=2)
    g.add_edge(2, 1, via="ref")
    g.add_edge(3, 2, via="text")
    dot = graphs.to_dot(g, name="my-book")
    assert dot.startswith('digraph "my-book" {')
    assert dot.rstrip().endswith("}")
    assert '  2 [label="Theorem 1.2\\nthm:\\"q\\""];' in dot.splitlines()  # quotes escaped
    assert '  3 [label="Remark"];' in dot.splitlines()
    assert "  2 -> 1;" in dot.splitlines()
    assert "  3 -> 2 [style=dashed];" in dot.splitlines()  # textual references are dashed
    # balanced quotes on every line (a naive renderer breaks on the quoted label)
    for line in dot.splitlines():
        assert len(re.findall(r'(?<!\\)"', line)) % 2 == 0, line


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_graphs(n: int) -> None:
    g = nx.DiGraph()
    for k in range(n):
        g.add_node(k, kind="lemma", number="", label="", title="", status="pending", seq=k)
    assert graphs.work_order(g) == list(range(n))
    assert graphs.cycles(g) == []
    assert json.loads(graphs.to_json(g))["nodes"] == [{"id": k, **g.nodes[k]} for k in range(n)]


def test_to_dot_label_breaks_the_line() -> None:
    """The label's second line uses DOT's escString line break (one backslash), not an escaped backslash."""
    g = nx.DiGraph()
    g.add_node(1, kind="definition", number="1.1", label="def:a", title="", status="pending", seq=0)
    dot = graphs.to_dot(g)
    # exactly one backslash before n: DOT's escString line break
    assert '  1 [label="Definition 1.1\\ndef:a"];' in dot.splitlines()
