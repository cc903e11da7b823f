"""What each unit cost and how it was closed: ``autoform status BOOK --units`` (table and JSON), the unit's
transcript and its page on the site, recomputed here from the store's own rows."""

from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import SAMPLE_BOOK, autoform, make_repl_dir, write_config
from fake_llm import FakeLLM
from test_jobs import script

PRICES = '[llm.prices]\n"test-model" = [1.0, 2.0]\n'


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """The sample book run once, with prices (the workspace fixture is per test: the same, built by hand)."""
    tmp = tmp_path_factory.mktemp("unitcost")
    home = tmp / "home"
    home.mkdir()
    with FakeLLM(script()) as srv:
        write_config(home, base_url=srv.base_url, repl_dir=make_repl_dir(tmp, env={}), extra=PRICES)
        autoform(home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
        summary = json.loads(autoform(home, "run", "ent", "--json", "--jobs", "2", check=True).stdout)
    return home, summary


def _db(home):
    return sqlite3.connect(home / "autoform.sqlite")


def test_status_units_json_equals_the_stores_rows(ran):
    home, summary = ran
    got = json.loads(autoform(home, "status", "ent", "--units", "--json", check=True).stdout)
    units = {u["unit_id"]: u for u in got["units"]}
    conn = _db(home)
    present = [r[0] for r in conn.execute("SELECT id FROM units WHERE present = 1 ORDER BY seq")]
    assert [u["unit_id"] for u in got["units"]] == present
    for uid, u in units.items():
        calls, pt, ct = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) "
            "FROM llm_calls WHERE unit_id = ? AND cached = 0",
            (uid,),
        ).fetchone()
        checks = conn.execute("SELECT COUNT(*) FROM attempts WHERE unit_id = ?", (uid,)).fetchone()[0]
        assert (u["llm_calls"], u["tokens"], u["lean_checks"]) == (calls, pt + ct, checks)
        assert u["cost_usd"] == pytest.approx((pt * 1.0 + ct * 2.0) / 1e6, abs=1e-6)
        author = conn.execute(
            "SELECT COALESCE(t.author, 'stated') FROM atlas_entries a LEFT JOIN attempts t ON t.id = a.attempt_id "
            "WHERE a.unit_id = ?",
            (uid,),
        ).fetchone()
        assert u["closed_by"] == (author[0] if author else "")
    # every admitted unit says how it was closed; the failed one says nothing
    entries = conn.execute("SELECT COUNT(*) FROM atlas_entries").fetchone()[0]
    assert sum(1 for u in units.values() if u["closed_by"]) == entries == 38
    assert {u["closed_by"] for u in units.values() if u["status"] == "failed"} == {""}
    unit_calls = conn.execute("SELECT COUNT(*) FROM llm_calls WHERE unit_id IS NOT NULL AND cached = 0").fetchone()[0]
    assert got["total"]["llm_calls"] == unit_calls > 0
    assert got["total"]["cost_usd"] <= summary["cost_usd"] + 1e-9


def test_status_units_table_and_usage_error(ran):
    home, _ = ran
    txt = autoform(home, "status", "ent", "--units", "--wide", check=True).stdout
    assert "closed by" in txt and "whole proof" in txt and "$" in txt
    bad = autoform(home, "status", "--units")
    assert bad.returncode == 2 and "--units needs a BOOK" in bad.stderr


def test_transcript_and_unit_page_show_the_cost(ran):
    home, _ = ran
    conn = _db(home)
    uid, label = conn.execute(
        "SELECT u.id, u.label FROM units u JOIN atlas_entries a ON a.unit_id = u.id "
        "JOIN attempts t ON t.id = a.attempt_id WHERE t.author = 'prover' ORDER BY u.seq LIMIT 1"
    ).fetchone()
    calls = conn.execute("SELECT COUNT(*) FROM llm_calls WHERE unit_id = ? AND cached = 0", (uid,)).fetchone()[0]
    text = autoform(home, "transcript", "ent", label, check=True).stdout
    assert f"closed by whole proof; cost: {calls} LLM calls" in text
    data = json.loads(autoform(home, "transcript", "ent", label, "--json", check=True).stdout)
    assert data["cost"]["closed_by"] == "prover" and data["cost"]["llm_calls"] == calls
    autoform(home, "atlas", "site", "--out", str(home / "site"), check=True)
    page = next((home / "site").rglob(f"{uid}.html")).read_text(encoding="utf-8")
    assert f"closed by whole proof; cost: {calls} LLM calls" in page
