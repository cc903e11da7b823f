"""The store: one SQLite database per workspace that holds everything autoform knows about its books.

:class:`Store` is composed of the connection (:mod:`~autoform.store.core`) and one mixin of named operations per
subject; every SQL statement against the store is in this package.
"""

from __future__ import annotations

from pathlib import Path

from autoform.store.board import BoardOps
from autoform.store.books import BookOps
from autoform.store.errors import (
    SQLITE_MAGIC,
    StoreDamaged,
    StoreError,
    StoreReadOnly,
    StoreUnwritable,
    damaged_message,
    unwritable_reason,
)
from autoform.store.jobs import JobOps
from autoform.store.models import (
    ADMITTED,
    TERMINAL,
    AtlasEntry,
    Attempt,
    Book,
    Job,
    JobStatus,
    Post,
    Unit,
    UnitContent,
    UnitStatus,
)
from autoform.store.proving import ProvingOps
from autoform.store.reports import ReportOps
from autoform.store.review import ReviewOps
from autoform.store.schema import MIGRATIONS, SCHEMA_VERSION
from autoform.store.usage import UsageOps

__all__ = [
    "ADMITTED",
    "TERMINAL",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SQLITE_MAGIC",
    "AtlasEntry",
    "Attempt",
    "Book",
    "Job",
    "JobStatus",
    "Post",
    "Store",
    "StoreDamaged",
    "StoreError",
    "StoreReadOnly",
    "StoreUnwritable",
    "Unit",
    "UnitContent",
    "UnitStatus",
    "damaged_message",
    "open_store",
    "unwritable_reason",
]


class Store(BookOps, BoardOps, ProvingOps, JobOps, UsageOps, ReportOps, ReviewOps):
    """The workspace's store: thread-safe, checked on open, every write a transaction (see
    :class:`~autoform.store.core.StoreCore`), with the named operations of every subject."""


def open_store(path: Path) -> Store:
    return Store(path)
