"""Jobs: their rows, parameters and outcome."""

from __future__ import annotations

from autoform.store.core import StoreCore
from autoform.store.models import Job, _row


class JobOps(StoreCore):
    """Jobs: their rows, parameters and outcome."""

    def job(self, job_id: int) -> Job:
        return _row(Job, self.query("SELECT * FROM jobs WHERE id = ?", (job_id,))[0])

    def jobs(self, book_id: int | None = None) -> list[Job]:
        if book_id is None:
            return [_row(Job, r) for r in self.query("SELECT * FROM jobs ORDER BY id")]
        return [_row(Job, r) for r in self.query("SELECT * FROM jobs WHERE book_id = ? ORDER BY id", (book_id,))]
