"""The Lean result cache: no identical check runs twice; failures are not cached; hit rates per job."""

from __future__ import annotations

from pathlib import Path

from conftest import LAKE_STANDIN, make_repl_dir

from autoform.config import LeanConfig, Settings
from autoform.lean import make_oracle
from autoform.lean.cache import CachedOracle, hit_rate
from autoform.lean.oracle import LeanCheck
from autoform.store import Store


class _Counting:
    backend, toolchain = "counting", "t"

    def __init__(self, result=None):
        self.calls, self.result = [], result

    def start(self):
        pass

    def check(self, code, *, header=None, timeout_s=None, context_lines=0):
        self.calls.append((code, header))
        return self.result or LeanCheck(env=len(self.calls))

    def close(self):
        pass


def _settings(tmp_path: Path, **kw) -> Settings:
    proj = tmp_path / "proj"
    proj.mkdir(exist_ok=True)
    (proj / "lean-toolchain").write_text("leanprover/lean4:v4.24.0\n")
    return Settings(home=tmp_path, lean=LeanConfig(project_dir=str(proj), **kw))


def test_identical_checks_run_once(tmp_path):
    s = _settings(tmp_path)
    store = Store(s.db_path)
    inner = _Counting()
    o = CachedOracle(inner, store, s, job_id=None)
    a = o.check("theorem a : True := trivial")
    b = o.check("theorem a : True := trivial")
    assert a == b and len(inner.calls) == 1
    o.check("theorem a : True := trivial", header="import Lean")  # another header: another key
    o.check("theorem b : True := trivial")
    assert len(inner.calls) == 3
    assert hit_rate(store) == {"checks": 4, "cache_hits": 1, "hit_rate": 0.25, "failures": 0}
    # a new oracle on the same store (a resumed job) hits too
    inner2 = _Counting()
    CachedOracle(inner2, store, s).check("theorem b : True := trivial")
    assert inner2.calls == []


def test_toolchain_is_part_of_the_key(tmp_path):
    s = _settings(tmp_path)
    store = Store(s.db_path)
    inner = _Counting()
    CachedOracle(inner, store, s).check("theorem a : True := trivial")
    (s.lean_project / "lean-toolchain").write_text("leanprover/lean4:v4.25.0\n")
    CachedOracle(inner, store, s).check("theorem a : True := trivial")
    (s.lean_project / "lake-manifest.json").write_text('{"packages": [{"rev": "abc"}]}')
    CachedOracle(inner, store, s).check("theorem a : True := trivial")
    assert len(inner.calls) == 3


def test_failures_are_not_cached(tmp_path):
    s = _settings(tmp_path)
    store = Store(s.db_path)
    inner = _Counting(LeanCheck(failure="Lean timed out after 300 s"))
    o = CachedOracle(inner, store, s, job_id=7)
    o.check("theorem a : True := trivial")
    o.check("theorem a : True := trivial")
    assert len(inner.calls) == 2
    assert hit_rate(store, 7) == {"checks": 2, "cache_hits": 0, "hit_rate": 0.0, "failures": 2}


def test_cache_can_be_disabled(tmp_path):
    s = _settings(tmp_path, cache=False)
    inner = _Counting()
    o = CachedOracle(inner, Store(s.db_path), s)
    o.check("x")
    o.check("x")
    assert len(inner.calls) == 2


def test_make_oracle_with_store_is_cached_repl_pool(tmp_path):
    s = _settings(tmp_path, lake_path=str(LAKE_STANDIN), repl_path=str(make_repl_dir(tmp_path)))
    store = Store(s.db_path)
    o = make_oracle(s, store)
    try:
        assert isinstance(o, CachedOracle) and o.backend == "repl"
        first = o.check("theorem a : True := by\n  exact bogus")
        again = o.check("theorem a : True := by\n  exact bogus")
        assert first.errors and again == first
        assert o.inner.stats["checks"] == 1
    finally:
        o.close()
