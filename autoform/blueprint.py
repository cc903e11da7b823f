"""Lean Blueprint semantics for the Atlas: node states and colours, a LaTeX blueprint, and dependency graphs.

The meanings follow Lean Blueprint (leanblueprint / plastexdepgraph) and are derived from the store only:

* boxes are definitions, ellipses everything else;
* **green border**: the *statement* is formalized (the unit has an Atlas entry: proved, defined or stated);
* **blue border**: the statement is ready to be formalized (everything it uses is formalized);
* **green background**: the *proof* is formalized (proved in Lean); **light green**: a formalized definition;
* **blue background**: the proof is ready to be formalized (everything it uses is formalized);
* **dark green background**: the proof of this result and of all its ancestors are formalized;
* **dashed arrows**: used by the statement; **solid arrows**: used by the proof.

autoform adds one thing Blueprint has no colour for: a red label marks a unit Lean rejected every attempt at.

:func:`export_blueprint` writes ``content.tex`` with ``\\lean{}``, ``\\leanok`` and ``\\uses{}`` per unit, for a
leanblueprint project (``leanblueprint new`` makes the rest); :func:`chapter_graph_svg` draws the dependency
graph of a chapter as inline SVG laid out in Python (layers from networkx, no JavaScript, no CDN).
"""

from __future__ import annotations

import contextlib
import html
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import networkx as nx
from pydantic import BaseModel

from autoform.atlas import full_decl_name
from autoform.graph import book_graph
from autoform.store import AtlasEntry, Book, Store, Unit, UnitStatus

#: Lean Blueprint's colours (leanblueprint's ``blueprint.py``)
BORDER_STATED = "green"
BORDER_CAN_STATE = "blue"
FILL_PROVED = "#9CEC8B"
FILL_CAN_PROVE = "#A3D6FF"
FILL_DEFINED = "#B0ECA3"
FILL_FULLY_PROVED = "#1CAC78"
BORDER_DEFAULT = "#57606a"
FILL_DEFAULT = "#ffffff"
TEXT_FAILED = "#cf222e"

LEGEND: list[tuple[str, str]] = [
    ("Boxes", "definitions"),
    ("Ellipses", "theorems, lemmas and other results"),
    ("Blue border", "the statement is ready to be formalized; all prerequisites are done"),
    ("Green border", "the statement is formalized"),
    ("Blue background", "the proof is ready to be formalized; all prerequisites are done"),
    ("Green background", "the proof is formalized"),
    ("Light green background", "the definition is formalized"),
    ("Dark green background", "the proof of this result and all its ancestors are formalized"),
    ("Dashed arrow", "used by the statement; solid arrow: used by the proof"),
    ("Red label", "Lean rejected every attempt so far (autoform)"),
    ("Faded", "from another chapter"),
]


# -- node states -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeState:
    """A unit's Blueprint state, computed as leanblueprint's ``make_lean_data`` computes it from the exported LaTeX
    (``\\leanok`` on the statement and on the proof, ``\\uses`` in the statement and in the proof)."""

    is_definition: bool
    stated: bool  # \leanok on the statement
    can_state: bool  # everything the *statement* uses is stated
    proved: bool  # \leanok on the proof
    can_prove: bool  # there is a proof, and everything the statement and the proof use is stated
    fully_proved: bool  # this node and all its ancestors are proved or definitions
    failed: bool

    @property
    def border(self) -> str:
        """leanblueprint's ``colorizer`` (no \\mathlibok or \\notready in autoform's export)."""
        if self.stated:
            return BORDER_STATED
        if self.can_state:
            return BORDER_CAN_STATE
        return ""

    @property
    def fill(self) -> str:
        """leanblueprint's ``fillcolorizer``, line by line."""
        fill = ""
        if self.proved:
            fill = FILL_PROVED
        elif self.can_prove and (self.can_state or self.stated):
            fill = FILL_CAN_PROVE
        if self.is_definition:
            if self.stated:
                fill = FILL_DEFINED
            elif self.can_state:
                fill = FILL_CAN_PROVE
        elif self.fully_proved:
            fill = FILL_FULLY_PROVED
        return fill

    @property
    def summary(self) -> str:
        if self.is_definition:
            if self.stated:
                return "defined"
            if self.failed:
                return "failed"
            return "ready to be formalized" if self.can_state else "not ready (uses unformalized results)"
        if self.proved:
            return "proved, with all its ancestors" if self.fully_proved else "proved"
        if self.stated:
            return "statement formalized" + ("; proof ready to be formalized" if self.can_prove else "")
        if self.failed:
            return "failed"
        return "ready to be formalized" if self.can_state else "not ready (uses unformalized results)"


