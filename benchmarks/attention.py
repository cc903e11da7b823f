"""Attention benchmark: what the filter gives the prover, on a real textbook.

For every theorem-like unit, the blackboard a job would hold (posts about all units: the reader's
extraction, the locked statement, the admission) is built in a temporary store; the prover's context is
selected within a 2,000-token budget. Measured side by side:

- ``dep_recall``: share of the posts about the unit's own dependencies (from the textbook's references)
  that enter the context (goal >= 0.90);
- ``token_share``: tokens of the context / tokens of the unfiltered history the prover may read
  (goal <= 0.25);
- ``ms_per_prompt``: the filter's time per prompt.

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
        print(f"ingested {len(units)} units, {g.number_of_edges()} edges in {time.perf_counter() - t0:.1f}s",
              file=sys.stderr)
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
        recalls, shares, times = [], [], []
        for u in goals:
            deps = set(g.successors(u.id))
            hops = graphs.hops(g, u.id)
            history = [p for p in readable if p.unit_id != u.id]
            dep_posts = {p.id for p in history if p.unit_id in deps}
            t = time.perf_counter()
            ctx = attention.select(history, f"{u.display} {u.title} {u.statement}", goal_unit=u.id,
                                   current_round=0, hops=hops, cfg=cfg, budget_tokens=args.budget)
            times.append(time.perf_counter() - t)
            got = set(ctx.post_ids)
            recalls.append(len(dep_posts & got) / len(dep_posts))
            shares.append(sum(attention.approx_tokens(p.body) for p in ctx.posts)
                          / sum(attention.approx_tokens(p.body) for p in history))
        out = {
            "book": str(args.path), "units": len(units), "prompts": len(goals), "budget_tokens": args.budget,
            "history_tokens": sum(attention.approx_tokens(p.body) for p in readable),
            "dep_recall": round(statistics.mean(recalls), 4) if recalls else None,
            "dep_recall_min": round(min(recalls), 4) if recalls else None,
            "token_share": round(statistics.mean(shares), 4) if shares else None,
            "ms_per_prompt": round(1000 * statistics.mean(times), 2) if times else None,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
