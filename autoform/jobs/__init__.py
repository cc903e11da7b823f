"""Batch formalization jobs. Units go through the per-unit pipeline (:mod:`autoform.pipeline`) as soon as their
dependencies are done, many in flight, on an executor (:mod:`autoform.executors`: threads here, or a Ray
cluster); all state is in the store, so a job is resumable.

The package, in the order data flows through it:

* :mod:`~autoform.jobs.model`: the job's parameters, its summary, and :class:`JobError`;
* :mod:`~autoform.jobs.plan`: the pure ready queue over the dependency graph (which units may start);
* :mod:`~autoform.jobs.budget`: what the job spent, against ``--budget-usd`` and ``--budget-tokens``;
* :mod:`~autoform.jobs.lifecycle`: the job's rows as it starts, resumes and ends (the resume rules);
* :mod:`~autoform.jobs.runner`: the job's loop (:class:`JobRunner`);
* :mod:`~autoform.jobs.monitor`, :mod:`~autoform.jobs.atlas_writer`: live counters, and ``atlas/`` kept
  current while the job runs;
* :mod:`~autoform.jobs.report`, :mod:`~autoform.jobs.live`: the summary and status read from the store, and the
  live view of ``autoform run``.
"""

from __future__ import annotations

from autoform.jobs.atlas_writer import AtlasWriter
from autoform.jobs.budget import Budget, Spend, job_cost
from autoform.jobs.lifecycle import start_or_resume
from autoform.jobs.live import render_live
from autoform.jobs.model import JobError, JobParams, JobSummary
from autoform.jobs.monitor import JobMonitor
from autoform.jobs.plan import ReadyQueue, dependency_plan
from autoform.jobs.report import job_status, job_summary, unit_counts
from autoform.jobs.runner import JobRunner
from autoform.store import ADMITTED, TERMINAL

__all__ = [
    "ADMITTED",
    "TERMINAL",
    "AtlasWriter",
    "Budget",
    "JobError",
    "JobMonitor",
    "JobParams",
    "JobRunner",
    "JobSummary",
    "ReadyQueue",
    "Spend",
    "dependency_plan",
    "job_cost",
    "job_status",
    "job_summary",
    "render_live",
    "start_or_resume",
    "unit_counts",
]
