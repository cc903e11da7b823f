"""Measured on the shared real textbooks (skipped when ../shared/data/textbooks is absent).

Each book is ingested once per module. What the reader found is compared with what is *present*, counted
independently of the reader, grep-style: ``\\begin{env}`` for the environment names the book itself declares
(comment lines and verbatim blocks dropped), in the files the book's root includes, followed here with a few
regular expressions of its own. A present environment counts as extracted when a unit starts at its file and
line. References are counted the same way: every reference command inside a theorem-like environment or a proof
whose label is defined inside a theorem-like environment; it is resolved when the graph has an edge from the
unit holding the reference to the unit holding the label.

Books: infdesc (root book.tex); OpenLogic's complete build (open-logic-complete.tex: every part, 655 files, 52 of
them included twice -- once more with the FOL tag off in the propositional-logic part, under other labels --
so it is measured per distinct source environment); the eleven ProofNet exercise files (exercises are
``\\paragraph{Exercise n}`` headings, not environments).
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from autoform.ingest import IngestResult, IngestSummary, read_book, store_book
from autoform.store import Store, Unit

ROOT = Path(__file__).resolve().parent.parent
TEXTBOOKS = ROOT.parent / "shared" / "data" / "textbooks"
INFDESC = TEXTBOOKS / "infdesc"
OPENLOGIC = TEXTBOOKS / "openlogic"
PROOFNET = TEXTBOOKS / "proofnet-informal" / "informal"

pytestmark = pytest.mark.skipif(not TEXTBOOKS.is_dir(), reason=f"shared textbooks absent ({TEXTBOOKS})")


@dataclass
class Book:
    root: Path
    result: IngestResult
    summary: IngestSummary
    units: list[Unit]
    edges: set[tuple[int, int]]
    seconds: float

    def units_at(self, file: str, line: int) -> list[Unit]:
        """Units whose span covers file:line, innermost (latest start) first."""
        out = []
        for u in self.units:
            f, span = u.source.rsplit(":", 1)
            a, b = map(int, span.split("-"))
            if f == file and a <= line <= b:
                out.append((a, u))
        return [u for _, u in sorted(out, key=lambda t: -t[0])]

    def starts(self) -> Counter[tuple[str, int]]:
        return Counter((u.source.rsplit(":", 1)[0], int(u.source.rsplit(":", 1)[1].split("-")[0])) for u in self.units)


def _ingest(root: Path, tmp: Path) -> Book:
    t0 = time.perf_counter()
    result = read_book(root)
    seconds = time.perf_counter() - t0
    store = Store(tmp / "autoform.sqlite")
    summary = store_book(store, "book", result)
    book = store.book("book")
    assert book is not None
    return Book(root, result, summary, store.units(book.id), {(a, b) for a, b, _ in store.deps(book.id)}, seconds)


# ----------------------------------------------------------------------------------- independent counting
def strip_comments(text: str) -> str:
    """Drop comments, keep every line (so line numbers still match)."""
    return "\n".join(re.sub(r"(?<!\\)%.*", "", line) for line in text.split("\n"))


def blank_blocks(text: str, envs: Iterable[str]) -> str:
    for env in envs:
        text = re.sub(
            rf"\\begin\{{{re.escape(env)}\}}.*?\\end\{{{re.escape(env)}\}}",
            lambda m: re.sub(r"[^\n]", " ", m.group()),
            text,
            flags=re.S,
        )
    return text


def line_at(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


@dataclass
class Present:
    file: str
    line: int
    kind: str


def environments_present(
    base: Path,
    files: Iterable[Path],
    kinds: dict[str, str],
    verbatim: Iterable[str] = (),
    tags: dict[str, bool] | None = None,
) -> list[Present]:
    out = []
    for f in sorted(set(files)):
        text = blank_blocks(strip_comments(f.read_text(encoding="utf-8", errors="replace")), verbatim)
        if tags is not None:
            text = resolve_tags(text, tags)
        for m in re.finditer(r"\\begin\{([^}]*)\}(\[[^\]]*\])?(\{([^}]*)\})?", text):
            env = m.group(4) if m.group(1) == "restatable" else m.group(1)
            if env in kinds:
                out.append(Present(str(f.relative_to(base)), line_at(text, m.start()), kinds[env]))
    return out


def recall_by_kind(book: Book, present: list[Present]) -> dict[str, tuple[int, int]]:
    starts = book.starts()
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for p in present:
        found[p.kind][1] += 1
        found[p.kind][0] += (p.file, p.line) in starts
    return {k: (v[0], v[1]) for k, v in found.items()}


def assert_recall(name: str, book: Book, present: list[Present], *, at_least: float = 0.99) -> None:
    per_kind = recall_by_kind(book, present)
    extracted = Counter(u.kind for u in book.units)
    print(
        f"\n{name}: {len(book.units)} units in {book.seconds:.2f} s; per kind (found at their source / present; "
        f"units extracted): " + ", ".join(f"{k} {a}/{b} ({extracted[k]})" for k, (a, b) in sorted(per_kind.items()))
    )
    for kind, (a, b) in per_kind.items():
        assert a >= at_least * b, f"{name}: {kind}: {a}/{b} environments found"
    # and nothing invented: every unit starts where an environment of its kind begins
    where = {(p.file, p.line): p.kind for p in present}
    stray = [
        u
        for u in book.units
        if where.get((u.source.rsplit(":", 1)[0], int(u.source.rsplit(":", 1)[1].split("-")[0]))) != u.kind
    ]
    assert len(stray) <= 0.01 * len(book.units), [(u.kind, u.source) for u in stray[:10]]


@dataclass
class RefUse:
    file: str
    line: int
    label: str
    proves: tuple[str, ...] = ()  # in a proof titled "Proof of \ref{x}": x


def ref_resolution(book: Book, uses: list[RefUse], unit_labels: set[str]) -> tuple[int, int]:
    """(resolved, counted) over references to labels of theorem-like units (self references not counted)."""
    by_label: dict[str, list[int]] = defaultdict(list)
    by_index: dict[str, list[int]] = defaultdict(list)
    labels_of = {u.id: set(r.labels) for u, r in zip(book.units, book.result.units, strict=True)}
    for k, (uid, labs) in enumerate(labels_of.items()):
        for lab in labs:
            by_label[lab].append(uid)
            by_index[lab].append(k)
    resolved = counted = 0
    for use in uses:
        if use.label not in unit_labels:
            continue
        citing = book.units_at(use.file, use.line)
        if use.proves:  # a proof placed away from its theorem belongs to the theorem its title names
            citing = [book.units[k] for lab in use.proves for k in by_index.get(lab, [])] + citing
        innermost = [c for c in citing if c.source == citing[0].source] if citing else []
        if any(use.label in labels_of[c.id] for c in innermost):
            continue  # a unit citing itself (or the theorem its proof proves)
        counted += 1
        if any((c.id, t) in book.edges for c in citing for t in by_label.get(use.label, [])):
            resolved += 1
    return resolved, counted


def blocks(text: str, envs: Iterable[str]) -> Iterable[tuple[int, str, str]]:
    """(offset, body, proof title) of every \\begin{env}...\\end{env} for the given names (outermost, not
    nested). A proof's title ("[Proof of Theorem~\\ref{x}]") is not part of the body: it names what is proved."""
    names = "|".join(re.escape(e) for e in sorted(envs, key=len, reverse=True))
    pat = rf"\\begin\{{({names})\}}(\[(?:[^\[\]]|\{{[^{{}}]*\}})*\])?(.*?)\\end\{{\1\}}"
    for m in re.finditer(pat, text, flags=re.S):
        if m.group(2) and "proof" not in m.group(1):
            yield m.start(2), m.group(2) + m.group(3), ""
        else:
            yield m.start(3), m.group(3), m.group(2) or ""


