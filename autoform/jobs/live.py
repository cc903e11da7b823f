"""The live view of ``autoform run``: a rich renderable drawn from a running job's monitor."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Protocol

from autoform.jobs.monitor import JobMonitor, Snapshot

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult


class LiveSource(Protocol):
    """What the live view reads of a running job (the :class:`~autoform.jobs.runner.JobRunner`)."""

    monitor: JobMonitor | None
    stop: threading.Event
    fatal: str | None
    stop_reason: str


def render_live(runner: LiveSource, title: str) -> RenderableType:
    """The live view of ``autoform run`` (a rich renderable that fits the terminal's width): a bar of units
    concluded, then admitted, stated, failed, in flight, attempts, cost, tokens, rate and ETA (the ones that fit,
    in that order of need), and the units in flight."""
    from rich.text import Text

    mon = runner.monitor
    if mon is None:
        return Text(f"{title}: starting...")
    return _LiveView(runner, title, mon.snapshot())


class _LiveView:
    """Laid out at render time, for the width rich gives it."""

    def __init__(self, runner: LiveSource, title: str, snap: Snapshot) -> None:
        self.runner, self.title, self.snap = runner, title, snap

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        from autoform.tables import fit_line

        snap, width = self.snap, options.max_width
        yield self._head(width)
        eta = "-" if snap["eta_s"] is None else time.strftime("%H:%M:%S", time.gmtime(snap["eta_s"]))
        yield fit_line(
            [
                (f"admitted {snap['admitted']}", "green"),
                (f"failed {snap['failed']}", "red"),
                (f"in flight {snap['in_flight']}", "yellow"),
                (f"${snap['cost_usd']:.4f}", ""),
                (f"ETA {eta}", ""),
                (f"stated {snap['stated']}", "cyan"),
                (f"attempts {snap['attempts']}", ""),
                (f"{snap['rate_per_min']:.1f} units/min", ""),
                (f"{snap['tokens']} tok", ""),
            ],
            width,
        )
        flying = snap["in_flight_units"]
        if flying:
            more = f" (+{len(flying) - 6} more)" if len(flying) > 6 else ""
            yield Text("working on: " + ", ".join(flying[:6]) + more, style="dim", overflow="ellipsis", no_wrap=True)
        if self.runner.stop.is_set():
            yield Text(f"stopping: {self.runner.fatal or self.runner.stop_reason}", style="yellow")

    def _head(self, width: int) -> RenderableType:
        """The title, a bar of units concluded, and their count."""
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        snap = self.snap
        count = f"{snap['done']}/{snap['total']}"
        head = Table.grid(padding=(0, 1))
        bar = max(5, min(40, width - len(self.title) - len(count) - 2))
        head.add_row(
            Text(self.title, style="bold", overflow="ellipsis", no_wrap=True),
            ProgressBar(total=max(1, snap["total"]), completed=snap["done"], width=bar),
            Text(count),
        )
        return head
