"""The blackboard's posts: written by agents and people, read through the attention filter."""

from __future__ import annotations

import json
import time
from typing import Any

from autoform.store.core import StoreCore
from autoform.store.models import Post, _row


class BoardOps(StoreCore):
    """The blackboard's posts: written by agents and people, read through the attention filter."""

    def add_post(
        self,
        *,
        book_id: int,
        author: str,
        kind: str,
        body: str,
        unit_id: int | None = None,
        job_id: int | None = None,
        round: int = 0,
        data: dict[str, Any] | None = None,
        refs: list[int] | None = None,
        pinned: bool = False,
    ) -> int:
        with self.tx() as c:
            cur = c.execute(
                "INSERT INTO posts (book_id, unit_id, job_id, round, author, kind, body, data, refs, pinned,"
                " created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    book_id,
                    unit_id,
                    job_id,
                    round,
                    author,
                    kind,
                    body,
                    json.dumps(data or {}),
                    json.dumps(refs or []),
                    int(pinned),
                    time.time(),
                ),
            )
            return int(cur.lastrowid or 0)

    def posts(self, book_id: int, *, unit_id: int | None = None, kind: str | None = None) -> list[Post]:
        sql, params = "SELECT * FROM posts WHERE book_id = ?", [book_id]
        if unit_id is not None:
            sql += " AND unit_id = ?"
            params.append(unit_id)
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        return [_row(Post, r) for r in self.query(sql + " ORDER BY id", tuple(params))]

    def posts_since(self, book_id: int, after_id: int) -> list[Post]:
        """The book's posts with an id above ``after_id``, in id order (ids are given in commit order: SQLite
        has one writer at a time, so a reader that remembers its last id misses nothing)."""
        rows = self.query("SELECT * FROM posts WHERE book_id = ? AND id > ? ORDER BY id", (book_id, after_id))
        return [_row(Post, r) for r in rows]
