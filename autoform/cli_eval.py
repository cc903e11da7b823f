"""The body of ``autoform eval`` (kept out of cli.py, which only declares the command)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape

from autoform.config import Settings

EXIT_FAIL, EXIT_USAGE, EXIT_MISSING = 1, 2, 3


def eval_command(
    s: Settings,
    target: list[str],
    *,
    limit: int | None,
    split: str | None,
    out_dir: str | None,
    jobs: int | None,
    max_attempts: int | None,
    budget_usd: float | None,
    as_json: bool,
    out: Any,
    err: Any,
) -> int:
    from autoform.evaluation import report as rep

    if target and target[0] == "compare":
        if len(target) != 3:
            err.print("usage: autoform eval compare A B (two --out directories or eval.json files)")
            return EXIT_USAGE
        try:
            a, b = rep.load_report(Path(target[1])), rep.load_report(Path(target[2]))
        except (FileNotFoundError, ValueError) as e:
            err.print(escape(str(e)), highlight=False)
            return EXIT_USAGE
        c = rep.compare(a, b, a_name=target[1], b_name=target[2])
        where = Path(out_dir) if out_dir else Path(target[1]).parent if Path(target[1]).is_file() else Path(target[1])
        page = rep.write_comparison(c, where)
        if as_json:
            print(c.model_dump_json(indent=2))
        else:
            for key, (ra, rb) in c.rates.items():
                fa = f"{ra.k}/{ra.n}" if ra else "-"
                fb = f"{rb.k}/{rb.n}" if rb else "-"
                out.print(f"{key:24} {fa:>10} {fb:>10}")
            for key, (va, vb) in c.figures.items():
                out.print(f"{key:24} {va!s:>10} {vb!s:>10}")
            out.print(f"{sum(p['differs'] for p in c.problems)} problems differ; page: {page}")
        return 0
    if len(target) != 1:
        err.print("usage: autoform eval BENCH.jsonl [--limit N] [--split S] [--json] [--out DIR]")
        return EXIT_USAGE
    return _run(
        s,
        Path(target[0]),
        limit=limit,
        split=split,
        out_dir=out_dir,
        jobs=jobs,
        max_attempts=max_attempts,
        budget_usd=budget_usd,
        as_json=as_json,
        out=out,
        err=err,
    )


def _run(
    s: Settings,
    bench: Path,
    *,
    limit: int | None,
    split: str | None,
    out_dir: str | None,
    jobs: int | None,
    max_attempts: int | None,
    budget_usd: float | None,
    as_json: bool,
    out: Any,
    err: Any,
) -> int:
    from autoform.evaluation import report as rep
    from autoform.evaluation.bench import BenchError, load
    from autoform.evaluation.runner import default_out, group_settings, groups, run_eval
    from autoform.jobs import JobError, JobParams
    from autoform.lean.backends import make_oracle
    from autoform.lean.oracle import OracleUnavailable
    from autoform.llm import LLMClient, LLMUnavailable
    from autoform.store import open_store

    if limit is not None and limit < 1:
        err.print(f"--limit {limit}: at least 1")
        return EXIT_USAGE
    if budget_usd is not None and budget_usd <= 0:
        err.print(f"--budget-usd {budget_usd}: a budget must be positive")
        return EXIT_USAGE
    try:
        problems = load(bench.resolve() if bench.exists() else bench, split=split, limit=limit)
    except BenchError as e:
        err.print(escape(str(e)), highlight=False)
        return EXIT_USAGE
    bench = bench.resolve()
    where = Path(out_dir).expanduser().resolve() if out_dir else default_out(s, bench)
    where.mkdir(parents=True, exist_ok=True)
    index = s.mathlib_index_path
    if index.is_file() and not (where / index.name).exists():
        (where / index.name).symlink_to(index)  # the agents' Mathlib grounding, shared
    params = JobParams(max_attempts=max_attempts or s.job.max_attempts, jobs=jobs or s.job.jobs, budget_usd=budget_usd)
    store = open_store(where / "autoform.sqlite")
    first = group_settings(s, where, next(iter(groups(problems))))
    try:
        llm = LLMClient(first, store)
        llm.ping()
    except LLMUnavailable as e:
        err.print(f"[bold red]missing:[/] LLM: {escape(str(e))}", highlight=False)
        return EXIT_MISSING

    def oracle_for(gs: Settings) -> Any:
        o = make_oracle(gs, store)
        o.start()
        return o

    def on_group(slug: str, n: int, todo: int) -> None:
        if not as_json:
            err.print(escape(f"{slug}: {n} problems, {n - todo} finished before, {todo} to run"), highlight=False)

    try:
        summaries = run_eval(
            s, store, bench, problems, where, params, make_oracle=oracle_for, make_llm=lambda gs: llm, on_group=on_group
        )
    except OracleUnavailable as e:
        err.print(f"[bold red]missing:[/] Lean: {escape(str(e))}", highlight=False)
        return EXIT_MISSING
    except JobError as e:
        err.print(escape(str(e)), highlight=False)
        return EXIT_USAGE
    report = rep.collect(
        store,
        first,
        bench,
        problems,
        params={
            "max_attempts": params.max_attempts,
            "jobs": params.jobs,
            "budget_usd": budget_usd,
            "limit": limit,
            "split": split,
        },
    )
    rep.write_report(report, store, where)
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        for key, rate in report.rates.items():
            out.print(
                f"{key:24} {rate.k}/{rate.n}  {100 * rate.rate:5.1f}%  [{100 * rate.low:.1f}%, {100 * rate.high:.1f}%]"
            )
        out.print(
            f"cost ${report.cost_usd:.4f}, {report.llm_calls} LLM calls, {report.tokens} tokens, "
            f"Lean {report.lean_s:.1f} s; report: {where / 'index.html'}"
        )
    stopped = [x for x in summaries if x.status != "done"]
    if stopped:
        err.print(
            escape(f"stopped: {stopped[-1].message or stopped[-1].stop_reason}; run again to resume"), highlight=False
        )
        return EXIT_MISSING if stopped[-1].stop_reason in ("llm", "lean", "store", "worker") else EXIT_FAIL
    return 0
