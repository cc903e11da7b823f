"""`autoform eval --executor ray`: the benchmark's jobs spread over a local Ray cluster started by the test give
the same outcomes as the local executor, their work recorded in the evaluation's store on the head. Skipped
(with the reason) when Ray is not installed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import autoform
from test_eval import EXTRA, TINY, write_bench
from test_eval_reference import ref_script

pytest.importorskip(
    "ray",
    reason="Ray is not installed (pip install 'autoform[ray]'): the Ray executor is tested only where it is available",
)
import test_ray  # noqa: E402

cluster = test_ray.cluster  # the same local cluster fixture

pytestmark = pytest.mark.slow


def outcomes(rep: dict) -> dict[str, tuple]:
    return {
        r["name"]: (r["equivalence"], r["proved"], r["reference"]["proved"] if r["reference"] else None)
        for r in rep["records"]
    }


def test_eval_on_ray_gives_the_local_outcomes(workspace, tmp_path: Path, cluster: str):
    ws = workspace(ref_script, extra=EXTRA + '\n\n[prove]\nstrategy = "attempts"')
    bench = write_bench(tmp_path / "tiny.jsonl", TINY)
    local = autoform(
        ws.home, "eval", str(bench), "--out", str(tmp_path / "local"), "--json", "--prove-reference", timeout=300
    )
    assert local.returncode == 0, local.stdout + local.stderr
    calls_local = len(ws.llm.requests)
    out = tmp_path / "ray"
    args = ["--executor", "ray", "--address", cluster, "--ray-workers", "1", "--jobs", "2"]
    p = autoform(ws.home, "eval", str(bench), "--out", str(out), "--json", "--prove-reference", *args, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    rep = json.loads(p.stdout)
    assert outcomes(rep) == outcomes(json.loads(local.stdout))
    assert rep["params"]["executor"] == "ray"
    # the workers' calls went to the endpoint (the reply cache is the evaluation's own store: nothing shared with
    # the local run) and were recorded in the store on the head, one job a book
    assert len(ws.llm.requests) > calls_local
    db = sqlite3.connect(out / "autoform.sqlite")
    assert db.execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0] == rep["llm_calls"] > 0
    books = db.execute("SELECT COUNT(*) FROM books").fetchone()[0]
    assert db.execute("SELECT COUNT(DISTINCT book_id) FROM jobs").fetchone()[0] == books == 4  # 2 headers x 2
    # resumed on Ray: nothing left, nothing asked
    n = len(ws.llm.requests)
    p2 = autoform(ws.home, "eval", str(bench), "--out", str(out), "--json", "--prove-reference", *args, timeout=600)
    assert p2.returncode == 0, p2.stderr
    assert len(ws.llm.requests) == n and outcomes(json.loads(p2.stdout)) == outcomes(rep)


def test_eval_executor_options_checked(workspace, tmp_path: Path):
    ws = workspace(ref_script, extra=EXTRA)
    bench = write_bench(tmp_path / "tiny.jsonl", TINY)
    p = autoform(ws.home, "eval", str(bench), "--address", "127.0.0.1:6379")
    assert p.returncode == 2 and "--address and --ray-workers go with --executor ray" in p.stderr
    p = autoform(ws.home, "eval", str(bench), "--executor", "dask")
    assert p.returncode == 2 and "--executor 'dask'" in p.stderr
