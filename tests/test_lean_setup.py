"""From setup to a built Atlas (issue 12): `lake` found without PATH edits, one Lake workspace, memory limits
derived from the post-import baseline, no fetch when the pool starts, setup building what the checks import.
No toolchain needed: the stand-in lake and a REPL stand-in that holds real memory."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import LAKE_STANDIN, ROOT, SHARED, autoform, make_repl_dir

from autoform.config import LeanConfig, Settings
from autoform.doctor import run_doctor
from autoform.lean.lake import lake_problem
from autoform.lean.repl_pool import ReplPool
from autoform.toolchain import memory
from autoform.toolchain.workspace import REPL_RECORD, build_targets, find_lake, recorded_repl, split_header

MEMORY_REPL = Path(__file__).resolve().parent / "standin" / "memory_repl.py"
MATHLIB_SRC = SHARED / "mathlib" / "mathlib4-8f9d9cff-src.tar.xz"


# -- 1. lake after setup ------------------------------------------------------------------------------------------
@pytest.fixture
def elan_home(tmp_path, monkeypatch):
    """A HOME whose ~/.elan/bin holds lake (as elan-init --no-modify-path leaves it), and a PATH without lake."""
    home = tmp_path / "user"
    bin_dir = home / ".elan" / "bin"
    bin_dir.mkdir(parents=True)
    shutil.copy(LAKE_STANDIN, bin_dir / "lake")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("ELAN_HOME", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert shutil.which("lake") is None
    return home


def test_lake_is_found_in_elans_bin_when_not_on_path(elan_home, tmp_path):
    cfg = LeanConfig()
    assert cfg.lake_path == str(elan_home / ".elan" / "bin" / "lake")
    assert "elan" in cfg.lake_found
    s = Settings(home=tmp_path, lean=cfg)
    assert lake_problem(s) is None
    lake = next(c for c in run_doctor(s, start_pool=False) if c.name == "lake")
    assert lake.ok and cfg.lake_path in lake.detail and "elan" in lake.detail and "Lake version" in lake.detail


def test_elan_home_and_configured_paths(elan_home, tmp_path, monkeypatch):
    other = tmp_path / "elsewhere"
    (other / "bin").mkdir(parents=True)
    shutil.copy(LAKE_STANDIN, other / "bin" / "lake")
    monkeypatch.setenv("ELAN_HOME", str(other))
    assert find_lake()[0] == str(other / "bin" / "lake")
    assert LeanConfig(lake_path=str(LAKE_STANDIN)).lake_path == str(LAKE_STANDIN)  # configured: as given
    monkeypatch.setenv("HOME", str(tmp_path / "nobody"))
    monkeypatch.delenv("ELAN_HOME")
    lake, how = find_lake()
    assert lake == "lake" and how.startswith("not found") and ".elan/bin" in how


def test_doctor_names_the_lake_it_uses_through_the_cli(elan_home, tmp_path):
    home = tmp_path / "ws"
    home.mkdir()
    env = {"HOME": str(elan_home), "PATH": "/usr/bin:/bin", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    proc = autoform(home, "doctor", "--quick", "--json", env=env)
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["lake"]["ok"], checks["lake"]
    assert str(elan_home / ".elan" / "bin" / "lake") in checks["lake"]["detail"]
    assert "lean toolchain" in checks  # which toolchain: `lake env lean --version` against lean-toolchain
    assert "leanprover/lean4:v4.28.0" in checks["lean toolchain"]["detail"]


# -- 2. one Lake workspace ----------------------------------------------------------------------------------------
def test_the_repository_root_is_the_one_workspace():
    lakefile = (ROOT / "lakefile.lean").read_text()
    toolchain = (ROOT / "lean-toolchain").read_text().strip()
    tag = toolchain.rsplit(":", 1)[1]
    m = re.search(r'require mathlib from git "https://github.com/leanprover-community/mathlib4" @ "([^"]+)"', lakefile)
    assert m and m.group(1) == tag, "Mathlib is required from git at the tag of the pinned toolchain"
    assert "lean_project" not in lakefile and not (ROOT / "lean_project").exists()
    for opt in ("autoImplicit", "relaxedAutoImplicit"):
        assert re.search(rf"⟨`{opt}, false⟩", lakefile), opt
    manifest = json.loads((ROOT / "lake-manifest.json").read_text())
    pk = {p["name"]: p for p in manifest["packages"]}
    assert pk["mathlib"]["inputRev"] == tag and not pk["mathlib"]["inherited"]
    assert re.fullmatch(r"[0-9a-f]{40}", pk["mathlib"]["rev"])
    assert manifest["packagesDir"] == ".lake/packages" and manifest["name"] == "autoform"
    # the candidates are checked in this same workspace
    assert Settings(home=ROOT).lean_project == ROOT


@pytest.mark.skipif(not MATHLIB_SRC.is_file(), reason=f"{MATHLIB_SRC} is absent")
def test_manifest_pins_mathlibs_own_dependencies_at_the_shared_commit(tmp_path):
    """Mathlib's dependencies are pinned at the commits Mathlib's own manifest names (else Lake would resolve
    them again), and the toolchain is Mathlib's."""
    with tarfile.open(MATHLIB_SRC) as tar:
        names = {
            m.name.lstrip("./"): m
            for m in tar.getmembers()
            if m.name.lstrip("./") in ("lake-manifest.json", "lean-toolchain")
        }
        theirs = json.loads(tar.extractfile(names["lake-manifest.json"]).read())
        their_tc = tar.extractfile(names["lean-toolchain"]).read().decode().strip()
    assert (ROOT / "lean-toolchain").read_text().strip() == their_tc
    ours = {p["name"]: p for p in json.loads((ROOT / "lake-manifest.json").read_text())["packages"]}
    assert ours["mathlib"]["rev"] == "8f9d9cff6bd728b17a24e163c9402775d9e6a365"
    for p in theirs["packages"]:
        assert ours[p["name"]]["rev"] == p["rev"] and ours[p["name"]]["inherited"], p["name"]
    assert set(ours) == {"mathlib", *(p["name"] for p in theirs["packages"])}


