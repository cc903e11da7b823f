"""Issue 14: nothing lost, nothing hung, no traceback. Hostile books, damaged stores, full and read-only disks,
endpoints and a Lean that fail every time, re-ingest of a changed unit, the terminal at 80 columns.

Every input is generated here: bombs, a store damaged by writing junk into a copy, a read-only directory (a
read-only bind mount when the test runs as root, who ignores permissions; else chmod), a full disk (a small
tmpfs where the test can mount one, else RLIMIT_FSIZE in the child). Every bad input must end in a one-line
error naming the file or endpoint, exit 2 (bad input) or 3 (something needed is missing), within seconds, with
no stored work lost."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SAMPLE_BOOK, autoform, book_script, make_repl_dir, write_config

TESTS = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------------------- helpers
def _one_line_error(r: subprocess.CompletedProcess, *names: str) -> str:
    """The command failed with one 'error:' line naming each of ``names``, and no traceback."""
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, r.stderr
    for n in names:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _db(home: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(home / "autoform.sqlite", timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def _root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[str]:
    """``path`` (a directory) read-only while the block runs: a read-only bind mount as root (EROFS, as a
    read-only disk), else chmod (EACCES). Yields which."""
    if _root():
        if not (_mount("--bind", str(path), str(path)) and _mount("-o", "remount,bind,ro", str(path))):
            subprocess.run(["umount", str(path)], capture_output=True)
            pytest.skip("running as root, where permissions do not apply, and no read-only bind mount here")
        try:
            yield "mount"
        finally:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)
        return
    modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")] if p.is_dir()}
    for p in modes:
        p.chmod(0o555)
    try:
        yield "chmod"
    finally:
        for p, m in modes.items():
            p.chmod(m)


def _copy_sample(tmp: Path) -> Path:
    d = tmp / "book"
    d.mkdir()
    shutil.copy(SAMPLE_BOOK, d / "main.tex")
    return d / "main.tex"


# ===================================================================== 1. re-ingest of a changed statement
def test_reingest_of_a_changed_statement_withdraws_its_work_and_its_dependents_and_the_run_redoes_them(
    workspace, tmp_path
):
    ws = workspace(book_script())
    book = _copy_sample(tmp_path)
    autoform(ws.home, "ingest", str(book), "--book", "ent", check=True)
    first = json.loads(autoform(ws.home, "run", "ent", "--json", check=True).stdout)
    assert first["status"] == "done"
    conn = _db(ws.home)
    (uid,) = conn.execute("SELECT id FROM units WHERE label = 'def:even'").fetchone()
    entry = conn.execute("SELECT * FROM atlas_entries WHERE unit_id = ?", (uid,)).fetchone()
    assert entry is not None and entry["status"] == "defined"
    users = {r[0] for r in conn.execute("SELECT unit_id FROM unit_deps WHERE dep_id = ?", (uid,))}
    admitted_users = {
        u for u in users if conn.execute("SELECT 1 FROM atlas_entries WHERE unit_id = ?", (u,)).fetchone()
    }
    assert admitted_users, "the definition must be in some admitted unit's prelude for this test"
    attempts_before = conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    chapter = ws.home / "atlas" / "Atlas" / "Ent" / "ElementaryNumberTheory.lean"
    assert entry["decl_name"].split(".")[-1] in chapter.read_text()

    text = book.read_text(encoding="utf-8")
    old = "An integer $n \\in \\Z$ is \\emph{even} if there is an integer $k \\in \\Z$ such\nthat $n = 2k$."
    assert text.count(old) == 1
    book.write_text(
        text.replace(old, "An integer $n \\in \\Z$ is \\emph{even} if $n = 2k$ for some\ninteger $k$."),
        encoding="utf-8",
    )
    r = autoform(ws.home, "ingest", str(book), "--book", "ent", check=True)
    assert "Lean work withdrawn from" in " ".join(r.stdout.split())

    conn = _db(ws.home)
    status = dict(conn.execute("SELECT id, status FROM units").fetchall())
    assert conn.execute("SELECT 1 FROM atlas_entries WHERE unit_id = ?", (uid,)).fetchone() is None
    assert status[uid] == "pending"
    for u in admitted_users:  # their preludes held the old definition
        assert conn.execute("SELECT 1 FROM atlas_entries WHERE unit_id = ?", (u,)).fetchone() is None
        assert status[u] == "pending"
    # nothing is deleted from the history: attempts kept (superseded), the old entry kept in a post
    assert conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == attempts_before
    assert conn.execute("SELECT COUNT(*) FROM attempts WHERE unit_id = ? AND superseded = 0", (uid,)).fetchone()[0] == 0
    inval = conn.execute("SELECT data FROM posts WHERE unit_id = ? AND kind = 'invalidation'", (uid,)).fetchone()
    assert json.loads(inval[0])["entry"]["lean_code"] == entry["lean_code"]
    assert conn.execute("SELECT COUNT(*) FROM posts WHERE unit_id = ? AND kind = 'lock'", (uid,)).fetchone()[0] == 0
    conn.close()

    second = json.loads(autoform(ws.home, "run", "ent", "--json", check=True).stdout)
    assert second["status"] == "done" and second["job_id"] != first["job_id"]
    assert second["admitted_this_job"] >= 1 + len(admitted_users)  # redone, not "done with 0 admitted"
    assert second["units"] == first["units"]
    conn = _db(ws.home)
    again = conn.execute("SELECT * FROM atlas_entries WHERE unit_id = ?", (uid,)).fetchone()
    assert again is not None and again["job_id"] == second["job_id"]
    for u in admitted_users:
        assert (
            conn.execute("SELECT job_id FROM atlas_entries WHERE unit_id = ?", (u,)).fetchone()[0] == second["job_id"]
        )
    # the drafter was asked about the new text, and the Atlas holds the new entry
    prompts = [
        b["messages"][-1]["content"] for b in ws.llm.requests if "[label: def:even]" in b["messages"][-1]["content"]
    ]
    assert any("for some" in p for p in prompts)
    assert again["decl_name"].split(".")[-1] in chapter.read_text()


# ==================================================================================== 2. a damaged store
def _damage(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(size // 2)
        f.write(b"\xde\xad\xbe\xef" * 1024)


def test_a_damaged_store_is_refused_by_every_command_never_written_and_restored_from_a_backup(workspace):
    ws = workspace(book_script())
    home = ws.home
    autoform(home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    autoform(home, "run", "ent", check=True)
    store = home / "autoform.sqlite"
    r = autoform(home, "backup", "--out", str(home / "good.sqlite"), check=True)
    assert "good.sqlite" in r.stdout
    good_units = _db(home).execute("SELECT COUNT(*) FROM units").fetchone()[0]
    good_entries = _db(home).execute("SELECT COUNT(*) FROM atlas_entries").fetchone()[0]
    assert good_entries > 30
    _damage(store)
    digest = _sha(store)
    for args in (
        ["status"],
        ["units", "ent"],
        ["ingest", str(SAMPLE_BOOK), "--book", "ent"],
        ["run", "ent"],
        ["transcript", "ent", "1"],
        ["atlas", "write"],
        ["graph", "ent"],
        ["backup"],
    ):
        t0 = time.monotonic()
        r = autoform(home, *args, timeout=60)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert time.monotonic() - t0 < 15
        line = _one_line_error(r, str(store), "damaged")
        assert "autoform restore" in line
        assert _sha(store) == digest, f"{args} wrote into the damaged store"
    r = autoform(home, "restore", str(home / "good.sqlite"), check=True)
    assert "replaced store is kept" in r.stdout
    assert _db(home).execute("SELECT COUNT(*) FROM units").fetchone()[0] == good_units
    assert json.loads(autoform(home, "status", "ent", "--json", check=True).stdout)["atlas_entries"] == good_entries
    kept = [p for p in home.iterdir() if p.name.startswith("autoform.sqlite.replaced-")]
    assert len(kept) == 1 and _sha(kept[0]) == digest  # the damaged one is kept, not destroyed


def test_backup_is_consistent_while_another_connection_writes(tmp_path):
    from autoform.store import Store

    s = Store(tmp_path / "autoform.sqlite")
    with s.tx() as c:
        c.execute("INSERT INTO books (slug, source_path, source_kind, ingested_at) VALUES ('b', 'x', 'latex', 0)")
    writer = sqlite3.connect(tmp_path / "autoform.sqlite", timeout=10)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO books (slug, source_path, source_kind, ingested_at) VALUES ('c', 'x', 'latex', 0)")
    s.backup(tmp_path / "copy.sqlite")  # an open write transaction elsewhere: the copy has the committed state
    writer.rollback()
    copy = Store(tmp_path / "copy.sqlite", readonly=True)
    assert [b.slug for b in copy.books()] == ["b"]


# ============================================================================ 3. full and read-only disks
def test_a_read_only_workspace_can_be_inspected_and_writes_are_refused_with_the_right_cause(workspace, tmp_path):
    ws = workspace(book_script())
    home = ws.home
    autoform(home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    digest = _sha(home / "autoform.sqlite")
    with read_only(home) as how:
        for args in (
            ["status"],
            ["units", "ent", "--json"],
            ["graph", "ent"],
            ["transcript", "ent", "1"],
            ["status", "ent", "--json"],
        ):
            r = autoform(home, *args)
            assert r.returncode == 0, (args, r.stderr)
        assert len(autoform(home, "units", "ent", "--json").stdout.splitlines()) == 39
        r = autoform(home, "backup", "--out", str(tmp_path / "b.sqlite"))
        assert r.returncode == 0, r.stderr
        r = autoform(home, "ingest", str(SAMPLE_BOOK), "--book", "ent")
        assert r.returncode == 3, r.stderr
        line = _one_line_error(r, str(home / "autoform.sqlite"))
        assert ("read-only file system" if how == "mount" else "not writable") in line
        assert "disk space" not in line
    assert _sha(home / "autoform.sqlite") == digest


def _small_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    return _root() and _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where))


def test_ingest_on_a_full_disk_is_a_clear_error_and_stores_nothing(workspace, tmp_path):
    ws = workspace(book_script())
    disk = tmp_path / "disk"
    if _small_tmpfs(disk, "160k"):  # a real full disk: the store's file grows past it while ingesting
        try:
            home = disk / "home"
            home.mkdir()
            shutil.copy(ws.home / "autoform.toml", home / "autoform.toml")
            r = autoform(home, "ingest", str(SAMPLE_BOOK), "--book", "ent")
            assert r.returncode == 3, r.stderr
            line = _one_line_error(r, str(home / "autoform.sqlite"))
            assert "full" in line and "Free disk space" in line
            if (home / "autoform.sqlite").exists():  # the transaction rolled back: no half-stored book
                assert _db(home).execute("SELECT COUNT(*) FROM units").fetchone()[0] == 0
        finally:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)
        return
    # no tmpfs here: the child may not grow a file past 100 kB (RLIMIT_FSIZE, EFBIG to SQLite, as ENOSPC)
    code = (
        "import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000)); sys.argv[0] = 'autoform'; "
        "from autoform.cli import main; main()"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AUTOFORM_"))}
    r = subprocess.run(
        [sys.executable, "-c", code, "--home", str(ws.home), "ingest", str(SAMPLE_BOOK), "--book", "ent"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 3, r.stderr
    _one_line_error(r, str(ws.home / "autoform.sqlite"))


def test_an_atlas_that_becomes_read_only_during_a_job_is_not_done_and_says_why(workspace, tmp_path):
    from fake_llm import Reply

    base = book_script()
    ws = workspace(lambda body: Reply(text=r, delay_s=0.05) if isinstance(r := base(body), str) else r)
    home = ws.home
    autoform(home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    atlas = home / "atlas"
    atlas.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AUTOFORM_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoform", "--home", str(home), "run", "ent", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(sqlite3.Error):
            if _db(home).execute("SELECT COUNT(*) FROM atlas_entries").fetchone()[0]:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the job ended before the atlas could be made read-only"
    with read_only(atlas) as how:
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    summary = json.loads(out)
    assert summary["status"] == "interrupted" and summary["stop_reason"] == "store"
    cause = "read-only file system" if how == "mount" else "no permission to write"
    assert cause in summary["message"] and "Free disk space" not in summary["message"]
    assert "Traceback" not in err
    assert _db(home).execute("SELECT status FROM jobs").fetchone()[0] == "interrupted"
    admitted = _db(home).execute("SELECT COUNT(*) FROM atlas_entries").fetchone()[0]
    # writable again: the next run resumes, loses nothing, and writes the Atlas
    r = autoform(home, "run", "ent", "--json", check=True)
    assert json.loads(r.stdout)["status"] == "done"
    assert _db(home).execute("SELECT COUNT(*) FROM atlas_entries").fetchone()[0] >= admitted
    assert (atlas / "Atlas" / "Ent" / "ElementaryNumberTheory.lean").is_file()


# ================================================================= 4. two processes opening an old store
def test_opening_an_old_store_waits_for_another_process_migrating_it(tmp_path):
    """Switching a rollback-journal store to WAL needs an exclusive lock, and SQLite does not call the busy
    handler while another connection holds the write lock (as the other process does while it migrates): the
    open must wait for it like any write, not fail at once with "database is locked"."""
    from autoform.store import MIGRATIONS, SCHEMA_VERSION, Store

    path = tmp_path / "old.sqlite"
    raw = sqlite3.connect(path)
    for v in (1, 2, 3):
        raw.executescript(MIGRATIONS[v])
    raw.execute("PRAGMA user_version = 3")
    raw.commit()
    raw.close()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # the other process, migrating: it holds the write lock
    other.execute("INSERT INTO builds (ok, command, output, created_at) VALUES (1, '', '', 0)")
    threading.Timer(0.7, lambda: other.execute("COMMIT")).start()
    t0 = time.monotonic()
    s = Store(path)
    assert s.schema_version == SCHEMA_VERSION
    assert time.monotonic() - t0 >= 0.5  # it waited for the other
    assert s.query("SELECT COUNT(*) FROM builds")[0][0] == 1
    s.close()
    other.close()


def test_two_processes_opening_an_old_store_at_once(tmp_path):
    from autoform.store import MIGRATIONS, SCHEMA_VERSION

    code = (
        "import sys, time; from autoform.store import Store; t = float(sys.argv[2])\n"
        "while time.time() < t: pass\nStore(sys.argv[1]).close()"
    )
    for k in range(8):
        path = tmp_path / f"s{k}.sqlite"
        raw = sqlite3.connect(path)
        for v in (1, 2, 3):
            raw.executescript(MIGRATIONS[v])
        raw.execute("PRAGMA user_version = 3")
        raw.commit()
        raw.close()
        start = str(time.time() + 1.0)
        procs = [
            subprocess.Popen([sys.executable, "-c", code, str(path), start], stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
        assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


# ============================================================================= 5-7. hostile LaTeX books
def _book(d: Path, body: str, preamble: str = "") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "main.tex").write_text(
        "\\documentclass{article}\n\\newtheorem{theorem}{Theorem}\n"
        + preamble
        + "\\begin{document}\n\\begin{theorem}T\\end{theorem}\n"
        + body
        + "\n\\end{document}\n",
        encoding="utf-8",
    )
    return d / "main.tex"


def _ingest_fails(tmp_path: Path, book: Path, *names: str, config: str = "", extra: tuple[str, ...] = ()) -> str:
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    if config:
        (home / "autoform.toml").write_text(config, encoding="utf-8")
    t0 = time.monotonic()
    r = autoform(home, "ingest", str(book), "--book", "b", *extra, timeout=60)
    elapsed = time.monotonic() - t0
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert not (home / "autoform.sqlite").exists()  # nothing stored
    return _one_line_error(r, *names)


@pytest.mark.parametrize(
    "preamble, body, macro, line",
    [
        ("\\newcommand{\\x}{\\label{l}\\x\\x}\n", "\\x", "\\x", "main.tex:6"),
        ("\\def\\y{\\input{part}\\y\\y}\n", "\\y", "\\y", "main.tex:6"),
    ],
    ids=["newcommand-bomb", "def-input-bomb"],
)
def test_expansion_bombs_stop_at_once_naming_the_macro_and_line(tmp_path, preamble, body, macro, line):
    book = _book(tmp_path / "book", body, preamble)
    (tmp_path / "book" / "part.tex").write_text("some text\n")
    _ingest_fails(tmp_path, book, macro, line, "expands into itself")


def test_a_wide_macro_bomb_hits_the_expansion_budget(tmp_path):
    names = ["ga", "gb", "gc", "gd", "ge", "gf", "gg", "gh"]
    defs = "\\newcommand{\\ga}{\\label{x}}\n" + "".join(
        f"\\newcommand{{\\{a}}}{{{(chr(92) + b + ' ') * 10}}}\n" for a, b in zip(names[1:], names, strict=False)
    )
    book = _book(tmp_path / "book", "\\gh", defs)
    line = _ingest_fails(tmp_path, book, "main.tex:13", "expansion steps", config="[ingest]\nmax_expansion = 200000\n")
    assert "max_expansion" in line


def test_size_units_and_nesting_limits_are_clear_errors(tmp_path):
    big = _book(tmp_path / "big", "x" * (2 * 2**20))
    _ingest_fails(tmp_path / "a", big, "main.tex", "MB", "max_file_mb", config="[ingest]\nmax_file_mb = 1\n")
    many = _book(tmp_path / "many", "\n".join(f"\\begin{{theorem}}{k}\\end{{theorem}}" for k in range(150)))
    _ingest_fails(tmp_path / "b", many, "main.tex:", "100 theorem-like units", config="[ingest]\nmax_units = 100\n")
    deep = _book(tmp_path / "deep", "\\begin{theorem}\n" * 300 + "\\end{theorem}\n" * 300)
    _ingest_fails(tmp_path / "c", deep, "main.tex:", "nested 201 deep")


def test_nested_theorems_cost_linear_time(tmp_path):
    from autoform.ingest.latex import Limits, ingest_latex

    times = {}
    for n in (1000, 4000):
        book = _book(
            tmp_path / f"n{n}",
            "\n".join(f"\\begin{{theorem}} level {k}" for k in range(n)) + "\n" + "\\end{theorem}\n" * n,
        )
        t0 = time.perf_counter()
        result = ingest_latex(book, limits=Limits(max_nesting=10 * n))
        times[n] = time.perf_counter() - t0
        assert len(result.units) == n + 1
        # each nested unit is its own unit, not part of the text of the one around it
        assert "level 1 " not in result.units[1].statement or "level 2" not in result.units[1].statement
    assert times[4000] < 8 * times[1000] + 0.5, times  # quadratic would be 16x
    assert times[4000] < 5


def test_inputs_outside_the_book_are_refused_unless_allowed(tmp_path):
    secret = tmp_path / "outside" / "secret.tex"
    secret.parent.mkdir()
    secret.write_text("\\begin{theorem}the secret\\end{theorem}\n")
    for k, target in enumerate((str(secret), "../outside/secret")):
        book = _book(tmp_path / f"book{k}", f"\\input{{{target}}}")
        line = _ingest_fails(tmp_path / f"h{k}", book, "main.tex:5", "refused", str(secret), "--allow-input")
        assert target in line
    link = tmp_path / "book0" / "inside.tex"  # a link inside the book to a file outside is outside too
    link.symlink_to(secret)
    book = _book(tmp_path / "book0", "\\input{inside}")
    _ingest_fails(tmp_path / "h2", book, "refused", str(secret))
    home = tmp_path / "ok"
    home.mkdir()
    r = autoform(home, "ingest", str(book), "--book", "b", "--allow-input", str(secret.parent), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["units"] == 2


def test_a_long_input_chain_stops_at_texs_limit(tmp_path):
    d = tmp_path / "book"
    book = _book(d, "\\input{f1}")
    for k in range(1, 251):
        (d / f"f{k}.tex").write_text(f"\\input{{f{k + 1}}}\n")
    (d / "f251.tex").write_text("end\n")
    _ingest_fails(tmp_path, book, "f14.tex:1", "more than 15 files open")


# ========================================================== 8-9. an endpoint and a Lean that keep failing
@pytest.mark.parametrize("fault", ["junk", "no-choices"])
def test_an_endpoint_answering_junk_stops_the_job_and_charges_no_unit(workspace, fault):
    ws = workspace(book_script())
    home = ws.home
    autoform(home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    ws.llm.fault = fault
    t0 = time.monotonic()
    r = autoform(home, "run", "ent", timeout=120)
    assert r.returncode == 3, r.stderr
    assert time.monotonic() - t0 < 30
    assert ws.llm.base_url in r.stderr and "Traceback" not in r.stderr
    conn = _db(home)
    assert conn.execute("SELECT COUNT(*) FROM units WHERE status = 'failed'").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 0
    assert conn.execute("SELECT status FROM jobs").fetchone()[0] == "interrupted"
    ws.llm.fault = None  # the endpoint is back: the resumed job is not poisoned
    s = json.loads(autoform(home, "run", "ent", "--json", check=True).stdout)
    assert s["resumed"] and s["status"] == "done" and s["units"].get("failed", 0) <= 1


@pytest.mark.parametrize("mode", ["die", "garbage"])
def test_a_lean_that_fails_every_check_trips_the_breaker_and_leaves_units_pending(workspace, tmp_path, mode):
    ws = workspace(
        book_script(),
        repl_env={"FAKE_REPL_MODE": mode},
        extra="max_attempts = 1\ndrafts = 1\nlean_failures_to_stop = 3\n",
    )  # under [job]
    home = ws.home
    autoform(home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    t0 = time.monotonic()
    r = autoform(home, "run", "ent", "--json", timeout=120)
    assert r.returncode == 3, r.stderr
    assert time.monotonic() - t0 < 60
    s = json.loads(r.stdout)
    assert s["stop_reason"] == "lean" and "no verdict on 3 checks in a row" in s["message"]
    conn = _db(home)
    assert conn.execute("SELECT COUNT(*) FROM units WHERE status = 'failed'").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM atlas_entries").fetchone()[0] == 0
    assert conn.execute("SELECT status FROM jobs").fetchone()[0] == "failed"
    # Lean repaired: the next run is a fresh job and formalizes the book
    write_config(
        home,
        base_url=ws.llm.base_url,
        repl_dir=make_repl_dir(tmp_path / "fixed"),
        extra="max_attempts = 1\ndrafts = 1\n",
    )
    s2 = json.loads(autoform(home, "run", "ent", "--json", check=True).stdout)
    assert s2["status"] == "done" and not s2["resumed"] and s2["admitted_this_job"] > 30


# ================================================================================== 10. the terminal
def test_status_at_80_columns_shows_whole_headers_and_wide_shows_all(workspace):
    ws = workspace(book_script())
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "elementary-number-theory", check=True)
    out = autoform(ws.home, "status", env={"COLUMNS": "80"}, check=True).stdout
    assert "…" not in out and all(len(ln) <= 80 for ln in out.splitlines())
    for header in ("book", "proved", "failed", "pending", "cost"):
        assert f" {header} " in out
    assert "elementary-number-theory" in out and "--wide" in out
    wide = autoform(ws.home, "status", "--wide", env={"COLUMNS": "80"}, check=True).stdout
    assert "…" not in wide
    for header in ("LLM calls (cached)", "Lean checks (cache hits)", "rate /min", "in flight", "attempts"):
        assert header in wide


def test_the_live_view_fits_80_columns():
    from rich.console import Console

    from autoform.jobs import JobMonitor, render_live
    from autoform.store import Unit

    class Runner:
        stop = threading.Event()
        fatal, stop_reason = None, ""

    units = {
        k: Unit(
            id=k,
            book_id=1,
            ident=str(k),
            seq=k,
            kind="theorem",
            number=f"1.{k}",
            title="A rather long title of a theorem",
            statement="s",
        )
        for k in range(1, 9)
    }
    mon = JobMonitor(units, total=8)
    for u in units.values():
        mon.started(u)
    mon.usd, mon.attempts, mon.tokens = 12.5, 321, 123456
    runner = Runner()
    runner.monitor = mon  # type: ignore[attr-defined]
    for width in (80, 60):
        con = Console(record=True, width=width, force_terminal=True, file=io.StringIO())
        con.print(render_live(runner, "elementary-number-theory"))  # type: ignore[arg-type]
        text = con.export_text()
        assert all(len(ln) <= width for ln in text.splitlines())
        assert "admitted 0" in text and "failed 0" in text and "in flight 8" in text and "$12.5000" in text
        stats = [ln for ln in text.splitlines() if "admitted" in ln][0]
        assert "…" not in stats


# ================================================================== 11. encrypted PDFs, a double Ctrl-C
def _encrypted_pdf(path: Path, how: str) -> None:
    from pypdf import PdfReader, PdfWriter
    from test_pdf import make_pdf

    w = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([["Theorem 1.1", "Every even number is even."]]))))
    w.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    buf = io.BytesIO()
    w.write(buf)
    data = buf.getvalue()
    if how == "public-key":  # certificate security, which pypdf cannot even open
        data = data.replace(b"/Filter /Standard", b"/Filter /Adobe.PubSec")
    elif how == "aes-256":  # the usual encryption today; needs the `cryptography` package in pypdf
        data = data.replace(b"/V 2", b"/V 5").replace(b"/R 3", b"/R 6")
    path.write_bytes(data)


@pytest.mark.parametrize("how", ["public-key", "aes-256"])
def test_an_encrypted_pdf_says_it_is_encrypted(tmp_path, how):
    pdf = tmp_path / "locked.pdf"
    _encrypted_pdf(pdf, how)
    line = _ingest_fails(tmp_path, pdf, str(pdf), "encrypted")
    assert "not a readable PDF" not in line


def test_repeated_ctrl_c_exits_with_the_documented_code(workspace):
    from fake_llm import Reply

    base = book_script()
    ws = workspace(lambda body: Reply(text=r, delay_s=0.2) if isinstance(r := base(body), str) else r)
    home = ws.home
    autoform(home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AUTOFORM_"))}
    codes = []
    for gap in (0.0, 0.05, 0.3):
        with contextlib.closing(_db(home)) as conn:
            calls = conn.execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0]
        proc = subprocess.Popen(
            [sys.executable, "-m", "autoform", "--home", str(home), "run", "ent", "--jobs", "3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:  # this run's job is under way
            with contextlib.suppress(sqlite3.Error), contextlib.closing(_db(home)) as conn:
                if conn.execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0] > calls + 3:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, "the job ended before Ctrl-C; slow the scripted server down"
        for _ in range(4):  # Ctrl-C pressed again and again
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            time.sleep(gap)
        _, err = proc.communicate(timeout=60)
        codes.append(proc.returncode)
        assert "Traceback" not in err, err
    assert codes == [1, 1, 1], codes
    # nothing lost: the job resumes and finishes
    r = autoform(home, "run", "ent", "--json", check=True)
    assert json.loads(r.stdout)["status"] == "done"
