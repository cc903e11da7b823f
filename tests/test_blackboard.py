"""The blackboard's read cache: incremental, complete across writers (threads and other store connections),
never holding a post of a transaction that rolled back; and the neighbourhood an agent's prompt draws from."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from autoform.blackboard import Blackboard
from autoform.store import Store


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Store, int, list[int]]:
    store = Store(tmp_path / "autoform.sqlite")
    with store.tx() as c:
        bid = int(
            c.execute(
                "INSERT INTO books (slug, source_path, source_kind, ingested_at) VALUES ('b', '/x', 'latex', 0)"
            ).lastrowid
        )
        units = [
            int(
                c.execute(
                    "INSERT INTO units (book_id, ident, seq, kind, statement) VALUES (?,?,?,?,?)",
                    (bid, f"u{i}", i, "theorem", f"s{i}"),
                ).lastrowid
            )
            for i in range(8)
        ]
    return store, bid, units


def test_reads_see_posts_written_later_by_another_connection(setup, tmp_path: Path) -> None:
    store, bid, units = setup
    board = Blackboard(store, bid)
    board.post("reader", "extraction", "first", unit_id=units[0])
    assert [p.body for p in board.read()] == ["first"]
    other = Blackboard(Store(tmp_path / "autoform.sqlite"), bid)  # another process, as far as SQLite knows
    other.post("drafter", "lock", "theorem t : True", unit_id=units[1])
    other.post("gate", "verdict", "ok", unit_id=units[0])
    assert [p.body for p in board.read()] == ["first", "theorem t : True", "ok"]
    assert [p.body for p in board.read(unit_id=units[0])] == ["first", "ok"]
    assert board.latest(units[1], "lock").body == "theorem t : True"
    assert board.latest(units[1], "verdict") is None


def test_a_post_of_a_rolled_back_transaction_never_enters_the_cache(setup) -> None:
    store, bid, units = setup
    board = Blackboard(store, bid)
    board.post("reader", "extraction", "kept", unit_id=units[0])
    with pytest.raises(RuntimeError), store.tx():
        board.post("gate", "admission", "phantom", unit_id=units[0])
        assert [p.body for p in board.read(unit_id=units[0])] == ["kept", "phantom"]  # own transaction
        raise RuntimeError("the step fails")
    assert [p.body for p in board.read()] == ["kept"]
    board.post("gate", "verdict", "after", unit_id=units[0])  # reuses the rolled-back row id
    assert [p.body for p in board.read()] == ["kept", "after"]


def test_cache_is_complete_under_concurrent_writers_and_readers(setup) -> None:
    store, bid, units = setup
    board = Blackboard(store, bid)
    stop = threading.Event()
    errors: list[BaseException] = []

    def write(k: int) -> None:
        try:
            for i in range(40):
                board.post("t", "hint", f"{k}:{i}", unit_id=units[k])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def read() -> None:
        try:
            while not stop.is_set():
                ids = [p.id for p in board.read()]
                assert ids == sorted(set(ids))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    writers = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in writers + readers:
        t.start()
    for t in writers:
        t.join(timeout=60)
    stop.set()
    for t in readers:
        t.join(timeout=60)
    assert not errors, errors
    assert [p.id for p in board.read()] == [p.id for p in store.posts(bid)]
    assert len(board.read()) == 160
    for k in range(4):
        assert [p.body for p in board.read(unit_id=units[k])] == [f"{k}:{i}" for i in range(40)]


def test_nearby_takes_own_unit_then_nearest_units_then_global_then_recent(setup) -> None:
    store, bid, u = setup
    board = Blackboard(store, bid)
    for k, unit in enumerate(u):
        board.post("reader", "extraction", f"extraction {k}", unit_id=unit)
        board.post("drafter", "draft", f"draft {k}", unit_id=unit)
    board.post("job", "hint", "global hint", unit_id=None)
    hops = {u[0]: 0, u[1]: 1, u[2]: 2, u[3]: 4}
    got = board.nearby(u[0], hops, ("extraction", "hint"), max_hops=2, recent=0, limit=100)
    assert [p.body for p in got] == ["extraction 0", "extraction 1", "extraction 2", "global hint"]
    # the latest posts of units beyond the neighbourhood come in as "recent"
    got = board.nearby(u[0], hops, ("extraction", "hint"), max_hops=2, recent=2, limit=100)
    assert [p.body for p in got] == [
        "extraction 0",
        "extraction 1",
        "extraction 2",
        "extraction 6",
        "extraction 7",
        "global hint",
    ]
    # the limit keeps the own unit's and the nearest units' posts first; the result is in id order
    got = board.nearby(u[0], hops, ("extraction", "draft"), max_hops=2, recent=5, limit=3)
    assert [p.body for p in got] == ["extraction 0", "draft 0", "draft 1"]


def test_agent_prompts_read_the_neighbourhood_not_the_whole_board(setup) -> None:
    """A board of 5,000 posts on far units: one prompt's candidates stay bounded by max_candidates."""
    store, bid, u = setup
    with store.tx():
        for i in range(5000):
            store.add_post(book_id=bid, unit_id=u[7], author="reader", kind="extraction", body=f"far {i}")
    board = Blackboard(store, bid)
    board.post("reader", "extraction", "mine", unit_id=u[0])
    got = board.nearby(u[0], {u[0]: 0}, ("extraction",), max_hops=3, recent=64, limit=400)
    assert len(got) == 65 and got[-1].body == "mine"


def test_a_small_board_is_offered_whole_so_only_the_budget_drops_posts(setup) -> None:
    """Far, old posts are not candidates on a big board, but on a board smaller than the prompt's budget
    everything is offered: the filter then drops a post only for want of budget."""
    store, bid, u = setup
    board = Blackboard(store, bid)
    board.post("reader", "extraction", "far and old " * 10, unit_id=u[7])
    for k in range(4):
        board.post("reader", "extraction", f"recent {k}", unit_id=u[6])
    hops = {u[0]: 0}
    args = dict(max_hops=2, recent=2, limit=100)
    assert "far and old" not in " ".join(p.body for p in board.nearby(u[0], hops, ("extraction",), **args))
    got = board.nearby(u[0], hops, ("extraction",), fill_tokens=1000, **args)
    assert [p.body for p in got][0].startswith("far and old") and len(got) == 5
    # the fill stops once the candidates hold fill_tokens tokens
    got = board.nearby(u[0], hops, ("extraction",), fill_tokens=5, **args)  # 2 + 2 tokens, then 2 more
    assert len(got) == 3


def test_the_units_own_lock_is_a_candidate_even_past_the_limit(setup) -> None:
    store, bid, u = setup
    board = Blackboard(store, bid)
    board.post("drafter", "lock", "theorem t : True", unit_id=u[0])
    for k in range(10):
        board.post("gate", "verdict", f"verdict {k}", unit_id=u[0])
    got = board.nearby(u[0], {u[0]: 0}, ("lock", "verdict"), max_hops=1, recent=0, limit=3)
    assert [p.body for p in got] == ["theorem t : True", "verdict 8", "verdict 9"]
