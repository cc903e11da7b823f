"""Time the ingest of one textbook, or measure a PDF's units against the book's LaTeX source.

    python benchmarks/ingest.py PATH [--repeat N]
    python benchmarks/ingest.py BOOK.pdf --against BOOK.tex

PATH is a .tex root, a folder holding one, or a PDF (read through ``read_book``). The book is parsed and stored
in a temporary store; the last line printed is JSON: {"seconds": wall time of parse + store (best of N),
"peak_mb": the process's peak resident memory, "units": units stored, ...}.

With ``--against``, the PDF is read twice from one extraction, by the text-only reading (lines of text) and by the
layout reading (characters with fonts and positions: ``autoform.ingest.pdf_layout``), and each is compared with the
LaTeX reader's units of the same book: the numbered theorem-like units found (same kind and number), by kind; and
for each unit found, the words of its statement (letters only, lower-cased; LaTeX commands, labels, references and
index entries left out) against the LaTeX statement's words: precision (share of the PDF's words that are the
book's) and recall (share of the book's words found). The last line is JSON with both readings side by side.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autoform.ingest import IngestError, read_book, store_book  # noqa: E402
from autoform.ingest.model import KINDS, RawUnit  # noqa: E402
from autoform.store import Store  # noqa: E402

#: the unit kinds compared (every kind the readers give a unit)
THEOREM_LIKE = KINDS


def peak_mb() -> float:
    """Peak resident set size of this process: VmHWM on Linux (ru_maxrss survives exec, so a benchmark started
    from a large parent would report the parent's peak), else ru_maxrss (KiB on Linux, bytes on macOS)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def run(path: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="autoform-bench-") as tmp:
        t0 = time.perf_counter()
        result = read_book(path)
        t1 = time.perf_counter()
        summary = store_book(Store(Path(tmp) / "autoform.sqlite"), "bench", result)
        t2 = time.perf_counter()
    return {
        "seconds": round(t2 - t0, 3),
        "parse_seconds": round(t1 - t0, 3),
        "store_seconds": round(t2 - t1, 3),
        "units": summary.units,
        "edges": summary.edges,
        "warnings": len(result.warnings),
        "kinds": dict(Counter(u.kind for u in result.units)),
    }


# ------------------------------------------------------------------------------------------ PDF against LaTeX

#: LaTeX commands whose argument is no word of the statement (labels, references, index entries, citations)
_DROP_ARG_RE = re.compile(
    r"\\(?:label|[cC]ref|[vV]ref|ref|eqref|pageref|autoref|cite[tp]?|index|hyperref|begin|end|includegraphics"
    r"|vspace|hspace|url|color|textcolor)\*?(?:\[[^\]]*\])*"
)
_WORD_RE = re.compile(r"[A-Za-z]{2,}")


def _drop_group(text: str, start: int) -> int:
    """The end of the balanced ``{...}`` group at ``start`` (``start`` itself when there is none)."""
    if start >= len(text) or text[start] != "{":
        return start
    depth = 0
    for k in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[k], 0)
        if depth == 0:
            return k + 1
    return len(text)


#: operator names a book prints as words ("log", "lim sup")
_OPERATORS = {
    "limsup": "lim sup",
    "liminf": "lim inf",
    **{
        w: w
        for w in ("log", "ln", "lg", "sin", "cos", "tan", "sec", "csc", "cot", "exp", "lim", "sup", "inf")
        + ("max", "min", "det", "gcd", "deg", "dim", "ker", "arg", "mod", "hom")
    },
    "bmod": "mod",
    "pmod": "mod",
}
_OPERATOR_RE = re.compile(rf"\\({'|'.join(sorted(_OPERATORS, key=len, reverse=True))})(?![A-Za-z])")
_TEXT_IN_MATH_RE = re.compile(r"\\(?:text|textrm|textit|mbox|mathrm|operatorname)\s*\{([^{}]*)\}")
_MATH_RE = re.compile(
    r"\$\$.*?\$\$|\$.*?\$|\\\[.*?\\\]|\\\(.*?\\\)|\\begin\{(equation|align|gather|multline)\*?\}.*?\\end\{\1\*?\}",
    re.S,
)


