"""The one Lake workspace: where ``lake`` is, which project candidates are checked in, what setup must build,
and where the Lean REPL was built.

Layout (README, "Lean set-up"): the repository root is the Lake workspace. Its ``lakefile.lean`` requires Mathlib
from git at the pinned tag, its ``lake-manifest.json`` (committed) pins every package's commit, and
``lean-toolchain`` the matching Lean release. ``scripts/setup.sh`` fetches Mathlib's prebuilt cache there once
(``lake exe cache get``), builds what the checks import (``lake build Mathlib``: a plain ``lake build`` builds
only the Atlas's default target) and the REPL; candidates are checked there and ``lake build Atlas`` reuses the
same Mathlib build. A workspace elsewhere (``autoform --home DIR``) gets a lakefile of its own whose
``packagesDir`` is the repository's ``.lake/packages`` (``autoform init`` writes it), so it reuses the same
checkout and build instead of fetching Mathlib again.

``scripts/setup.sh`` runs these steps through :mod:`autoform.toolchain.setup_steps`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

#: the repository root: the Lake workspace that setup prepares (this file is autoform/toolchain/workspace.py)
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
#: where setup records the directory of the REPL it built (relative to the Lean project)
REPL_RECORD = Path(".lake") / "autoform-repl.json"


# -- lake ---------------------------------------------------------------------------------------------------------
def elan_bin_dirs() -> list[Path]:
    """Where elan puts its ``lake`` and ``lean`` proxies: ``$ELAN_HOME/bin``, else ``~/.elan/bin``."""
    dirs = []
    if os.environ.get("ELAN_HOME"):
        dirs.append(Path(os.environ["ELAN_HOME"]).expanduser() / "bin")
    dirs.append(Path.home() / ".elan" / "bin")
    return dirs


def find_lake(configured: str = "lake") -> tuple[str, str]:
    """(the lake to run, how it was found). A configured path is used as given; the bare name ``lake`` is
    looked up on PATH and then in elan's bin directory, because setup installs elan with ``--no-modify-path``
    (a user's next shell does not have it on PATH). When nothing is found the name is returned unchanged, so
    that the error names what was looked for."""
    if configured != "lake":
        found = shutil.which(configured)
        return (found or configured), "configured ([lean] lake_path)"
    on_path = shutil.which("lake")
    if on_path:
        return on_path, "PATH"
    for d in elan_bin_dirs():
        cand = d / "lake"
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand), f"elan ({d}, not on PATH)"
    return "lake", "not found (looked on PATH and in " + ", ".join(str(d) for d in elan_bin_dirs()) + ")"


# -- the Lean project ---------------------------------------------------------------------------------------------
def has_lakefile(d: Path) -> bool:
    return (d / "lakefile.lean").is_file() or (d / "lakefile.toml").is_file()


def default_project(home: Path) -> Path:
    """The Lean project of a workspace whose configuration names none: the workspace itself when it holds a
    Lake package, else the repository's root (the workspace setup prepared), else the workspace."""
    if has_lakefile(home):
        return home
    if has_lakefile(REPO_ROOT) and (REPO_ROOT / "lean-toolchain").is_file():
        return REPO_ROOT
    return home


def split_header(header: str) -> tuple[list[str], list[str]]:
    """(import lines, the other lines) of an import header such as ``import Mathlib\\nopen Real``."""
    imports, rest = [], []
    for line in header.strip().splitlines():
        (imports if re.match(r"\s*import\s", line) else rest).append(line.rstrip())
    return imports, [ln for ln in rest if ln.strip()]


def header_modules(header: str) -> list[str]:
    mods: list[str] = []
    for line in split_header(header)[0]:
        mods += line.split()[1:]
    return mods


def build_targets(header: str) -> list[str]:
    """The ``lake build`` arguments that build what the header imports: a library root (``Mathlib``) by its
    library target, any other module by ``+Module`` (Lake's module-target syntax). ``lake build`` with no
    argument builds only the workspace's default targets, not its dependencies' libraries."""
    libs = {"Mathlib", "Batteries", "Aesop", "Qq", "ProofWidgets", "Plausible", "ImportGraph", "LeanSearchClient"}
    out: list[str] = []
    for m in header_modules(header):
        if m in ("Init", "Std", "Lean") or m.startswith(("Init.", "Std.", "Lean.")):
            continue  # part of the toolchain
        out.append(m if m in libs else f"+{m}")
    return list(dict.fromkeys(out))


def workspace_lakefile(packages_dir: str | None = None) -> str:
    """The root lakefile.lean text with ``packagesDir`` pointing at a shared packages directory (for a
    workspace outside the repository)."""
    text = (REPO_ROOT / "lakefile.lean").read_text(encoding="utf-8")
    if packages_dir is None:
        return text
    return text.replace(
        "package autoform where\n", f"package autoform where\n  packagesDir := {json.dumps(packages_dir)}\n", 1
    )


def write_workspace_files(home: Path) -> list[Path]:
    """Lake files for a workspace outside the repository (``autoform --home DIR``): the repository's
    lakefile.lean, lean-toolchain and lake-manifest.json, with the packages directory shared with the
    repository, so that Mathlib is neither fetched nor built again. Files already there are kept."""
    home = home.resolve()
    if home == REPO_ROOT or not has_lakefile(REPO_ROOT) or has_lakefile(home):
        return []
    shared = str(REPO_ROOT / ".lake" / "packages")
    written = []
    files = {
        "lakefile.lean": workspace_lakefile(shared),
        "lean-toolchain": (REPO_ROOT / "lean-toolchain").read_text(encoding="utf-8"),
    }
    manifest = REPO_ROOT / "lake-manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text(encoding="utf-8"))
        data["packagesDir"] = shared
        files["lake-manifest.json"] = json.dumps(data, indent=1) + "\n"
    for name, text in files.items():
        p = home / name
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")
            written.append(p)
    return written


# -- the REPL -----------------------------------------------------------------------------------------------------
def recorded_repl(project: Path) -> Path | None:
    """The REPL checkout setup built for this project (recorded in ``.lake/autoform-repl.json``), when its
    binary is there; looked up in the project, then in the repository root."""
    for base in dict.fromkeys((project, REPO_ROOT)):
        rec = base / REPL_RECORD
        if not rec.is_file():
            continue
        try:
            d = Path(json.loads(rec.read_text(encoding="utf-8"))["repl_dir"])
        except (ValueError, KeyError, TypeError):
            continue
        if (d / ".lake" / "build" / "bin" / "repl").is_file():
            return d
    return None


def build_repl(project: Path, lake: str) -> Path:
    """Fetch and build the Lean REPL for the project's Lean version with lean-interact (needs GitHub), and
    record where, so that starting the pool later uses it as a local, already built REPL (no fetch)."""
    from lean_interact import LeanREPLConfig, LocalProject

    cfg = LeanREPLConfig(
        project=LocalProject(directory=str(project), lake_path=lake, auto_build=False), lake_path=lake, verbose=True
    )
    repl_dir = Path(cfg.cache_repl_dir)
    rec = project / REPL_RECORD
    rec.parent.mkdir(parents=True, exist_ok=True)
    rec.write_text(json.dumps({"repl_dir": str(repl_dir), "lean_version": cfg.lean_version}) + "\n", encoding="utf-8")
    return repl_dir