@dataclass(frozen=True)
class _Marks:
    """Per unit of a book: whether its statement is formalized, whether it is a definition, whether it is proved."""

    by_id: dict[int, Unit]
    stated: dict[int, bool]
    is_def: dict[int, bool]
    proved: dict[int, bool]


def _entry_proved(entry: AtlasEntry | None) -> bool:
    return entry is not None and entry.status == UnitStatus.PROVED


def _node_state(g: nx.DiGraph, u: Unit, m: _Marks) -> NodeState:
    in_graph = u.id in g
    deps = [v for v in (g.successors(u.id) if in_graph else []) if v in m.by_id]
    in_statement = [v for v in deps if statement_uses(u, m.by_id[v])]
    ancestors = {a for a in nx.descendants(g, u.id) if a in m.by_id} if in_graph else set()
    return NodeState(
        is_definition=m.is_def[u.id],
        stated=m.stated[u.id],
        can_state=all(m.stated[v] for v in in_statement),
        proved=m.proved[u.id],
        can_prove=not m.is_def[u.id] and all(m.stated[v] for v in deps),
        fully_proved=all(m.proved[a] or m.is_def[a] for a in ancestors | {u.id}),
        failed=u.status == UnitStatus.FAILED and not m.stated[u.id],
    )


def node_states(g: nx.DiGraph, units: Iterable[Unit], entries: dict[int, AtlasEntry | None]) -> dict[int, NodeState]:
    """Blueprint state of every unit of a book graph (edges go from a unit to what it uses), from exactly what
    :func:`render_blueprint` writes: a unit's statement is ``\\leanok`` when it has an Atlas entry, its proof
    when the entry is proved; the statement's ``\\uses`` are the dependencies :func:`statement_uses` assigns to
    it, the proof's the others; every unit but a definition has a proof environment."""
    units = list(units)
    is_def = {u.id: environment(u) == "definition" for u in units}
    marks = _Marks(
        by_id={u.id: u for u in units},
        stated={u.id: entries.get(u.id) is not None for u in units},
        is_def=is_def,
        proved={u.id: not is_def[u.id] and _entry_proved(entries.get(u.id)) for u in units},
    )
    return {u.id: _node_state(g, u, marks) for u in units}


_REF_RE = re.compile(r"\\(?:ref|eqref|cref|Cref|autoref|nameref|vref|Vref|pageref|cpageref)\*?\s*\{([^{}]*)\}")


def _refs_in(text: str) -> set[str]:
    return {lab.strip() for m in _REF_RE.finditer(text) for lab in m.group(1).split(",")}


def statement_uses(unit: Unit, dep: Unit) -> bool:
    """Whether `unit` uses `dep` in its statement (else in its proof): a definition uses everything in its
    statement; otherwise the statement must cite `dep` (by label, or as "Lemma 1.3")."""
    if unit.kind == "definition" or not unit.proof.strip():
        return True
    if dep.label and dep.label in _refs_in(unit.statement):
        return True
    if dep.number:
        name = re.escape(dep.kind) + r"~?\s*" + re.escape(dep.number)
        return re.search(rf"\b{name}\b", unit.statement, re.I) is not None
    return False


