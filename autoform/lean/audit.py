"""The audit of the built Atlas: what Lean says of every declaration in a fresh process, against the store.

Admission is decided candidate by candidate; the Atlas is then written from the store into modules and built by
Lake. The audit closes the loop on what was built, after the fact and independently of the job that admitted it:

1. every module under ``atlas/`` passes the gate's pre-screen again (a hand edit, or a writer bug, that
   brought in ``axiom``, ``sorry``, an elaborator or ``#eval`` is found without running anything);
2. one fresh ``lake env lean --json`` process imports the built libraries and asks, one command a line, for the
   axioms of every declaration of the store and its complete type (``pp.all``, no elision). Importing a module
   does not elaborate it again, so the messages of that run are Lean's answers to those queries only (a module
   could run code at import time only through ``initialize``, which step 1 refuses);
3. each answer is compared with the store: only the standard axioms (``sorryAx`` too for the statements of
   ``AtlasStated``), and the type the statement was locked with.

Any difference is a finding; a missing answer is a finding too (positive confirmation only).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from pydantic import BaseModel, Field

from autoform.atlas import full_decl_name
from autoform.config import Settings
from autoform.lean.gate import ALLOWED_AXIOMS, axioms_query, confirmed_axioms, confirmed_type, type_query
from autoform.lean.lake import lake_problem, run_lake_lean
from autoform.lean.oracle import LeanCheck, LeanMessage
from autoform.lean.prescreen import prescreen
from autoform.store import Store


class Finding(BaseModel):
    where: str  # a module path under atlas/, or a declaration's name
    code: str
    message: str


class Expected(BaseModel):
    """What the store says one declaration of the Atlas must be."""

    name: str
    book: str
    unit: str
    status: str  # proved | defined | stated
    locked_type: str | None = None


class AuditReport(BaseModel):
    ok: bool
    checked: int = 0
    findings: list[Finding] = Field(default_factory=list)
    failure: str | None = None
    elapsed_s: float = 0.0


def expected_declarations(store: Store) -> list[Expected]:
    """Every declaration the store has put in the Atlas, with the type it was locked with: the unit's latest
    lock for a theorem, the admitted attempt's type for a definition."""
    out: list[Expected] = []
    for book in store.books():
        locks = {p.unit_id: p for p in store.posts(book.id, kind="lock")}  # posts come in id order: latest wins
        units = {u.id: u for u in store.units(book.id)}
        for e in store.atlas_entries(book.id):
            unit = units.get(e.unit_id)
            if unit is None:
                continue
            locked: str | None = None
            lock = locks.get(e.unit_id)
            if e.status in ("proved", "stated") and lock is not None:
                locked = str(lock.data.get("elaborated_type") or "") or None
            elif e.status == "defined" and e.attempt_id is not None:
                att = [a for a in store.attempts(e.unit_id) if a.id == e.attempt_id]
                locked = (att[0].elaborated_type or None) if att else None
            out.append(
                Expected(
                    name=full_decl_name(book, e), book=book.slug, unit=unit.display, status=e.status, locked_type=locked
                )
            )
    return out


def screen_sources(atlas_dir: Path) -> list[Finding]:
    """Step 1: the pre-screen on every module of the Atlas (import lines aside)."""
    findings: list[Finding] = []
    for path in sorted(atlas_dir.rglob("*.lean")):
        lines = path.read_text(encoding="utf-8").splitlines()
        body = "\n".join("" if ln.startswith("import ") else ln for ln in lines)
        rel = str(path.relative_to(atlas_dir.parent))
        for r in prescreen(body, role="helper"):
            findings.append(Finding(where=f"{rel}:{r.line}" if r.line else rel, code=r.code, message=r.message))
    return findings


def query_file(expected: list[Expected], libraries: list[str]) -> tuple[str, dict[int, tuple[int, int]]]:
    """The audit's Lean file and, for each declaration, the lines of its two queries."""
    lines = [f"import {lib}" for lib in libraries]
    where: dict[int, tuple[int, int]] = {}
    for k, e in enumerate(expected):
        lines.append(axioms_query(e.name))
        lines.append(type_query(e.name))
        where[k] = (len(lines) - 1, len(lines))
    return "\n".join(lines) + "\n", where


def judge_answers(expected: list[Expected], check: LeanCheck, where: dict[int, tuple[int, int]]) -> list[Finding]:
    """Step 3: each declaration's two answers against the store."""
    findings: list[Finding] = []
    by_line: dict[int, list[LeanMessage]] = {}
    for m in check.messages:
        by_line.setdefault(m.line, []).append(m)
    for k, e in enumerate(expected):
        ax_line, ty_line = where[k]
        answers = LeanCheck(answers=[by_line.get(ax_line, []), by_line.get(ty_line, [])])
        allowed = ALLOWED_AXIOMS | ({"sorryAx"} if e.status == "stated" else set())
        axioms, why = confirmed_axioms(answers, 0, e.name)
        if axioms is None:
            findings.append(Finding(where=e.name, code="axioms_unconfirmed", message=f"{e.unit} ({e.book}): {why}"))
        elif set(axioms) - allowed:
            bad = ", ".join(sorted(set(axioms) - allowed))
            findings.append(Finding(where=e.name, code="axioms", message=f"{e.unit} ({e.book}) uses {bad}"))
        ty, why = confirmed_type(answers, 1, e.name)
        if ty is None:
            findings.append(Finding(where=e.name, code="type_unconfirmed", message=f"{e.unit} ({e.book}): {why}"))
        elif e.locked_type is None:
            findings.append(
                Finding(
                    where=e.name,
                    code="no_lock",
                    message=f"{e.unit} ({e.book}): the store has no locked type to compare with",
                )
            )
        elif ty != e.locked_type.strip():
            findings.append(
                Finding(
                    where=e.name,
                    code="statement_changed",
                    message=f"{e.unit} ({e.book}): the built type is not the locked one: "
                    f"built {ty[:200]!r}, locked {e.locked_type.strip()[:200]!r}",
                )
            )
    return findings


def audit_atlas(store: Store, settings: Settings, *, timeout_s: float = 3600) -> AuditReport:
    """Audit the built Atlas of ``settings.home`` against ``store`` (see the module's doc)."""
    t0 = time.monotonic()
    expected = expected_declarations(store)
    report = AuditReport(ok=False, checked=len(expected))
    report.findings += screen_sources(settings.atlas_dir)
    problem = lake_problem(settings)
    if problem:
        report.failure = problem
        return report
    libraries = [lib for lib in ("Atlas", "AtlasStated") if (settings.atlas_dir / f"{lib}.lean").is_file()]
    text, where = query_file(expected, libraries)
    with tempfile.TemporaryDirectory(prefix="autoform-audit-", dir=settings.home) as tmp:
        path = Path(tmp) / "AtlasAudit.lean"
        path.write_text(text, encoding="utf-8")
        check = run_lake_lean(settings, [str(path)], cwd=settings.home, timeout=timeout_s)
    report.elapsed_s = time.monotonic() - t0
    if check.failure is not None:
        report.failure = f"the audit's Lean run failed: {check.failure}"
        return report
    imports = [m for m in check.messages if m.line <= len(libraries) and m.severity == "error"]
    if imports:
        report.failure = (
            f"the built Atlas could not be imported ({imports[0].text[:300]}); run `autoform atlas build` first"
        )
        return report
    report.findings += judge_answers(expected, check, where)
    report.ok = not report.findings
    return report
