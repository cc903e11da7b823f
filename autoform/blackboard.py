"""The blackboard: typed posts in the store that every agent reads (through the attention filter) and writes.

The store holds the posts; the board keeps a read cache of them, indexed by unit, refreshed incrementally
(``SELECT ... WHERE id > last``): post ids are given in commit order (SQLite has one writer at a time), so a
reader that remembers the last id it saw misses no post, whichever thread, process or Ray node wrote it. An
agent's prompt then costs one small query and no re-parse of the whole board, which is what keeps a job of
thousands of units linear rather than quadratic.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from autoform.store import Post, Store


def approx_tokens(text: str) -> int:
    """A model-free token estimate (about 4 characters a token), enough to keep a budget."""
    return max(1, len(text) // 4)


PostKind = Literal[
    "extraction",  # reader: normalized statement, concepts, conventions
    "draft",  # drafter: a candidate Lean statement
    "lock",  # the locked Lean statement and its elaborated type (pinned)
    "proof",  # prover / gap-closer: a candidate proof
    "verdict",  # the gate's verdict on a candidate, with Lean's messages
    "critique",  # an LLM critique (fidelity, style): steers, never admits
    "hint",
    "lemma_request",
    "admission",  # a unit entered the Atlas
    "retrieval",  # declarations the Mathlib index retrieved for the unit (notions, lemmas, nearest names)
    "subgoal",  # a hole of a proof sketch: its goal, parent, depth, status (autoform/pipeline/decompose.py)
]

PINNED_KINDS = frozenset({"lock"})


class Blackboard:
    """Thread-safe: one board serves every worker thread of a job."""

    def __init__(self, store: Store, book_id: int, job_id: int | None = None) -> None:
        self.store = store
        self.book_id = book_id
        self.job_id = job_id
        self._lock = threading.Lock()
        self._last_id = 0
        self._posts: list[Post] = []
        self._by_unit: dict[int | None, list[Post]] = {}

    def post(
        self,
        author: str,
        kind: PostKind,
        body: str,
        *,
        unit_id: int | None,
        round: int = 0,
        data: dict[str, Any] | None = None,
        refs: list[int] | None = None,
        pinned: bool | None = None,
    ) -> int:
        return self.store.add_post(
            book_id=self.book_id,
            unit_id=unit_id,
            job_id=self.job_id,
            round=round,
            author=author,
            kind=kind,
            body=body,
            data=data,
            refs=refs,
            pinned=kind in PINNED_KINDS if pinned is None else pinned,
        )

    def _refresh(self) -> bool:
        """Bring the cache up to date; False inside an open transaction of this thread, whose own uncommitted
        posts must not enter the cache (the transaction may still roll back): the caller reads the store."""
        if self.store.in_transaction():
            return False
        new = self.store.posts_since(self.book_id, self._last_id)  # outside the lock: threads read at once
        with self._lock:
            for p in new:
                if p.id > self._last_id:  # another thread may have merged some of them already
                    self._posts.append(p)
                    self._by_unit.setdefault(p.unit_id, []).append(p)
                    self._last_id = p.id
        return True

    def reload(self, unit_ids: Iterable[int]) -> None:
        """Read these units' cached posts again from the store: a person re-opened them meanwhile, which changes
        posts in place (a lock becomes ``lock_superseded``); posts are never deleted, so only their rows change."""
        with self._lock:
            fresh: dict[int, Post] = {}
            for uid in set(unit_ids):
                posts = [p for p in self.store.posts(self.book_id, unit_id=uid) if p.id <= self._last_id]
                self._by_unit[uid] = posts
                fresh.update((p.id, p) for p in posts)
            self._posts = [fresh.get(p.id, p) for p in self._posts]

    def read(self, *, unit_id: int | None = None, kind: PostKind | None = None) -> list[Post]:
        if not self._refresh():
            return self.store.posts(self.book_id, unit_id=unit_id, kind=kind)
        with self._lock:
            posts = self._posts if unit_id is None else self._by_unit.get(unit_id, [])
            return [p for p in posts if kind is None or p.kind == kind]

    def latest(self, unit_id: int, kind: PostKind) -> Post | None:
        posts = self.read(unit_id=unit_id, kind=kind)
        return posts[-1] if posts else None

    def all(self) -> list[Post]:
        return self.read()

    def nearby(
        self,
        unit_id: int | None,
        hops: dict[int, int],
        kinds: Iterable[str],
        *,
        max_hops: int,
        recent: int,
        limit: int,
        fill_tokens: int = 0,
    ) -> list[Post]:
        """The posts an agent working on ``unit_id`` may be shown, in id order: those of the unit, of units
        within ``max_hops`` of it in the dependency graph (nearest first), of no unit, and the ``recent`` latest
        of any other unit; at most ``limit`` in all (the unit's own and the nearest units' first). While these
        hold fewer than ``fill_tokens`` tokens (a small board, or short posts), older posts are added, latest
        first (still at most ``limit``), so that the attention filter drops a post for want of budget, not for
        want of candidates."""
        wanted = frozenset(kinds)
        if not self._refresh():
            return [p for p in self.store.posts(self.book_id) if p.kind in wanted][-limit:]
        with self._lock:
            chosen = self._own_and_near(unit_id, hops, wanted, max_hops=max_hops, limit=limit)
            for taken, p in enumerate(self._older(chosen, wanted)):  # the latest posts of any unit
                if taken >= recent or len(chosen) >= limit:
                    break
                chosen[p.id] = p
            if fill_tokens:
                self._fill(chosen, wanted, tokens=fill_tokens, limit=limit)
        return [chosen[i] for i in sorted(chosen)]

    def _own_and_near(
        self, unit_id: int | None, hops: dict[int, int], kinds: frozenset[str], *, max_hops: int, limit: int
    ) -> dict[int, Post]:
        """The unit's own posts, then those of the units within ``max_hops`` (nearest first), then those of no
        unit, the latest of each first, at most ``limit`` (the unit's own pinned posts whatever the limit);
        called with the lock held."""
        near = sorted((d, u) for u, d in hops.items() if d <= max_hops and u != unit_id)
        own = self._by_unit.get(unit_id, [])
        groups = [own, *(self._by_unit.get(u, []) for _, u in near), self._by_unit.get(None, [])]
        chosen = {p.id: p for p in own if p.kind in PINNED_KINDS and p.kind in kinds}  # its lock enters always
        for group in groups:
            for p in reversed(group):  # the latest of a unit first, when the limit cuts a unit short
                if len(chosen) >= limit:
                    break
                if p.kind in kinds:
                    chosen[p.id] = p
        return chosen

    def _fill(self, chosen: dict[int, Post], kinds: frozenset[str], *, tokens: int, limit: int) -> None:
        """Older posts added to ``chosen``, latest first, while it holds fewer than ``tokens`` tokens and fewer
        than ``limit`` posts; called with the lock held."""
        have = sum(approx_tokens(p.body) for p in chosen.values())
        for p in self._older(chosen, kinds):
            if have >= tokens or len(chosen) >= limit:
                break
            chosen[p.id] = p
            have += approx_tokens(p.body)

    def _older(self, chosen: dict[int, Post], kinds: frozenset[str]) -> Iterator[Post]:
        """The board's posts of ``kinds`` not yet chosen, latest first (checked as the caller adds to
        ``chosen``); called with the lock held."""
        return (p for p in reversed(self._posts) if p.kind in kinds and p.id not in chosen)
