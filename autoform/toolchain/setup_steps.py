"""The Lean steps of ``scripts/setup.sh``, run as ``python -m autoform.toolchain.setup_steps COMMAND``: ``lake`` (the
lake to use), ``targets [HOME]`` (the Mathlib modules the configured header imports, for ``lake build``),
``build-repl [PROJECT]`` (build the Lean REPL with lean-interact and record where)."""

from __future__ import annotations

import sys
from pathlib import Path

from autoform.config import load_settings
from autoform.toolchain.workspace import REPO_ROOT, build_repl, build_targets, find_lake


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    cmd = args[0] if args else ""
    if cmd == "lake":
        lake, how = find_lake()
        print(lake)
        return 0 if how != "" and not how.startswith("not found") else 1
    if cmd == "targets":
        print(" ".join(build_targets(load_settings(args[1] if len(args) > 1 else None).lean.header)))
        return 0
    if cmd == "build-repl":
        project = Path(args[1]) if len(args) > 1 else REPO_ROOT
        print(f"Lean REPL built in {build_repl(project, find_lake()[0])}")
        return 0
    print(
        "usage: python -m autoform.toolchain.setup_steps lake | targets [HOME] | build-repl [PROJECT]", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
