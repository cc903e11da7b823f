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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from autoform.blackboard import approx_tokens
from autoform.config import AttentionConfig
from autoform.store import Post

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_']+|\d+|[^\sA-Za-z0-9]")


#: relevance(goal, texts) -> one non-negative score per text
Relevance = Callable[[str, list[str]], list[float]]

BM25_K1, BM25_B = 1.5, 0.75


def bm25_relevance(goal: str, texts: list[str]) -> list[float]:
    """Okapi BM25 (k1 = 1.5, b = 0.75) of ``goal`` against ``texts``, with the positive idf
    log(1 + (N - n + 0.5) / (n + 0.5)) of Lucene (the Okapi idf is 0 for a word in half of the texts and
    negative above that, which breaks ranking on small boards).

    Written here rather than taken from rank-bm25, which indexes the whole corpus again at every call: a
    prompt ranks a few hundred posts that are the same from one prompt to the next, so each text's term
    counts are computed once (cached) and a call costs one pass per distinct goal word."""
    if not texts:
        return []
    docs = [_term_counts(t) for t in texts]
    n = len(docs)
    avgdl = sum(length for _, length in docs) / n
    norm = [BM25_K1 * (1 - BM25_B + BM25_B * length / avgdl) for _, length in docs]
    scores = [0.0] * n
    for word, times in Counter(tokens(goal) or ["_"]).items():
        tf = [counts.get(word, 0) for counts, _ in docs]
        df = n - tf.count(0)
        if not df:
            continue
        idf = times * math.log(1 + (n - df + 0.5) / (df + 0.5))
        for i, f in enumerate(tf):
            if f:
                scores[i] += idf * f * (BM25_K1 + 1) / (f + norm[i])
    return scores


@functools.lru_cache(maxsize=65536)
def _term_counts(text: str) -> tuple[dict[str, int], int]:
    words = _tokens(text) or ("_",)
    return Counter(words), len(words)


def tokens(text: str) -> list[str]:
    return list(_tokens(text))


@functools.lru_cache(maxsize=65536)
def _tokens(text: str) -> tuple[str, ...]:
    """Posts are read again at every prompt: their tokens are computed once."""
    return tuple(t.lower() for t in _WORD.findall(text) if len(t) > 1 or not t.isascii())


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


def select(
    posts: list[Post],
    goal: str,
    *,
    goal_unit: int | None,
    current_round: int,
    hops: dict[int, int],
    cfg: AttentionConfig,
    budget_tokens: int | None = None,
    pinned_ids: set[int] | None = None,
    relevance: Relevance | None = None,
) -> Context:
    budget = cfg.budget_tokens if budget_tokens is None else budget_tokens
    if not posts:
        return Context([], [])
    rel = [max(float(r), 0.0) for r in (relevance or bm25_relevance)(goal, [p.body for p in posts])]
    scored = _scored(posts, rel, goal_unit=goal_unit, current_round=current_round, hops=hops, cfg=cfg)
    pinned_ids = pinned_ids or set()

    def is_pinned(p: Post) -> bool:
        # a post pinned by its kind (a locked statement) is pinned for its own unit, not for every prompt
        return p.id in pinned_ids or (p.pinned and (goal_unit is None or p.unit_id in (None, goal_unit)))

    pinned = [x for x in scored if is_pinned(x.post)]
    rest = sorted((x for x in scored if not is_pinned(x.post)), key=lambda x: (-x.score, -x.post.id))
    chosen, dropped = _within_budget(pinned, rest, budget)
    key = key_sentences(chosen, goal, cfg.key_sentences)
    return Context([x.post for x in chosen], key, dropped, {x.post.id: x.score for x in scored})


def _scored(
    posts: list[Post],
    rel: list[float],
    *,
    goal_unit: int | None,
    current_round: int,
    hops: dict[int, int],
    cfg: AttentionConfig,
) -> list[Scored]:
    """Each post's score: relevance x round decay x hop decay."""
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
    return scored


def _within_budget(pinned: list[Scored], rest: list[Scored], budget: int) -> tuple[list[Scored], list[int]]:
    """(the pinned posts and, best first, the others while the token budget lasts, in id order; the ids of
    those dropped)."""
    chosen, used, dropped = list(pinned), sum(approx_tokens(x.post.body) for x in pinned), []
    for x in rest:
        cost = approx_tokens(x.post.body)
        if used + cost <= budget:
            chosen.append(x)
            used += cost
        else:
            dropped.append(x.post.id)
    chosen.sort(key=lambda x: x.post.id)
    return chosen, dropped


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


@functools.lru_cache(maxsize=65536)
def _sentences(body: str) -> tuple[str, ...]:
    """A post's sentences that can be key context (12 to 400 characters); computed once per post."""
    return tuple(s for s in (x.strip() for x in _SENTENCE_END.split(body)) if 12 <= len(s) <= 400)


def key_sentences(chosen: list[Scored], goal: str, k: int) -> list[str]:
    sents: list[tuple[float, str]] = []
    for x in chosen:
        sents.extend((x.score, s) for s in _sentences(x.post.body))
    if not sents:
        return []
    rel = bm25_relevance(goal, [s for _, s in sents])
    ranked = sorted(zip(rel, sents, strict=True), key=lambda t: -(max(t[0], 0) + 1e-3) * t[1][0])
    out: list[str] = []
    for _, (_, s) in ranked:
        if s not in out:
            out.append(s)
        if len(out) >= k:
            break
    return out
