"""The evaluation's figures, computed from the store only (units, attempts, LLM calls, the ``eval_result``
posts holding Lean's equivalence verdicts, the units of the reference statements where they were proved),
written as ``eval.json`` and an offline page ``index.html`` in the site's style; two reports compared side by
side."""

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
from autoform.evaluation.reference import SUFFIX, concluded, reference_lean_s, refusal
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


class Effort(BaseModel):
    """What one unit's work cost: its attempts, LLM calls (cached ones count as calls, not as tokens or cost),
    tokens, cost and Lean time."""

    attempts: int = 0
    llm_calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    lean_s: float = 0.0


class ReferenceRecord(Effort):
    """The proof of the problem's reference statement (locked as given)."""

    status: str = UnitStatus.PENDING.value
    finished: bool = False  # the unit concluded: proved, or not (Lean refused the reference, or no proof found)
    proved: bool = False
    refused: str = ""  # why Lean refused the reference itself ("" when it elaborated)
    transcript: str = ""


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
    reference: ReferenceRecord | None = None  # when the reference statement was to be proved


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
    reference_cost_usd: float = 0.0
    cost_per_reference_proved_usd: float | None = None
    lean_s: float
    records: list[ProblemRecord]


def _effort(store: Store, settings: Settings, unit_id: int) -> Effort:
    """The unit's attempts, LLM calls, tokens and cost (uncached calls at the configured prices), Lean time."""
    got = store.unit_effort(unit_id)
    out = Effort(attempts=got.attempts, lean_s=got.attempts_lean_s)
    for call in got.calls:
        out.llm_calls += 1
        if not call.cached:
            out.tokens += call.prompt_tokens + call.completion_tokens
            out.cost_usd += price(settings, call.model, call.prompt_tokens, call.completion_tokens)
    return out


def _problem_record(store: Store, settings: Settings, bench: Path, p: Problem) -> ProblemRecord:
    """What the store holds of one problem: its unit's status, effort and cost, Lean's equivalence verdict, and
    the proof of its reference statement where one was asked for."""
    slug = book_slug(bench, p.lean_header)
    rec = ProblemRecord(name=p.name, book=slug)
    rec.reference = _reference_record(store, settings, slug + SUFFIX, p)
    book = store.book(slug)
    unit = store.present_unit_by_label(book.id, p.name) if book is not None else None
    if unit is None:
        return rec
    rec.unit_id, rec.status = unit.id, str(unit.status)
    rec.proved = unit.status == UnitStatus.PROVED
    eff = _effort(store, settings, unit.id)
    rec.attempts, rec.llm_calls, rec.tokens = eff.attempts, eff.llm_calls, eff.tokens
    eq_s = _read_verdict(rec, store.latest_post_data(unit.id, RESULT))
    rec.lean_s = round(eff.lean_s + eq_s, 4)
    rec.cost_usd = round(eff.cost_usd, 8)
    rec.transcript = f"transcripts/{_safe(p.name)}.txt"
    return rec


def _reference_record(store: Store, settings: Settings, slug: str, p: Problem) -> ReferenceRecord | None:
    """The proof of the problem's reference statement, when its book holds the problem."""
    book = store.book(slug)
    unit = store.present_unit_by_label(book.id, p.name) if book is not None else None
    if unit is None:
        return None
    eff = _effort(store, settings, unit.id)
    return ReferenceRecord(
        **eff.model_dump(exclude={"lean_s", "cost_usd"}),
        cost_usd=round(eff.cost_usd, 8),
        lean_s=round(eff.lean_s + reference_lean_s(store, unit.id), 4),
        status=str(unit.status),
        finished=concluded(unit.status),
        proved=unit.status == UnitStatus.PROVED,
        refused=refusal(store, unit.id),
        transcript=f"transcripts/{_safe(p.name)}.reference.txt",
    )


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


