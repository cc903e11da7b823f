"""The Lean result cache: no identical check runs twice.

Keyed by the cache format, the backend, the toolchain (``lean-toolchain`` and the pinned dependencies of
``lake-manifest.json``), the import header, the exact Lean text and the gate's queries. Only answers are
cached: a timeout or a crash is not a property of the text and is tried again. Every check is counted per job
(``lean_checks``), so ``autoform status`` reports the hit rate.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

from autoform.config import Settings
from autoform.lean.oracle import LeanCheck, Oracle, OracleWrapper
from autoform.store import Store

#: bumped when what a stored answer means changes (v2: severities normalised, queries answered separately), so
#: answers stored by an older autoform are not reused
CACHE_FORMAT = "v2"


def toolchain_id(settings: Settings) -> str:
    h = hashlib.sha256()
    for name in ("lean-toolchain", "lake-manifest.json"):
        p = settings.lean_project / name
        if p.is_file():
            h.update(name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:24]


class CachedOracle(OracleWrapper):
    """The backend's checks through the result cache of the store (keyed by toolchain, header and text)."""

    def __init__(self, inner: Oracle, store: Store, settings: Settings, *, job_id: int | None = None) -> None:
        super().__init__(inner)
        self.store, self.settings = store, settings
        self.job_id = job_id
        self.enabled = settings.lean.cache
        self._toolchain = toolchain_id(settings)

    def key(self, code: str, header: str, queries: Sequence[str] = ()) -> str:
        payload = "\0".join((CACHE_FORMAT, self.inner.backend, self._toolchain, header, code, *queries)).encode()
        return hashlib.sha256(payload).hexdigest()

    def check(
        self,
        code: str,
        *,
        header: str | None = None,
        timeout_s: float | None = None,
        context_lines: int = 0,
        queries: Sequence[str] = (),
    ) -> LeanCheck:
        header = self.settings.lean.header if header is None else header
        key = self.key(code, header, queries)
        t0 = time.monotonic()
        if self.enabled:
            stored = self.store.lean_cache_get(key)
            if stored is not None:
                result = LeanCheck.model_validate_json(stored)
                with self.store.tx():
                    self.store.lean_cache_hit(key)
                    self.store.record_lean_check(
                        self.job_id, cached=True, failed=False, elapsed_s=time.monotonic() - t0
                    )
                return result
        hint: dict[str, Any] = {"context_lines": context_lines} if context_lines else {}  # may not be taken
        if queries:
            hint["queries"] = list(queries)
        result = self.inner.check(code, header=header, timeout_s=timeout_s, **hint)
        failed = result.failure is not None
        with self.store.tx():
            if self.enabled and not failed:
                self.store.lean_cache_put(key, self._toolchain, result.model_dump_json())
            self.store.record_lean_check(self.job_id, cached=False, failed=failed, elapsed_s=result.elapsed_s)
        return result


def hit_rate(store: Store, job_id: int | None = None) -> dict[str, float]:
    n, hits, failed = store.lean_check_counts(job_id)
    return {"checks": n, "cache_hits": hits, "hit_rate": round(hits / n, 4) if n else 0.0, "failures": failed}