def _group_end(text: str, k: int) -> int:
    """Index of the '}' closing the group that opens at text[k] == '{' (-1 when it never closes)."""
    depth = 0
    j = k
    while j < len(text):
        c = text[j]
        if c == "\\":
            j += 2
            continue
        depth += (c == "{") - (c == "}")
        if depth == 0:
            return j
        j += 1
    return -1


def resolve_tags(text: str, tags: dict[str, bool]) -> str:
    """OpenLogic's \\iftag{t1,t2}{A}{B} and \\tagitem{t}{A}{B}: blank the branch the tags leave out (lines kept).
    The first branch is taken when any of its tags is true (etoolbox toggles, as the book's \\iftag does)."""
    out: list[str] = []
    i = 0
    for m in re.finditer(r"\\(?:iftag|tagitem)\{([^}]*)\}", text):
        if m.start() < i:
            continue
        spans: list[tuple[int, int]] = []
        k = m.end()
        for _ in range(2):
            while k < len(text) and text[k] in " \t\n":
                k += 1
            if k >= len(text) or text[k] != "{" or (e := _group_end(text, k)) < 0:
                break
            spans.append((k + 1, e))
            k = e + 1
        if len(spans) < 2:
            continue
        on = any(tags.get(t.strip(), False) for t in m.group(1).split(","))
        a, b = spans[0] if on else spans[1]
        out += [
            text[i : m.start()],
            re.sub(r"[^\n]", " ", text[m.start() : a]),
            resolve_tags(text[a:b], tags),
            re.sub(r"[^\n]", " ", text[b:k]),
        ]
        i = k
    out.append(text[i:])
    return "".join(out)


