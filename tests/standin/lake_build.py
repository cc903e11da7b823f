#!/usr/bin/env python3
"""`lake build TARGET...` of the stand-in lake (tests/standin/lake): builds the root package's libraries the way
Lake does for this workspace's lakefile (``lean_lib Atlas`` and ``AtlasStated``, ``srcDir := "atlas"``): each
target's root module and every module it imports from the source directory, dependencies first, compiled with
(the stand-in) ``lean -o`` into ``.lake/build/lib/lean/<Module/Path>.olean``. Imports outside the source directory
(``Mathlib``) are taken as built. A module with an error stops the build with Lean's messages and exit status 1,
as Lake does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC_DIR = "atlas"
LEAN = Path(__file__).resolve().parent / "lean"


def main(targets: list[str]) -> int:
    root = Path.cwd()
    src, out = root / SRC_DIR, root / ".lake" / "build" / "lib" / "lean"
    if not src.is_dir():  # only the Atlas's workspace is built here (a REPL checkout, say, is not)
        print(f"lake (stand-in): unsupported invocation: lake build {' '.join(targets)} in {root}", file=sys.stderr)
        return 1
    done: set[str] = set()
    env = {**os.environ, "LEAN_PATH": os.pathsep.join(x for x in (str(out), os.environ.get("LEAN_PATH", "")) if x)}

    def build(module: str) -> bool:
        if module in done:
            return True
        path = src / (module.replace(".", "/") + ".lean")
        if not path.is_file():
            return True  # not a module of this package: a dependency, taken as built
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("import ") and not build(line.split()[1]):
                return False
        olean = out / (module.replace(".", "/") + ".olean")
        olean.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [sys.executable, str(LEAN), "--json", "-R", str(src), "-o", str(olean), str(path)],
            capture_output=True,
            text=True,
            env=env,
        )
        print(f"✔ Built {module}" if proc.returncode == 0 else f"✖ Building {module}\n{proc.stdout}{proc.stderr}")
        done.add(module)
        return proc.returncode == 0

    ok = all(build(t) for t in (targets or ["Atlas"]))
    print("Build completed successfully." if ok else "error: build failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
