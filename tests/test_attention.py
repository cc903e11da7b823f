"""Attention-steered selection of blackboard posts: BM25 relevance, decay by round and by graph distance, pinned
posts, the token budget, key sentences, and which posts were used."""

from __future__ import annotations

import math

import pytest

from autoform.attention import approx_tokens, select, tokens
from autoform.config import AttentionConfig
from autoform.store import Post

CFG = AttentionConfig()  # round_decay 0.3, hop_decay 0.7


def post(
    pid: int,
    body: str,
    *,
    unit_id: int | None = None,
    round: int = 0,
    pinned: bool = False,
    kind: str = "note",
    author: str = "reader",
) -> Post:
    return Post(
        id=pid,
        book_id=1,
        unit_id=unit_id,
        job_id=None,
        round=round,
        author=author,
        kind=kind,
        body=body,
        data={},
        refs=[],
        pinned=pinned,
        created_at=1000.0 + pid,
    )


FILLER = [
    "The sum of the first n odd numbers is a perfect square, shown by induction on n.",
    "Every integer is either even or odd; parity is preserved under multiplication by an even number.",
    "Powers of two grow faster than n, since 2^(n+1) is at least 2n+2.",
    "The product of two odd integers is odd because (2a+1)(2b+1) = 2(2ab+a+b)+1.",
]


def test_relevance_ranks_the_post_sharing_words_with_the_goal_higher() -> None:
    goal = "Prove Bezout's identity: gcd(a, b) is an integer combination of a and b."
    relevant = post(
        1,
        "Bezout identity follows from the Euclidean algorithm: track each remainder as an integer "
        "combination of a and b; the gcd is the last nonzero remainder.",
    )
    others = [post(k + 2, body) for k, body in enumerate(FILLER)]
    ctx = select([*others, relevant], goal, goal_unit=None, current_round=0, hops={}, cfg=CFG)
    assert set(ctx.scores) == {p.id for p in [*others, relevant]}
    assert ctx.scores[1] == max(ctx.scores.values())
    # clearly ahead, not a tie-break (the relevance floor, 0.25 of the score, caps the ratio at 4)
    assert all(ctx.scores[1] > 2 * ctx.scores[p.id] for p in others)


def test_relevance_works_with_only_two_posts() -> None:
    goal = "Prove Bezout's identity for the gcd."
    relevant = post(1, "Bezout identity: the gcd is an integer combination, via the Euclidean algorithm.")
    other = post(2, "Parity of squares: n squared is even exactly when n is even.")
    ctx = select([relevant, other], goal, goal_unit=None, current_round=0, hops={}, cfg=CFG)
    assert ctx.scores[1] > ctx.scores[2]


def test_round_decay_lowers_older_posts() -> None:
    body = "The gcd divides every integer combination of a and b."
    new, old = post(1, body, round=5), post(2, body, round=2)
    posts = [new, old, *(post(10 + k, b) for k, b in enumerate(FILLER))]
    ctx = select(posts, "gcd integer combination", goal_unit=None, current_round=5, hops={}, cfg=CFG)
    assert ctx.scores[1] > ctx.scores[2]
    assert ctx.scores[2] / ctx.scores[1] == pytest.approx(math.exp(-CFG.round_decay * 3))
    # a different decay constant changes the ratio accordingly
    cfg = AttentionConfig(round_decay=1.0)
    ctx2 = select(posts, "gcd integer combination", goal_unit=None, current_round=5, hops={}, cfg=cfg)
    assert ctx2.scores[2] / ctx2.scores[1] == pytest.approx(math.exp(-3.0))
    # posts from the future (round > current) are not boosted
    ctx3 = select(posts, "gcd integer combination", goal_unit=None, current_round=2, hops={}, cfg=CFG)
    assert ctx3.scores[1] == pytest.approx(ctx3.scores[2])


def test_hop_decay_lowers_posts_on_distant_units() -> None:
    body = "Use the transitivity of divisibility twice."
    near, far, unknown, general = (
        post(1, body, unit_id=11),
        post(2, body, unit_id=12),
        post(3, body, unit_id=13),
        post(4, body, unit_id=None),
    )
    posts = [near, far, unknown, general, *(post(10 + k, b) for k, b in enumerate(FILLER))]
    hops = {10: 0, 11: 1, 12: 3}  # unit 13 is not reachable from the goal's unit 10
    ctx = select(posts, "divisibility transitivity", goal_unit=10, current_round=0, hops=hops, cfg=CFG)
    s = ctx.scores
    assert s[1] > s[2] > s[3]
    assert s[2] / s[1] == pytest.approx(math.exp(-CFG.hop_decay * 2))
    assert s[3] / s[1] == pytest.approx(math.exp(-CFG.hop_decay * 5))  # unreachable counts as 6 hops
    assert s[4] / s[1] == pytest.approx(math.exp(CFG.hop_decay * 1))  # a post on no unit is not decayed
    # without a goal unit, distance plays no part
    ctx2 = select(posts, "divisibility transitivity", goal_unit=None, current_round=0, hops=hops, cfg=CFG)
    assert ctx2.scores[1] == pytest.approx(ctx2.scores[2]) == pytest.approx(ctx2.scores[3])


