"""What a Ray node must share with the driver before it may check anything: the Lean toolchain
(``lean-toolchain``), the Mathlib revision (``lake-manifest.json``) and the REPL binary, read on the node from
the Lean project at the driver's absolute path. A node whose facts differ from the driver's is refused, so the
Atlas never mixes admissions made under two Lean versions. No Ray here: the facts are plain data."""

from __future__ import annotations

import hashlib
import json
import socket
from dataclasses import dataclass
from pathlib import Path

from autoform.config import Settings
from autoform.toolchain.workspace import recorded_repl


@dataclass(frozen=True)
class Toolchain:
    """A machine's Lean side as the checks would use it; ``problem`` says why it cannot be used at all."""

    host: str
    project: str
    lean: str = ""  # the lean-toolchain line
    mathlib: str = ""  # Mathlib's commit in lake-manifest.json
    repl: str = ""  # sha256 (16 hex digits) of the REPL binary, "" when the backend runs none here
    problem: str = ""


def _read(p: Path) -> str:
    try:
        return p.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _mathlib_rev(project: Path) -> str:
    try:
        data = json.loads((project / "lake-manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    for pkg in data.get("packages", []) if isinstance(data, dict) else []:
        if isinstance(pkg, dict) and pkg.get("name") == "mathlib":
            return str(pkg.get("rev", ""))
    return ""


def _repl_digest(settings: Settings, project: Path) -> str:
    if settings.lean.backend != "repl":
        return ""
    repl_dir = Path(settings.lean.repl_path) if settings.lean.repl_path else recorded_repl(project)
    binary = repl_dir / ".lake" / "build" / "bin" / "repl" if repl_dir is not None else None
    if binary is None or not binary.is_file():
        return "missing"
    return hashlib.sha256(binary.read_bytes()).hexdigest()[:16]


def local_toolchain(settings: Settings) -> Toolchain:
    """This machine's toolchain facts for the settings' Lean project (which must be an absolute path here:
    the driver ships its resolved path, so a node never falls back to another project)."""
    host = socket.gethostname()
    project = Path(settings.lean.project_dir).expanduser() if settings.lean.project_dir else settings.lean_project
    if settings.lean.backend == "kimina":  # Lean runs on the Kimina server, not on the nodes
        return Toolchain(host, str(project))
    if not project.is_dir():
        return Toolchain(host, str(project), problem=f"the Lean project {project} does not exist on this node")
    return Toolchain(
        host,
        str(project),
        lean=_read(project / "lean-toolchain"),
        mathlib=_mathlib_rev(project),
        repl=_repl_digest(settings, project),
    )


def mismatch(driver: Toolchain, node: Toolchain) -> str | None:
    """Why ``node`` may not check for the driver's job (None: it may), in one line naming the node."""
    where = f"Ray node {node.host} refused"
    if node.problem:
        return f"{where}: {node.problem} (every node needs the Lean project at the driver's path)"
    for what, mine, theirs in (
        ("lean-toolchain", driver.lean, node.lean),
        ("Mathlib revision (lake-manifest.json)", driver.mathlib, node.mathlib),
        ("REPL binary (sha256)", driver.repl, node.repl),
    ):
        if mine != theirs:
            return (
                f"{where}: its {what} in {node.project} is {theirs or 'missing'!r}, the driver's is "
                f"{mine or 'missing'!r}; every node needs the driver's Lean, Mathlib and built REPL"
            )
    return None


def driver_settings(settings: Settings) -> Settings:
    """The settings a node gets: the Lean project as the absolute path the driver resolved (a relative
    ``project_dir`` missing on a node must not fall back to another project there)."""
    lean = settings.lean.model_copy(update={"project_dir": str(settings.lean_project.resolve())})
    return settings.model_copy(update={"lean": lean})
