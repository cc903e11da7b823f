"""The body of ``autoform eval`` (kept out of cli.py, which only declares the command): run a benchmark, or
compare two evaluations. Errors are raised (:mod:`autoform.errors`) and reported by :func:`autoform.cli.main`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from autoform.cli_errors import MissingParts, stopped_exit_code
from autoform.config import Settings, with_unit_budget
from autoform.errors import UsageError

if TYPE_CHECKING:
    from autoform.evaluation.bench import Problem
    from autoform.evaluation.report import EvalReport
    from autoform.jobs import JobParams, JobSummary
    from autoform.llm import LLMClient
    from autoform.store import Store


@dataclass(frozen=True)
class EvalOptions:
    """The options of ``autoform eval BENCH.jsonl``."""

    limit: int | None = None
    split: str | None = None
    out_dir: str | None = None
    jobs: int | None = None
    max_attempts: int | None = None
    budget_usd: float | None = None
    as_json: bool = False
    prove_reference: bool = False
    executor: str = "local"
    address: str | None = None
    ray_workers: int | None = None

    def check(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"--limit {self.limit}: at least 1")
        if self.budget_usd is not None and self.budget_usd <= 0:
            raise UsageError(f"--budget-usd {self.budget_usd}: a budget must be positive")
        if self.executor not in ("local", "ray"):
            raise UsageError(f"--executor {self.executor!r}: use local or ray")
        if (self.address or self.ray_workers) and self.executor != "ray":
            raise UsageError("--address and --ray-workers go with --executor ray")
        for name, n in (
            ("--jobs", self.jobs),
            ("--max-attempts", self.max_attempts),
            ("--ray-workers", self.ray_workers),
        ):
            if n is not None and n < 1:
                raise UsageError(f"{name} {n}: at least 1")

    def job_params(self, s: Settings) -> JobParams:
        from autoform.jobs import JobParams

        return JobParams(
            max_attempts=self.max_attempts or s.job.max_attempts,
            jobs=self.jobs or s.job.jobs,
            budget_usd=self.budget_usd,
            executor="ray" if self.executor == "ray" else "local",
            address=self.address,
            ray_workers=self.ray_workers,
        )


def eval_command(s: Settings, target: list[str], opts: EvalOptions, *, out: Console, err: Console) -> int:
    """``autoform eval``: the exit code of a run that finished (0) or stopped (1, or 3 when something needed went
    missing); a wrong argument or a missing LLM or Lean is raised."""
    if target and target[0] == "compare":
        if len(target) != 3:
            raise UsageError("usage: autoform eval compare A B (two --out directories or eval.json files)")
        _compare(target[1], target[2], out_dir=opts.out_dir, as_json=opts.as_json, out=out)
        return 0
    if len(target) != 1:
        raise UsageError(
            "usage: autoform eval BENCH.jsonl [--limit N] [--split S] [--prove-reference] [--json] [--out DIR]"
        )
    return _run(s, Path(target[0]), opts, out=out, err=err)


def _compare(a_name: str, b_name: str, *, out_dir: str | None, as_json: bool, out: Console) -> None:
    from autoform.evaluation import report as rep

    try:
        a, b = rep.load_report(Path(a_name)), rep.load_report(Path(b_name))
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(str(e)) from e
    c = rep.compare(a, b, a_name=a_name, b_name=b_name)
    where = Path(out_dir) if out_dir else Path(a_name).parent if Path(a_name).is_file() else Path(a_name)
    page = rep.write_comparison(c, where)
    if as_json:
        print(c.model_dump_json(indent=2))
        return
    for key, (ra, rb) in c.rates.items():
        fa = f"{ra.k}/{ra.n}" if ra else "-"
        fb = f"{rb.k}/{rb.n}" if rb else "-"
        out.print(f"{key:24} {fa:>10} {fb:>10}")
    for key, (va, vb) in c.figures.items():
        out.print(f"{key:24} {va!s:>10} {vb!s:>10}")
    out.print(f"{sum(p['differs'] for p in c.problems)} problems differ; page: {page}")


def _run(s: Settings, bench: Path, o: EvalOptions, *, out: Console, err: Console) -> int:
    from autoform.evaluation import report as rep
    from autoform.evaluation.bench import load
    from autoform.evaluation.runner import group_settings, groups
    from autoform.store import open_store

    o.check()
    s = _proof_strategy(s, o.max_attempts)
    problems = load(bench.resolve() if bench.exists() else bench, split=o.split, limit=o.limit)
    bench = bench.resolve()
    where = _eval_dir(s, bench, o.out_dir)
    params = o.job_params(s)
    store = open_store(where / "autoform.sqlite")
    first = group_settings(s, where, next(iter(groups(problems))))
    llm = _reachable_llm(first, store)

    def on_group(slug: str, n: int, todo: int) -> None:
        if not o.as_json:
            err.print(escape(f"{slug}: {n} problems, {n - todo} finished before, {todo} to run"), highlight=False)

    summaries = _run_groups(s, store, bench, problems, where, params, llm, on_group, prove_reference=o.prove_reference)
    report = rep.collect(store, first, bench, problems, params=_report_params(params, o, s))
    rep.write_report(report, store, where)
    _print_report(report, where, as_json=o.as_json, out=out)
    return _stopped_code(summaries, err)


def _eval_dir(s: Settings, bench: Path, out_dir: str | None) -> Path:
    """The evaluation's directory (made), with the agents' Mathlib index shared into it."""
    from autoform.evaluation.runner import default_out

    where = Path(out_dir).expanduser().resolve() if out_dir else default_out(s, bench)
    where.mkdir(parents=True, exist_ok=True)
    index = s.mathlib_index_path
    if index.is_file() and not (where / index.name).exists():
        (where / index.name).symlink_to(index)  # the agents' Mathlib grounding, shared
    return where


def _reachable_llm(s: Settings, store: Store) -> LLMClient:
    from autoform.llm import LLMClient, LLMUnavailable

    try:
        llm = LLMClient(s, store)
        llm.ping()
    except LLMUnavailable as e:
        raise MissingParts([f"LLM: {e}"]) from e
    return llm


def _run_groups(
    s: Settings,
    store: Store,
    bench: Path,
    problems: list[Problem],
    where: Path,
    params: JobParams,
    llm: LLMClient,
    on_group: Callable[[str, int, int], None],
    *,
    prove_reference: bool,
) -> list[JobSummary]:
    """Run the problems, one job a Lean header (one Lean backend an import block); a Lean that does not start is
    reported as missing."""
    from autoform.evaluation.runner import EvalRun
    from autoform.lean import make_oracle
    from autoform.lean.oracle import OracleUnavailable

    try:
        run = EvalRun(
            s,
            store,
            bench,
            where,
            params,
            make_backend=make_oracle,
            make_llm=lambda gs: llm,
            prove_reference=prove_reference,
            on_group=on_group,
        )
        return run.run(problems)
    except OracleUnavailable as e:
        raise MissingParts([f"Lean: {e}"]) from e


def _proof_strategy(s: Settings, max_attempts: int | None) -> Settings:
    """As ``autoform run``: ``--max-attempts`` asks for the attempts strategy of the proof search."""
    return with_unit_budget(s, None, max_attempts=max_attempts)


def _report_params(params: JobParams, o: EvalOptions, s: Settings) -> dict[str, int | float | str | bool | None]:
    p = s.prove
    budget = f"llm_calls={p.llm_calls},tokens={p.tokens},lean_checks={p.lean_checks},wall_s={p.wall_s:g}"
    return {
        "proof_strategy": p.strategy,
        "proof_budget": budget if p.strategy == "budget" else None,
        "max_attempts": params.max_attempts,
        "jobs": params.jobs,
        "budget_usd": o.budget_usd,
        "limit": o.limit,
        "split": o.split,
        "prove_reference": o.prove_reference,
        "executor": params.executor,
    }


def _print_report(report: EvalReport, where: Path, *, as_json: bool, out: Console) -> None:
    if as_json:
        print(report.model_dump_json(indent=2))
        return
    for key, rate in report.rates.items():
        out.print(
            f"{key:24} {rate.k}/{rate.n}  {100 * rate.rate:5.1f}%  [{100 * rate.low:.1f}%, {100 * rate.high:.1f}%]"
        )
    if "reference_proved" in report.rates:
        per = report.cost_per_reference_proved_usd
        out.print(
            f"reference proofs: ${report.reference_cost_usd:.4f}"
            + (f", ${per:.4f} a reference proved" if per is not None else ""),
            highlight=False,
        )
    out.print(
        f"cost ${report.cost_usd:.4f}, {report.llm_calls} LLM calls, {report.tokens} tokens, "
        f"Lean {report.lean_s:.1f} s; report: {where / 'index.html'}"
    )


def _stopped_code(summaries: list[JobSummary], err: Console) -> int:
    """0 when every group's job finished; else say why the last one stopped, and its exit code."""
    stopped = [x for x in summaries if x.status != "done"]
    if not stopped:
        return 0
    last = stopped[-1]
    err.print(escape(f"stopped: {last.message or last.stop_reason}; run again to resume"), highlight=False)
    return stopped_exit_code(last.stop_reason)