def _math_as_printed(segment: str) -> str:
    """A math segment as the page prints it: letters side by side are one word ("$p q$" prints "pq"), operator
    names and text are words of their own, other commands separate."""
    segment = _TEXT_IN_MATH_RE.sub(lambda m: " \x01 " + m.group(1).replace(" ", " \x01 ") + " \x01 ", segment)
    segment = _OPERATOR_RE.sub(lambda m: " \x01 " + _OPERATORS[m.group(1)].replace(" ", " \x01 ") + " \x01 ", segment)
    segment = re.sub(r"\\[A-Za-z]+", " \x01 ", segment)
    return re.sub(r"(?<=[A-Za-z])\s+(?=[A-Za-z])", "", segment)


#: figures: their drawing code, labels and caption are no words of the statement (the PDF reader leaves them out)
_FIGURE_RE = re.compile(r"\\begin\{(figure|tikzpicture|pspicture|picture)\*?\}.*?\\end\{\1\*?\}", re.S)


def latex_words(text: str) -> Counter[str]:
    """The words of a LaTeX statement as printed: commands and the arguments of labels, references and index
    entries left out, figures left out, math read as the page sets it, letters only, lower-cased."""
    text = _FIGURE_RE.sub(" ", text)
    out: list[str] = []
    pos = 0
    for m in _DROP_ARG_RE.finditer(text):
        if m.start() < pos:
            continue
        out.append(text[pos : m.start()])
        pos = _drop_group(text, m.end())
    out.append(text[pos:])
    rest = _MATH_RE.sub(lambda m: _math_as_printed(m.group(0)), "".join(out))
    rest = re.sub(r"\\[A-Za-z]+", " ", rest)
    return Counter(w.lower() for w in _WORD_RE.findall(rest))


def pdf_words(text: str) -> Counter[str]:
    return Counter(w.lower() for w in _WORD_RE.findall(text))


@dataclasses.dataclass
class UnitScore:
    kind: str
    number: str
    precision: float
    recall: float
    ratio: float  # the PDF statement's words / the LaTeX statement's


def _occurrences(units: list[RawUnit]) -> dict[tuple[str, str, int], RawUnit]:
    """Units by kind, number and occurrence (a number printed twice, as in an exercise list and the body, is
    two units, matched in book order)."""
    seen: Counter[tuple[str, str]] = Counter()
    out: dict[tuple[str, str, int], RawUnit] = {}
    for u in units:
        seen[(u.kind, u.number)] += 1
        out[(u.kind, u.number, seen[(u.kind, u.number)])] = u
    return out


def score_units(latex: list[RawUnit], pdf: list[RawUnit]) -> tuple[dict[str, list[int]], list[UnitScore]]:
    """Per kind, [found, in the LaTeX] numbered units; and the word scores of the statements found."""
    ref = _occurrences([u for u in latex if u.kind in THEOREM_LIKE and u.number])
    got = _occurrences(pdf)
    by_kind: dict[str, list[int]] = {}
    scores: list[UnitScore] = []
    for key, lu in ref.items():
        counts = by_kind.setdefault(key[0], [0, 0])
        counts[1] += 1
        pu = got.get(key)
        if pu is None:
            continue
        counts[0] += 1
        want, have = latex_words(lu.statement), pdf_words(pu.statement)
        if not want:
            continue
        common = sum((want & have).values())
        n_have, n_want = sum(have.values()), sum(want.values())
        scores.append(UnitScore(key[0], key[1], common / n_have if n_have else 0.0, common / n_want, n_have / n_want))
    return by_kind, scores