# -- the LaTeX blueprint ---------------------------------------------------------------------------------------------
#: unit kind -> LaTeX environment. leanblueprint's template (``macros/common.tex``) defines the first five and its
#: dependency graph shows them by default; the others are theorem-like environments autoform defines in
#: ``macros/autoform.tex`` (an exercise is never a definition) and adds to the graph with the ``thms`` option.
ENVIRONMENTS = {
    "definition": "definition",
    "theorem": "theorem",
    "lemma": "lemma",
    "proposition": "proposition",
    "corollary": "corollary",
    "exercise": "exercise",
    "example": "example",
    "remark": "remark",
    "claim": "claim",
    "axiom": "axiom",
}
LEANBLUEPRINT_ENVIRONMENTS = ("definition", "lemma", "proposition", "theorem", "corollary")
#: the environments autoform adds: (name, printed name, amsthm style)
EXTRA_ENVIRONMENTS = (
    ("exercise", "Exercise", "definition"),
    ("example", "Example", "definition"),
    ("remark", "Remark", "definition"),
    ("claim", "Claim", "plain"),
    ("axiom", "Axiom", "plain"),
)
#: the ``thms`` option of the blueprint package: every environment autoform writes, in the dependency graph
GRAPH_THMS = "+".join([*LEANBLUEPRINT_ENVIRONMENTS, *(e[0] for e in EXTRA_ENVIRONMENTS)])
_LABEL_BAD = re.compile(r"[^A-Za-z0-9:._\-+/]")
_LABEL_RE = re.compile(r"\\label\s*\{[^{}]*\}")
TEMPLATES = Path(__file__).parent / "templates" / "blueprint"
#: the files autoform owns in ``src/`` (rewritten on every export); the others are written once, then the user's
OWNED = ("content.tex", "macros/autoform.tex")


def environment(unit: Unit) -> str:
    """The LaTeX environment of a unit: ``definition`` only for a definition, a theorem-like one otherwise."""
    return ENVIRONMENTS.get(unit.kind, "theorem")


class BlueprintSummary(BaseModel):
    path: Path
    books: int
    units: int
    leanok: int
    #: "created" (a complete blueprint was written) or "updated" (an existing one: only autoform's files)
    layout: str = "created"
    written: list[str] = []
    notes: list[str] = []


def blueprint_labels(units: Iterable[Unit], prefix: str = "") -> dict[int, str]:
    """A LaTeX-safe, unique label per unit: its own label when that is safe, else a cleaned-up one; with
    `prefix` (the book's slug when several books are exported) every label starts with ``prefix:``."""
    out: dict[int, str] = {}
    used: set[str] = set()
    head = f"{_LABEL_BAD.sub('-', prefix)}:" if prefix else ""
    for u in units:
        base = head + (_LABEL_BAD.sub("-", u.label) if u.label else f"autoform:{_LABEL_BAD.sub('-', u.ident) or u.id}")
        name, k = base, 2
        while name in used:
            name, k = f"{base}-{k}", k + 1
        used.add(name)
        out[u.id] = name
    return out


def _tex_text(text: str, relabel: dict[str, str]) -> str:
    """Book LaTeX for the blueprint: its own \\label{}s dropped (each unit gets one label), references to
    relabelled units renamed."""
    text = _LABEL_RE.sub("", text).strip()

    def ref(m: re.Match[str]) -> str:
        labs = [relabel.get(lab.strip(), lab.strip()) for lab in m.group(1).split(",")]
        return m.group(0)[: m.start(1) - m.start(0)] + ",".join(labs) + "}"

    return _REF_RE.sub(ref, text) if relabel else text


def _tex_heading(text: str) -> str:
    """A chapter or section title as a LaTeX argument: one line, braces balanced (or dropped)."""
    line = " ".join(text.split())
    depth = 0
    for c in line:
        depth += {"{": 1, "}": -1}.get(c, 0)
        if depth < 0:
            break
    return line if depth == 0 else line.replace("{", "").replace("}", "")


def _headings(u: Unit, chapter: str | None, section: str | None) -> list[str]:
    """The ``\\chapter`` and ``\\section`` lines to write before `u`, after the chapter and section of the unit
    before it."""
    lines: list[str] = []
    if u.chapter != chapter:
        section = None
        if u.chapter:
            lines += [f"\\chapter{{{_tex_heading(u.chapter)}}}", ""]
    if u.section != section and u.section:
        lines += [f"\\section{{{_tex_heading(u.section)}}}", ""]
    return lines


