"""``autoform doctor``: what is ready, what is missing, and how to get it."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
from pathlib import Path

from pydantic import BaseModel

from autoform.config import Settings
from autoform.lean import make_oracle
from autoform.lean.cache import CachedOracle
from autoform.lean.lake import lake_problem
from autoform.lean.oracle import OracleUnavailable
from autoform.llm import LLMClient, LLMUnavailable
from autoform.toolchain.memory import MemoryReport, machine_memory_mb, olean_mb
from autoform.toolchain.workspace import build_targets, recorded_repl

PY_DEPS = (
    "openai",
    "pypdf",
    "networkx",
    "tenacity",
    "rich",
    "pydantic",
    "typer",
    "lean_interact",
    "jinja2",
    "pygments",
    "latex2mathml",
)


class Check(BaseModel):
    name: str
    ok: bool
    detail: str
    needed_by_run: bool = True


def _python_deps() -> Check:
    missing = []
    for mod in PY_DEPS:
        try:
            importlib.import_module(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        return Check(
            name="python packages",
            ok=False,
            detail=f"missing: {', '.join(missing)}. Run scripts/setup.sh (or pip install -e '.[dev]').",
        )
    return Check(name="python packages", ok=True, detail=", ".join(PY_DEPS))


def _oracle_start(settings: Settings) -> list[Check]:
    oracle = make_oracle(settings)
    try:
        oracle.start()
        out = [
            Check(name="oracle start", ok=True, detail=f"{oracle.backend} backend elaborated {settings.lean.header!r}")
        ]
        pool = oracle.inner if isinstance(oracle, CachedOracle) else oracle  # the cache wraps the pool
        base = getattr(pool, "baseline", None)  # the REPL pool's memory after the import (other backends: none)
        if base is not None:
            out.append(memory_check(settings, base))
        return out
    except OracleUnavailable as e:
        return [Check(name="oracle start", ok=False, detail=str(e))]
    finally:
        oracle.close()


def memory_check(settings: Settings, base: MemoryReport) -> Check:
    """A REPL process's memory right after it imported the header, against the limits derived from it."""
    cfg = settings.lean
    ok = base.vms_mb < cfg.memory_mb
    detail = (
        f"after {cfg.header!r}: {base.rss_mb:,.0f} MB resident ({base.uss_mb:,.0f} MB private), "
        f"{base.vms_mb:,.0f} MB address space of {cfg.memory_mb:,} MB allowed (memory_mb); a process is "
        f"restarted at {base.rss_mb + cfg.restart_growth_mb:,.0f} MB resident (baseline + restart_growth_mb); "
        f"pool of {cfg.pool_size} for {machine_memory_mb():,} MB of memory"
    )
    if not ok:
        detail += "; raise [lean] memory_mb above the address space the import needs"
    return Check(name="repl memory", ok=ok, detail=detail)


