"""One Lean environment per import block: ProofNet-Verified's problems, checked through the stand-in REPL, start
one header environment per import block (5) instead of one per header (73), with the same verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_repl_dir, write_config
from test_eval import PROOFNET

from autoform.config import Settings, load_settings
from autoform.evaluation.bench import Problem, load
from autoform.evaluation.headers import HeaderOracles, SharedHeader, split_header
from autoform.evaluation.runner import groups
from autoform.lean.gate import Candidate, check_statement
from autoform.lean.oracle import LeanCheck
from autoform.lean.repl_pool import ReplPool
from autoform.people import clean_statement

pytestmark = pytest.mark.skipif(not PROOFNET.is_file(), reason=f"{PROOFNET} is absent")


def settings(tmp_path: Path, log: Path) -> Settings:
    home = tmp_path / "home"
    home.mkdir(parents=True)
    write_config(
        home, base_url="http://127.0.0.1:9/v1", repl_dir=make_repl_dir(tmp_path, env={"FAKE_REPL_LOG": str(log)})
    )
    s = load_settings(home)
    return s.model_copy(update={"lean": s.lean.model_copy(update={"pool_size": 1, "prewarm": 1, "max_uses": 100_000})})


def reference_type(oracle: object, p: Problem) -> str | None:
    text = clean_statement(p.formal, definition=False)
    return check_statement(Candidate(kind="theorem", namespace="Atlas.Pn", statement=text), oracle).elaborated_type  # type: ignore[arg-type]


def commands(log: Path) -> list[dict]:
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def test_split_header():
    assert split_header("import Mathlib\nimport Foo.Bar\n\nopen Nat Real\nopen scoped BigOperators") == (
        "import Mathlib\nimport Foo.Bar",
        "open Nat Real\nopen scoped BigOperators",
    )
    assert split_header("import Mathlib\n") == ("import Mathlib", "")
    assert split_header("import Mathlib\n-- a comment\nimport X\ndef f := 1") == (
        "import Mathlib\nimport X",
        "def f := 1",
    )


def test_proofnet_one_environment_per_import_block(tmp_path, capsys):
    problems = load(PROOFNET)
    headers = groups(problems)
    blocks = {split_header(h)[0] for h in headers}
    # before: a pool per header (the header is each process's first command)
    before_log = tmp_path / "before.log"
    s = settings(tmp_path / "a", before_log)
    before: dict[str, str | None] = {}
    for header, group in headers.items():
        pool = ReplPool(s.model_copy(update={"lean": s.lean.model_copy(update={"header": header})}))
        pool.start()
        try:
            before |= {p.name: reference_type(pool, p) for p in group}
        finally:
            pool.close()
    # after: a backend per import block, each header's rest a shared block on it
    after_log = tmp_path / "after.log"
    s2 = settings(tmp_path / "b", after_log)
    oracles = HeaderOracles(s2, ReplPool)
    after: dict[str, str | None] = {}
    try:
        for header, group in headers.items():
            oracle = oracles.oracle(header)
            after |= {p.name: reference_type(oracle, p) for p in group}
    finally:
        oracles.close()
    assert after == before and sum(t is not None for t in after.values()) > 300  # the same verdicts
    imports_before = [c for c in commands(before_log) if c["cmd"].startswith("import")]
    imports_after = [c for c in commands(after_log) if c["cmd"].startswith("import")]
    assert len(imports_before) == len(headers) == 73
    assert len(imports_after) == len(blocks) == len(oracles.started) == 5
    assert len({c["pid"] for c in commands(after_log)}) == 5  # one Lean process an import block
    # each header's rest (opens, helpers) elaborated once on its block's environment, then reused
    rests = [c for c in commands(after_log) if c.get("env") == 0 and not c["cmd"].startswith("set_option autoImplicit")]
    pairs = {split_header(h) for h in headers}  # (import block, rest): one shared block in that block's process
    assert sorted(c["cmd"] for c in rests) == sorted(rest + "\n" for _, rest in pairs if rest)
    with capsys.disabled():
        print(
            f"\nProofNet-Verified: {len(problems)} problems, {len(headers)} distinct headers (with helpers), "
            f"{len(blocks)} import blocks; header environments started: before {len(imports_before)}, "
            f"after {len(imports_after)}; header rests elaborated as shared blocks: {len(rests)}"
        )


def test_shared_header_positions_are_the_code_s(tmp_path):
    """A message is reported at its line in the code checked, not in the header's rest put before it."""
    log = tmp_path / "log"
    s = settings(tmp_path, log)
    oracles = HeaderOracles(s, ReplPool)
    try:
        oracle = oracles.oracle("import Mathlib\n\nopen Nat\nopen Real")
        assert isinstance(oracle, SharedHeader)
        r: LeanCheck = oracle.check("theorem t : True := by\n  exact bogus_x\n")
        assert [(m.line, m.text) for m in r.errors] == [(2, "unknown identifier 'bogus_x'")]
        # an explicit header of the same import block: the same process, another shared block
        r2 = oracle.check("theorem u : True := by\n  trivial\n", header="import Mathlib\nopen Set")
        assert not r2.errors and oracles.started == ["import Mathlib"]
    finally:
        oracles.close()
    cmds = [c["cmd"] for c in commands(log)]
    assert cmds.count("import Mathlib") == 1 and "open Nat\nopen Real\n" in cmds and "open Set\n" in cmds


def test_tactic_mode_through_the_shared_header(tmp_path):
    """The decomposition's goal-level session (tactic mode, found through the result cache) checks its texts
    after the header's rest too, positions relative to the text."""
    from autoform.lean.cache import CachedOracle
    from autoform.lean.goals import holes, tactic_mode
    from autoform.store import open_store

    log = tmp_path / "log"
    s = settings(tmp_path, log)
    oracles = HeaderOracles(s, ReplPool)
    try:
        header = "import Mathlib\n\nopen Nat"
        oracle = CachedOracle(oracles.oracle(header), open_store(tmp_path / "s.sqlite"), s)
        mode = tactic_mode(oracle)
        assert isinstance(mode, SharedHeader)
        with mode.session() as session:
            check = session.check("theorem t (n : ℕ) : n = n := by\n  sorry\n")
            found = holes(check)
            assert [h.line for h in found] == [2]
            assert session.tactic(found[0].proof_state, "rfl").solved
    finally:
        oracles.close()
    cmds = [c.get("cmd") for c in commands(log)]
    assert "open Nat\n\ntheorem t (n : ℕ) : n = n := by\n  sorry\n" in cmds
