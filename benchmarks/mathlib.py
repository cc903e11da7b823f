"""Mathlib index benchmark: build the index of a Mathlib checkout, time queries, and measure how well the
grounding step retrieves, from ProofNet-Verified's informal statements, the declarations their reference Lean
statements use (recall@10), against plain BM25 over the statement's words, side by side in one run.

    python benchmarks/mathlib.py SOURCE_DIR [--proofnet FILE] [--workers 2] [--limit N]

SOURCE_DIR is a Mathlib checkout (for example ../shared/data/mathlib's tarball unpacked, or
.lake/packages/mathlib). The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autoform.mathlib.index import MathlibIndex, build  # noqa: E402
from autoform.mathlib.search import concepts, plain_bm25, search  # noqa: E402

DEFAULT_PROOFNET = (
    Path(__file__).resolve().parent.parent.parent
    / "shared"
    / "data"
    / "benchmarks"
    / "proofnet-verified"
    / "proofnet-verified.jsonl"
)
_IDENT = re.compile(r"(?<![\w.'])[A-Za-z_][\w']*(?:\.[A-Za-z_][\w']*)*")


def reference_names(index: MathlibIndex, header: str, formal: str) -> set[str]:
    """The Mathlib declarations a reference statement uses: its identifiers resolved as Lean would, directly
    or through the header's ``open`` namespaces (binders and local names resolve to nothing and drop out)."""
    opens = [
        ns
        for line in header.splitlines()
        if line.startswith("open ") and " scoped " not in line
        for ns in line.split()[1:]
    ]
    head = formal.split(":= by", 1)[0]
    head = head.split(" ", 2)[2] if head.startswith(("theorem ", "lemma ")) else head  # not its own name
    found: set[str] = set()
    for tok in set(_IDENT.findall(head)):
        for cand in [tok, *(f"{ns}.{tok}" for ns in opens)]:
            hit = index.get(cand)
            if hit is not None and hit.kind != "instance":
                found.add(hit.name)
                break
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("--proofnet", type=Path, default=DEFAULT_PROOFNET)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mathlib.sqlite"
        index = MathlibIndex(path)
        t0 = time.monotonic()
        n, _ = build(index, args.source, workers=args.workers, force=True)
        build_s = time.monotonic() - t0
        size_mb = path.stat().st_size / 2**20
        peak_mb = (
            max(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
            )
            / 1024
        )
        print(
            f"indexed {n} declarations in {build_s:.1f} s, index {size_mb:.0f} MB, peak {peak_mb:.0f} MB",
            file=sys.stderr,
        )

        problems = (
            [json.loads(line) for line in args.proofnet.read_text(encoding="utf-8").splitlines() if line.strip()]
            if args.proofnet.is_file()
            else []
        )
        if args.limit:
            problems = problems[: args.limit]
        times: list[float] = []
        rec = {"grounding": [], "search": [], "plain_bm25": []}
        for p in problems:
            ref = reference_names(index, p.get("header", ""), p["formal_stmt"])
            if not ref:
                continue
            text = p["informal_stmt"]
            t = time.monotonic()
            got = concepts(index, text, k=args.k)
            times.append((time.monotonic() - t) * 1000)
            rec["grounding"].append(len(ref & {h.name for h in got}) / len(ref))
            t = time.monotonic()
            got = search(index, text, k=args.k)
            times.append((time.monotonic() - t) * 1000)
            rec["search"].append(len(ref & {h.name for h in got}) / len(ref))
            got = plain_bm25(index, text, k=args.k)
            rec["plain_bm25"].append(len(ref & {h.name for h in got}) / len(ref))
        for q in (
            "mul_comm",
            "Nat.Prime.two_le",
            "a * b = b * a",
            "sum of a geometric series",
            "continuous function on a compact set is bounded",
        ):
            t = time.monotonic()
            search(index, q, k=args.k)
            times.append((time.monotonic() - t) * 1000)
        index.close()
    times.sort()
    report = {
        "declarations": n,
        "build_s": round(build_s, 1),
        "peak_mb": round(peak_mb),
        "index_mb": round(size_mb),
        "query_ms_median": round(statistics.median(times), 2) if times else None,
        "query_ms_p95": round(times[int(0.95 * (len(times) - 1))], 2) if times else None,
        "problems": len(rec["grounding"]),
        **{f"recall@{args.k}_{name}": round(statistics.mean(v), 4) if v else None for name, v in rec.items()},
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
