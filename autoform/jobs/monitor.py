"""Live counters of a running job, fed by the units' events, read by the live view and the tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TypedDict

from autoform.store import Unit, UnitStatus

#: the counter each concluding event (or status) adds to
COUNTED_AS: dict[str, str] = {
    UnitStatus.PROVED: "admitted",
    UnitStatus.DEFINED: "admitted",
    UnitStatus.STATED: "stated",
    UnitStatus.FAILED: "failed",
}


class Snapshot(TypedDict):
    """The counters at one moment (what the live view shows)."""

    admitted: int
    stated: int
    failed: int
    done: int
    total: int
    in_flight: int
    in_flight_units: list[str]
    attempts: int
    cost_usd: float
    tokens: int
    rate_per_min: float
    eta_s: float | None
    elapsed_s: float
    last: str


class JobMonitor:
    """Live counters of a running job for the progress view and tests (thread-safe; fed by events)."""

    def __init__(self, units: Mapping[int, Unit], total: int) -> None:
        self._lock = threading.Lock()
        self.total = total
        self.counts: dict[str, int] = {"admitted": 0, "stated": 0, "failed": 0}
        self._counted: dict[int, str] = {}  # the counter each concluded unit is in
        for u in units.values():
            key = COUNTED_AS.get(u.status)
            if key is not None:
                self.counts[key] += 1
                self._counted[u.id] = key
        self.in_flight: dict[int, tuple[str, float]] = {}
        self.concluded_now = 0
        self.t0 = time.monotonic()
        self.attempts = 0
        self.usd = 0.0
        self.tokens = 0
        self.last = ""

    def started(self, unit: Unit) -> None:
        with self._lock:
            self.in_flight[unit.id] = (unit.display, time.monotonic())

    def finished(self, unit_id: int) -> None:
        with self._lock:
            self.in_flight.pop(unit_id, None)

    def event(self, kind: str, unit: Unit, detail: str) -> None:
        key = COUNTED_AS.get(kind)
        with self._lock:
            if key is not None:
                self._uncount(unit.id)
                self.counts[key] += 1
                self._counted[unit.id] = key
                self.concluded_now += 1
            self.last = f"{unit.display}: {kind}"

    def reopened(self, unit: Unit) -> None:
        """A person re-opened the unit while the job runs: it is counted as concluded no more."""
        with self._lock:
            self._uncount(unit.id)
            self.last = f"{unit.display}: re-opened"

    def _uncount(self, unit_id: int) -> None:
        key = self._counted.pop(unit_id, None)
        if key is not None:
            self.counts[key] -= 1

    def snapshot(self) -> Snapshot:
        with self._lock:
            elapsed = time.monotonic() - self.t0
            done = sum(self.counts.values())
            rate = self.concluded_now / elapsed * 60 if elapsed > 0 else 0.0
            left = max(0, self.total - done)
            return Snapshot(
                admitted=self.counts["admitted"],
                stated=self.counts["stated"],
                failed=self.counts["failed"],
                done=done,
                total=self.total,
                in_flight=len(self.in_flight),
                in_flight_units=[name for name, _ in sorted(self.in_flight.values(), key=lambda x: x[1])],
                attempts=self.attempts,
                cost_usd=round(self.usd, 6),
                tokens=self.tokens,
                rate_per_min=round(rate, 2),
                eta_s=round(left / rate * 60, 1) if rate > 0 else None,
                elapsed_s=round(elapsed, 1),
                last=self.last,
            )