def openlogic_tags() -> dict[str, bool]:
    """The tags of the complete build: open-logic-config.sty, then open-logic-complete-config.sty."""
    tags: dict[str, bool] = {}
    for name in ("open-logic-config.sty", "open-logic-complete-config.sty"):
        text = strip_comments((OPENLOGIC / name).read_text(encoding="utf-8"))
        for m in re.finditer(r"\\tag(true|false)\{([^}]*)\}", text):
            for t in m.group(2).split(","):
                tags[t.strip()] = m.group(1) == "true"
    return tags


# ================================================================================================== infdesc
INFDESC_STEMS = {
    "theorem": "theorem",
    "lemma": "lemma",
    "proposition": "proposition",
    "corollary": "corollary",
    "axiom": "axiom",
    "axioms": "axiom",
    "assumption": "axiom",
    "definition": "definition",
    "predefinition": "definition",
    "construction": "definition",
    "notation": "definition",
    "vocabulary": "definition",
    "example": "example",
    "exercise": "exercise",
    "problem": "exercise",
    "chapex": "exercise",
    **{
        w: "remark"
        for w in (
            "discussion",
            "extract",
            "convention",
            "remark",
            "strategy",
            "deadlysin",
            "writingprinciple",
            "problemtip",
            "prooftip",
            "writingtip",
            "latextip",
            "formattip",
            "goal",
            "aside",
            "commonerror",
        )
    },
    **{w: "proof" for w in ("cproof", "csketch", "cidea")},
}


def infdesc_kind(env: str) -> str | None:
    n = env.rstrip("*")
    if n.endswith("ac") and n[:-2] in INFDESC_STEMS:
        n = n[:-2]
    for prefix in ("ch", "i", "o"):
        if n not in INFDESC_STEMS and n.startswith(prefix) and n[len(prefix) :] in INFDESC_STEMS:
            n = n[len(prefix) :]
    return INFDESC_STEMS.get(n)


def infdesc_files() -> list[Path]:
    """book.tex and what it \\input's, with \\currentchapter substituted as each chapter file sets it."""
    out: list[Path] = []

    def visit(f: Path) -> None:
        out.append(f)
        text = strip_comments(f.read_text(encoding="utf-8"))
        current = ""
        for m in re.finditer(r"\\renewcommand\{\\currentchapter\}\{([^}]*)\}|\\input\{([^}]*)\}", text):
            if m.group(1) is not None:
                current = m.group(1)
                continue
            target = INFDESC / m.group(2).replace("\\currentchapter", current)
            if target.is_file():
                visit(target)

    visit(INFDESC / "book.tex")
    return out


@pytest.fixture(scope="module")
def infdesc(tmp_path_factory: pytest.TempPathFactory) -> Book:
    if not (INFDESC / "book.tex").is_file():
        pytest.skip("infdesc absent")
    return _ingest(INFDESC / "book.tex", tmp_path_factory.mktemp("infdesc"))


@pytest.fixture(scope="module")
def infdesc_envs() -> dict[str, str]:
    decl = (INFDESC / "book" / "includes" / "theorems.tex").read_text(encoding="utf-8")
    names = re.findall(r"\\declaretheorem\[[^\]]*\]\{([^}]*)\}", decl)
    kinds = {n: k for n in names if (k := infdesc_kind(n)) is not None}
    assert len(names) > 100 and len(kinds) == len(names), set(names) - set(kinds)
    return {n: k for n, k in kinds.items() if k != "proof"}