def summarize(by_kind: dict[str, list[int]], scores: list[UnitScore]) -> dict[str, object]:
    found = sum(a for a, _ in by_kind.values())
    total = sum(b for _, b in by_kind.values())
    n = len(scores) or 1
    return {
        "found": found,
        "numbered": total,
        "found_share": round(found / total, 4) if total else 0.0,
        "by_kind": {k: f"{a}/{b}" for k, (a, b) in sorted(by_kind.items())},
        "precision_ge_0.9": round(sum(s.precision >= 0.9 for s in scores) / n, 4),
        "recall_ge_0.9": round(sum(s.recall >= 0.9 for s in scores) / n, 4),
        "longer_than_1.5x": round(sum(s.ratio > 1.5 for s in scores) / n, 4),
        "mean_precision": round(sum(s.precision for s in scores) / n, 4),
        "mean_recall": round(sum(s.recall for s in scores) / n, 4),
        "scored": len(scores),
    }


def against(pdf_path: Path, tex_path: Path, *, show: int = 0) -> dict[str, object]:
    """Both PDF readings of ``pdf_path`` measured against the LaTeX reader's units of ``tex_path``."""
    from autoform.ingest.latex import ingest_latex
    from autoform.ingest.pdf import extract, parse

    latex = ingest_latex(tex_path).units
    t0 = time.perf_counter()
    doc = extract(pdf_path)
    t1 = time.perf_counter()
    readings = {
        "text_only": parse(dataclasses.replace(doc, layout=None)).units,
        "layout": parse(doc).units,
    }
    out: dict[str, object] = {"pdf": str(pdf_path), "latex": str(tex_path), "extract_seconds": round(t1 - t0, 1)}
    for name, units in readings.items():
        by_kind, scores = score_units(latex, units)
        out[name] = summarize(by_kind, scores)
        if show:
            worst = sorted(scores, key=lambda s: s.precision)[:show]
            print(f"{name}: lowest precision: " + ", ".join(f"{s.kind} {s.number} {s.precision:.2f}" for s in worst))
    return out


def _print_against(data: dict[str, object]) -> None:
    rows = [
        ("numbered units found", "found_share"),
        ("statements with word precision >= 0.9", "precision_ge_0.9"),
        ("statements with word recall >= 0.9", "recall_ge_0.9"),
        ("statements > 1.5x the book's length", "longer_than_1.5x"),
        ("mean word precision", "mean_precision"),
        ("mean word recall", "mean_recall"),
    ]
    a, b = data["text_only"], data["layout"]
    assert isinstance(a, dict) and isinstance(b, dict)
    print(f"{'':42} {'text only':>12} {'layout':>12}")
    for label, key in rows:
        print(f"{label:42} {a[key]:>12.1%} {b[key]:>12.1%}")
    print(f"{'found / numbered':42} {a['found']:>6}/{a['numbered']:<5} {b['found']:>6}/{b['numbered']:<5}")
    for kind in sorted(b["by_kind"]):
        print(f"  {kind:40} {a['by_kind'].get(kind, '-'):>12} {b['by_kind'][kind]:>12}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", type=Path)
    ap.add_argument("--repeat", type=int, default=1, help="run N times and report the fastest")
    ap.add_argument("--against", type=Path, help="a LaTeX root of the same book: measure the PDF's units against it")
    ap.add_argument("--show", type=int, default=0, help="with --against: list the N statements of lowest precision")
    args = ap.parse_args(argv)
    if args.against is not None:
        try:
            data = against(args.path, args.against, show=args.show)
        except IngestError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        _print_against(data)
        print(json.dumps(data))
        return 0
    try:
        runs = [run(args.path) for _ in range(max(1, args.repeat))]
    except IngestError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    best = min(runs, key=lambda r: float(str(r["seconds"])))
    print(
        f"{args.path}: {best['units']} units, {best['edges']} edges, {best['warnings']} warnings; "
        f"parse {best['parse_seconds']} s + store {best['store_seconds']} s",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "seconds": best["seconds"],
                "peak_mb": peak_mb(),
                "units": best["units"],
                "edges": best["edges"],
                "parse_seconds": best["parse_seconds"],
                "store_seconds": best["store_seconds"],
                "kinds": best["kinds"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
