"""The evaluation's figures, computed from the store only (units, attempts, LLM calls, the ``eval_result``
posts holding Lean's equivalence verdicts), written as ``eval.json`` and an offline page ``index.html`` in the
site's style; two reports compared side by side."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel, Field

from autoform.config import Settings
from autoform.evaluation.bench import Problem
from autoform.evaluation.runner import RESULT, book_slug
from autoform.llm import price
from autoform.store import Store, UnitStatus

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion k/n (95% by default); (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


class ProblemRecord(BaseModel):
    name: str
    book: str
    unit_id: int | None = None
    status: str = UnitStatus.PENDING.value  # the unit's status: pending, working, proved, stated, failed, ...
    finished: bool = False  # Lean's equivalence verdict is recorded
    statement_elaborated: bool = False
    drafted: str = ""
    fidelity: str = ""
    faithful: bool | None = None
    equivalence: str = ""  # equivalent, not_equivalent, undecided, no_statement ("" while unfinished)
    equivalence_reason: str = ""
    proved: bool = False
    attempts: int = 0
    llm_calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    lean_s: float = 0.0
    transcript: str = ""


class Rate(BaseModel):
    k: int
    n: int
    rate: float
    low: float
    high: float


class EvalReport(BaseModel):
    benchmark: str
    created_at: float = Field(default_factory=time.time)
    model: str = ""
    models: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    lean_backend: str = ""
    problems: int
    finished: int
    counts: dict[str, int]
    rates: dict[str, Rate]
    llm_calls: int
    tokens: int
    cost_usd: float
    cost_per_solved_usd: float | None
    cost_per_equivalent_solved_usd: float | None
    lean_s: float
    records: list[ProblemRecord]


def _problem_record(store: Store, settings: Settings, bench: Path, p: Problem) -> ProblemRecord:
    """What the store holds of one problem: its unit's status, effort and cost, and Lean's equivalence verdict."""
    slug = book_slug(bench, p.lean_header)
    rec = ProblemRecord(name=p.name, book=slug)
    book = store.book(slug)
    unit = store.present_unit_by_label(book.id, p.name) if book is not None else None
    if unit is None:
        return rec
    rec.unit_id, rec.status = unit.id, str(unit.status)
    rec.proved = unit.status == UnitStatus.PROVED
    effort = store.unit_effort(unit.id)
    rec.attempts = effort.attempts
    for call in effort.calls:
        rec.llm_calls += 1
        if not call.cached:
            rec.tokens += call.prompt_tokens + call.completion_tokens
            rec.cost_usd += price(settings, call.model, call.prompt_tokens, call.completion_tokens)
    eq_s = _read_verdict(rec, store.latest_post_data(unit.id, RESULT))
    rec.lean_s = round(effort.attempts_lean_s + eq_s, 4)
    rec.cost_usd = round(rec.cost_usd, 8)
    rec.transcript = f"transcripts/{_safe(p.name)}.txt"
    return rec


def _read_verdict(rec: ProblemRecord, d: dict[str, Any] | None) -> float:
    """Fill `rec` from the problem's ``eval_result`` post (when there is one); returns Lean's time on the
    equivalence check."""
    if d is None:
        return 0.0
    rec.finished = True
    rec.drafted, rec.fidelity, rec.faithful = d.get("drafted", ""), d.get("fidelity", ""), d.get("faithful")
    rec.statement_elaborated = bool(rec.drafted)
    rec.equivalence, rec.equivalence_reason = d.get("equivalence", ""), d.get("reason", "")
    return float(d.get("equivalence_lean_s", 0.0))


#: the figures counted over the finished problems
_COUNTS: dict[str, Callable[[ProblemRecord], bool]] = {
    "statement_elaborated": lambda r: r.statement_elaborated,
    "equivalent": lambda r: r.equivalence == "equivalent",
    "not_equivalent": lambda r: r.equivalence == "not_equivalent",
    "undecided": lambda r: r.equivalence == "undecided",
    "no_statement": lambda r: r.equivalence == "no_statement",
    "proved": lambda r: r.proved,
    "failed": lambda r: not r.proved,
    "proved_and_equivalent": lambda r: r.proved and r.equivalence == "equivalent",
    "critic_faithful": lambda r: r.faithful is True,
}
#: the counts given as rates, with their Wilson intervals
_RATES = ("statement_elaborated", "equivalent", "proved", "proved_and_equivalent")
_ROLES = ("reader", "drafter", "critic", "prover", "gap_closer")


def _rate(k: int, n: int) -> Rate:
    low, high = wilson(k, n)
    return Rate(k=k, n=n, rate=k / n if n else 0.0, low=low, high=high)


def _per(cost: float, k: int) -> float | None:
    return round(cost / k, 8) if k else None


def collect(
    store: Store, settings: Settings, bench: Path, problems: list[Problem], *, params: dict[str, Any] | None = None
) -> EvalReport:
    """Every figure of the report, read from the store."""
    records = [_problem_record(store, settings, bench, p) for p in problems]
    done = [r for r in records if r.finished]
    n = len(done)
    counts = {k: sum(bool(test(r)) for r in done) for k, test in _COUNTS.items()}
    cost = sum(r.cost_usd for r in records)
    return EvalReport(
        benchmark=str(bench),
        model=settings.llm.model,
        models={r: settings.llm.model_for(r) for r in _ROLES},
        params=params or {},
        lean_backend=settings.lean.backend,
        problems=len(records),
        finished=n,
        counts=counts,
        rates={k: _rate(counts[k], n) for k in _RATES},
        llm_calls=sum(r.llm_calls for r in records),
        tokens=sum(r.tokens for r in records),
        cost_usd=round(cost, 8),
        cost_per_solved_usd=_per(cost, counts["proved"]),
        cost_per_equivalent_solved_usd=_per(cost, counts["proved_and_equivalent"]),
        lean_s=round(sum(r.lean_s for r in records), 4),
        records=records,
    )


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",)),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _css() -> str:
    return (TEMPLATES / "site" / "style.css").read_text(encoding="utf-8") + (TEMPLATES / "eval" / "eval.css").read_text(
        encoding="utf-8"
    )


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))


def write_report(report: EvalReport, store: Store, out: Path) -> list[Path]:
    """``eval.json``, ``index.html`` (offline: styles inlined) and one transcript per problem under ``out``."""
    from autoform.transcript import render_text, unit_transcript

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "eval.json", out / "index.html"]
    (out / "eval.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    (out / "transcripts").mkdir(exist_ok=True)
    for r in report.records:
        if r.unit_id is not None and r.transcript:
            path = out / r.transcript
            path.write_text(render_text(unit_transcript(store, store.unit(r.unit_id))), encoding="utf-8")
            written.append(path)
    html = _env().get_template("eval/report.html").render(r=report, css=_css(), when=_when(report.created_at))
    (out / "index.html").write_text(html, encoding="utf-8")
    return written


def load_report(path: Path) -> EvalReport:
    """A report from ``eval.json`` or the directory holding it."""
    p = path / "eval.json" if path.is_dir() else path
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no eval.json here; pass the --out directory of an `autoform eval` run")
    return EvalReport.model_validate_json(p.read_text(encoding="utf-8"))


class Comparison(BaseModel):
    a: str
    b: str
    rates: dict[str, tuple[Rate | None, Rate | None]]
    figures: dict[str, tuple[Any, Any]]
    problems: list[dict[str, Any]]  # problems in both, with each run's outcome, where they differ first


def compare(a: EvalReport, b: EvalReport, *, a_name: str = "A", b_name: str = "B") -> Comparison:
    keys = list(dict.fromkeys([*a.rates, *b.rates]))
    figs = ("problems", "finished", "llm_calls", "tokens", "cost_usd", "cost_per_solved_usd", "lean_s", "model")
    rb = {r.name: r for r in b.records}
    rows = []
    for r in a.records:
        o = rb.get(r.name)
        if o is None:
            continue
        rows.append(
            {
                "name": r.name,
                "a": {"equivalence": r.equivalence, "proved": r.proved, "cost_usd": r.cost_usd},
                "b": {"equivalence": o.equivalence, "proved": o.proved, "cost_usd": o.cost_usd},
                "differs": (r.equivalence, r.proved) != (o.equivalence, o.proved),
            }
        )
    rows.sort(key=lambda x: not x["differs"])
    return Comparison(
        a=a_name,
        b=b_name,
        rates={k: (a.rates.get(k), b.rates.get(k)) for k in keys},
        figures={f: (getattr(a, f), getattr(b, f)) for f in figs},
        problems=rows,
    )


def write_comparison(c: Comparison, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(c.model_dump_json(indent=2), encoding="utf-8")
    page = out / "compare.html"
    page.write_text(_env().get_template("eval/compare.html").render(c=c, css=_css()), encoding="utf-8")
    return page