def test_infdesc_units_per_kind(infdesc: Book, infdesc_envs: dict[str, str]) -> None:
    files = infdesc_files()
    assert len(files) > 80
    verbatim = re.findall(
        r"\\lstnewenvironment\{([^}]*)\}", (INFDESC / "book" / "includes" / "latex.tex").read_text(encoding="utf-8")
    )
    present = environments_present(INFDESC, files, infdesc_envs, verbatim)
    assert len(present) > 1500
    assert_recall("infdesc", infdesc, present)
    assert infdesc.result.warnings == []


def test_infdesc_numbers_titles_proofs_and_locations(infdesc: Book) -> None:
    units = {u.label: u for u in infdesc.result.units if u.label}
    # chapter 0 numbers within the chapter; later chapters within sections (\numberitemswithin)
    first = infdesc.result.units[0]
    assert (first.kind, first.number, first.chapter) == ("definition", "0.1", "Getting started")
    numbered = [u for u in infdesc.result.units if u.number]
    assert len(numbered) > 1400
    assert all(re.fullmatch(r"(\d+|[A-D])(\.(\d+|E))?\.\d+", u.number) for u in numbered), [
        u.number for u in numbered if not re.fullmatch(r"(\d+|[A-D])(\.(\d+|E))?\.\d+", u.number)
    ][:5]
    # appendices are lettered
    assert any(u.number.startswith("A.") for u in numbered)
    # a restatable theorem with its title
    weak = [u for u in infdesc.result.units if u.title == "Weak induction principle"]
    assert len(weak) == 1 and weak[0].kind == "theorem" and weak[0].section == "Weak induction"
    # cproof is the book's proof environment: every cproof outside verbatim is attached
    with_proof = sum(1 for u in infdesc.result.units if u.proof)
    assert with_proof >= 216
    assert all("\\begin{cproof}" not in u.statement for u in infdesc.result.units)
    # end-of-chapter questions (chapex, printed name empty, refname "question") are exercises n.k
    q = [u for u in infdesc.result.units if "/q.tex:" in u.source and u.kind == "exercise"]
    assert len(q) > 300 and all(re.fullmatch(r"\d+\.\d+", u.number) for u in q if "ch00" not in u.source)
    # labels given by the book's own macro \hintlabel are labels of their question
    assert units["cqSumsOfIntegersAreCoprime"].number == "7.4"
    assert infdesc.seconds < 5


def test_infdesc_references_resolved(infdesc: Book, infdesc_envs: dict[str, str]) -> None:
    unit_envs = [*infdesc_envs, "restatable"]
    proof_envs = ["cproof", "csketch", "cidea", "proof"]
    unit_labels: set[str] = set()
    uses: list[RefUse] = []
    label_re = re.compile(r"\\(?:label(?:\[[^\]]*\])?|hintlabel)\{([^}]*)\}")
    ref_re = re.compile(r"\\(?:ref|eqref|cref|Cref|autoref|Crefrange|crefrange|hintref)\*?((?:\{[^}]*\})+)")
    for f in infdesc_files():
        rel = str(f.relative_to(INFDESC))
        text = strip_comments(f.read_text(encoding="utf-8"))
        for _, body, _ in blocks(text, unit_envs):
            unit_labels.update(label_re.findall(body))
        for off, body, title in blocks(text, unit_envs + proof_envs):
            proves = tuple(
                x.strip()
                for m in ref_re.finditer(title)
                for arg in re.findall(r"\{([^}]*)\}", m.group(1))
                for x in arg.split(",")
            )
            for m in ref_re.finditer(body):
                for arg in re.findall(r"\{([^}]*)\}", m.group(1)):
                    for lab in arg.split(","):
                        uses.append(RefUse(rel, line_at(text, off + m.start()), lab.strip(), proves))
    resolved, counted = ref_resolution(infdesc, uses, unit_labels)
    print(
        f"\ninfdesc: references to theorem-like units resolved into edges: {resolved}/{counted} "
        f"({100 * resolved / counted:.1f}%)"
    )
    assert counted > 500
    assert resolved >= 0.97 * counted


