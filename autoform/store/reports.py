"""Read-only questions the outputs ask of the store: the site, the exports, transcripts, status and reports."""

from __future__ import annotations

from autoform.store.core import StoreCore


class ReportOps(StoreCore):
    """Read-only questions the outputs ask of the store: the site, the exports, transcripts, status and reports."""
