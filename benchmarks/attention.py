"""Attention benchmark: what the filter gives the prover, on a real textbook.

For every theorem-like unit, the blackboard a job would hold (posts about all units: the reader's
extraction, the locked statement, the admission) is built in a temporary store; the prover's context is
selected as in a job: the candidates are the board's neighbourhood of the unit (``Blackboard.nearby``: units
within ``[attention] neighborhood_hops``, posts of no unit, the latest ``recent_posts``, at most
``max_candidates``), ranked within a 2,000-token budget. Measured side by side:

- ``dep_recall``: share of the posts about the unit's own dependencies (from the textbook's references)
  that enter the context (goal >= 0.90);
- ``token_share``: tokens of the context / tokens of the unfiltered history the prover may read
  (goal <= 0.25);
- ``ms_per_prompt``: the filter's time per prompt (candidates and ranking);
- ``candidates_per_prompt``: posts ranked per prompt, against ``history_posts`` on the board;
- ``whole_board``: the same measures when the whole board is ranked at every prompt, in the same run, and
  ``speedup_vs_whole_board``.

Usage: ``python benchmarks/attention.py PATH [--budget 2000] [--limit N]``; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.prover import Prover  # noqa: E402
from autoform import attention  # noqa: E402
from autoform import graph as graphs  # noqa: E402
from autoform.blackboard import Blackboard  # noqa: E402
from autoform.config import AttentionConfig  # noqa: E402
from autoform.ingest import read_book, store_book  # noqa: E402
from autoform.store import Store  # noqa: E402

THEOREM_LIKE = {"theorem", "lemma", "proposition", "corollary", "exercise", "claim"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", type=Path, help="a .tex root, a folder, or a PDF")
    ap.add_argument("--budget", type=int, default=2000)
    ap.add_argument("--limit", type=int, default=0, help="measure only the first N theorem-like units")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "autoform.sqlite")
        t0 = time.perf_counter()
        store_book(store, "bench", read_book(args.path))
        book = store.book("bench")
        assert book is not None
        units = store.units(book.id)
        g = graphs.book_graph(store, book.id)
        print(
            f"ingested {len(units)} units, {g.number_of_edges()} edges in {time.perf_counter() - t0:.1f}s",
            file=sys.stderr,
        )
        # the board of a job that went through the whole book
        board = Blackboard(store, book.id, None)
        for u in units:
            name = f"{u.kind}_{u.number or u.id}".replace(".", "_")
            board.post("reader", "extraction", f"{u.display}. {u.statement}", unit_id=u.id)
            if u.kind != "definition":
                board.post("drafter", "lock", f"theorem {name} : {u.statement[:300]}", unit_id=u.id)
            board.post("gate", "admission", f"Atlas.Bench.{name} admitted ({u.display})", unit_id=u.id)
        posts = store.posts(book.id)
        readable = [p for p in posts if p.kind in Prover.reads]
        cfg = AttentionConfig(budget_tokens=args.budget)
        goals = [u for u in units if u.kind in THEOREM_LIKE and u.id in g and list(g.successors(u.id))]
        if args.limit:
            goals = goals[: args.limit]
        stats: dict[str, dict[str, list[float]]] = {
            m: {"recall": [], "share": [], "ms": [], "n": []} for m in ("nearby", "whole_board")
        }
        for u in goals:
            deps = set(g.successors(u.id))
            history = [p for p in readable if p.unit_id != u.id]
            dep_posts = {p.id for p in history if p.unit_id in deps}
            goal = f"{u.display} {u.title} {u.statement}"
            for mode, st in stats.items():
                t = time.perf_counter()
                hops = graphs.hops(g, u.id, cfg.unreachable_hops)
                if mode == "nearby":  # what a job does
                    candidates = [
                        p
                        for p in board.nearby(
                            u.id,
                            hops,
                            Prover.reads,
                            max_hops=cfg.neighborhood_hops,
                            recent=cfg.recent_posts,
                            limit=cfg.max_candidates,
                            fill_tokens=args.budget,
                        )
                        if p.unit_id != u.id
                    ]
                else:  # the whole board ranked at every prompt, for comparison
                    candidates = history
                ctx = attention.select(
                    candidates, goal, goal_unit=u.id, current_round=0, hops=hops, cfg=cfg, budget_tokens=args.budget
                )
                st["ms"].append(1000 * (time.perf_counter() - t))
                st["n"].append(len(candidates))
                st["recall"].append(len(dep_posts & set(ctx.post_ids)) / len(dep_posts))
                st["share"].append(
                    sum(attention.approx_tokens(p.body) for p in ctx.posts)
                    / sum(attention.approx_tokens(p.body) for p in history)
                )

        def summary(st: dict[str, list[float]]) -> dict[str, float | None]:
            def mean(xs: list[float], nd: int) -> float | None:
                return round(statistics.mean(xs), nd) if xs else None

            return {
                "dep_recall": mean(st["recall"], 4),
                "dep_recall_min": round(min(st["recall"]), 4) if st["recall"] else None,
                "token_share": mean(st["share"], 4),
                "ms_per_prompt": mean(st["ms"], 2),
                "candidates_per_prompt": mean(st["n"], 1),
            }

        near, whole = summary(stats["nearby"]), summary(stats["whole_board"])
        out = {
            "book": str(args.path),
            "units": len(units),
            "prompts": len(goals),
            "budget_tokens": args.budget,
            "history_posts": len(readable),
            "history_tokens": sum(attention.approx_tokens(p.body) for p in readable),
            **near,
            "whole_board": whole,
            "speedup_vs_whole_board": round(whole["ms_per_prompt"] / near["ms_per_prompt"], 1)
            if near["ms_per_prompt"] and whole["ms_per_prompt"]
            else None,
        }
        for k, v in out.items():
            print(f"{k:>24}: {v}", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
