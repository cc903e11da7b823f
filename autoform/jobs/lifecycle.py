"""A job's rows in the store as it starts, resumes and ends, and whether the process that runs a job is alive.

Resume rules. A job that did not finish (``running`` after a crash, or ``interrupted``) is continued by the next
``autoform run`` of the same book, with the new parameters. Units left mid-work become pending again; a new
job retries the units earlier jobs failed. A job stopped because Lean answered nothing ends ``failed``: the
next run starts a fresh job, and the units that Lean's silence failed are pending, not failed.
"""

from __future__ import annotations

import os

from autoform.jobs.model import JobError, JobParams
from autoform.store import Book, Job, JobStatus, Store


def start_or_resume(store: Store, book: Book, params: JobParams) -> tuple[Job, bool]:
    """The unfinished job of this book, continued (with the new parameters); else a new one. Units left
    mid-work become pending; a new job retries the units earlier jobs failed."""
    pid = os.getpid()
    with store.tx():
        job = store.unfinished_job(book.id)
        if job is not None and job.status == JobStatus.RUNNING and job.pid != pid and job_process_alive(job.pid):
            raise JobError(
                f"job {job.id} of {book.slug} is already running (pid {job.pid}); stop it first "
                f"(Ctrl-C, or kill -INT {job.pid}), or wait for it to end"
            )
        if job is not None:
            job_id, resumed = job.id, True
            store.resume_job(job_id, params.model_dump_json(), pid)
        else:
            job_id, resumed = store.start_job(book.id, params.model_dump_json(), pid), False
            store.reopen_failed(book.id)
        store.reset_working(book.id)
    return store.job(job_id), resumed


def close_job(store: Store, book: Book, job: Job, status: JobStatus, message: str) -> None:
    """Record how the job ended, in one transaction: units left mid-work are pending again, and if Lean never
    answered (``failed``), so are the units it failed."""
    with store.tx():
        store.reset_working(book.id)
        if status == JobStatus.FAILED:
            store.reopen_lean_failures(book.id, job.id)
        store.finish_job(job.id, status, message)


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def job_process_alive(pid: int | None) -> bool:
    """Is ``pid`` a live autoform process (not a process that reused the pid of a killed job)?"""
    if not _pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return True  # no /proc: trust the pid
    return b"autoform" in cmdline