@dataclass
class _BookTex:
    """What writing one book's units as blueprint LaTeX needs: its graph, Atlas entries, states and labels."""

    book: Book
    by_id: dict[int, Unit]
    g: nx.DiGraph
    entries: dict[int, AtlasEntry | None]
    labels: dict[int, str]
    relabel: dict[str, str]
    states: dict[int, NodeState]
    reviews: dict[int, str] = field(default_factory=dict)  # unit id -> a person's review state

    @classmethod
    def of(cls, store: Store, book: Book, units: list[Unit], label_prefix: str) -> _BookTex:
        g = book_graph(store, book.id)
        entries = {u.id: store.atlas_entry(u.id) for u in units}
        labels = blueprint_labels(units, label_prefix)
        relabel = {u.label: labels[u.id] for u in units if u.label and labels[u.id] != u.label}
        states = node_states(g, units, entries)
        return cls(book, {u.id: u for u in units}, g, entries, labels, relabel, states, store.review_states(book.id))

    def uses(self, u: Unit) -> tuple[list[str], list[str]]:
        """The labels of what `u` uses in its statement and in its proof."""
        g = self.g
        deps = sorted(g.successors(u.id), key=lambda v: g.nodes[v]["seq"]) if u.id in g else []
        in_statement = [self.labels[v] for v in deps if statement_uses(u, self.by_id[v])]
        in_proof = [self.labels[v] for v in deps if not statement_uses(u, self.by_id[v])]
        return in_statement, in_proof

    def unit_tex(self, u: Unit) -> list[str]:
        """The lines of one unit: its environment (with ``\\lean``, ``\\leanok`` and ``\\uses``), then its proof."""
        env, entry = environment(u), self.entries[u.id]
        in_statement, in_proof = self.uses(u)
        title = f"[{{{_tex_heading(u.title)}}}]" if u.title.strip() else ""
        lines = [
            "% " + " ".join((u.display + (f" [{u.source}]" if u.source else "")).split()),
            f"\\begin{{{env}}}{title}",
            f"\\label{{{self.labels[u.id]}}}",
        ]
        if entry is not None:
            lines += [f"\\lean{{{full_decl_name(self.book, entry)}}}", "\\leanok"]
            lines.append(f"% review: {self.reviews.get(u.id, 'unreviewed')} (the fidelity of the Lean statement)")
        if in_statement:
            lines.append(f"\\uses{{{', '.join(in_statement)}}}")
        lines += [_tex_text(u.statement, self.relabel), f"\\end{{{env}}}"]
        if env != "definition":
            lines += self.proof_tex(u, in_proof)
        return [*lines, ""]

    def proof_tex(self, u: Unit, in_proof: list[str]) -> list[str]:
        lines = ["\\begin{proof}", f"\\proves{{{self.labels[u.id]}}}"]
        if self.states[u.id].proved:
            lines.append("\\leanok")
        if in_proof:
            lines.append(f"\\uses{{{', '.join(in_proof)}}}")
        proof = _tex_text(u.proof, self.relabel)
        if proof:
            lines.append(proof)
        return [*lines, "\\end{proof}"]


def render_blueprint(
    store: Store, book: Book, *, with_part: bool = False, label_prefix: str = ""
) -> tuple[str, int, int]:
    """(LaTeX, units, units with \\leanok) of one book's blueprint, units in book order. Every unit that is not
    a definition gets a proof environment naming it with ``\\proves`` (leanblueprint's dependency graph ignores an
    empty proof), with ``\\leanok`` when Lean proved it."""
    units = store.units(book.id)
    tex = _BookTex.of(store, book, units, label_prefix)
    lines: list[str] = [
        f"% {_tex_heading(book.title or book.slug)} ({book.slug}): generated by autoform from its "
        "store; do not edit by hand.",
        "",
    ]
    if with_part:
        lines += [f"\\part{{{_tex_heading(book.title or book.slug)}}}", ""]
    chapter = section = None
    for u in units:
        lines += _headings(u, chapter, section)
        chapter, section = u.chapter, u.section
        lines += tex.unit_tex(u)
    n_ok = sum(1 for u in units if tex.entries[u.id] is not None)
    return "\n".join(lines).rstrip("\n") + "\n", len(units), n_ok


def environments_tex() -> str:
    """``macros/autoform.tex``: the theorem-like environments autoform adds to leanblueprint's, each defined only
    where it is not defined yet (a blueprint of your own may have one), numbered with the theorems."""
    lines = [
        "% Generated by autoform (`autoform atlas blueprint`): the environments of the kinds it exports beyond",
        "% leanblueprint's defaults. Read by content.tex; rewritten on every export.",
        "",
    ]
    for name, printed, style in EXTRA_ENVIRONMENTS:
        lines.append(
            f"\\ifcsname {name}\\endcsname\\else\\theoremstyle{{{style}}}"
            f"\\newtheorem{{{name}}}[theorem]{{{printed}}}\\fi"
        )
    lines.append("\\theoremstyle{plain}")
    return "\n".join(lines) + "\n"