def test_home_workspaces_check_in_and_share_the_repository_workspace(tmp_path):
    home = tmp_path / "ws"
    home.mkdir()
    assert Settings(home=home).lean_project == ROOT  # no lakefile here: the workspace setup prepared
    old = Settings(home=home, lean=LeanConfig(project_dir="lean_project"))  # an older autoform.toml's value
    assert old.lean_project == ROOT
    autoform(home, "init", check=True)
    lakefile = (home / "lakefile.lean").read_text()
    shared = str(ROOT / ".lake" / "packages")
    assert f"packagesDir := {json.dumps(shared)}" in lakefile
    assert lakefile.index("packagesDir") > lakefile.index("package autoform where")
    manifest = json.loads((home / "lake-manifest.json").read_text())
    assert manifest["packagesDir"] == shared
    assert manifest["packages"] == json.loads((ROOT / "lake-manifest.json").read_text())["packages"]
    assert (home / "lean-toolchain").read_text() == (ROOT / "lean-toolchain").read_text()
    assert Settings(home=home).lean_project == home  # now a Lake package of its own, on the same Mathlib
    (home / "lakefile.lean").write_text("-- the user's own\n")
    autoform(home, "init", check=True)
    assert (home / "lakefile.lean").read_text() == "-- the user's own\n"  # never overwritten


def test_readme_commands_name_no_second_project():
    readme = (ROOT / "README.md").read_text()
    assert "lean_project" not in readme and "cd lean_project" not in readme
    assert "lake exe cache get" in readme and "v4.28.0" in readme


# -- 5. memory ----------------------------------------------------------------------------------------------------
def _memory_pool(tmp_path: Path, import_mb: int, check_mb: int, **lean: object) -> ReplPool:
    repl = make_repl_dir(
        tmp_path,
        program=MEMORY_REPL,
        env={"MEMORY_REPL_IMPORT_MB": str(import_mb), "MEMORY_REPL_CHECK_MB": str(check_mb)},
    )
    proj = tmp_path / "proj"
    proj.mkdir(exist_ok=True)
    (proj / "lean-toolchain").write_text("leanprover/lean4:v4.28.0\n")
    cfg = {
        "project_dir": str(proj),
        "lake_path": str(LAKE_STANDIN),
        "repl_path": str(repl),
        "timeout_s": 20,
        "start_timeout_s": 20,
        "memory_mb": 4096,
        "pool_size": 1,
        "max_uses": 1000,
        **lean,
    }
    return ReplPool(Settings(home=tmp_path, lean=LeanConfig(**cfg)))


def test_the_baseline_is_measured_right_after_the_import(tmp_path):
    pool = _memory_pool(tmp_path, import_mb=300, check_mb=0)
    try:
        pool.start()
        base = pool.baseline
        assert base is not None and base.rss_mb >= 300 and base.uss_mb >= 290
        assert base.vms_mb >= base.rss_mb / 2  # the address space of the largest process of the tree
        (worker,) = pool._idle
        assert worker.baseline == base
    finally:
        pool.close()


