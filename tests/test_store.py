"""The store: schema version and WAL on creation, refusing newer or foreign files, transactions that either land
whole or not at all, nested transactions, concurrent writers, and the JSON columns of the models."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from autoform.store import SCHEMA_VERSION, Post, Store, StoreError, Unit


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "ws" / "autoform.sqlite")
    yield s
    s.close()


def _add_book(c: sqlite3.Connection, slug: str = "b") -> int:
    return int(
        c.execute(
            "INSERT INTO books (slug, title, source_path, source_kind, ingested_at, warnings) VALUES (?,?,?,?,?,?)",
            (slug, "T", "/x/main.tex", "latex", time.time(), json.dumps(["w1", "w2"])),
        ).lastrowid
    )


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path)


# ------------------------------------------------------------------------------------------ opening
def test_new_store_has_current_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "autoform.sqlite"
    s = Store(path)
    assert path.exists()  # parent directories are created
    assert s.schema_version == SCHEMA_VERSION
    assert s.query("PRAGMA journal_mode")[0][0].lower() == "wal"
    s.close()
    # what is on disk, seen by a plain sqlite3 connection
    raw = _raw(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert raw.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"books", "units", "unit_deps", "jobs", "posts", "attempts", "atlas_entries", "llm_calls"} <= tables
    raw.close()


def test_reopening_keeps_data_and_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "autoform.sqlite"
    s = Store(path)
    with s.tx() as c:
        _add_book(c, "kept")
    s.close()
    s2 = Store(path)  # a second migration run would fail on CREATE TABLE books
    assert [b.slug for b in s2.books()] == ["kept"]
    assert s2.schema_version == SCHEMA_VERSION
    s2.close()


def test_newer_schema_is_refused_with_a_message_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "autoform.sqlite"
    raw = _raw(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError) as ei:
        Store(path)
    msg = str(ei.value)
    assert str(path) in msg
    assert "newer" in msg
    # and it was not "migrated" downwards
    raw = _raw(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert raw.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'books'").fetchone()[0] == 0
    raw.close()


def test_non_sqlite_file_raises_store_error(tmp_path: Path) -> None:
    """A foreign file is refused with StoreError naming it (not a raw sqlite3.DatabaseError), and left alone."""
    path = tmp_path / "autoform.sqlite"
    path.write_bytes(b"This is certainly not a SQLite database, just some text that is long enough. " * 20)
    content = path.read_bytes()
    with pytest.raises(StoreError) as ei:
        Store(path)
    assert str(path) in str(ei.value)
    assert path.read_bytes() == content


# ------------------------------------------------------------------------------------- transactions
def test_tx_commits_when_the_block_succeeds(store: Store) -> None:
    with store.tx() as c:
        _add_book(c, "one")
    # visible to another connection: it was committed, not just written in this connection
    raw = _raw(store.path)
    assert [r[0] for r in raw.execute("SELECT slug FROM books")] == ["one"]
    raw.close()
    assert not store._conn().in_transaction


def test_tx_rolls_back_everything_on_exception(store: Store) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.tx() as c:
        bid = _add_book(c, "doomed")
        c.execute("INSERT INTO jobs (book_id, status, started_at) VALUES (?, 'running', ?)", (bid, time.time()))
        raise Boom
    assert store.books() == []
    assert store.query("SELECT COUNT(*) FROM jobs")[0][0] == 0
    assert not store._conn().in_transaction
    # the store is still usable afterwards
    with store.tx() as c:
        _add_book(c, "after")
    assert [b.slug for b in store.books()] == ["after"]


def test_tx_rolls_back_on_a_failing_statement(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError), store.tx() as c:
        _add_book(c, "dup")
        _add_book(c, "dup")  # UNIQUE(slug)
    assert store.books() == []


def test_nested_tx_joins_the_outer_transaction(store: Store) -> None:
    # the inner block commits nothing on its own: an exception in the outer block undoes the inner writes too
    with pytest.raises(RuntimeError), store.tx() as outer:
        _add_book(outer, "outer")
        with store.tx() as inner:
            assert inner is outer
            assert inner.in_transaction
            _add_book(inner, "inner")
        # still inside the outer transaction after the inner block ended
        assert outer.in_transaction
        raise RuntimeError("abort outer")
    assert store.books() == []

    # an exception in the inner block propagates and rolls back the whole transaction
    with pytest.raises(ValueError), store.tx() as outer:
        _add_book(outer, "outer2")
        with store.tx() as inner:
            _add_book(inner, "inner2")
            raise ValueError("abort inner")
    assert store.books() == []

    # both land when nothing fails; helper methods (add_post) join too
    with store.tx() as outer:
        bid = _add_book(outer, "ok")
        pid = store.add_post(book_id=bid, author="t", kind="note", body="inside")
        assert outer.in_transaction
    assert [b.slug for b in store.books()] == ["ok"]
    assert [p.id for p in store.posts(bid)] == [pid]


def test_concurrent_posts_from_four_threads_all_land(store: Store) -> None:
    with store.tx() as c:
        bid = _add_book(c)
    n_threads, per_thread = 4, 30
    errors: list[BaseException] = []
    ids: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n_threads)

    def worker(k: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                pid = store.add_post(
                    book_id=bid, author=f"thread{k}", kind="note", body=f"{k}:{i}", round=i, data={"k": k, "i": i}
                )
                with lock:
                    ids.append(pid)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            store.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    posts = store.posts(bid)
    assert len(posts) == n_threads * per_thread
    assert len(set(ids)) == n_threads * per_thread
    assert sorted(ids) == [p.id for p in posts]
    assert {p.body for p in posts} == {f"{k}:{i}" for k in range(n_threads) for i in range(per_thread)}
    for p in posts:
        k, i = map(int, p.body.split(":"))
        assert p.author == f"thread{k}" and p.data == {"k": k, "i": i} and p.round == i


# ------------------------------------------------------------------------------------------ models
def test_unit_round_trips_json_columns(store: Store) -> None:
    with store.tx() as c:
        bid = _add_book(c)
        uid = c.execute(
            "INSERT INTO units (book_id, ident, seq, kind, number, title, label, statement, statement_raw, proof,"
            " chapter, section, source, refs, present, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                bid,
                "thm:x",
                0,
                "theorem",
                "1.2",
                "Bézout's identity",
                "thm:x",
                "S $\\mathbb{Z}$",
                "S $\\Z$",
                "P",
                "Chap",
                "Sec",
                "main.tex:3-9",
                json.dumps(["def:a", "lem:b"]),
                1,
                "pending",
            ),
        ).lastrowid
    u = store.unit(uid)
    assert isinstance(u, Unit)
    assert u.refs == ["def:a", "lem:b"]
    assert u.present is True
    assert u.title == "Bézout's identity"
    assert u.display == "Theorem 1.2 (Bézout's identity)"
    assert u.location == "Chap / Sec"
    assert store.units(bid) == [u]
    book = store.book("b")
    assert book is not None and book.warnings == ["w1", "w2"]
    with pytest.raises(KeyError):
        store.unit(uid + 1000)


def test_post_round_trips_json_columns(store: Store) -> None:
    with store.tx() as c:
        bid = _add_book(c)
    data = {"lean": "theorem x : True := trivial", "scores": [1.5, 2], "nested": {"ok": True, "none": None}}
    before = time.time()
    pid = store.add_post(
        book_id=bid, author="prover", kind="attempt", body="body text", round=3, data=data, refs=[7, 9], pinned=True
    )
    p2 = store.add_post(book_id=bid, author="reader", kind="note", body="other")
    posts = store.posts(bid)
    assert [p.id for p in posts] == [pid, p2]
    p = posts[0]
    assert isinstance(p, Post)
    assert p.data == data
    assert p.refs == [7, 9]
    assert p.pinned is True
    assert (p.round, p.author, p.kind, p.body, p.unit_id, p.job_id) == (3, "prover", "attempt", "body text", None, None)
    assert before - 1 <= p.created_at <= time.time() + 1
    # defaults: empty JSON, not pinned
    q = posts[1]
    assert (q.data, q.refs, q.pinned, q.round) == ({}, [], False, 0)
    # the columns hold JSON text on disk
    row = store.query("SELECT data, refs FROM posts WHERE id = ?", (pid,))[0]
    assert json.loads(row["data"]) == data and json.loads(row["refs"]) == [7, 9]
    # filters
    assert [x.id for x in store.posts(bid, kind="note")] == [p2]


def test_closed_store_reconnects_on_next_use(store: Store) -> None:
    with store.tx() as c:
        _add_book(c)
    store.close()
    assert [b.slug for b in store.books()] == ["b"]


def test_cli_reports_a_corrupt_store_file_cleanly(tmp_path: Path) -> None:
    """The CLI turns that StoreError into a one-line error (exit 2), not a traceback."""
    from conftest import autoform

    home = tmp_path / "home"
    home.mkdir()
    (home / "autoform.sqlite").write_bytes(b"garbage, not a database " * 40)
    proc = autoform(home, "units", "anything", env={"COLUMNS": "400"})
    assert proc.returncode == 2, proc.stderr
    assert "autoform.sqlite" in proc.stderr
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------------ declaration names
def _add_units(c: sqlite3.Connection, bid: int, n: int) -> list[int]:
    return [
        int(
            c.execute(
                "INSERT INTO units (book_id, ident, seq, kind, statement) VALUES (?,?,?,?,?)",
                (bid, f"u{i}", i, "theorem", f"s{i}"),
            ).lastrowid
        )
        for i in range(n)
    ]


def test_reserve_name_gives_each_unit_its_own_name_and_keeps_it(store: Store) -> None:
    with store.tx() as c:
        bid = _add_book(c)
        a, b, d = _add_units(c, bid, 3)
    assert store.reserve_name(bid, a, "gcd_comm") == "gcd_comm"
    assert store.reserve_name(bid, a, "gcd_comm") == "gcd_comm"  # a unit's later drafts keep its name
    assert store.reserve_name(bid, b, "gcd_comm") == "gcd_comm_2"
    assert store.reserve_name(bid, d, "gcd_comm") == "gcd_comm_3"
    assert store.reserve_name(bid, b, "gcd_comm") == "gcd_comm_2"


def test_reserve_name_from_many_threads_and_two_stores_never_gives_one_name_twice(tmp_path: Path) -> None:
    """Two Store objects on one file stand for two processes (a Ray node's session and the head): whichever
    thread or store asks, the same name never goes to two units."""
    path = tmp_path / "autoform.sqlite"
    stores = [Store(path), Store(path)]
    with stores[0].tx() as c:
        bid = _add_book(c)
        units = _add_units(c, bid, 24)
    got: dict[int, str] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(units))

    def worker(k: int, uid: int) -> None:
        try:
            barrier.wait()
            got[uid] = stores[k % 2].reserve_name(bid, uid, "same_name")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k, u)) for k, u in enumerate(units)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sorted(got.values()) == sorted(["same_name"] + [f"same_name_{k}" for k in range(2, 25)])
    for s in stores:
        s.close()


def test_reserve_name_skips_a_name_the_atlas_gives_another_unit(store: Store) -> None:
    with store.tx() as c:
        bid = _add_book(c)
        a, b = _add_units(c, bid, 2)
        c.execute(
            "INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code,"
            " created_at) VALUES (?,?,?,?,?,?,?)",
            (a, bid, "old", "proved", "s", "c", time.time()),
        )
    assert store.reserve_name(bid, b, "old") == "old_2"


def test_migration_to_v4_reserves_the_names_already_in_use(tmp_path: Path) -> None:
    """A v3 store (before name reservations): its locked and admitted names are reserved by the migration."""
    path = tmp_path / "autoform.sqlite"
    raw = _raw(path)
    from autoform.store import MIGRATIONS

    for v in (1, 2, 3):
        raw.executescript(MIGRATIONS[v])
    raw.execute("PRAGMA user_version = 3")
    bid = _add_book(raw)
    a, b = _add_units(raw, bid, 2)
    raw.execute(
        "INSERT INTO posts (book_id, unit_id, author, kind, body, data, created_at) VALUES (?,?,?,?,?,?,?)",
        (bid, a, "drafter", "lock", "theorem t : True", json.dumps({"name": "t"}), 0),
    )
    raw.commit()
    raw.close()
    s = Store(path)
    assert s.schema_version == SCHEMA_VERSION
    assert s.reserve_name(bid, b, "t") == "t_2"
    assert s.reserve_name(bid, a, "t") == "t"
    assert s.attempts(a) == []  # the new attempts column reads back on an old store
    s.close()


def test_two_processes_opening_an_old_store_at_once_migrate_it_once(tmp_path: Path) -> None:
    """After an upgrade, two `autoform run` (two books) open a v3 store together: one migrates, the other
    sees the new version under the write lock and does nothing (no 'duplicate column')."""
    from autoform.store import MIGRATIONS

    for attempt in range(3):
        path = tmp_path / f"s{attempt}.sqlite"
        raw = _raw(path)
        for v in (1, 2, 3):
            raw.executescript(MIGRATIONS[v])
        raw.execute("PRAGMA user_version = 3")
        raw.commit()
        raw.close()
        errors: list[BaseException] = []
        barrier = threading.Barrier(2)

        def open_it(path: Path, barrier: threading.Barrier, errors: list[BaseException]) -> None:
            try:
                barrier.wait()
                Store(path).close()
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=open_it, args=(path, barrier, errors)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        assert Store(path).schema_version == SCHEMA_VERSION
