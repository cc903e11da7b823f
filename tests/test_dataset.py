"""`autoform atlas dataset`: the Atlas as JSON Lines, pairing the book's informal text with what Lean
checked, after a real job on the sample textbook (scripted LLM server, oracle double)."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import ROOT, autoform, needs_lean
from fake_llm import FakeLLM
from test_jobs import FAIL_LABEL, FINAL_UNITS, STATED_LABEL, make_home, script

from autoform.config import Settings
from autoform.dataset import (
    DatasetError,
    Record,
    Trace,
    TracedTactic,
    attach_traces,
    check_trace_workspace,
    standalone_text,
    trace_atlas,
)
from autoform.toolchain.workspace import find_lake


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
    # the book's references, by declaration name
    names = {x["decl_name"] for x in recs}
    by_id = {y["unit"]["id"]: y["decl_name"] for y in recs}
    assert any(x["book_depends_on"] for x in recs)
    for x in recs:
        book_deps = {d for (d,) in conn.execute("SELECT dep_id FROM unit_deps WHERE unit_id = ?", (x["unit"]["id"],))}
        assert set(x["book_depends_on"]) == {by_id[d] for d in book_deps if d in by_id}
    # depends_on: the Atlas declarations the Lean code names (an independent word match on the code)
    assert any(set(x["depends_on"]) != set(x["book_depends_on"]) for x in recs)
    for x in recs:
        words = set(re.findall(r"[\w'.]+", x["lean_code"]))
        named = {n for n in names - {x["decl_name"]} if n.rsplit(".", 1)[1] in words or n in words}
        assert set(x["depends_on"]) == named, x["decl_name"]
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
    lock = json.loads(
        conn.execute(
            "SELECT p.data FROM posts p JOIN units u ON u.id = p.unit_id WHERE u.label = ? "
            "AND p.kind = 'lock' ORDER BY p.id DESC",
            (FAIL_LABEL,),
        ).fetchone()[0]
    )
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
    base = {
        "book": "b",
        "unit": {
            "id": 1,
            "ident": "u",
            "kind": "theorem",
            "number": "1",
            "title": "",
            "label": "",
            "location": "",
            "source": "",
        },
        "informal_statement": "s",
        "informal_proof": "",
        "lean_statement": "theorem t : True",
    }
    proved = Record(
        **base,
        status="proved",
        decl_name="Atlas.B.t",
        module="Atlas.B.C",
        lean_code="theorem t : True := by\n  trivial",
    )
    only = Record(**base, status="statement_only", decl_name="Atlas.B.u", module=None, lean_code=None)
    tr = Trace(
        tactics=[TracedTactic(tactic="trivial", state_before="⊢ True", state_after="no goals")], premises=["True.intro"]
    )
    assert attach_traces([proved, only], {"Atlas.B.t": tr, "Atlas.B.u": tr}) == 1
    assert proved.trace == tr and only.trace is None


@pytest.mark.lean
@pytest.mark.skipif(
    shutil.which("lake") is None, reason="needs a real Lean 4 toolchain: `lake` is not on PATH (run scripts/setup.sh)"
)
def test_trace_with_real_lean_gives_tactic_states(home: Path, tmp_path: Path) -> None:
    pytest.importorskip("lean_dojo", reason="LeanDojo is an optional extra: pip install -e '.[dojo]'")
    ws = tmp_path / "ws"  # the workspace as LeanDojo takes it: the Lake project at the git top level
    shutil.copytree(home, ws)
    for f in ("lakefile.lean", "lake-manifest.json", "lean-toolchain"):
        shutil.copy(ROOT / f, ws / f)
    (ws / ".gitignore").write_text(".lake/\n")
    _git(ws, "init", "-q")
    _git(ws, "add", "-A")
    _git(ws, "commit", "-qm", "atlas")
    out = tmp_path / "traced.jsonl"
    r = autoform(ws, "atlas", "dataset", "--out", str(out), "--trace", "--json", timeout=7200)
    assert r.returncode == 0, r.stderr
    traced = [x for x in _lines(out) if x["trace"]]
    assert traced and all(t["tactics"] for t in traced)


def _git(cwd: Path, *args: str) -> str:
    r = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, capture_output=True, text=True, check=True
    )
    return r.stdout.strip()


def test_records_can_be_reopened_and_checked_alone(home: Path, tmp_path: Path) -> None:
    """header + context + formal_statement is the text the gate elaborated; file_path and lines point at the
    declaration in atlas/; without git there is no repository or commit."""
    out = tmp_path / "alone.jsonl"
    autoform(home, "atlas", "dataset", "--out", str(out), "--include-unproved", check=True)
    recs = _lines(out)
    code_of = {x["decl_name"]: x["lean_code"] for x in recs}
    for x in recs:
        assert x["version"] == 2
        assert x["header"].startswith("import Mathlib\n") and x["header"].endswith("namespace Atlas.Ent\n")
        assert "set_option autoImplicit false" in x["header"]
        if x["status"] == "defined":
            assert x["formal_statement"] == x["lean_code"].strip("\n") + "\n"
        else:
            assert x["formal_statement"] == x["lean_statement"].rstrip() + " := by\n  sorry\n"
        # the code of every declaration it names is in its context, before it, in textbook order
        positions = [x["context"].find(code_of[d].strip("\n")) for d in x["depends_on"]]
        assert all(p >= 0 for p in positions) and positions == sorted(positions)
        assert x["context"].count("\n\n") >= len(x["depends_on"]) - 1
        text = standalone_text(Record.model_validate(x))
        assert text.startswith(x["header"]) and text.endswith(x["formal_statement"])
        assert x["repository"] is None and x["commit"] is None  # not a git repository
        if x["status"] == "statement_only":
            assert x["file_path"] is None and x["start_line"] is None
            continue
        lines = (home / x["file_path"]).read_text(encoding="utf-8").splitlines()
        assert x["file_path"] == "atlas/" + x["module"].replace(".", "/") + ".lean"
        short = x["decl_name"].rsplit(".", 1)[1]
        assert re.match(
            rf"\s*(@\[.*\]\s*)?(noncomputable\s+)?(theorem|lemma|def|abbrev)\s+{short}\b", lines[x["start_line"] - 1]
        ), lines[x["start_line"] - 1]
        assert lines[x["start_line"] - 2].rstrip().endswith("-/")  # the doc comment just above
        assert "\n".join(lines[x["start_line"] - 1 : x["end_line"]]).endswith(x["lean_code"].rstrip())
    with_ctx = [x for x in recs if x["context"]]
    assert with_ctx and any(x["status"] == "statement_only" for x in recs)


def test_records_name_the_repository_and_the_commit_only_when_committed(home: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(home, ws)
    _git(ws, "init", "-q")
    _git(ws, "remote", "add", "origin", "https://user:secret-token@example.org/team/atlas.git")
    _git(ws, "add", "-A")
    _git(ws, "commit", "-qm", "atlas")
    head = _git(ws, "rev-parse", "HEAD")
    out = tmp_path / "git.jsonl"
    autoform(ws, "atlas", "dataset", "--out", str(out), check=True)
    recs = _lines(out)
    assert all(x["repository"] == "https://example.org/team/atlas.git" for x in recs)  # no credentials
    assert all(x["commit"] == head and x["file_path"].startswith("atlas/Atlas") for x in recs)
    again = tmp_path / "again.jsonl"
    autoform(ws, "atlas", "dataset", "--out", str(again), check=True)
    assert again.read_bytes() == out.read_bytes()
    # an edit not committed: the commit no longer holds these lines; a module edited by hand: no positions
    module = ws / recs[0]["file_path"]
    module.write_text(module.read_text(encoding="utf-8") + "-- edited\n", encoding="utf-8")
    autoform(ws, "atlas", "dataset", "--out", str(out), check=True)
    edited = _lines(out)
    assert all(x["commit"] is None for x in edited)
    assert all(x["start_line"] is None for x in edited if x["file_path"] is None) and any(
        x["file_path"] is None for x in edited
    )


def test_trace_preflight_names_what_leandojo_needs(home: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    with pytest.raises(DatasetError, match="not a git repository"):
        check_trace_workspace(ws)
    (ws / "atlas").mkdir()
    (ws / "atlas" / "Atlas.lean").write_text("-- atlas\n")
    (ws / "lakefile.lean").write_text('import Lake\nrequire mathlib from "../mathlib4"\n')
    (ws / "lake-manifest.json").write_text(json.dumps({"packages": []}))
    _git(ws, "init", "-q")
    _git(ws, "add", "-A")
    _git(ws, "commit", "-qm", "x")
    with pytest.raises(DatasetError, match="only git requirements"):
        check_trace_workspace(ws)
    shutil.copy(ROOT / "lakefile.lean", ws / "lakefile.lean")
    (ws / "lake-manifest.json").write_text(
        json.dumps({"packages": [{"name": "mathlib", "type": "path", "dir": "../m"}]})
    )
    _git(ws, "commit", "-qam", "y")
    with pytest.raises(DatasetError, match="not from git"):
        check_trace_workspace(ws)
    shutil.copy(ROOT / "lake-manifest.json", ws / "lake-manifest.json")
    _git(ws, "commit", "-qam", "z")
    assert check_trace_workspace(ws).head == _git(ws, "rev-parse", "HEAD")
    (ws / "atlas" / "Atlas.lean").write_text("-- changed\n")
    with pytest.raises(DatasetError, match="not committed"):
        check_trace_workspace(ws)
    sub = ws / "sub"
    sub.mkdir()
    with pytest.raises(DatasetError, match="not the git top level"):
        check_trace_workspace(sub)


class _FakeDojo:
    """Stands in for the ``lean_dojo`` module: records what autoform passes and returns traced theorems."""

    __version__ = "4.20.0"

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail = fail

    def LeanGitRepo(self, url: str, commit: str) -> SimpleNamespace:  # noqa: N802 (LeanDojo's name)
        path = Path(url)
        self.calls.append(
            (
                "repo",
                {
                    "url": url,
                    "commit": commit,
                    "files": sorted(str(p.relative_to(path)) for p in path.rglob("*") if ".git" not in p.parts),
                    "head": _git(path, "rev-parse", "HEAD"),
                },
            )
        )
        return SimpleNamespace(url=url, commit=commit)

    def trace(self, repo: Any, dst_dir: Any = None, build_deps: bool = True) -> SimpleNamespace:
        self.calls.append(("trace", {"repo": repo, "build_deps": build_deps, "dst_dir": dst_dir}))
        if self.fail is not None:
            raise self.fail
        tac = SimpleNamespace(tactic="trivial", state_before="⊢ True", state_after="no goals")

        def thm(name: str) -> SimpleNamespace:
            return SimpleNamespace(
                theorem=SimpleNamespace(full_name=name),
                get_traced_tactics=lambda: [tac],
                get_premise_full_names=lambda: ["True.intro", "True.intro"],
            )

        return SimpleNamespace(get_traced_theorems=lambda: [thm("Atlas.Ent.t"), thm("Mathlib.x")])


def _traceable(tmp_path: Path) -> Settings:
    ws = tmp_path / "myatlas"
    (ws / "atlas").mkdir(parents=True)
    (ws / "atlas" / "Atlas.lean").write_text("-- atlas\n")
    for f in ("lakefile.lean", "lake-manifest.json", "lean-toolchain"):
        shutil.copy(ROOT / f, ws / f)
    (ws / ".gitignore").write_text(".lake/\n")
    (ws / ".lake" / "packages").mkdir(parents=True)
    (ws / ".lake" / "packages" / "huge.olean").write_text("not to be copied")
    _git(ws, "init", "-q")
    _git(ws, "add", "-A")
    _git(ws, "commit", "-qm", "atlas")
    s = Settings(home=ws)
    s.lean.lake_path = shutil.which("true") or "/bin/true"  # stands in for lake: LeanDojo is faked
    return s


def test_trace_hands_leandojo_a_local_clone_at_head_without_dependencies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _traceable(tmp_path)
    fake = _FakeDojo()
    monkeypatch.setitem(sys.modules, "lean_dojo", fake)
    traces = trace_atlas(settings)
    assert list(traces) == ["Atlas.Ent.t"]  # only the Atlas, not the dependencies
    assert traces["Atlas.Ent.t"].premises == ["True.intro"] and traces["Atlas.Ent.t"].tactics[0].tactic == "trivial"
    (kind, repo), (kind2, tr) = fake.calls
    head = _git(settings.home, "rev-parse", "HEAD")
    assert kind == "repo" and repo["commit"] == head and repo["head"] == head
    assert Path(repo["url"]).name == "myatlas" and Path(repo["url"]) != settings.home  # a clone, named alike
    assert "atlas/Atlas.lean" in repo["files"] and "lakefile.lean" in repo["files"]
    assert not any(f.startswith(".lake") for f in repo["files"])  # not Mathlib's build
    assert kind2 == "trace" and tr["build_deps"] is False and tr["repo"].commit == head
    assert not Path(repo["url"]).exists()  # the clone is removed afterwards


def test_a_leandojo_failure_says_which_versions_it_supports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _traceable(tmp_path)
    monkeypatch.setitem(sys.modules, "lean_dojo", _FakeDojo(fail=RuntimeError("ExtractData.lean: unknown constant")))
    with pytest.raises(DatasetError) as e:
        trace_atlas(settings)
    msg = str(e.value)
    assert "LeanDojo 4.20.0" in msg and "unknown constant" in msg and "v4.3.0-rc2" in msg
    assert (ROOT / "lean-toolchain").read_text().strip() in msg and "git requirements" in msg


@pytest.mark.lean
@needs_lean
def test_each_record_elaborates_alone_on_real_lean(home: Path, tmp_path: Path) -> None:
    """The standalone text of each record (header, context, formal statement) elaborates in the workspace."""
    out = tmp_path / "alone.jsonl"
    autoform(home, "atlas", "dataset", "--out", str(out), "--include-unproved", check=True)
    for x in _lines(out):
        f = tmp_path / "Alone.lean"
        f.write_text(standalone_text(Record.model_validate(x)), encoding="utf-8")
        r = subprocess.run(
            [find_lake()[0], "env", "lean", str(f)], cwd=ROOT, capture_output=True, text=True, timeout=1800
        )
        assert r.returncode == 0 and "error" not in r.stdout, (x["decl_name"], r.stdout + r.stderr)
