"""The blackboard: typed posts in the store that every agent reads (through the attention filter) and writes."""

from __future__ import annotations

from typing import Any, Literal

from autoform.store import Post, Store

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
]

PINNED_KINDS = frozenset({"lock"})


class Blackboard:
    def __init__(self, store: Store, book_id: int, job_id: int | None = None) -> None:
        self.store = store
        self.book_id = book_id
        self.job_id = job_id

    def post(self, author: str, kind: PostKind, body: str, *, unit_id: int | None, round: int = 0,
             data: dict[str, Any] | None = None, refs: list[int] | None = None, pinned: bool | None = None) -> int:
        return self.store.add_post(
            book_id=self.book_id, unit_id=unit_id, job_id=self.job_id, round=round, author=author, kind=kind,
            body=body, data=data, refs=refs, pinned=kind in PINNED_KINDS if pinned is None else pinned,
        )

    def read(self, *, unit_id: int | None = None, kind: PostKind | None = None) -> list[Post]:
        return self.store.posts(self.book_id, unit_id=unit_id, kind=kind)

    def latest(self, unit_id: int, kind: PostKind) -> Post | None:
        posts = self.read(unit_id=unit_id, kind=kind)
        return posts[-1] if posts else None

    def all(self) -> list[Post]:
        return self.store.posts(self.book_id)
