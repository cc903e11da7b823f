"""Oracle benchmark: throughput of the REPL pool at 1, 2, 4 and 8 processes, and the speed-ups from header
reuse, from prelude reuse and from the result cache, measured side by side in one run.

Lean is replaced by the stand-in REPL of tests/ with a fixed latency per command, a fixed cost for a command
that imports (``import Mathlib`` costs a real REPL seconds) and a cost per line of a command (elaboration
grows with the text). The client stack is the production one (lean-interact -> ReplPool -> CachedOracle).

Prelude reuse: candidates of a unit late in a book carry the admitted dependencies (``--prelude-decls``
declarations) as their prelude; the gate marks it as a shared block, which the pool elaborates once per
process and checks candidates on top of, against the same candidates checked as whole texts.

Usage: ``python benchmarks/oracle.py [--latency S] [--header-cost S] [--line-cost S] [--checks N]
[--prelude-decls N]``; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import LAKE_STANDIN, make_repl_dir  # noqa: E402

from autoform.config import LeanConfig, Settings  # noqa: E402
from autoform.lean.cache import CachedOracle  # noqa: E402
from autoform.lean.gate import Candidate, build_module  # noqa: E402
from autoform.lean.repl_pool import ReplPool  # noqa: E402
from autoform.store import Store  # noqa: E402


def settings(tmp: Path, latency: float, header_cost: float, size: int, line_cost: float = 0.0) -> Settings:
    proj = tmp / "proj"
    proj.mkdir(parents=True, exist_ok=True)
    (proj / "lean-toolchain").write_text("leanprover/lean4:v4.24.0\n")
    repl = make_repl_dir(
        tmp,
        env={
            "FAKE_REPL_LATENCY": str(latency),
            "FAKE_REPL_HEADER_COST": str(header_cost),
            "FAKE_REPL_LINE_COST": str(line_cost),
        },
    )
    return Settings(
        home=tmp,
        lean=LeanConfig(
            project_dir=str(proj),
            lake_path=str(LAKE_STANDIN),
            repl_path=str(repl),
            pool_size=size,
            prewarm=size,
            timeout_s=60,
            start_timeout_s=60,
            max_uses=10_000,
            restart_memory_mb=0,
        ),
    )


def run_batch(oracle: object, codes: list[str], threads: int, hints: dict[str, int] | None = None) -> float:
    """Seconds to check every code with `threads` concurrent callers (``hints``: code -> context_lines)."""
    queue = list(codes)
    lock = threading.Lock()
    failures: list[str] = []

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                code = queue.pop()
            hint = (hints or {}).get(code, 0)
            r = oracle.check(code, **({"context_lines": hint} if hint else {}))  # type: ignore[attr-defined]
            if r.failure:
                failures.append(r.failure)

    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if failures:
        raise SystemExit(f"benchmark checks failed: {failures[0]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per command of the stand-in REPL")
    ap.add_argument("--header-cost", type=float, default=0.5, help="seconds to elaborate the import header")
    ap.add_argument("--checks", type=int, default=48)
    ap.add_argument("--line-cost", type=float, default=0.002, help="seconds per line (prelude reuse only)")
    ap.add_argument("--prelude-decls", type=int, default=100, help="admitted dependencies in the prelude")
    args = ap.parse_args()
    codes = [f"theorem t{k} (n : ℕ) : n + {k} = {k} + n := by\n  omega" for k in range(args.checks)]
    out: dict[str, object] = {"latency_s": args.latency, "header_cost_s": args.header_cost, "checks": args.checks}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        per_s: dict[str, float] = {}
        for size in (1, 2, 4, 8):
            pool = ReplPool(settings(tmp / f"p{size}", args.latency, args.header_cost, size))
            pool.start()  # pre-warmed: the header import is not part of the steady state
            try:
                per_s[str(size)] = round(args.checks / run_batch(pool, codes, size), 2)
            finally:
                pool.close()
            print(f"pool of {size}: {per_s[str(size)]} checks/s", file=sys.stderr)
        out["checks_per_s"] = per_s
        out["scaling_8_over_1"] = round(per_s["8"] / per_s["1"], 2)

        few = codes[:8]
        reuse = ReplPool(settings(tmp / "reuse", args.latency, args.header_cost, 1))
        fresh = ReplPool(settings(tmp / "fresh", args.latency, args.header_cost, 1), reuse_header=False)
        reuse.start()
        fresh.start()
        try:
            t_reuse, t_fresh = run_batch(reuse, few, 1), run_batch(fresh, few, 1)
        finally:
            reuse.close()
            fresh.close()
        out["header_reuse_speedup"] = round(t_fresh / t_reuse, 2)
        print(f"header reuse: {t_fresh:.2f}s without, {t_reuse:.2f}s with", file=sys.stderr)

        prelude = "\n\n".join(
            f"theorem dep{k} (n : ℕ) : n + {k} = {k} + n := by\n  omega" for k in range(args.prelude_decls)
        )
        cands = [
            Candidate(
                kind="theorem",
                namespace="Atlas.Bench",
                proof="ring",
                prelude=prelude,
                statement=f"theorem c{k} (n : ℕ) : n * {k} = {k} * n",
            )
            for k in range(16)
        ]
        modules = [build_module(c) for c in cands]
        hints = {m.text: m.context_lines for m in modules}
        texts = [m.text for m in modules]
        timings: dict[str, float] = {}
        for mode in ("whole", "shared"):
            pool = ReplPool(settings(tmp / f"prelude-{mode}", args.latency, args.header_cost, 1, args.line_cost))
            pool.start()
            try:
                timings[mode] = run_batch(pool, texts, 1, hints if mode == "shared" else None)
            finally:
                pool.close()
        out["prelude_lines"] = prelude.count("\n") + 1
        out["prelude_reuse_speedup"] = round(timings["whole"] / timings["shared"], 2)
        print(
            f"prelude reuse ({out['prelude_lines']} lines): {timings['whole']:.2f}s whole, "
            f"{timings['shared']:.2f}s shared",
            file=sys.stderr,
        )

        s = settings(tmp / "cache", args.latency, args.header_cost, 1)
        pool = ReplPool(s)
        pool.start()
        cached = CachedOracle(pool, Store(s.db_path), s)
        try:
            cold, warm = run_batch(cached, codes[:16], 1), run_batch(cached, codes[:16], 1)
        finally:
            pool.close()
        out["cache_speedup"] = round(cold / warm, 2)
        print(f"result cache: {cold:.3f}s cold, {warm:.4f}s warm", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
