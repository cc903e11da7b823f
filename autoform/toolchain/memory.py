"""Memory of Lean processes: defaults derived from what ``import Mathlib`` needs, and measurements.

What a process that imports Mathlib needs (the sources these defaults rest on):

* Address space (``RLIMIT_AS``, ``[lean] memory_mb``): Lean maps every imported ``.olean`` file into memory and
  reserves address space beyond what it touches, so the cap must hold the whole import, not only what is
  resident. The Kimina Lean Server, which runs the same REPL under ``RLIMIT_AS``, found that 8 GB no longer lets
  ``import Mathlib`` finish from Mathlib v4.26.0 on (the REPL dies and the client gets an empty reply), that 9 GB
  is the minimum, and made 12 GB its default (project-numina/kimina-lean-server issue #68, PR #69, commit
  fb2393d "default max_repl_mem to 12G" in ``server/settings.py``). lean-interact sets no cap unless asked
  (``LeanREPLConfig(memory_hard_limit_mb=None)``, its documented default). Hence 12 GB here; ``autoform doctor``
  reports the measured address space and the size of the imported ``.olean`` files next to the cap.
* Resident memory: a process importing the Mathlib umbrella peaks around 6.5 GB resident (6.57 GB measured in
  zcash/ironwood PR #144, 2026), so a restart threshold in absolute terms below that (the old 6 GB) retires a
  process after every check. The threshold is therefore relative: a process is restarted when it holds
  ``restart_growth_mb`` more than it did right after importing its header (its *baseline*, measured by the
  pool and shown by ``autoform doctor``), never for the memory the import itself needs.
* Pool size: each process costs its post-import memory plus the growth allowed, so the default pool holds as
  many processes as the machine's memory fits after a reserve, and no more than its cores.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pydantic import BaseModel

#: RLIMIT_AS of a Lean process that imports Mathlib (Kimina Lean Server's default since Lean/Mathlib v4.26.0)
ADDRESS_SPACE_MB = 12288
#: resident memory of a process right after ``import Mathlib`` (peak ~6.5 GB: zcash/ironwood PR #144)
IMPORT_MATHLIB_RSS_MB = 6656
#: growth above the post-import baseline after which a process is restarted
RESTART_GROWTH_MB = 2048
#: memory left to the system, Python and the LLM client when sizing the pool
RESERVE_MB = 2048


def machine_memory_mb() -> int:
    import psutil

    return int(psutil.virtual_memory().total / 2**20)


def default_pool_size(
    total_mb: int | None = None,
    cpus: int | None = None,
    per_process_mb: int = IMPORT_MATHLIB_RSS_MB + RESTART_GROWTH_MB,
) -> int:
    """REPL processes the machine's memory holds (after ``RESERVE_MB``), at most one per core, at least one."""
    total = machine_memory_mb() if total_mb is None else total_mb
    cores = (os.cpu_count() or 1) if cpus is None else cpus
    return max(1, min(cores, (total - RESERVE_MB) // per_process_mb))


class MemoryReport(BaseModel):
    """Memory of a process and its children (``lake env repl`` runs the REPL as a child of lake)."""

    rss_mb: float = 0.0
    #: private (unique) memory: what another process importing the same header would add (mapped .olean pages are
    #: shared between processes)
    uss_mb: float = 0.0
    #: the largest address space of one process of the tree (``RLIMIT_AS`` applies per process)
    vms_mb: float = 0.0


def process_memory(pid: int) -> MemoryReport:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return MemoryReport()
    rss = uss = vms = 0.0
    for p in procs:
        try:
            info = p.memory_full_info() if hasattr(p, "memory_full_info") else p.memory_info()
        except psutil.AccessDenied:
            info = p.memory_info()
        except psutil.Error:
            continue
        rss += info.rss
        uss += getattr(info, "uss", info.rss)
        vms = max(vms, float(info.vms))
    mb = float(2**20)
    return MemoryReport(rss_mb=rss / mb, uss_mb=uss / mb, vms_mb=vms / mb)


def olean_mb(project: Path) -> float:
    """Size of the ``.olean`` files of the project's packages (what ``import Mathlib`` maps), in MB."""
    total = 0
    for lib in (project / ".lake" / "packages").glob("*/.lake/build/lib"):
        for f in lib.rglob("*.olean"):
            with contextlib.suppress(OSError):
                total += f.stat().st_size
    return total / 2**20