def test_pinned_posts_always_enter_even_over_budget() -> None:
    long_pinned = post(1, "Convention: the natural numbers start at 0. " * 40, pinned=True)  # ~450 tokens
    by_id = post(2, "Definition of divides: a divides b when b = ac for some integer c. " * 20)
    relevant = post(3, "gcd Bezout identity integer combination")
    posts = [long_pinned, by_id, relevant, *(post(10 + k, b) for k, b in enumerate(FILLER))]
    budget = 20
    assert approx_tokens(long_pinned.body) + approx_tokens(by_id.body) > budget
    ctx = select(
        posts,
        "gcd Bezout identity",
        goal_unit=None,
        current_round=0,
        hops={},
        cfg=CFG,
        budget_tokens=budget,
        pinned_ids={2},
    )
    assert 1 in ctx.post_ids and 2 in ctx.post_ids
    assert 1 not in ctx.dropped and 2 not in ctx.dropped
    # the budget is already spent by the pinned posts: every unpinned post is dropped
    assert sorted(ctx.dropped) == sorted(p.id for p in posts if p.id not in (1, 2))
    assert ctx.post_ids == [1, 2]


def test_low_scorers_are_dropped_when_over_budget() -> None:
    goal = "gcd Euclidean algorithm remainder"
    strong = post(1, "The Euclidean algorithm replaces (x, y) by (y, r) with r the remainder; the gcd is kept.")
    medium = post(2, "The gcd of a and 0 is |a|, the last remainder of the algorithm.")
    weak = [post(10 + k, b) for k, b in enumerate(FILLER)]
    posts = [*weak, medium, strong]
    budget = approx_tokens(strong.body) + approx_tokens(medium.body)
    ctx = select(posts, goal, goal_unit=None, current_round=0, hops={}, cfg=CFG, budget_tokens=budget)
    assert ctx.post_ids == [1, 2]
    assert sorted(ctx.dropped) == sorted(p.id for p in weak)
    for d in ctx.dropped:  # every dropped post scores below every chosen one
        assert ctx.scores[d] < min(ctx.scores[c] for c in ctx.post_ids)
    used = sum(approx_tokens(p.body) for p in ctx.posts)
    assert used <= budget
    # chosen and dropped partition the posts
    assert sorted(ctx.post_ids + ctx.dropped) == sorted(p.id for p in posts)
    # a generous budget keeps everything, in id order
    big = select(posts, goal, goal_unit=None, current_round=0, hops={}, cfg=CFG, budget_tokens=10_000)
    assert big.post_ids == sorted(p.id for p in posts) and big.dropped == []


def test_budget_from_config_is_used_by_default() -> None:
    posts = [post(k, f"note {k}: " + "lorem ipsum dolor sit amet " * 10) for k in range(1, 8)]
    each = approx_tokens(posts[0].body)
    cfg = AttentionConfig(budget_tokens=3 * each)
    ctx = select(posts, "lorem", goal_unit=None, current_round=0, hops={}, cfg=cfg)
    assert len(ctx.posts) == 3 and len(ctx.dropped) == 4


def test_key_sentences_come_from_chosen_posts_and_are_relevant() -> None:
    goal = "Bezout identity gcd integer combination"
    chosen_body = (
        "We recall the setting. Bezout identity says the gcd is an integer combination of a and b. "
        "The weather was nice that day."
    )
    other_chosen = post(2, "Squares of odd numbers are odd. Parity is preserved by multiplication.")
    dropped_body = "Bezout identity gcd integer combination appears here too, but this post is over the budget."
    p1 = post(1, chosen_body, pinned=True)
    p3 = post(3, dropped_body, round=0)
    posts = [p1, other_chosen, p3, *(post(10 + k, b) for k, b in enumerate(FILLER))]
    ctx = select(
        posts,
        goal,
        goal_unit=None,
        current_round=3,
        hops={},
        cfg=AttentionConfig(key_sentences=2),
        budget_tokens=approx_tokens(p1.body) + approx_tokens(other_chosen.body),
        pinned_ids=set(),
    )
    assert 3 in ctx.dropped
    assert 1 in ctx.post_ids
    assert 0 < len(ctx.key_sentences) <= 2
    chosen_bodies = [p.body for p in ctx.posts]
    for s in ctx.key_sentences:
        assert any(s in b for b in chosen_bodies)
        assert s not in dropped_body
    assert ctx.key_sentences[0] == "Bezout identity says the gcd is an integer combination of a and b."
    assert ctx.render_key().splitlines()[0] == "- " + ctx.key_sentences[0]


