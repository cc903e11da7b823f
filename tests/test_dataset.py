"""`autoform atlas dataset`: the Atlas as JSON Lines, pairing the book's informal text with what Lean
checked, after a real job on the sample textbook (scripted LLM server, oracle double)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import autoform
from fake_llm import FakeLLM
from test_jobs import FAIL_LABEL, FINAL_UNITS, STATED_LABEL, make_home, script

from autoform.dataset import Record, Trace, TracedTactic, attach_traces


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("dataset")
    with FakeLLM(script()) as srv:
        h = make_home(tmp, srv)
        r = autoform(h, "run", "ent", "--json", "--jobs", "4")
        assert r.returncode == 0, r.stderr
    return h


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_dataset_pairs_each_admitted_unit_with_what_lean_checked(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "atlas.jsonl"
    r = autoform(home, "atlas", "dataset", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    admitted = {k: v for k, v in FINAL_UNITS.items() if k != "failed"}
    assert summary["by_status"] == admitted and summary["records"] == sum(admitted.values())
    recs = _lines(out)
    assert len(recs) == summary["records"]
    conn = sqlite3.connect(home / "autoform.sqlite")
    conn.row_factory = sqlite3.Row
    entries = {r["unit_id"]: r for r in conn.execute("SELECT * FROM atlas_entries")}
    seqs = [conn.execute("SELECT seq FROM units WHERE id = ?", (x["unit"]["id"],)).fetchone()[0] for x in recs]
    assert seqs == sorted(seqs)  # textbook order
    for x in recs:
        Record.model_validate(x)  # the typed schema
        e = entries[x["unit"]["id"]]
        assert x["lean_code"] == e["lean_code"] and x["lean_statement"] == e["statement_lean"]
        assert x["status"] == e["status"] and x["decl_name"].endswith("." + e["decl_name"])
        assert x["decl_name"].startswith("Atlas.Ent.")
        unit = conn.execute("SELECT statement, proof FROM units WHERE id = ?", (x["unit"]["id"],)).fetchone()
        assert x["informal_statement"] == unit["statement"] and x["informal_proof"] == unit["proof"]
        if x["status"] == "stated":
            assert x["module"].startswith("AtlasStated.Ent.") and x["toolchain"] == ""
        else:
            assert x["module"].startswith("Atlas.Ent.") and x["toolchain"]  # the Lean that checked it
            module_file = home / "atlas" / (x["module"].replace(".", "/") + ".lean")
            assert e["lean_code"].strip().splitlines()[-1] in module_file.read_text()
    # dependencies name declarations of the dataset, as the book's references say
    names = {x["decl_name"] for x in recs}
    with_deps = [x for x in recs if x["depends_on"]]
    assert with_deps and all(set(x["depends_on"]) <= names for x in with_deps)
    for x in with_deps:
        book_deps = {d for (d,) in conn.execute("SELECT dep_id FROM unit_deps WHERE unit_id = ?", (x["unit"]["id"],))}
        by_id = {y["unit"]["id"]: y["decl_name"] for y in recs}
        assert set(x["depends_on"]) == {by_id[d] for d in book_deps if d in by_id}
    labels = {x["unit"]["label"] for x in recs}
    assert STATED_LABEL in labels and FAIL_LABEL not in labels  # nothing unproved unless asked
    # deterministic: a second export is byte-identical
    out2 = tmp_path / "again.jsonl"
    autoform(home, "atlas", "dataset", "--out", str(out2), check=True)
    assert out2.read_bytes() == out.read_bytes()


def test_include_unproved_adds_locked_statements_without_code(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    r = autoform(home, "atlas", "dataset", "--out", str(out), "--include-unproved", "--json")
    assert r.returncode == 0, r.stderr
    recs = {x["unit"]["label"]: x for x in _lines(out)}
    failed = recs[FAIL_LABEL]
    assert failed["status"] == "statement_only" and failed["lean_code"] is None and failed["module"] is None
    conn = sqlite3.connect(home / "autoform.sqlite")
    lock = json.loads(conn.execute("SELECT p.data FROM posts p JOIN units u ON u.id = p.unit_id WHERE u.label = ? "
                                   "AND p.kind = 'lock' ORDER BY p.id DESC", (FAIL_LABEL,)).fetchone()[0])
    assert failed["lean_statement"] == lock["statement"] and failed["elaborated_type"] == lock["elaborated_type"]
    assert json.loads(r.stdout)["by_status"]["statement_only"] == 1


def test_bad_requests_are_clear_and_leave_an_earlier_file_alone(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "keep.jsonl"
    out.write_text("earlier\n")
    r = autoform(home, "atlas", "dataset", "--out", str(out), "--book", "nope")
    assert r.returncode == 2 and "no book 'nope'" in r.stderr
    r = autoform(home, "atlas", "dataset", "--out", str(tmp_path))
    assert r.returncode == 2 and "is a directory" in r.stderr
    assert out.read_text() == "earlier\n"


def test_trace_says_what_is_missing(home: Path, tmp_path: Path) -> None:
    """Without LeanDojo (or without lake, or outside a committed git repository) --trace exits 3 or 2 with
    what to do; nothing is written."""
    out = tmp_path / "traced.jsonl"
    r = autoform(home, "atlas", "dataset", "--out", str(out), "--trace")
    try:
        import lean_dojo  # noqa: F401
    except ImportError:
        assert r.returncode == 3 and "pip install -e '.[dojo]'" in r.stderr
    else:
        if shutil.which("lake") is None:
            assert r.returncode == 3 and "lake" in r.stderr
        else:
            assert r.returncode == 2 and "git" in r.stderr
    assert not out.exists()


def test_attach_traces_joins_by_full_name_and_skips_statements() -> None:
    base = {"book": "b", "unit": {"id": 1, "ident": "u", "kind": "theorem", "number": "1", "title": "", "label": "",
                                  "location": "", "source": ""},
            "informal_statement": "s", "informal_proof": "", "lean_statement": "theorem t : True"}
    proved = Record(**base, status="proved", decl_name="Atlas.B.t", module="Atlas.B.C",
                    lean_code="theorem t : True := by\n  trivial")
    only = Record(**base, status="statement_only", decl_name="Atlas.B.u", module=None, lean_code=None)
    tr = Trace(tactics=[TracedTactic(tactic="trivial", state_before="⊢ True", state_after="no goals")],
               premises=["True.intro"])
    assert attach_traces([proved, only], {"Atlas.B.t": tr, "Atlas.B.u": tr}) == 1
    assert proved.trace == tr and only.trace is None


@pytest.mark.lean
@pytest.mark.skipif(shutil.which("lake") is None, reason="needs a real Lean 4 toolchain: `lake` is not on PATH "
                                                          "(run scripts/setup.sh)")
def test_trace_with_real_lean_gives_tactic_states(home: Path, tmp_path: Path) -> None:
    pytest.importorskip("lean_dojo", reason="LeanDojo is an optional extra: pip install -e '.[dojo]'")
    import subprocess

    subprocess.run(["git", "init", "-q"], cwd=home, check=True)
    subprocess.run(["git", "add", "-A"], cwd=home, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "atlas"], cwd=home, check=True)
    out = tmp_path / "traced.jsonl"
    r = autoform(home, "atlas", "dataset", "--out", str(out), "--trace", "--json", timeout=7200)
    assert r.returncode == 0, r.stderr
    traced = [x for x in _lines(out) if x["trace"]]
    assert traced and all(t["tactics"] for t in traced)