def _toolchain(settings: Settings) -> Check:
    """The Lean that `lake env lean` runs in the project, against the pinned lean-toolchain."""
    proj = settings.lean_project
    pinned = (proj / "lean-toolchain").read_text().strip()
    want = pinned.rsplit(":", 1)[-1].lstrip("v")
    try:
        r = subprocess.run(
            [settings.lean.lake_path, "env", "lean", "--version"], cwd=proj, capture_output=True, text=True, timeout=300
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return Check(
            name="lean toolchain",
            ok=False,
            needed_by_run=settings.lean.backend == "lake",
            detail=f"`lake env lean --version` failed: {e}",
        )
    got = (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr).strip() else ""
    ok = r.returncode == 0 and want in got
    return Check(
        name="lean toolchain",
        ok=ok,
        needed_by_run=settings.lean.backend == "lake",
        detail=f"{got or 'no output'} (pinned {pinned})"
        + ("" if ok else "; elan installs the pinned toolchain on first use: run scripts/setup.sh"),
    )


def lean_checks(settings: Settings, *, start_pool: bool = True) -> list[Check]:
    """Lean: lake, the project, Mathlib's build, the REPL, then (when lake and the project are there) the
    toolchain and a started oracle; for the Kimina backend only the server."""
    if settings.lean.backend == "kimina":
        return (
            _oracle_start(settings)
            if start_pool
            else [Check(name="kimina server", ok=True, detail=f"{settings.lean.kimina_url} (not contacted: --quick)")]
        )
    out = [_lake_check(settings), _project_check(settings)]
    if "Mathlib" in settings.lean.header:
        out.append(_mathlib_check(settings))
    out.append(_repl_check(settings))
    if all(c.ok for c in out if c.name in ("lake", "lean project")):
        out.insert(2, _toolchain(settings))
        if start_pool:
            out += _oracle_start(settings)
    return out


def _lake_check(settings: Settings) -> Check:
    problem = lake_problem(settings)
    lake = settings.lean.lake_path
    if problem and "not found" in problem:
        return Check(name="lake", ok=False, detail=f"{problem} ({settings.lean.lake_found})")
    try:
        v = subprocess.run([lake, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return Check(name="lake", ok=False, detail=f"`{lake} --version` failed: {e}")
    return Check(
        name="lake",
        ok=v.returncode == 0,
        detail=f"{lake} (found on {settings.lean.lake_found}): " + (v.stdout or v.stderr).strip()[:200],
    )


def _project_check(settings: Settings) -> Check:
    proj = settings.lean_project
    tc = proj / "lean-toolchain"
    return Check(
        name="lean project",
        ok=tc.is_file(),
        detail=f"{proj} ({tc.read_text().strip()})"
        if tc.is_file()
        else f"{proj} has no lean-toolchain; set [lean] project_dir to a Lake project with Mathlib",
    )


def _mathlib_check(settings: Settings) -> Check:
    proj = settings.lean_project
    cands = [proj / ".lake" / "packages" / "mathlib", proj.parent / ".lake" / "packages" / "mathlib"]
    found = next((c for c in cands if (c / ".lake" / "build" / "lib").is_dir()), None)
    return Check(
        name="mathlib",
        ok=found is not None,
        detail=f"built at {found} ({olean_mb(proj):,.0f} MB of .olean files to map)"
        if found
        else f"Mathlib's build was not found under {proj}/.lake/packages. "
        f"Run `lake exe cache get && lake build "
        f"{' '.join(build_targets(settings.lean.header))}` in {proj} (scripts/setup.sh does it).",
    )


def _repl_check(settings: Settings) -> Check:
    proj = settings.lean_project
    repl_dir = Path(settings.lean.repl_path) if settings.lean.repl_path else recorded_repl(proj)
    rb = repl_dir / ".lake" / "build" / "bin" / "repl" if repl_dir else None
    if rb is not None and rb.exists():
        return Check(name="lean repl", ok=True, detail=str(rb))
    return Check(
        name="lean repl",
        ok=False,
        detail=(
            f"{rb} missing: run `lake build` in {repl_dir}"
            if rb is not None
            else "the REPL is not built for this project; scripts/setup.sh builds it once (needs GitHub access)"
        ),
    )


def llm_check(settings: Settings) -> Check:
    try:
        client = LLMClient(settings)
        models = client.ping()
    except LLMUnavailable as e:
        return Check(name="llm endpoint", ok=False, detail=str(e))
    model = settings.llm.model
    listed = model in models or not models
    return Check(
        name="llm endpoint",
        ok=True,
        detail=f"{settings.llm.base_url} answers; model {model!r}"
        + ("" if listed else f" is not in its list ({', '.join(models[:5])}...)"),
    )


#: optional extras: module -> (what it is for, how to get it)
OPTIONAL = {
    "ray": ("`autoform run --executor ray` (a Ray cluster)", "pip install -e '.[ray]'"),
    "lean_dojo": ("`autoform atlas dataset --trace` (LeanDojo's tactic states)", "pip install -e '.[dojo]'"),
}


def _optional(module: str) -> Check:
    use, get = OPTIONAL[module]
    spec = importlib.util.find_spec(module)  # found without importing it (Ray takes seconds to import)
    return Check(
        name=f"optional: {module}",
        ok=spec is not None,
        needed_by_run=False,
        detail=f"for {use}" + ("" if spec is not None else f"; not installed: {get}"),
    )


def run_doctor(settings: Settings, *, start_pool: bool = True) -> list[Check]:
    checks = [_python_deps()]
    store = "present" if settings.db_path.exists() else "not yet created"
    checks.append(Check(name="workspace", ok=True, needed_by_run=False, detail=f"{settings.home} (store {store})"))
    checks += lean_checks(settings, start_pool=start_pool)
    checks.append(llm_check(settings))
    elan = shutil.which("elan")
    checks.append(
        Check(
            name="elan",
            ok=elan is not None,
            needed_by_run=False,
            detail=elan or "not on PATH (only needed to install or update the toolchain)",
        )
    )
    checks.append(mathlib_index_check(settings))
    checks += [_optional(m) for m in OPTIONAL]
    return checks


def mathlib_index_check(settings: Settings) -> Check:
    """The Mathlib declaration index the agents search (`autoform mathlib index`): present and current?"""
    from autoform.mathlib.index import MathlibIndex, source_revision

    path, src = settings.mathlib_index_path, settings.mathlib_source
    if not path.exists():
        how = (
            "run `autoform mathlib index`"
            if src.is_dir()
            else "after scripts/setup.sh fetched Mathlib, run "
            "`autoform mathlib index` (or `--source DIR` for another checkout)"
        )
        return Check(name="mathlib index", ok=False, needed_by_run=False, detail=f"not built: {how}")
    index = MathlibIndex(path)
    try:
        n, source = index.count("mathlib"), index.meta("mathlib.source") or "?"
        stale = src.is_dir() and source == str(src) and index.meta("mathlib.revision") != source_revision(src)
    finally:
        index.close()
    return Check(
        name="mathlib index",
        ok=not stale,
        needed_by_run=False,
        detail=f"{n} declarations from {source}"
        + (": the source changed, run `autoform mathlib index`" if stale else ""),
    )
