"""Proving benchmark (issue 16): the share of theorems closed by whole-proof attempts only and with decomposition,
at the same LLM-call budget per unit, on the real pipeline (ingest, job runner, agents and their prompts, gate,
decomposer, store) with a scripted model and the stand-in REPL.

* **The book** is generated LaTeX (``--units`` theorems, each with an informal proof), ingested by the real
  reader. Theorem i has a *size* s_i, drawn uniformly from 1..``--max-size``; its locked statement is a
  conjunction of s_i facts ``n + k = k + n`` (one a step).
* **The model** (a stand-in for the LLM behind the real :class:`autoform.llm.LLMClient`, prompts rendered from
  ``agents/``) reads the goal in each prompt. Asked for a proof (prover or gap-closer) of a goal of size s, it
  writes one that Lean accepts with probability **p(s) = p1 x decay^(s-1)** (``--p1`` 0.9, ``--decay`` 0.5: 0.90,
  0.45, 0.23, 0.11, ... ; draws are a hash of the prompt and ``--seed``, so the same prompt gets the same answer,
  as the reply cache would give), otherwise a proof naming an unknown lemma. Asked for a sketch of a goal of
  size s >= 2, it splits the conjunction in two halves, ``have h1 : … := by sorry``, ``have h2 : … := by sorry``,
  ``tauto``; a goal of size 1 gets a whole proof attempt instead. The model is right about what it writes: a
  sketch always elaborates and a proof either closes its goal or fails, so this measures the mechanism and its
  cost, not a real model's success, which only a run with Lean and a real model can give.
* **Lean** is the stand-in REPL's logic (``tests/fake_lean_repl.py``, in process, behind the real result cache):
  holes with their goals, unknown identifiers rejected, the gate's queries answered.
* **The two arms**, each a fresh job on the same book with ``[prove] strategy = "budget"``, ``llm_calls =
  --budget`` per unit, automation and ``exact?`` off (the stand-in would accept any automation): *whole proofs
  only* (``decompose = false``; the prover, then the gap-closer, until the budget is spent) and *with
  decomposition* (``decompose = true``, ``stall_rounds = --stall``: after that many attempts without progress the
  prover writes a sketch and its holes are proved, repaired and split again to ``--max-depth``, within the same
  per-unit budget: the decomposer asks the policy before each LLM call).

* **Tactic mode** (issue 16): two more arms with decomposition and automation on, where automation (the stand-in's
  closing tactics) closes a goal of one fact and resists a conjunction: *automation in command mode* (``[prove]
  tactic_mode = false``: each hole a lemma of its own, its statement checked and automation judged by the gate) and
  *automation in tactic mode* (each hole's proof state tried with the closing tactics in the REPL's tactic mode and
  the tactic spliced in; the whole text still judged in command mode). Both close the same units; they differ in
  Lean command-mode checks (what a check of a whole text costs) and tactic steps (a step on one proof state).

Reported per arm: units closed and their share, LLM calls (uncached, every role), Lean command-mode checks and
tactic steps per closed unit,
the wall time, and the overhead: the job scheduler's CPU per unit (the scheduling thread) and the whole process's
CPU per unit (prompts, gate, store: with no LLM or Lean latency, nearly all of it is the pipeline's own work).

Usage: ``python benchmarks/proving.py [--units 40] [--budget 12] [--max-size 6] [--max-depth 2]``; the last line
is JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from inprocess_lean import InProcessLean  # noqa: E402

from autoform.config import JobConfig, LLMConfig, ProveConfig, Settings  # noqa: E402
from autoform.ingest import ingest  # noqa: E402
from autoform.jobs import JobParams, JobRunner  # noqa: E402
from autoform.lean.cache import CachedOracle  # noqa: E402
from autoform.llm import ChatReply, ChatRequest, LLMClient  # noqa: E402
from autoform.store import Store  # noqa: E402

FACT = "n + {k} = {k} + n"
READER = '```json\n{"statement": "facts", "concepts": ["natural number"], "conventions": [], "dependencies": []}\n```'


# ------------------------------------------------------------------------------------------- the book
def sizes(n: int, max_size: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(1, max_size) for _ in range(n)]


def book_tex(sizes_: list[int]) -> str:
    """A LaTeX book of theorems; theorem i states s_i facts about a natural number n."""
    out = [
        "\\documentclass{book}",
        "\\newtheorem{theorem}{Theorem}[chapter]",
        "\\begin{document}",
        "\\chapter{Facts}",
    ]
    for i, s in enumerate(sizes_):
        facts = ", ".join(f"$n + {k} = {k} + n$" for k in range(1, s + 1))
        out += [
            f"\\begin{{theorem}}\\label{{u{i}}}",
            f"For every natural number $n$: {facts}.",
            "\\end{theorem}",
            "\\begin{proof}",
            "Each fact is commutativity of addition.",
            "\\end{proof}",
        ]
    out.append("\\end{document}")
    return "\n".join(out) + "\n"


def statement(i: int, s: int) -> str:
    return f"theorem fact_{i} (n : ℕ) : " + " ∧ ".join(FACT.format(k=k) for k in range(1, s + 1))


# ------------------------------------------------------------------------------------------ the model
_LABEL = re.compile(r"\[label: ([^\]]+)\]")
_LOCKED = re.compile(r"Locked statement:\s*```lean\s*\n(?P<stmt>.*?) := by", re.S)


def target_of(stmt: str) -> str:
    """The goal of a locked statement: what follows its last binder."""
    return stmt.rsplit(") : ", 1)[-1]


class ScriptedProver(LLMClient):
    """The real client with the network call replaced by the model of the module's docstring."""

    def __init__(self, settings: Settings, store: Store, sizes_: list[int], args: argparse.Namespace) -> None:
        super().__init__(settings, store)
        self.sizes, self.args = sizes_, args
        self.calls: dict[str, int] = {}
        self.proof_calls: dict[int, int] = {}  # unit -> calls of the proving roles
        self._lock = threading.Lock()

    def p(self, size: int) -> float:
        return float(self.args.p1 * self.args.decay ** (size - 1))

    def _draw(self, text: str) -> float:
        h = hashlib.sha256(f"{self.args.seed}\0{text}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2**64

    def _call(self, req: ChatRequest) -> ChatReply:
        with self._lock:
            self.calls[req.role] = self.calls.get(req.role, 0) + 1
        prompt = req.messages[-1].content
        m = _LABEL.search(prompt)
        i = int(m.group(1)[1:]) if m else 0
        if req.role in ("prover", "gap_closer"):
            with self._lock:
                self.proof_calls[i] = self.proof_calls.get(i, 0) + 1
        if req.role == "reader":
            text = READER
        elif req.role == "drafter":
            text = f"```lean\n{statement(i, self.sizes[i])}\n```"
        else:
            text = self._proof(prompt)
        return ChatReply(
            text=text,
            model=req.model,
            prompt_tokens=sum(len(x.content) for x in req.messages) // 4,
            completion_tokens=len(text) // 4,
            finish_reason="stop",
        )

    def _proof(self, prompt: str) -> str:
        locked = _LOCKED.search(prompt)
        goal = target_of(locked.group("stmt")) if locked else ""
        facts = [f.strip() for f in goal.split(" ∧ ")]
        if "proof sketch" in prompt and len(facts) >= 2:
            half = (len(facts) + 1) // 2
            a, b = " ∧ ".join(facts[:half]), " ∧ ".join(facts[half:])
            return f"```lean\n  have h1 : {a} := by sorry\n  have h2 : {b} := by sorry\n  tauto\n```"
        draw = self._draw(prompt)
        if draw < self.p(len(facts)):  # a proof the model writes itself (not one of automation's closing tactics)
            return "```lean\n  constructor <;> ring\n```" if len(facts) > 1 else "```lean\n  ring\n```"
        return f"```lean\n  exact bogus_{int(draw * 1e9)} n\n```"


# ------------------------------------------------------------------------------------------------ run
def run_arm(
    book: Path,
    sizes_: list[int],
    args: argparse.Namespace,
    *,
    decompose: bool,
    automation: bool = False,
    tactic_mode: bool = False,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        home = Path(d)
        prove = ProveConfig(
            strategy="budget",
            llm_calls=args.budget,
            lean_checks=10_000,
            stall_rounds=args.stall if decompose else 10_000,
            max_depth=args.max_depth,
            subgoal_llm_calls=args.budget,
            subgoal_lean_checks=10_000,
            tactic_mode=tactic_mode,
        )
        job = JobConfig(
            drafts=1, critique=False, automation=automation, library_search=False, grounding=False, decompose=decompose
        )
        # automation closes a single fact and resists a conjunction (tests/standin/repl_tactics.py)
        os.environ["FAKE_REPL_RESISTS"] = "∧"
        llm_cfg = LLMConfig(base_url="http://127.0.0.1:9/v1", api_key="x", model="m", concurrency=args.jobs)
        settings = Settings(home=home, llm=llm_cfg, job=job, prove=prove)
        store = Store(settings.db_path)
        ingest(store, book, "facts")
        lean = InProcessLean(toolchain="leanprover/lean4:v4.28.0")
        llm = ScriptedProver(settings, store, sizes_, args)
        runner = JobRunner(
            settings, store, store.books()[0], CachedOracle(lean, store, settings), llm,
            JobParams(max_attempts=3, jobs=args.jobs),
        )  # fmt: skip
        cpu0, t0 = time.process_time(), time.perf_counter()
        summary = runner.run()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        closed = summary.units.get("proved", 0)
        n = len(sizes_)
        calls = sum(llm.calls.values())
        by_size = _closed_by_size(store, sizes_)
        return {
            "closed": closed,
            "closed_share": round(closed / n, 3),
            "closed_by_size": by_size,
            "llm_calls": calls,
            "proof_llm_calls": llm.calls.get("prover", 0) + llm.calls.get("gap_closer", 0),
            "max_proof_llm_calls_per_unit": max(llm.proof_calls.values(), default=0),
            "lean_checks": lean.checks,
            "tactic_steps": lean.tactic_steps,
            "llm_calls_per_closed": round(calls / closed, 2) if closed else None,
            "lean_checks_per_closed": round(lean.checks / closed, 2) if closed else None,
            "tactic_steps_per_closed": round(lean.tactic_steps / closed, 2) if closed else None,
            "wall_s": round(wall, 2),
            "sched_cpu_ms_per_unit": round(runner.sched_cpu_s / n * 1000, 3),
            "process_cpu_ms_per_unit": round(cpu / n * 1000, 1),
        }


def _closed_by_size(store: Store, sizes_: list[int]) -> dict[str, str]:
    """``size: closed/total`` over the book's theorems."""
    book = store.books()[0]
    proved = {u.label for u in store.units(book.id) if u.status == "proved"}
    out: dict[str, list[int]] = {}
    for i, s in enumerate(sizes_):
        row = out.setdefault(str(s), [0, 0])
        row[0] += f"u{i}" in proved
        row[1] += 1
    return {k: f"{v[0]}/{v[1]}" for k, v in sorted(out.items(), key=lambda kv: int(kv[0]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--units", type=int, default=40)
    ap.add_argument("--max-size", type=int, default=6, help="largest theorem: facts in its conjunction")
    ap.add_argument("--budget", type=int, default=12, help="LLM calls per unit's proof, both arms")
    ap.add_argument(
        "--stall", type=int, default=2, help="attempts without progress before the sketch (with decomposition)"
    )
    ap.add_argument("--max-depth", type=int, default=2)
    ap.add_argument("--p1", type=float, default=0.9, help="chance of proving a goal of size 1 in one call")
    ap.add_argument("--decay", type=float, default=0.5, help="factor on that chance per further fact")
    ap.add_argument("--jobs", type=int, default=1, help="units in flight (1: the same prompts, hence draws, every run)")
    ap.add_argument("--seed", type=int, default=16)
    args = ap.parse_args()
    sizes_ = sizes(args.units, args.max_size, args.seed)
    with tempfile.TemporaryDirectory() as d:
        book = Path(d) / "book.tex"
        book.write_text(book_tex(sizes_), encoding="utf-8")
        whole = run_arm(book, sizes_, args, decompose=False)
        split = run_arm(book, sizes_, args, decompose=True)
        command = run_arm(book, sizes_, args, decompose=True, automation=True, tactic_mode=False)
        tactic = run_arm(book, sizes_, args, decompose=True, automation=True, tactic_mode=True)
    p = [round(args.p1 * args.decay ** (s - 1), 3) for s in range(1, args.max_size + 1)]
    report: dict[str, Any] = {
        "units": args.units,
        "budget_llm_calls_per_unit": args.budget,
        "model": f"p(s) = {args.p1} x {args.decay}^(s-1) per call: {p}; sketches halve a conjunction",
        "max_depth": args.max_depth,
        "whole_proofs_only": whole,
        "with_decomposition": split,
        "automation_command_mode": command,
        "automation_tactic_mode": tactic,
        "automation": "closes a goal with one fact, resists a conjunction (command and tactic mode alike)",
    }
    arms = ("whole_proofs_only", "with_decomposition", "automation_command_mode", "automation_tactic_mode")
    for arm in arms:
        r = report[arm]
        print(f"{arm:>24}: closed {r['closed']}/{args.units} ({r['closed_share']:.1%}), by size {r['closed_by_size']}")
        print(
            f"{'':>24}  {r['llm_calls_per_closed']} LLM calls, {r['lean_checks_per_closed']} Lean command-mode checks "
            f"and {r['tactic_steps_per_closed']} tactic steps a closed unit; scheduler {r['sched_cpu_ms_per_unit']} ms "
            f"CPU a unit, process {r['process_cpu_ms_per_unit']} ms"
        )
    print(f"{'model':>24}: {report['model']}; automation {report['automation']}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
