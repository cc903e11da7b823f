"""Time the ingest of one textbook into a throw-away workspace.

    python benchmarks/ingest.py PATH [--repeat N]

PATH is a .tex root, a folder holding one, or a PDF (read through ``read_book``). The book is parsed and stored
in a temporary store; the last line printed is JSON: {"seconds": wall time of parse + store (best of N),
"peak_mb": the process's peak resident memory, "units": units stored, ...}.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autoform.ingest import IngestError, read_book, store_book  # noqa: E402
from autoform.store import Store  # noqa: E402


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", type=Path)
    ap.add_argument("--repeat", type=int, default=1, help="run N times and report the fastest")
    args = ap.parse_args(argv)
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