def test_a_process_is_never_restarted_for_the_memory_of_its_import(tmp_path):
    """The old rule (restart above an absolute RSS below what the import needs) retired the process after every
    check; the threshold is relative to the post-import baseline."""
    pool = _memory_pool(tmp_path, import_mb=300, check_mb=5, restart_memory_mb=200, restart_growth_mb=100)
    try:
        for k in range(4):
            assert pool.check(f"theorem t{k} : True := trivial").failure is None
        assert pool.stats["started"] == 1 and pool.stats["retired"] == 0
    finally:
        pool.close()


def test_a_process_is_restarted_when_it_grows_past_its_baseline(tmp_path):
    pool = _memory_pool(tmp_path, import_mb=100, check_mb=60, restart_growth_mb=100)
    try:
        pool.check("theorem a : True := trivial")  # baseline + 60: kept
        assert pool.stats["retired"] == 0
        pool.check("theorem b : True := trivial")  # baseline + 120: retired
        assert pool.stats["retired"] == 1
        pool.check("theorem c : True := trivial")  # a fresh process, measured again
        assert pool.stats["started"] == 2 and pool.stats["retired"] == 1
    finally:
        pool.close()


def test_memory_defaults_fit_import_mathlib_and_the_machine():
    cfg = LeanConfig()
    assert cfg.memory_mb >= 9 * 1024  # below 9 GB `import Mathlib` dies (kimina-lean-server issue #68)
    assert cfg.restart_memory_mb == 0 and cfg.restart_growth_mb > 0
    assert memory.default_pool_size(total_mb=8 * 1024, cpus=16) == 1
    assert memory.default_pool_size(total_mb=64 * 1024, cpus=16) == 7  # (64 GB - 2 GB) / 8.5 GB
    assert memory.default_pool_size(total_mb=256 * 1024, cpus=4) == 4  # no more than the cores
    assert cfg.pool_size == memory.default_pool_size()


def test_doctor_shows_the_memory_after_the_import(tmp_path):
    from autoform.doctor import memory_check

    s = Settings(home=tmp_path)
    base = memory.MemoryReport(rss_mb=6600, uss_mb=1200, vms_mb=10_500)
    c = memory_check(s, base)
    assert c.ok and "6,600 MB resident" in c.detail and "10,500 MB address space of 12,288" in c.detail
    assert "restarted at 8,648 MB" in c.detail
    assert not memory_check(s, base.model_copy(update={"vms_mb": 13_000})).ok


# -- 6. no network after setup ------------------------------------------------------------------------------------
def test_starting_the_pool_uses_the_recorded_repl_and_never_fetches(tmp_path, monkeypatch):
    """Without [lean] repl_path the pool runs the REPL setup built (recorded in .lake/autoform-repl.json), as a
    local, built REPL: lean-interact is never asked to clone, pull or build."""
    import lean_interact.config as li_config

    def no_network(*a, **k):
        raise AssertionError("the pool tried to fetch or build the REPL")

    monkeypatch.setattr(li_config.LeanREPLConfig, "_prepare_git_repl", no_network)
    monkeypatch.setattr(li_config.LeanREPLConfig, "_build_repl", no_network)
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "lean-toolchain").write_text("leanprover/lean4:v4.28.0\n")
    s = Settings(home=tmp_path, lean=LeanConfig(project_dir=str(proj), lake_path=str(LAKE_STANDIN), header=""))
    pool = ReplPool(s)
    r = pool.check("theorem a : True := trivial")
    assert r.failure and "scripts/setup.sh" in r.failure  # not built: said, not fetched
    repl = make_repl_dir(tmp_path)
    (proj / REPL_RECORD).parent.mkdir(parents=True)
    (proj / REPL_RECORD).write_text(json.dumps({"repl_dir": str(repl)}))
    assert recorded_repl(proj) == repl
    pool = ReplPool(s)
    try:
        assert pool.check("theorem a : True := trivial").failure is None
    finally:
        pool.close()


def test_lean_interact_is_pinned_to_a_tested_range_that_has_a_repl_for_the_pinned_lean():
    from importlib.metadata import version

    text = (ROOT / "pyproject.toml").read_text()
    m = re.search(r'"lean-interact>=([\d.]+),<([\d.]+)"', text)
    assert m, "lean-interact has an upper bound"
    installed = tuple(int(x) for x in version("lean-interact").split(".")[:3])
    assert tuple(int(x) for x in m.group(1).split(".")) <= installed < tuple(int(x) for x in m.group(2).split("."))
    # lean-interact 0.11.x documents REPL support from v4.8.0-rc1 to v4.36.0-rc1 (its README)
    pinned = tuple(int(x) for x in (ROOT / "lean-toolchain").read_text().strip().rsplit(":v", 1)[1].split("."))
    assert (4, 8, 0) <= pinned <= (4, 36, 0)


