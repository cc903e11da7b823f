"""`autoform atlas build` ends with an audit, and `autoform atlas audit` runs it alone: the built Atlas is asked
in a fresh Lean process (stand-ins: tests/standin/lake `build` and `env lean`, tests/standin/lean) for every
declaration's axioms and type, and compared with the store."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from conftest import ROOT, SAMPLE_BOOK, autoform, book_script

pytestmark = pytest.mark.slow


@pytest.fixture
def atlas_home(workspace):
    ws = workspace(book_script())
    home = ws.home
    autoform(home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    r = autoform(home, "run", "ent", "--json")
    assert r.returncode == 0, r.stderr
    shutil.copy(ROOT / "lakefile.lean", home / "lakefile.lean")
    return home


def _audit(home, **env):
    r = autoform(home, "atlas", "audit", "--json", env=env or None)
    return r.returncode, json.loads(r.stdout)


def test_build_ends_with_a_clean_audit_and_each_tampering_is_found(atlas_home):
    home = atlas_home
    r = autoform(home, "atlas", "build")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "audit clean" in r.stdout
    rc, report = _audit(home)
    assert rc == 0 and report["ok"] and report["checked"] >= 30 and report["findings"] == []

    # a hand edit that brings an axiom into a module is found without running anything
    module = home / "atlas" / "Atlas" / "Ent" / "ElementaryNumberTheory.lean"
    original = module.read_text()
    module.write_text(original.replace("end Atlas.Ent", "axiom cheat : False\nend Atlas.Ent"))
    rc, report = _audit(home)
    assert rc == 1 and any(
        f["code"] == "forbidden" and "ElementaryNumberTheory.lean" in f["where"] for f in report["findings"]
    )
    module.write_text(original)

    # a lock in the store that is not what was built
    conn = sqlite3.connect(home / "autoform.sqlite")
    pid, data = conn.execute("SELECT id, data FROM posts WHERE kind = 'lock' ORDER BY id LIMIT 1").fetchone()
    lock = json.loads(data)
    conn.execute(
        "UPDATE posts SET data = ? WHERE id = ?",
        (json.dumps({**lock, "elaborated_type": lock["elaborated_type"] + " ∧ True"}), pid),
    )
    conn.commit()
    rc, report = _audit(home)
    assert rc == 1
    assert [f["code"] for f in report["findings"]] == ["statement_changed"]
    conn.execute("UPDATE posts SET data = ? WHERE id = ?", (data, pid))
    conn.commit()
    conn.close()

    # a built library whose declarations depend on an axiom beyond the standard three
    r = autoform(home, "atlas", "build", env={"FAKE_REPL_AXIOMS": "smuggled"})
    assert r.returncode == 1 and "audit failed" in r.stderr
    rc, report = _audit(home)
    assert rc == 1 and {f["code"] for f in report["findings"]} == {"axioms"}
    assert all("smuggled" in f["message"] for f in report["findings"])


def test_audit_without_lake_says_what_is_missing(atlas_home):
    toml = atlas_home / "autoform.toml"
    toml.write_text(toml.read_text().replace('lake_path = "', 'lake_path = "/nonexistent/'))
    r = autoform(atlas_home, "atlas", "audit")
    assert r.returncode == 3 and "not found" in r.stdout + r.stderr
