"""Job benchmark: 1,000 units with a dependency structure, 64 units in flight, the real scheduler, executor,
unit pipeline, agents, gate and store, with the LLM and Lean replaced by stand-ins that sleep.

* The book is synthetic and inserted straight into a temporary store: ``--chapters`` chapters of equal size;
  the first tenth of each chapter are definitions, the rest theorems; a unit uses up to two earlier units of
  its chapter and, one time in five, a definition of an earlier chapter.
* The LLM stand-in is the real :class:`autoform.llm.LLMClient` (reply cache, token accounting, a row in
  ``llm_calls`` per call) whose network call sleeps ``--llm-latency`` seconds (200 ms) and answers what a
  competent formalizer would (the reader's JSON, a statement, a proof).
* The Lean stand-in sleeps ``--lean-latency`` seconds (500 ms) per check and answers exactly as the scripted
  REPL of the tests (``tests/fake_lean_repl.py``: ``#print axioms`` and ``#check`` replies at the query
  lines), behind the real result cache (:class:`autoform.lean.cache.CachedOracle`).
* One draft per round and no critique (``[job] drafts = 1``, ``critique = false``), so the simulated work of
  a unit is fixed: a theorem is reader + drafter + statement check + prover + proof check = 3 x 0.2 + 2 x 0.5
  = 1.6 s; a definition is reader + drafter + check = 0.9 s.

**Ideal.** With d(u) that simulated work, W = sum of d(u) and CP = the largest sum of d along a dependency
chain (the critical path), no schedule on S = 64 slots can finish before T* = max(CP, W / S); the ideal
throughput is N / T*. ``throughput_share`` = (N / T_measured) / (N / T*) = T* / T_measured, T_measured being
the wall time of ``JobRunner.run()`` (job start to job end, atlas writes included).

**Scheduler CPU.** ``time.thread_time()`` of the scheduling thread over the scheduling loop (dependency plan,
releases, submissions, completions, budget checks), divided by N. The pipeline's own work runs in the
executor's threads and is not counted there; the whole process's CPU is reported too (``process_cpu_s``).

``--pipeline stub`` keeps the latencies and drops the agents, the gate and the blackboard: the scheduler and
the executor alone.

**Peak memory**: the process's peak resident set (``ru_maxrss``), MB.

**Atlas writes.** The unit pipeline never writes ``atlas/``; the job's background writer does (at most once
every 2 s, and once at the end), inside the measured wall time.

Usage: ``python benchmarks/jobs.py [--units 1000] [--jobs 64] [--llm-latency 0.2] [--lean-latency 0.5]
[--pipeline real|stub]``; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from inprocess_lean import InProcessLean  # noqa: E402

from autoform.config import JobConfig, LLMConfig, Settings  # noqa: E402
from autoform.executors import LocalExecutor  # noqa: E402
from autoform.jobs import JobParams, JobRunner  # noqa: E402
from autoform.lean.cache import CachedOracle  # noqa: E402
from autoform.llm import ChatReply, ChatRequest, LLMClient  # noqa: E402
from autoform.store import Store  # noqa: E402

THEOREM_S = 3 * 0.2 + 2 * 0.5
DEFINITION_S = 2 * 0.2 + 0.5


# ------------------------------------------------------------------------------------------- the book
def make_book(store: Store, n: int, chapters: int, seed: int = 6) -> tuple[int, dict[int, str], list[tuple[int, int]]]:
    """Insert a synthetic book; returns (book id, unit id -> kind, dependency edges (unit, dep))."""
    rng = random.Random(seed)
    per = max(1, n // chapters)
    kinds: dict[int, str] = {}
    edges: list[tuple[int, int]] = []
    with store.tx() as c:
        book = c.execute(
            "INSERT INTO books (slug, title, source_path, source_kind, ingested_at) VALUES "
            "('synth', 'Synthetic', '/dev/null', 'latex', 0)"
        ).lastrowid
        ids: list[int] = []
        defs_by_chapter: list[list[int]] = []
        for i in range(n):
            ch = min(i // per, chapters - 1)
            if len(defs_by_chapter) <= ch:
                defs_by_chapter.append([])
            start = ch * per
            kind = "definition" if i - start < max(1, per // 10) else "theorem"
            uid = c.execute(
                "INSERT INTO units (book_id, ident, seq, kind, number, title, label, statement, proof, chapter) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    book,
                    f"u{i}",
                    i,
                    kind,
                    f"{ch + 1}.{i - start + 1}",
                    "",
                    f"u{i}",
                    f"Statement number {i}: for every natural n, n + {i} = {i} + n.",
                    "" if kind == "definition" else "By commutativity.",
                    f"Chapter {ch + 1}",
                ),
            ).lastrowid
            assert uid is not None
            ids.append(uid)
            kinds[uid] = kind
            if kind == "definition":
                defs_by_chapter[ch].append(uid)
            local = ids[start:i]
            deps = set(rng.sample(local, k=min(len(local), rng.randint(0, 2))))
            if ch > 0 and rng.random() < 0.2:
                deps.add(rng.choice(defs_by_chapter[rng.randrange(ch)]))
            for d in deps:
                c.execute("INSERT INTO unit_deps (unit_id, dep_id, via) VALUES (?,?,'ref')", (uid, d))
                edges.append((uid, d))
    return int(book or 0), kinds, edges


def ideal(kinds: dict[int, str], edges: list[tuple[int, int]], slots: int) -> dict[str, float]:
    d = {u: DEFINITION_S if k == "definition" else THEOREM_S for u, k in kinds.items()}
    deps: dict[int, list[int]] = {}
    for u, v in edges:
        deps.setdefault(u, []).append(v)
    finish: dict[int, float] = {}
    for u in sorted(kinds):  # ids follow book order, and dependencies are earlier units
        finish[u] = d[u] + max((finish[v] for v in deps.get(u, ())), default=0.0)
    work = sum(d.values())
    cp = max(finish.values())
    return {
        "work_s": work,
        "critical_path_s": cp,
        "capacity_bound_s": work / slots,
        "ideal_makespan_s": max(cp, work / slots),
    }


# ------------------------------------------------------------------------------------------ stand-ins
_LABEL = re.compile(r"\[label: ([^\]]+)\]")


class SleepyLLM(LLMClient):
    """The real client with the network call replaced by a sleep and a competent formalizer's answer."""

    def __init__(self, settings: Settings, store: Store, latency: float, kinds: dict[str, str]) -> None:
        super().__init__(settings, store)
        self.latency, self.kinds = latency, kinds

    def _call(self, req: ChatRequest) -> ChatReply:
        time.sleep(self.latency)
        m = _LABEL.search(req.messages[-1].content)
        label = m.group(1) if m else "u0"
        i = int(label[1:])
        if req.role == "reader":
            text = (
                '```json\n{"statement": "restated", "concepts": ["natural number"], "conventions": [], '
                '"dependencies": []}\n```'
            )
        elif req.role == "drafter":
            text = (
                f"```lean\ndef d_{label} : ℕ := {i}\n```"
                if self.kinds[label] == "definition"
                else f"```lean\ntheorem t_{label} (n : ℕ) : n + {i} = {i} + n\n```"
            )
        else:
            text = "```lean\n  omega\n```"
        return ChatReply(
            text=text,
            model=req.model,
            prompt_tokens=sum(len(x.content) for x in req.messages) // 4,
            completion_tokens=len(text) // 4,
            finish_reason="stop",
        )


