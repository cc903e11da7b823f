"""Keeps ``atlas/`` current while a job runs, without holding up its units."""

from __future__ import annotations

import threading
import time

from autoform.atlas import write_atlas
from autoform.config import Settings
from autoform.store import Store


class AtlasWriter:
    """Keeps ``atlas/`` up to date during a job without holding up the units: after an admission it rewrites
    the files from the store in a background thread, at most once per ``interval`` seconds (the files are
    derived from the store and written atomically; the job's end writes them once more, and the next job's
    start repairs them after a crash)."""

    def __init__(self, store: Store, settings: Settings, interval: float = 2.0) -> None:
        self.store, self.settings, self.interval = store, settings, interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._done = False
        self.error: BaseException | None = None
        self.writes = 0
        self._thread = threading.Thread(target=self._loop, name="atlas-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        last = 0.0
        while not self._done:
            self._wake.wait()
            if self._done:
                return
            self._stopping.wait(max(0.0, last + self.interval - time.monotonic()))
            self._wake.clear()
            if self._done:  # the job's end writes the files itself
                return
            try:
                write_atlas(self.store, self.settings)
                self.writes += 1
            except Exception as e:  # reported at the job's end; the store is intact
                self.error = e
            last = time.monotonic()

    def stop(self) -> None:
        self._done = True
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)