def _reference_figures(records: list[ProblemRecord]) -> tuple[dict[str, int], dict[str, Rate], float]:
    """Counts and the rate of the references proved, over the concluded ones; their cost. Empty when no
    reference statement was to be proved."""
    refs = [r.reference for r in records if r.reference is not None]
    if not refs:
        return {}, {}, 0.0
    done = [x for x in refs if x.finished]
    proved = sum(x.proved for x in done)
    counts = {
        "reference_proved": proved,
        "reference_failed": len(done) - proved,
        "reference_refused": sum(bool(x.refused) for x in done),
    }
    return counts, {"reference_proved": _rate(proved, len(done))}, sum(x.cost_usd for x in refs)


def collect(
    store: Store, settings: Settings, bench: Path, problems: list[Problem], *, params: dict[str, Any] | None = None
) -> EvalReport:
    """Every figure of the report, read from the store."""
    records = [_problem_record(store, settings, bench, p) for p in problems]
    done = [r for r in records if r.finished]
    n = len(done)
    counts = {k: sum(bool(test(r)) for r in done) for k, test in _COUNTS.items()}
    ref_counts, ref_rates, ref_cost = _reference_figures(records)
    refs = [r.reference for r in records if r.reference is not None]
    cost = sum(r.cost_usd for r in records)
    return EvalReport(
        benchmark=str(bench),
        model=settings.llm.model,
        models={r: settings.llm.model_for(r) for r in _ROLES},
        params=params or {},
        lean_backend=settings.lean.backend,
        problems=len(records),
        finished=n,
        counts=counts | ref_counts,
        rates={k: _rate(counts[k], n) for k in _RATES} | ref_rates,
        llm_calls=sum(r.llm_calls for r in records) + sum(x.llm_calls for x in refs),
        tokens=sum(r.tokens for r in records) + sum(x.tokens for x in refs),
        cost_usd=round(cost + ref_cost, 8),
        cost_per_solved_usd=_per(cost, counts["proved"]),
        cost_per_equivalent_solved_usd=_per(cost, counts["proved_and_equivalent"]),
        reference_cost_usd=round(ref_cost, 8),
        cost_per_reference_proved_usd=_per(ref_cost, ref_counts.get("reference_proved", 0)),
        lean_s=round(sum(r.lean_s for r in records) + sum(x.lean_s for x in refs), 4),
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
        ref = r.reference
        if ref is not None:
            book = store.book(r.book + SUFFIX)
            unit = store.present_unit_by_label(book.id, r.name) if book is not None else None
            if unit is not None:
                path = out / ref.transcript
                path.write_text(render_text(unit_transcript(store, unit)), encoding="utf-8")
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


def _side(r: ProblemRecord) -> dict[str, Any]:
    """One run's outcome on a problem, for the comparison (``reference_proved`` None: not asked for)."""
    ref = r.reference
    return {
        "equivalence": r.equivalence,
        "proved": r.proved,
        "reference_proved": ref.proved if ref is not None and ref.finished else None,
        "cost_usd": r.cost_usd + (ref.cost_usd if ref is not None else 0.0),
    }


def _outcome(side: dict[str, Any]) -> tuple[Any, ...]:
    return side["equivalence"], side["proved"], side["reference_proved"]


def compare(a: EvalReport, b: EvalReport, *, a_name: str = "A", b_name: str = "B") -> Comparison:
    keys = list(dict.fromkeys([*a.rates, *b.rates]))
    figs = (
        "problems",
        "finished",
        "llm_calls",
        "tokens",
        "cost_usd",
        "cost_per_solved_usd",
        "cost_per_reference_proved_usd",
        "lean_s",
        "model",
    )
    rb = {r.name: r for r in b.records}
    rows = []
    for r in a.records:
        o = rb.get(r.name)
        if o is None:
            continue
        a_side, b_side = _side(r), _side(o)
        rows.append({"name": r.name, "a": a_side, "b": b_side, "differs": _outcome(a_side) != _outcome(b_side)})
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