def test_key_sentences_skip_fragments_and_respect_k() -> None:
    body = "Ok. " + " ".join(f"Sentence number {k} mentions the gcd of a and b." for k in range(10))
    ps = [post(1, body), *(post(10 + k, b) for k, b in enumerate(FILLER))]
    ctx = select(ps, "gcd", goal_unit=None, current_round=0, hops={}, cfg=AttentionConfig(key_sentences=3))
    assert len(ctx.key_sentences) == 3
    assert "Ok." not in ctx.key_sentences  # shorter than 12 characters
    assert len(set(ctx.key_sentences)) == 3


def test_post_ids_and_render_report_what_was_used() -> None:
    ps = [
        post(5, "Bezout identity and the gcd.", unit_id=7, round=2, author="prover", kind="hint"),
        post(3, "Parity of integers.", author="reader"),
        post(9, "Euclid's algorithm terminates.", unit_id=7),
    ]
    ctx = select(ps, "gcd", goal_unit=None, current_round=2, hops={}, cfg=CFG)
    assert ctx.post_ids == [3, 5, 9]  # id order, whatever the input order
    assert [p.id for p in ctx.posts] == ctx.post_ids
    text = ctx.render()
    assert "[hint by prover unit 7, round 2]\nBezout identity and the gcd." in text
    assert "[note by reader, round 0]\nParity of integers." in text
    assert text.index("Parity") < text.index("Bezout") < text.index("Euclid")


def test_empty_board() -> None:
    ctx = select([], "anything", goal_unit=1, current_round=0, hops={}, cfg=CFG)
    assert ctx.posts == [] and ctx.post_ids == [] and ctx.key_sentences == [] and ctx.dropped == []


def test_tokens_and_estimate() -> None:
    # one-character tokens (variables, digits, punctuation) carry no signal and are left out
    assert tokens("Bezout's identity: gcd(a, b) = 1, x ≤ y") == ["bezout's", "identity", "gcd", "≤"]
    assert approx_tokens("") == 1
    assert approx_tokens("x" * 400) == 100


# ------------------------------------------------------------------------- embeddings and role budgets
def test_embedding_relevance_through_the_endpoint(tmp_path):
    from fake_llm import FakeLLM

    from autoform.config import LLMConfig, Settings
    from autoform.llm import LLMClient
    from autoform.store import Store

    with FakeLLM() as srv:
        s = Settings(home=tmp_path, llm=LLMConfig(base_url=srv.base_url, api_key="k", model="m"))
        store = Store(s.db_path)
        llm = LLMClient(s, store)
        rel = llm.embedding_relevance("emb-model")
        scores = rel("gcd divides both numbers", ["the gcd divides both numbers", "parity of squares"])
        assert scores[0] > 0.8 > scores[1]
        n = len(srv.embedding_requests)
        rel("gcd divides both numbers", ["the gcd divides both numbers"])  # all cached in the store
        assert len(srv.embedding_requests) == n
        posts = [post(1, "parity of squares and odd numbers"), post(2, "the gcd divides both numbers")]
        ctx = select(
            posts, "gcd divides both", goal_unit=None, current_round=0, hops={}, cfg=AttentionConfig(), relevance=rel
        )
        assert ctx.scores[2] > ctx.scores[1]


def test_role_budgets():
    cfg = AttentionConfig(budgets={"prover": 10}, budget_tokens=99)
    assert cfg.budget_for("prover") == 10 and cfg.budget_for("reader") == 99


def test_bm25_scores_match_the_formula_worked_by_hand() -> None:
    """Two texts, goal "prime": N = 2, n = 1, idf = log(1 + 1.5 / 1.5) = log 2; the second text has "prime"
    twice in 3 words, average length 2.5: 2 * 2.5 / (2 + 1.5 * (0.25 + 0.75 * 3 / 2.5)) * log 2."""
    from autoform.attention import bm25_relevance

    got = bm25_relevance("prime", ["gcd lemma", "prime prime number"])
    assert got[0] == 0.0
    assert got[1] == pytest.approx(math.log(2) * 2 * 2.5 / (2 + 1.5 * (0.25 + 0.75 * 3 / 2.5)))
    # a repeated goal word counts twice; a word in no text adds nothing
    assert bm25_relevance("prime prime zeta", ["gcd lemma", "prime prime number"])[1] == pytest.approx(2 * got[1])
