"""A stand-in Lean REPL whose memory behaves like the real one's (tests of the pool's memory rules).

The real REPL imports the header once (``import Mathlib``: gigabytes resident, autoform/toolchain/memory.py) and then
keeps every environment it makes, so it grows a little with each command. This program speaks the REPL's
protocol (a JSON command, a blank line; a JSON reply, a blank line) and holds real, touched memory:
``MEMORY_REPL_IMPORT_MB`` on a command with ``import`` lines, ``MEMORY_REPL_CHECK_MB`` on each other command.
Every command gets a fresh environment id; nothing is elaborated.
"""

from __future__ import annotations

import json
import os
import sys

PAGE = 4096
held: list[bytearray] = []


def hold(mb: float) -> None:
    block = bytearray(int(mb * 2**20))
    for i in range(0, len(block), PAGE):  # touch every page: resident, not only reserved
        block[i] = 1
    held.append(block)


def main() -> int:
    import_mb = float(os.environ.get("MEMORY_REPL_IMPORT_MB", "0"))
    check_mb = float(os.environ.get("MEMORY_REPL_CHECK_MB", "0"))
    env = 0
    buf: list[str] = []
    for line in sys.stdin:
        if line.strip():
            buf.append(line)
            continue
        if not buf:
            continue
        cmd = json.loads("".join(buf))
        buf = []
        text = cmd.get("cmd", "")
        hold(import_mb if any(ln.startswith("import ") for ln in text.splitlines()) else check_mb)
        sys.stdout.write(json.dumps({"env": env}) + "\n\n")
        sys.stdout.flush()
        env += 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(1)