def _template_env() -> jinja2.Environment:
    # leanblueprint's own delimiters for its templates ({| |}), which do not clash with TeX's braces
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        variable_start_string="{|",
        variable_end_string="|}",
        comment_start_string="{--",
        comment_end_string="--}",
        keep_trailing_newline=True,
        autoescape=False,
    )


def _github_links(repo_root: Path | None) -> str:
    """``\\github``, ``\\home``, ``\\dochome`` as ``leanblueprint new`` guesses them from the ``origin`` remote;
    commented out when that is not on GitHub (then the Lean links go to Mathlib's docs: set \\dochome)."""
    url = ""
    if repo_root is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            url = subprocess.run(
                ["git", "remote", "get-url", "origin"], cwd=repo_root, capture_output=True, text=True, timeout=10
            ).stdout.strip()
    m = re.fullmatch(r"(?:https://github\.com/|git@github\.com:)([^/]+)/(.+?)(?:\.git)?/?", url)
    if not m:
        return (
            "% \\home{https://you.github.io/project}\n% \\github{https://github.com/you/project}\n"
            "% \\dochome{https://you.github.io/project/docs}  % doc-gen4 pages (`autoform atlas docs`)"
        )
    user, name = m.group(1), m.group(2)
    return (
        f"\\home{{https://{user}.github.io/{name}}}\n\\github{{https://github.com/{user}/{name}}}\n"
        f"\\dochome{{https://{user}.github.io/{name}/docs}}"
    )


def skeleton_files(title: str, repo_root: Path | None = None) -> dict[str, str]:
    """The files of a complete leanblueprint ``src/`` folder besides autoform's own (leanblueprint's templates,
    the blueprint package told to show every environment autoform writes)."""
    env = _template_env()
    ctx = {"title": _tex_heading(title) or "Atlas", "thms": GRAPH_THMS, "links": _github_links(repo_root)}
    names = [
        "web.tex",
        "print.tex",
        "macros/common.tex",
        "macros/web.tex",
        "macros/print.tex",
        "plastex.cfg",
        "blueprint.sty",
        "latexmkrc",
        "extra_styles.css",
    ]
    return {n: env.get_template(n).render(**ctx) for n in names}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def export_blueprint(
    store: Store, out: Path, books: list[Book] | None = None, *, repo_root: Path | None = None
) -> BlueprintSummary:
    """Write a leanblueprint project's ``blueprint/`` folder at `out`, deterministic.

    Where `out` holds no ``src/web.tex`` a complete, buildable blueprint is written (leanblueprint's template
    files, then autoform's ``src/content.tex`` and ``src/macros/autoform.tex``); where it does (``leanblueprint
    new`` made it, or an earlier export), only autoform's two files are rewritten and the rest is left as it is.
    With several books, labels are prefixed with the book's slug (``slug:label``) and references follow."""
    out = Path(out)
    books = [b for b in (store.books() if books is None else books) if store.units(b.id)]  # empty: left out
    parts = []
    n_units = n_ok = 0
    for b in books:
        text, n, k = render_blueprint(store, b, with_part=len(books) > 1, label_prefix=b.slug if len(books) > 1 else "")
        parts.append(text)
        n_units, n_ok = n_units + n, n_ok + k
    header = (
        "% Lean Blueprint content generated by autoform (`autoform atlas blueprint`); rewritten on every export.\n"
        "% \\input{content} from web.tex and print.tex. Environments: leanblueprint's (definition, theorem, lemma,\n"
        "% proposition, corollary, proof) and macros/autoform.tex's (exercise, example, remark, claim, axiom).\n"
        "% \\leanok on a statement: formalized in the Atlas; on a proof: proved by Lean.\n"
        "% `% review: approved` after \\leanok: a person reviewed the statement's fidelity (`autoform review`).\n\n"
        "\\input{macros/autoform}\n\n"
    )
    src = out / "src"
    web = src / "web.tex"
    layout = "updated" if web.exists() else "created"
    written: list[str] = []
    notes: list[str] = []
    if layout == "created":
        title = (books[0].title or books[0].slug) if len(books) == 1 else "Atlas"
        for rel, text in skeleton_files(title, repo_root).items():
            _write(src / rel, text)
            written.append(f"src/{rel}")
    else:
        web_text = web.read_text(encoding="utf-8", errors="replace")
        m = re.search(r"\\usepackage\s*\[([^\]]*)\]\s*\{blueprint\}", web_text)
        extra = [e[0] for e in EXTRA_ENVIRONMENTS]
        if not m or not all(re.search(rf"thms\s*=[^,\]]*\b{e}\b", m.group(1)) for e in extra):
            notes.append(
                f"{web} does not list autoform's environments in the dependency graph: add "
                f"thms={GRAPH_THMS} to the options of \\usepackage[...]{{blueprint}} (exercises, examples, "
                "remarks, claims and axioms are otherwise left out of the graph)"
            )
    _write(src / "macros" / "autoform.tex", environments_tex())
    path = src / "content.tex"
    _write(path, header + "\n".join(parts))
    written += ["src/macros/autoform.tex", "src/content.tex"]
    return BlueprintSummary(
        path=path, books=len(books), units=n_units, leanok=n_ok, layout=layout, written=written, notes=notes
    )


