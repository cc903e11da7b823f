"""What a reader could not keep of a statement is flagged on the unit (issue 19, point 3): the PDF reader's flags
(math built up over lines, a figure left out) are stored with the unit, shown on its page and told to the
drafter, not only listed among the book's warnings."""

from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import SHARED, autoform

from agents.base import _env
from autoform.store import Unit

AXLER = SHARED / "textbooks" / "proofnet-informal" / "informal" / "Axler.pdf"


def _drafter_prompt(unit: Unit) -> str:
    variables = {"namespace": "Ent", "deps": [], "deps_stated": [], "context": "", "key_context": "", "k": 1}
    return _env.get_template("drafter/prompt.md").render(unit=unit, previous_error="", header="", **variables)


@pytest.mark.skipif(not AXLER.exists(), reason=f"shared data absent: {AXLER}")
def test_a_pdf_units_flags_are_stored_shown_and_told_to_the_drafter(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    r = autoform(home, "ingest", str(AXLER), "--book", "axler", "--json", check=True)
    warned = [w for w in json.loads(r.stdout)["warnings"] if "math built up over lines" in w]
    conn = sqlite3.connect(home / "autoform.sqlite")
    rows = conn.execute("SELECT id, kind, number, flags FROM units WHERE present = 1 ORDER BY seq").fetchall()
    flagged = {f"{kind} {number}": (uid, json.loads(flags)) for uid, kind, number, flags in rows if flags != "[]"}
    # the same units the book's warnings name, each with its flag (Axler 1.2 has a fraction built up over lines)
    assert flagged and len(flagged) == len(warned)
    assert all(any(f"{name}: math built up" in w for w in warned) for name in flagged)
    assert any(name.endswith(" 1.2") for name in flagged)
    uid, flags = next(v for k, v in flagged.items() if k.endswith(" 1.2"))
    assert flags == [
        "math built up over lines (a fraction, limits under a sum or a radical) is spread over the "
        "statement's lines; check it against the page"
    ]
    unflagged = next(uid for uid, _k, _n, f in rows if f == "[]")
    # its page says so; an unflagged unit's page does not
    autoform(home, "atlas", "site", "--out", str(home / "site"), check=True)
    page = next((home / "site").rglob(f"{uid}.html")).read_text(encoding="utf-8")
    assert "Read from a PDF, with care" in page and "math built up over lines" in page
    other = next((home / "site").rglob(f"{unflagged}.html")).read_text(encoding="utf-8")
    assert "Read from a PDF, with care" not in other
    # the drafter is told; a unit without flags gets the prompt it always had
    from autoform.store import Store

    store = Store(home / "autoform.sqlite")
    prompt = _drafter_prompt(store.unit(uid))
    assert "could not keep all of this statement from the book's PDF" in prompt and flags[0] in prompt
    plain = store.unit(unflagged)
    assert "book's PDF" not in _drafter_prompt(plain)


def test_re_ingest_keeps_flags_with_the_unit(tmp_path):
    """A LaTeX book has no flags; the column defaults to none, and a re-ingest leaves units unchanged."""
    from conftest import SAMPLE_BOOK

    home = tmp_path / "home"
    home.mkdir()
    autoform(home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    again = json.loads(autoform(home, "ingest", str(SAMPLE_BOOK), "--book", "ent", "--json", check=True).stdout)
    assert again["updated"] == 0 and again["unchanged"] == again["units"] > 0
    conn = sqlite3.connect(home / "autoform.sqlite")
    assert {f for (f,) in conn.execute("SELECT flags FROM units")} == {"[]"}