# ================================================================================================ OpenLogic
OPENLOGIC_KINDS = {
    "thm": "theorem",
    "lem": "lemma",
    "prop": "proposition",
    "cor": "corollary",
    "defn": "definition",
    "ex": "example",
    "prob": "exercise",
    "probd": "exercise",
    "axiom": "axiom",
    "rem": "remark",
    "note": "remark",
    "case": "remark",
    "conv": "remark",
}


def openlogic_files() -> list[Path]:
    """open-logic-complete.tex and what it includes through \\include and \\olimport (each file once)."""
    seen: list[Path] = []

    def visit(f: Path) -> None:
        if f in seen or not f.is_file():
            return
        seen.append(f)
        text = strip_comments(f.read_text(encoding="utf-8"))
        for m in re.finditer(r"\\include\{([^}]*)\}|\\olimport(\*)?(?:\[([^\]]*)\])?\{([^}]*)\}", text):
            if m.group(1):
                visit(OPENLOGIC / (m.group(1) + ".tex"))
            elif m.group(2):
                visit(OPENLOGIC / "content" / m.group(3) / (m.group(4) + ".tex"))
            else:
                visit(f.parent / (m.group(3) or ".") / (m.group(4) + ".tex"))

    visit(OPENLOGIC / "open-logic-complete.tex")
    return [p.resolve() for p in seen]


@pytest.fixture(scope="module")
def openlogic(tmp_path_factory: pytest.TempPathFactory) -> Book:
    if not (OPENLOGIC / "open-logic-complete.tex").is_file():
        pytest.skip("openlogic absent")
    return _ingest(OPENLOGIC / "open-logic-complete.tex", tmp_path_factory.mktemp("openlogic"))


def test_openlogic_units_per_kind(openlogic: Book) -> None:
    decl = (OPENLOGIC / "open-logic-envs.sty").read_text(encoding="utf-8")
    declared = re.findall(r"\\declaretheorem\[[^\]]*\]\{(\w+)\}", decl)
    assert set(declared) == set(OPENLOGIC_KINDS)
    kinds = {**OPENLOGIC_KINDS, "probtag": "exercise"}  # \newenvironment{probtag}[1]{\begin{prob}}{\end{prob}}
    files = openlogic_files()
    assert len(files) > 600
    # environments in branches the book's own tags leave out (\iftag{defEx}{...}{...}) are not in the book
    present = environments_present(OPENLOGIC.resolve(), files, kinds, tags={**openlogic_tags(), "FOL": True})
    assert len(present) > 1600
    assert_recall("openlogic (complete)", openlogic, present)
    # files included twice (the PL part re-uses FOL chapters with the FOL tag off) give their units twice,
    # under the other labels
    assert len(openlogic.units) > len(present)
    pl = [u for u in openlogic.result.units if u.label.startswith("pl:com:ccs:")]
    fol = [u for u in openlogic.result.units if u.label.startswith("fol:com:ccs:")]
    assert pl and len(pl) == len(fol)


def test_openlogic_labels_numbers_and_statements(openlogic: Book) -> None:
    units = {u.label: u for u in openlogic.result.units if u.label}
    u = units["fol:com:ccs:prop:ccs"]  # \ollabel under \olfileid{fol}{com}{ccs}
    assert u.kind == "proposition" and u.proof
    assert re.fullmatch(r"\d+\.\d+", u.number)
    assert u.chapter == "The Completeness Theorem" and u.section.startswith("Complete Consistent Sets")
    # !!{token} terminology expanded in the stored statement, kept in the raw one
    assert "!!{complete}" in u.statement_raw and "!!{" not in u.statement
    assert "complete and consistent" in u.statement
    # \olref[...]{...} resolves to full labels
    assert all("\\" not in r and "NoValue" not in r for x in openlogic.result.units for r in x.refs)
    assert not openlogic.result.warnings


def openlogic_ids(text: str) -> tuple[str, str, str] | None:
    m = re.search(r"\\olfileid\{([^}]*)\}\{([^}]*)\}\{([^}]*)\}", text)
    return (m.group(1), m.group(2), m.group(3)) if m else None