class StubPipeline:
    """``--pipeline stub``: the unit's simulated latencies without the agents, the gate or the blackboard (the
    unit is marked proved/defined in the store), to measure the scheduler and executor alone."""

    def __init__(self, store: Store, kinds: dict[int, str], llm_s: float, lean_s: float) -> None:
        self.store, self.kinds, self.llm_s, self.lean_s = store, kinds, llm_s, lean_s
        self.board = None

    def work_unit(self, unit: Any) -> None:
        definition = self.kinds[unit.id] == "definition"
        for step in (
            [self.llm_s, self.llm_s, self.lean_s]
            if definition
            else [self.llm_s, self.llm_s, self.lean_s, self.llm_s, self.lean_s]
        ):
            time.sleep(step)
        self.store.set_unit_status(unit.id, "defined" if definition else "proved")


class StubExecutor(LocalExecutor):
    def __init__(self, slots: int, stub: StubPipeline) -> None:
        super().__init__(slots)
        self.stub = stub

    def start(self, ctx: Any) -> None:
        super().start(ctx)
        self.pipeline = self.stub  # type: ignore[assignment]


# ------------------------------------------------------------------------------------------------ run
def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--units", type=int, default=1000)
    ap.add_argument("--chapters", type=int, default=25)
    ap.add_argument("--jobs", type=int, default=64, help="units in flight")
    ap.add_argument("--llm-latency", type=float, default=0.2)
    ap.add_argument("--lean-latency", type=float, default=0.5)
    ap.add_argument(
        "--pipeline",
        choices=("real", "stub"),
        default="real",
        help="real: the unit pipeline with its agents, gate and blackboard; stub: the same latencies "
        "without them (the scheduler and executor alone)",
    )
    args = ap.parse_args()
    global THEOREM_S, DEFINITION_S
    THEOREM_S = 3 * args.llm_latency + 2 * args.lean_latency
    DEFINITION_S = 2 * args.llm_latency + args.lean_latency
    with tempfile.TemporaryDirectory() as d:
        home = Path(d)
        job_fields = JobConfig.model_fields
        job = {k: v for k, v in {"drafts": 1, "critique": False, "race": 1}.items() if k in job_fields}
        settings = Settings(
            home=home,
            llm=LLMConfig(
                base_url="http://127.0.0.1:9/v1",
                api_key="x",
                model="m",
                concurrency=args.jobs,
                prices={"m": (0.15, 0.60)},
            ),
            job=JobConfig(**job),
        )
        store = Store(settings.db_path)
        book_id, kinds, edges = make_book(store, args.units, args.chapters)
        bound = ideal(kinds, edges, args.jobs)
        book = store.books()[0]
        assert book.id == book_id
        label_kinds = {u.label: u.kind for u in store.units(book_id)}
        lean = InProcessLean(latency=args.lean_latency, backend="sleepy", toolchain="leanprover/lean4:v4.24.0")
        oracle = CachedOracle(lean, store, settings)
        llm = SleepyLLM(settings, store, args.llm_latency, label_kinds)
        stub = (
            StubExecutor(args.jobs, StubPipeline(store, kinds, args.llm_latency, args.lean_latency))
            if args.pipeline == "stub"
            else None
        )
        runner = JobRunner(settings, store, book, oracle, llm, JobParams(max_attempts=3, jobs=args.jobs), executor=stub)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        summary = runner.run()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        n = args.units
        admitted = summary.units.get("proved", 0) + summary.units.get("defined", 0)
        lean_checks = (
            lean.checks
            if args.pipeline == "real"
            else summary.units.get("proved", 0) * 2 + summary.units.get("defined", 0)
        )
        share = bound["ideal_makespan_s"] / wall
        report: dict[str, Any] = {
            "units": n,
            "jobs": args.jobs,
            "pipeline": args.pipeline,
            "atlas_writes": runner.atlas_writer.writes,
            "llm_latency_s": args.llm_latency,
            "lean_latency_s": args.lean_latency,
            "status": summary.status,
            "admitted": admitted,
            "llm_calls": summary.llm_calls,
            "lean_checks": lean_checks,
            **{k: round(v, 2) for k, v in bound.items()},
            "wall_s": round(wall, 2),
            "throughput_units_per_s": round(n / wall, 3),
            "ideal_units_per_s": round(n / bound["ideal_makespan_s"], 3),
            "throughput_share": round(share, 3),
            "sched_cpu_ms_per_unit": round(runner.sched_cpu_s / n * 1000, 3),
            "process_cpu_s": round(cpu, 1),
            "process_cpu_ms_per_unit": round(cpu / n * 1000, 1),
            "peak_mb": round(peak_mb, 1),
        }
        for k, v in report.items():
            print(f"{k:>26}: {v}")
        if summary.status != "done" or admitted != n:
            print(f"warning: job {summary.status}, {admitted}/{n} admitted: {summary.message}", file=sys.stderr)
        print(json.dumps(report))


if __name__ == "__main__":
    main()
