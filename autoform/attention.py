"""Attention-steered filtering: what an agent sees of the blackboard.

score(post) = relevance(post, goal) * exp(-a * rounds since posted) * exp(-b * hops between the post's unit
and the goal's unit in the dependency graph). Pinned posts always enter; the rest enter by score while the
token budget lasts (a budget per role); the top-scoring sentences are repeated in a "Key context" block
before the instruction. Relevance is lexical (BM25, no model) by default, or the cosine similarity of
embeddings from an OpenAI-compatible endpoint (``[attention] relevance = "embeddings"``).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from rank_bm25 import BM25Okapi

from autoform.config import AttentionConfig
from autoform.store import Post

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_']+|\d+|[^\sA-Za-z0-9]")


class _BM25(BM25Okapi):
    """BM25 with a positive idf, log(1 + (N - n + 0.5) / (n + 0.5)) (as Lucene): the Okapi idf is 0 for a word
    in half of the documents and negative above that, which breaks ranking on small boards."""

    def _calc_idf(self, nd: dict[str, int]) -> None:
        for word, freq in nd.items():
            self.idf[word] = math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5))


#: relevance(goal, texts) -> one non-negative score per text
Relevance = Callable[[str, list[str]], list[float]]


def bm25_relevance(goal: str, texts: list[str]) -> list[float]:
    if not texts:
        return []
    bm25 = _BM25([tokens(t) or ["_"] for t in texts])
    return [max(float(x), 0.0) for x in bm25.get_scores(tokens(goal) or ["_"])]


def tokens(text: str) -> list[str]:
    return list(_tokens(text))


@functools.lru_cache(maxsize=65536)
def _tokens(text: str) -> tuple[str, ...]:
    """Posts are read again at every prompt: their tokens are computed once."""
    return tuple(t.lower() for t in _WORD.findall(text) if len(t) > 1 or not t.isascii())


def approx_tokens(text: str) -> int:
    """A model-free token estimate (about 4 characters a token), enough to keep a budget."""
    return max(1, len(text) // 4)


@dataclass
class Scored:
    post: Post
    score: float
    relevance: float


@dataclass
class Context:
    posts: list[Post]
    key_sentences: list[str]
    dropped: list[int] = field(default_factory=list)
    scores: dict[int, float] = field(default_factory=dict)

    @property
    def post_ids(self) -> list[int]:
        return [p.id for p in self.posts]

    def render(self) -> str:
        parts = []
        for p in self.posts:
            where = f" unit {p.unit_id}" if p.unit_id else ""
            parts.append(f"[{p.kind} by {p.author}{where}, round {p.round}]\n{p.body.strip()}")
        return "\n\n".join(parts)

    def render_key(self) -> str:
        return "\n".join(f"- {s}" for s in self.key_sentences)


def select(posts: list[Post], goal: str, *, goal_unit: int | None, current_round: int,
           hops: dict[int, int], cfg: AttentionConfig, budget_tokens: int | None = None,
           pinned_ids: set[int] | None = None, relevance: Relevance | None = None) -> Context:
    budget = cfg.budget_tokens if budget_tokens is None else budget_tokens
    if not posts:
        return Context([], [])
    rel = [max(float(r), 0.0) for r in (relevance or bm25_relevance)(goal, [p.body for p in posts])]
    # relevance on a common scale (the best post is 1); the floor keeps a post with no word in common in the
    # ranking, by recency and distance, so a dependency is not lost for want of shared words
    top = max(rel) or 1.0
    floor = cfg.relevance_floor
    scored: list[Scored] = []
    for p, r in zip(posts, rel, strict=True):
        age = max(0, current_round - p.round)
        dist = hops.get(p.unit_id, cfg.unreachable_hops) if p.unit_id is not None and goal_unit is not None else 0
        s = (floor + (1 - floor) * r / top) * math.exp(-cfg.round_decay * age) * math.exp(-cfg.hop_decay * dist)
        scored.append(Scored(p, s, r))
    pinned_ids = pinned_ids or set()

    def is_pinned(p: Post) -> bool:
        # a post pinned by its kind (a locked statement) is pinned for its own unit, not for every prompt
        return p.id in pinned_ids or (p.pinned and (goal_unit is None or p.unit_id in (None, goal_unit)))

    pinned = [x for x in scored if is_pinned(x.post)]
    rest = sorted((x for x in scored if not is_pinned(x.post)), key=lambda x: (-x.score, -x.post.id))
    chosen, used, dropped = list(pinned), sum(approx_tokens(x.post.body) for x in pinned), []
    for x in rest:
        cost = approx_tokens(x.post.body)
        if used + cost <= budget:
            chosen.append(x)
            used += cost
        else:
            dropped.append(x.post.id)
    chosen.sort(key=lambda x: x.post.id)
    key = key_sentences(chosen, goal, cfg.key_sentences)
    return Context([x.post for x in chosen], key, dropped, {x.post.id: x.score for x in scored})


def key_sentences(chosen: list[Scored], goal: str, k: int) -> list[str]:
    sents: list[tuple[float, str]] = []
    for x in chosen:
        for s in re.split(r"(?<=[.!?])\s+|\n+", x.post.body):
            s = s.strip()
            if 12 <= len(s) <= 400:
                sents.append((x.score, s))
    if not sents:
        return []
    bm25 = _BM25([tokens(s) or ["_"] for _, s in sents])
    rel = bm25.get_scores(tokens(goal) or ["_"])
    ranked = sorted(zip(rel, sents, strict=True), key=lambda t: (-(max(t[0], 0) + 1e-3) * t[1][0]))
    out: list[str] = []
    for _, (_, s) in ranked:
        if s not in out:
            out.append(s)
        if len(out) >= k:
            break
    return out