def openlogic_targets(text: str, ids: tuple[str, str, str]) -> Iterable[tuple[int, str]]:
    """(offset, full label) of each reference: \\olref[part][chapter][section]{x} completes x with this file's
    \\olfileid as the book's \\olref does; \\ref and \\cref carry full labels."""
    p, c, s = ids
    for m in re.finditer(r"\\[Oo]lref((?:\[[^\]]*\])*)\{([^}]*)\}|\\(?:c|C)?ref\{([^}]*)\}", text):
        if m.group(3) is not None:
            for x in m.group(3).split(","):
                yield m.start(), x.strip()
        else:
            opts = re.findall(r"\[([^\]]*)\]", m.group(1))
            prefix = {0: (p, c, s), 1: (p, c, *opts), 2: (p, *opts), 3: tuple(opts)}[len(opts)]
            yield m.start(), ":".join([*prefix, m.group(2)])


def test_openlogic_references_resolved(openlogic: Book) -> None:
    unit_envs = [*OPENLOGIC_KINDS, "probtag"]
    unit_labels: set[str] = set()
    uses: list[RefUse] = []
    base = OPENLOGIC.resolve()
    tags = {**openlogic_tags(), "FOL": True}
    for f in openlogic_files():
        text = resolve_tags(strip_comments(f.read_text(encoding="utf-8")), tags)
        ids = openlogic_ids(text)  # with FOL on: the first \olfileid of a file that has two
        if ids is None:
            continue
        for _, body, _ in blocks(text, unit_envs):
            unit_labels.update(":".join([*ids, x]) for x in re.findall(r"\\ollabel\{([^}]*)\}", body))
        for off, body, title in blocks(text, unit_envs + ["proof"]):
            proves = tuple(lab for _, lab in openlogic_targets(title, ids))
            for at, lab in openlogic_targets(body, ids):
                uses.append(RefUse(str(f.relative_to(base)), line_at(text, off + at), lab, proves))
    resolved, counted = ref_resolution(openlogic, uses, unit_labels)
    print(
        f"\nopenlogic: references to theorem-like units resolved into edges: {resolved}/{counted} "
        f"({100 * resolved / counted:.1f}%)"
    )
    assert counted > 500
    assert resolved >= 0.97 * counted


# ================================================================================================= ProofNet
@pytest.fixture(scope="module")
def proofnet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Book]:
    if not PROOFNET.is_dir():
        pytest.skip("proofnet-informal absent")
    return {f.stem: _ingest(f, tmp_path_factory.mktemp(f.stem)) for f in sorted(PROOFNET.glob("*.tex"))}


def test_proofnet_exercises_and_proofs(proofnet: dict[str, Book]) -> None:
    assert len(proofnet) == 11
    total = found = proofs = attached = 0
    for name, book in proofnet.items():
        text = strip_comments((PROOFNET / f"{name}.tex").read_text(encoding="utf-8"))
        declared = re.findall(r"\\newtheorem\*?\{([^}]*)\}", text)
        envs = {d: "theorem" for d in declared}
        present = environments_present(PROOFNET, [PROOFNET / f"{name}.tex"], envs)
        headings = [
            (line_at(text, m.start()), m.group(1)) for m in re.finditer(r"\\paragraph\{Exercise ([^}]*)\}", text)
        ]
        present += [Present(f"{name}.tex", line, "exercise") for line, _ in headings]
        starts = book.starts()
        total += len(present)
        found += sum((p.file, p.line) in starts for p in present)
        # the number printed in the heading is the unit's number
        assert [u.number for u in book.result.units] == [num for _, num in headings]
        proofs += len(re.findall(r"\\begin\{proof\}", text))
        attached += sum(1 for u in book.result.units if u.proof)
        assert all(u.kind == "exercise" and u.statement for u in book.result.units)
    print(f"\nproofnet: exercises found {found}/{total}; proofs attached {attached}/{proofs}")
    assert total == 374 and found >= 0.99 * total
    assert attached >= 0.99 * proofs


# ===================================================================================================== speed
def test_benchmark_script_on_infdesc() -> None:
    import json
    import subprocess
    import sys

    if not (INFDESC / "book.tex").is_file():
        pytest.skip("infdesc absent")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ingest.py"), str(INFDESC / "book.tex")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\nbenchmarks/ingest.py infdesc: {data}")
    assert data["units"] > 1500
    assert data["seconds"] < 5 and data["peak_mb"] < 500
