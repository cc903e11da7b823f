"""What a job is given and what it gives back: its parameters, its summary, and the error that stops it before
it starts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from autoform.errors import UsageError


class JobError(UsageError):
    """The job cannot start or continue (unknown book, bad parameters); the message says why."""


class JobParams(BaseModel):
    max_attempts: int = Field(ge=1)
    jobs: int = Field(ge=1)
    budget_usd: float | None = Field(default=None, gt=0)
    budget_tokens: int | None = Field(default=None, gt=0)
    unit_tokens: int | None = Field(default=None, gt=0)
    executor: Literal["local", "ray"] = "local"
    address: str | None = None
    ray_workers: int | None = Field(default=None, ge=1)


class JobSummary(BaseModel):
    """What a run of a job did (the end of ``autoform run``, ``--json``)."""

    model_config = ConfigDict(frozen=True)

    job_id: int
    book: str
    resumed: bool
    status: str
    units: dict[str, int]
    admitted_this_job: int
    attempts: int
    llm_calls: int
    llm_cached: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float = 0.0
    elapsed_s: float
    stop_reason: str = ""  # "" | "sigint" | "budget" | "llm" | "lean" | "store" | "worker"
    message: str = ""