# -- 7. setup builds what the checks import -----------------------------------------------------------------------
def test_build_targets_name_what_the_header_imports():
    assert build_targets("import Mathlib") == ["Mathlib"]
    assert build_targets("import Mathlib.Data.Real.Basic\nimport Lean\nopen Real") == ["+Mathlib.Data.Real.Basic"]
    assert build_targets("") == []
    assert split_header("import Mathlib\nopen Real\n\nimport Aesop") == (
        ["import Mathlib", "import Aesop"],
        ["open Real"],
    )


def _fake_toolchain(tmp_path: Path) -> tuple[Path, Path]:
    """A HOME with elan's lake (logging its arguments) and a curl that cannot reach GitHub."""
    home = tmp_path / "user"
    bin_dir = home / ".elan" / "bin"
    bin_dir.mkdir(parents=True)
    log = tmp_path / "lake.log"
    (bin_dir / "lake").write_text(
        f'#!/bin/sh\necho "$PWD $*" >> {log}\n'
        'case "$1" in --version) echo "Lake version 5.0.0 (Lean version 4.28.0)";; esac\n'
    )
    (bin_dir / "lake").chmod(0o755)
    return home, log


def _setup_steps(tmp_path: Path, home: Path, extra_path: str = "") -> subprocess.CompletedProcess:
    """scripts/setup.sh's Lean part, run on a copy of the repository with the Python part stubbed out."""
    repo = tmp_path / "repo"
    shutil.copytree(
        ROOT,
        repo,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", ".lake", "*.sqlite*", "site", ".pytest_cache", ".ruff_cache", "__pycache__"
        ),
    )
    text = (ROOT / "scripts" / "setup.sh").read_text()
    lean_part = text[text.index('say "Lean: toolchain through elan"') : text.index('say "Status"')]
    head = text[: text.index('say "Python:')]
    venv = repo / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").write_text(f'#!/bin/sh\ncd {repo} && exec {sys.executable} "$@"\n')
    (venv / "python").chmod(0o755)
    (repo / "scripts" / "setup_lean.sh").write_text(head + lean_part)
    no_net = tmp_path / "no-net"  # git cannot reach GitHub either (lean-interact clones the REPL with git)
    no_net.mkdir(exist_ok=True)
    (no_net / "git").write_text("#!/bin/sh\necho 'fatal: unable to access github.com' >&2\nexit 128\n")
    (no_net / "git").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("ELAN_HOME", "PYTHONPATH")}
    env.update(HOME=str(home), PATH=f"{extra_path}{no_net}:/usr/bin:/bin", PYTHONPATH=str(repo))
    return subprocess.run(
        ["bash", str(repo / "scripts" / "setup_lean.sh")], capture_output=True, text=True, env=env, timeout=300
    )


def test_setup_fetches_the_cache_once_and_builds_what_the_checks_import(tmp_path):
    home, log = _fake_toolchain(tmp_path)
    proc = _setup_steps(tmp_path, home)
    calls = [ln.split(" ", 1) for ln in log.read_text().splitlines()]
    args = [c[1] if len(c) > 1 else "" for c in calls]
    assert all(Path(c[0]).name == "repo" for c in calls), calls  # everything in the one workspace
    assert args.count("exe cache get") == 1
    assert "build Mathlib" in args, args  # not only `lake build` (the Atlas's default target)
    assert args.index("exe cache get") < args.index("build Mathlib")
    out = proc.stdout + proc.stderr
    assert "not on your PATH" in out and 'export PATH="' in out  # the user's own shell is told exactly what
    # the stand-in lake cannot build the REPL: setup says so, and that Lean is missing
    assert "Lean is MISSING" in out


def test_setup_without_github_says_plainly_that_lean_is_missing(tmp_path):
    home = tmp_path / "user"
    home.mkdir()
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "curl").write_text("#!/bin/sh\necho 'curl: (6) Could not resolve host: github.com' >&2\nexit 6\n")
    (fake_bin / "curl").chmod(0o755)
    proc = _setup_steps(tmp_path, home, extra_path=f"{fake_bin}:")
    assert proc.returncode == 0, proc.stderr
    assert "Lean is MISSING" in proc.stderr and "GitHub" in proc.stderr