# -- the dependency graph as SVG -----------------------------------------------------------------------------------
_ABBREV = {
    "definition": "Def",
    "theorem": "Thm",
    "lemma": "Lem",
    "proposition": "Prop",
    "corollary": "Cor",
    "example": "Ex",
    "exercise": "Exer",
    "remark": "Rem",
    "claim": "Claim",
    "axiom": "Ax",
}
NODE_H, LAYER_GAP, NODE_GAP, MARGIN, CHAR_W = 30, 52, 18, 12, 7.0


def node_label(u: Unit) -> str:
    kind = _ABBREV.get(u.kind, u.kind[:5].capitalize())
    return f"{kind} {u.number}".strip() if u.number else (u.label or f"{kind} #{u.id}")


def _node_width(label: str, ellipse: bool) -> float:
    w = max(56.0, CHAR_W * len(label) + 22)
    return round(w * 1.2 if ellipse else w, 1)


def _acyclic(h: nx.DiGraph) -> nx.DiGraph:
    """`h` with cycles broken at the edge pointing furthest forward in the book (as graph.work_order does)."""
    h = h.copy()
    while True:
        try:
            cyc = nx.find_cycle(h)
        except nx.NetworkXNoCycle:
            return h
        u, v = max(((a, b) for a, b, *_ in cyc), key=lambda e: (h.nodes[e[1]]["seq"] - h.nodes[e[0]]["seq"], e))
        h.remove_edge(u, v)


@dataclass
class _Placed:
    x: float  # centre
    y: float  # top
    w: float


Node = int | tuple[int, int, int]  # a unit id, or a bend point (user, used, k) of an edge spanning several layers


@dataclass
class Layout:
    nodes: dict[Node, _Placed]
    #: per drawn edge (user, used): the points it passes through, from `used` down to `user`
    routes: dict[tuple[int, int], list[Node]]
    width: float
    height: float


def _with_bend_points(
    h: nx.DiGraph, level: dict[Node, int], key: dict[Node, tuple[int, int, int]]
) -> tuple[nx.DiGraph, dict[tuple[int, int], list[Node]]]:
    """(the flow graph: used -> bend points -> user, each drawn edge's route). Adds the bend points of edges that
    span several layers to `level` and `key`."""
    flow = nx.DiGraph()
    flow.add_nodes_from(h)
    routes: dict[tuple[int, int], list[Node]] = {}
    for a, b in sorted(h.edges):
        chain: list[Node] = [b]
        for k in range(level[b] + 1, level[a]):
            d = (a, b, k)
            level[d], key[d] = k, (h.nodes[b]["seq"], 1 + k, h.nodes[a]["seq"])
            chain.append(d)
        chain.append(a)
        nx.add_path(flow, chain)
        routes[(a, b)] = chain
    return flow, routes


def _sweep(layers: list[list[Node]], flow: nx.DiGraph, key: dict[Node, tuple[int, int, int]]) -> None:
    """Order each layer by the barycentre of its neighbours, six sweeps down and up (in place)."""
    pos = {n: float(i) for layer in layers for i, n in enumerate(layer)}
    for _ in range(6):
        for sweep, order in enumerate((layers[1:], list(reversed(layers[:-1])))):
            for layer in order:

                def bary(n: Node, sweep: int = sweep) -> tuple[float, tuple[int, int, int]]:
                    near = list(flow.predecessors(n)) if sweep == 0 else list(flow.successors(n))
                    return (sum(pos[m] for m in near) / len(near) if near else pos[n], key[n])

                layer.sort(key=bary)
                for i, n in enumerate(layer):
                    pos[n] = float(i)


