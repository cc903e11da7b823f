"""What can go wrong opening or writing the store, and the one-line messages that say what to do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from autoform.errors import MissingError, UsageError


class StoreError(UsageError):
    """The store cannot be opened or is from a newer autoform."""


class StoreDamaged(StoreError):
    """The store file failed SQLite's integrity check (or is not a database): nothing is written into it."""


class StoreReadOnly(StoreError):
    """A write was asked of a store opened read-only."""


class StoreUnwritable(StoreError):
    """A command that writes met a store (or workspace directory) it may not write: a read-only disk, or
    permissions."""

    exit_code = MissingError.exit_code


def unwritable_reason(path: Path) -> str | None:
    """Why ``path`` (a store file) cannot be written, if it cannot: its directory or itself read-only."""
    import errno
    import os

    for target in (path, path.parent):
        if target.exists() and not os.access(target, os.W_OK):
            try:  # EROFS (a read-only file system) or EACCES (permissions): the fix differs
                ro = bool(os.statvfs(target).f_flag & os.ST_RDONLY)
            except OSError:
                ro = False
            what = "is on a read-only file system" if ro else "is not writable (permissions)"
            return f"{target} {what} [{errno.errorcode[errno.EROFS if ro else errno.EACCES]}]"
    return None


#: the first 16 bytes of every SQLite 3 database file
SQLITE_MAGIC = b"SQLite format 3\x00"


def damaged_message(path: Path, detail: str) -> str:
    """One line naming the store, what is wrong and what to do."""
    detail = " ".join(str(detail).split())[:200]
    return (
        f"{path}: the store is damaged ({detail}); nothing was written to it. Restore the last backup with "
        f"`autoform restore FILE` (backups are made by `autoform backup`), or move {path.name} aside and "
        "ingest again."
    )


def _busy(e: BaseException) -> bool:
    return isinstance(e, sqlite3.OperationalError) and ("locked" in str(e) or "busy" in str(e))
