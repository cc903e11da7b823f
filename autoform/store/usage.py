"""What the work cost: LLM calls, their tokens and cache hits, Lean checks, embeddings and Atlas builds."""

from __future__ import annotations

from autoform.store.core import StoreCore


class UsageOps(StoreCore):
    """What the work cost: LLM calls, their tokens and cache hits, Lean checks, embeddings and Atlas builds."""

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