def _place(layers: list[list[Node]], widths: dict[Node, float]) -> tuple[dict[Node, _Placed], float]:
    """Each layer centred in the widest; returns the places and the total width."""
    row_w = [sum(widths[n] for n in layer) + NODE_GAP * (len(layer) - 1) for layer in layers]
    total_w = max(row_w, default=0.0) + 2 * MARGIN
    placed: dict[Node, _Placed] = {}
    for i, layer in enumerate(layers):
        x = (total_w - row_w[i]) / 2
        for n in layer:
            placed[n] = _Placed(round(x + widths[n] / 2, 1), MARGIN + i * (NODE_H + LAYER_GAP), widths[n])
            x += widths[n] + NODE_GAP
    return placed, total_w


def layout(h: nx.DiGraph) -> Layout:
    """Layered (Sugiyama-style) layout of a DAG whose edges go from a unit to what it uses: what is used sits
    above what uses it. Layers are networkx's topological generations; an edge spanning several layers gets a
    bend point in each layer it crosses, so it runs between nodes rather than through them; within a layer,
    book order refined by barycentre sweeps. Deterministic."""
    level: dict[Node, int] = {}
    for i, gen in enumerate(nx.topological_generations(h.reverse(copy=False))):
        for n in gen:
            level[n] = i
    key: dict[Node, tuple[int, int, int]] = {n: (h.nodes[n]["seq"], 0, 0) for n in h}
    flow, routes = _with_bend_points(h, level, key)
    n_layers = max(level.values(), default=-1) + 1
    layers: list[list[Node]] = [[] for _ in range(n_layers)]
    for n in sorted(level, key=lambda n: key[n]):
        layers[level[n]].append(n)
    _sweep(layers, flow, key)
    widths: dict[Node, float] = {
        n: 8.0 if isinstance(n, tuple) else _node_width(h.nodes[n]["text"], not h.nodes[n]["box"]) for n in level
    }
    placed, total_w = _place(layers, widths)
    total_h = MARGIN * 2 + n_layers * NODE_H + max(n_layers - 1, 0) * LAYER_GAP
    return Layout(placed, routes, round(total_w, 1), float(total_h))


def _route_path(points: list[_Placed]) -> str:
    """SVG path data through the bottom of the first point, the bend points (straight down through their
    layer) and the top of the last, with vertical tangents at every layer."""
    x, y = points[0].x, points[0].y + NODE_H
    d = [f"M{x},{y}"]
    for p in points[1:]:
        top = p.y - (1 if p is points[-1] else 0)
        ym = round((y + top) / 2, 1)
        d.append(f"C{x},{ym} {p.x},{ym} {p.x},{top}")
        x, y = p.x, p.y + NODE_H
        if p is not points[-1]:
            d.append(f"L{x},{y}")
    return " ".join(d)


def _esc(s: str) -> str:
    return html.escape(s, quote=True)


def _chapter_dag(g: nx.DiGraph, own: set[int], by_id: dict[int, Unit]) -> tuple[nx.DiGraph, nx.DiGraph]:
    """(the chapter's graph: its units and what they use, the graph to draw: acyclic, transitively reduced)."""
    nodes = set(own) | {v for u in own if u in g for v in g.successors(u)}
    h = nx.DiGraph()
    for n in sorted(nodes, key=lambda n: by_id[n].seq):
        u = by_id[n]
        h.add_node(n, seq=u.seq, text=node_label(u), box=u.kind == "definition")
    for a in sorted(own):
        for b in sorted(g.successors(a)) if a in g else []:
            h.add_edge(a, b, dashed=statement_uses(by_id[a], by_id[b]))
    dag = _acyclic(h)
    drawn = nx.transitive_reduction(dag)  # as Blueprint does (graphviz tred): no redundant arrows
    drawn.add_nodes_from(dag.nodes(data=True))
    drawn.add_edges_from([(a, b, dag.edges[a, b]) for a, b in drawn.edges])
    return h, drawn


