"""What the work cost: LLM calls, their tokens and cache hits, Lean checks, embeddings and Atlas builds.

Also the two caches the costly calls are answered from: the LLM replies (``llm_calls``, by the request's cache
key) and Lean's answers (``lean_cache``, by the check's key), with the count of every Lean check
(``lean_checks``) for the hit rate.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple

from autoform.store.core import StoreCore

#: the columns LLM usage can be grouped by
UsageKey = Literal["role", "unit_id", "job_id"]
USAGE_KEYS: tuple[UsageKey, ...] = ("role", "unit_id", "job_id")


class UsageRow(NamedTuple):
    """LLM calls of one group and model: calls, cache hits, and the tokens paid for (cached replies are free)."""

    key: str
    model: str
    calls: int
    cached: int
    prompt_tokens: int
    completion_tokens: int


class LeanCheckCounts(NamedTuple):
    checks: int
    cache_hits: int
    failures: int


class UsageOps(StoreCore):
    """What the work cost: LLM calls, their tokens and cache hits, Lean checks, embeddings and Atlas builds."""

    # -- LLM calls -----------------------------------------------------------------------------------------
    def llm_usage(self, book_id: int | None = None) -> dict[str, int]:
        sql = (
            "SELECT COUNT(*), SUM(cached), COALESCE(SUM(prompt_tokens),0), COALESCE(SUM(completion_tokens),0)"
            " FROM llm_calls c"
        )
        params: tuple = ()
        if book_id is not None:
            sql += " JOIN jobs j ON j.id = c.job_id WHERE j.book_id = ?"
            params = (book_id,)
        n, cached, pt, ct = self.query(sql, params)[0]
        return {"calls": n or 0, "cached": cached or 0, "prompt_tokens": pt, "completion_tokens": ct}

    def record_llm_call(
        self,
        *,
        cache_key: str,
        job_id: int | None,
        unit_id: int | None,
        role: str,
        model: str,
        request: str,
        response: str,
        prompt_tokens: int,
        completion_tokens: int,
        cached: bool,
        posts_used: Sequence[int],
        elapsed_s: float,
    ) -> int:
        """Record one LLM call (``request`` is the request as JSON); its id."""
        with self.tx() as c:
            cur = c.execute(
                "INSERT INTO llm_calls (cache_key, job_id, unit_id, role, model, request, response, prompt_tokens,"
                " completion_tokens, cached, posts_used, elapsed_s, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    cache_key,
                    job_id,
                    unit_id,
                    role,
                    model,
                    request,
                    response,
                    prompt_tokens,
                    completion_tokens,
                    int(cached),
                    json.dumps(list(posts_used)),
                    elapsed_s,
                    time.time(),
                ),
            )
            return int(cur.lastrowid or 0)

    def cached_response(self, cache_key: str) -> tuple[str, str] | None:
        """(response, model) of the first call paid for with this cache key, or None."""
        rows = self.query(
            "SELECT response, model FROM llm_calls WHERE cache_key = ? AND cached = 0 ORDER BY id LIMIT 1",
            (cache_key,),
        )
        return (rows[0]["response"], rows[0]["model"]) if rows else None

    def usage_by(self, by: UsageKey, job_id: int | None = None) -> list[UsageRow]:
        """LLM calls grouped by ``by`` and model (of one job, or all), tokens counted only when paid for."""
        if by not in USAGE_KEYS:
            raise ValueError(by)
        sql = (
            f"SELECT {by}, model, COUNT(*), SUM(cached), SUM(CASE WHEN cached = 0 THEN prompt_tokens ELSE 0 END),"
            f" SUM(CASE WHEN cached = 0 THEN completion_tokens ELSE 0 END) FROM llm_calls"
        )
        params: tuple = ()
        if job_id is not None:
            sql += " WHERE job_id = ?"
            params = (job_id,)
        return [
            UsageRow(str(key), model, n, cached or 0, pt or 0, ct or 0)
            for key, model, n, cached, pt, ct in self.query(sql + f" GROUP BY {by}, model", params)
        ]

    # -- embeddings ----------------------------------------------------------------------------------------
    def embeddings(self, keys: Sequence[str]) -> dict[str, list[float]]:
        """The stored vectors of these keys (those stored; the others are absent from the answer)."""
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        rows = self.query(f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", tuple(keys))
        return {row[0]: json.loads(row[1]) for row in rows}

    def store_embeddings(self, model: str, vectors: Mapping[str, Sequence[float]]) -> None:
        """Store vectors by key (a key already stored keeps its vector)."""
        with self.tx() as c:
            c.executemany(
                "INSERT OR IGNORE INTO embeddings (key, model, vector) VALUES (?,?,?)",
                [(k, model, json.dumps(list(v))) for k, v in vectors.items()],
            )

    # -- Lean checks and their cache -----------------------------------------------------------------------
    def lean_cache_get(self, key: str) -> str | None:
        """The stored answer (a ``LeanCheck`` as JSON) of the check with this key, or None."""
        rows = self.query("SELECT result FROM lean_cache WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def lean_cache_hit(self, key: str) -> None:
        """Count one more answer served from the cache entry."""
        with self.tx() as c:
            c.execute("UPDATE lean_cache SET hits = hits + 1 WHERE key = ?", (key,))

    def lean_cache_put(self, key: str, toolchain: str, result: str) -> None:
        """Store an answer (JSON) under its key (an answer already stored is kept)."""
        with self.tx() as c:
            c.execute(
                "INSERT OR IGNORE INTO lean_cache (key, toolchain, result, created_at) VALUES (?,?,?,?)",
                (key, toolchain, result, time.time()),
            )

    def record_lean_check(self, job_id: int | None, *, cached: bool, failed: bool, elapsed_s: float) -> None:
        """Count one Lean check of the job (for ``autoform status``'s hit rate)."""
        with self.tx() as c:
            c.execute(
                "INSERT INTO lean_checks (job_id, cached, failed, elapsed_s, created_at) VALUES (?,?,?,?,?)",
                (job_id, int(cached), int(failed), elapsed_s, time.time()),
            )

    def lean_check_counts(self, job_id: int | None = None) -> LeanCheckCounts:
        """Lean checks, cache hits and failures (of one job, or all)."""
        sql = "SELECT COUNT(*), COALESCE(SUM(cached), 0), COALESCE(SUM(failed), 0) FROM lean_checks"
        rows = self.query(sql) if job_id is None else self.query(sql + " WHERE job_id = ?", (job_id,))
        n, hits, failed = rows[0]
        return LeanCheckCounts(n, hits, failed)
