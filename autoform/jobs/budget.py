"""The budget of a job: what the job (all its runs) spent, read incrementally from the store, against the limits
``--budget-usd`` and ``--budget-tokens``. Reaching one stops new work; the job ends ``interrupted`` and is
resumable with a larger budget. (The per-unit cap ``--unit-tokens`` is the executors' :class:`CappedLLM`.)"""

from __future__ import annotations

from autoform.config import Settings
from autoform.jobs.model import JobParams
from autoform.llm import price
from autoform.store import Store


class Spend:
    """The job's LLM spending and attempts (all its runs), read incrementally from ``llm_calls`` and
    ``attempts`` (rows after the last seen id), so a check costs O(new rows)."""

    def __init__(self, store: Store, settings: Settings, job_id: int) -> None:
        self.store, self.prices, self.job_id = store, settings.llm.prices, job_id
        self.last_id = 0
        self.last_attempt = 0
        self.usd = 0.0
        self.tokens = 0
        self.calls = 0
        self.attempts = 0

    def refresh(self) -> None:
        n, last = self.store.job_attempts_since(self.job_id, self.last_attempt)
        if n:
            self.attempts += n
            self.last_attempt = last
        for call in self.store.job_llm_calls_since(self.job_id, self.last_id):
            self.last_id = max(self.last_id, call.id)
            self.calls += 1
            if call.cached:
                continue
            self.tokens += call.prompt_tokens + call.completion_tokens
            rate = self.prices.get(call.model)
            if rate:
                self.usd += call.prompt_tokens / 1e6 * rate[0] + call.completion_tokens / 1e6 * rate[1]


class Budget:
    """The job's limits (``params``) against its spending: :meth:`check` says why the job must stop, if it must."""

    def __init__(self, spend: Spend, params: JobParams) -> None:
        self.spend, self.params = spend, params

    def check(self) -> str | None:
        """Refresh the spending (O(calls since the last check)); the reason to stop when a limit is reached."""
        self.spend.refresh()
        p, s = self.params, self.spend
        if p.budget_usd is not None and s.usd >= p.budget_usd:
            return (
                f"budget reached: {s.usd:.4f} USD spent of {p.budget_usd} USD "
                "(--budget-usd); run again with a larger budget to continue"
            )
        if p.budget_tokens is not None and s.tokens >= p.budget_tokens:
            return (
                f"budget reached: {s.tokens} tokens used of {p.budget_tokens} "
                "(--budget-tokens); run again with a larger budget to continue"
            )
        return None


def job_cost(store: Store, settings: Settings, job_id: int) -> float:
    """USD the job's uncached LLM calls cost, at ``[llm] prices``."""
    return sum(price(settings, model, pt, ct) for model, pt, ct in store.job_tokens_by_model(job_id))