def _svg_head(graph_id: str, width: float, height: float, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="depgraph" id="{_esc(graph_id)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_esc("Dependency graph" + (": " + title if title else ""))}">',
        f'<defs><marker id="{_esc(graph_id)}-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/></marker>'
        "</defs>",
    ]


def _svg_edges(lay: Layout, drawn: nx.DiGraph, graph_id: str) -> list[str]:
    placed = lay.nodes
    out = ['<g class="edges">']
    for (a, b), chain in sorted(
        lay.routes.items(), key=lambda r: (placed[r[0][0]].y, placed[r[0][0]].x, placed[r[0][1]].x)
    ):
        dash = ' stroke-dasharray="5 4"' if drawn.edges[a, b]["dashed"] else ""
        out.append(
            f'<path class="edge" data-from="{b}" data-to="{a}" d="{_route_path([placed[n] for n in chain])}" '
            f'fill="none" stroke="#57606a" stroke-width="1.3"{dash} marker-end="url(#{_esc(graph_id)}-arrow)"/>'
        )
    return [*out, "</g>"]


def _svg_shape(p: _Placed, u: Unit, st: NodeState) -> str:
    """A definition's box or a result's ellipse, in the Blueprint colours of its state."""
    border, fill = st.border or BORDER_DEFAULT, st.fill or FILL_DEFAULT
    stroke_w = "2.2" if st.border else "1.2"
    if u.kind == "definition":
        return (
            f'<rect x="{round(p.x - p.w / 2, 1)}" y="{p.y}" width="{p.w}" height="{NODE_H}" rx="3" '
            f'fill="{fill}" stroke="{border}" stroke-width="{stroke_w}"/>'
        )
    return (
        f'<ellipse cx="{p.x}" cy="{p.y + NODE_H / 2}" rx="{round(p.w / 2, 1)}" ry="{NODE_H / 2}" fill="{fill}" '
        f'stroke="{border}" stroke-width="{stroke_w}"/>'
    )


def _svg_node(p: _Placed, u: Unit, st: NodeState, *, own: bool, href: str, text: str) -> list[str]:
    """One node: a link to the unit's page, with its state as a tooltip, its shape and its label."""
    classes = ["node", "definition" if u.kind == "definition" else "result"]
    if not own:
        classes.append("external")
    if st.failed:
        classes.append("failed")
    tip = f"{u.display} \u2014 {st.summary}" + (f" \u2014 {u.chapter}" if not own and u.chapter else "")
    colour = TEXT_FAILED if st.failed else "#1f2328"
    weight = ' font-weight="bold"' if st.failed else ""
    return [
        f'<a class="{" ".join(classes)}" href="{_esc(href)}" data-unit="{u.id}" '
        f'data-border="{_esc(st.border)}" data-fill="{_esc(st.fill)}"' + (' opacity="0.55"' if not own else "") + ">",
        f"<title>{_esc(tip)}</title>",
        _svg_shape(p, u, st),
        f'<text x="{p.x}" y="{p.y + NODE_H / 2}" text-anchor="middle" dominant-baseline="central" font-size="12" '
        f'fill="{colour}"{weight}>{_esc(text)}</text>',
        "</a>",
    ]


def chapter_graph_svg(
    g: nx.DiGraph,
    chapter_units: list[Unit],
    by_id: dict[int, Unit],
    states: dict[int, NodeState],
    href: dict[int, str],
    *,
    graph_id: str,
    title: str = "",
) -> str:
    """Inline SVG of the dependency graph of one chapter: its units, and the units of other chapters they use
    (faded). Every node links to its unit page. All text is escaped; the output is deterministic."""
    own = {u.id for u in chapter_units}
    h, drawn = _chapter_dag(g, own, by_id)
    lay = layout(drawn)
    placed = lay.nodes
    out = [*_svg_head(graph_id, lay.width, lay.height, title), *_svg_edges(lay, drawn, graph_id)]
    out.append('<g class="nodes">')
    for n in sorted((n for n in placed if isinstance(n, int)), key=lambda n: (placed[n].y, placed[n].x)):
        out += _svg_node(placed[n], by_id[n], states[n], own=n in own, href=href[n], text=h.nodes[n]["text"])
    out += ["</g>", "</svg>"]
    return "\n".join(out)
