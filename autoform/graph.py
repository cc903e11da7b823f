"""The dependency graph of a book (networkx): edges go from a unit to what it depends on."""

from __future__ import annotations

import json

import networkx as nx

from autoform.store import Store


def book_graph(store: Store, book_id: int) -> nx.DiGraph:
    g = nx.DiGraph()
    for u in store.units(book_id):
        g.add_node(u.id, kind=u.kind, number=u.number, label=u.label, title=u.title, status=u.status, seq=u.seq)
    for uid, dep, via in store.deps(book_id):
        if uid in g and dep in g:
            g.add_edge(uid, dep, via=via)
    return g


def cycles(g: nx.DiGraph) -> list[list[int]]:
    """Dependency cycles (reported, never fatal)."""
    return [sorted(c) for c in nx.simple_cycles(g)]


def work_order(g: nx.DiGraph) -> list[int]:
    """Dependencies first, book order among equals; cycles are broken at their latest edge in book order."""
    h = g.copy()
    while True:
        try:
            cyc = nx.find_cycle(h)
        except nx.NetworkXNoCycle:
            break
        # drop the edge of the cycle pointing forward in the book (a unit citing a later one)
        u, v = max(((a, b) for a, b, *_ in cyc), key=lambda e: h.nodes[e[1]]["seq"] - h.nodes[e[0]]["seq"])
        h.remove_edge(u, v)
    return list(nx.lexicographical_topological_sort(h.reverse(copy=False), key=lambda n: h.nodes[n]["seq"]))


def hops(g: nx.DiGraph, source: int, cutoff: int | None = None) -> dict[int, int]:
    """Undirected graph distance from `source` to every unit reachable (within `cutoff` hops, if given)."""
    return dict(nx.single_source_shortest_path_length(g.to_undirected(as_view=True), source, cutoff=cutoff))


def to_json(g: nx.DiGraph) -> str:
    data = {
        "nodes": [{"id": n, **g.nodes[n]} for n in sorted(g.nodes, key=lambda n: g.nodes[n]["seq"])],
        "edges": [{"from": a, "to": b, "via": g.edges[a, b]["via"]} for a, b in sorted(g.edges)],
        "cycles": cycles(g),
    }
    return json.dumps(data, indent=2, ensure_ascii=False)


def to_dot(g: nx.DiGraph, *, name: str = "book") -> str:
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = [f"digraph {q(name)} {{", "  rankdir=BT;"]
    for n in sorted(g.nodes, key=lambda n: g.nodes[n]["seq"]):
        d = g.nodes[n]
        label = f"{d['kind'].capitalize()} {d['number']}".strip() + (f"\n{d['label']}" if d["label"] else "")
        lines.append(f"  {n} [label={q(label)}];")
    for a, b in sorted(g.edges):
        style = " [style=dashed]" if g.edges[a, b]["via"] == "text" else ""
        lines.append(f"  {a} -> {b}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"
