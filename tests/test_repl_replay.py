"""Conformance tests: lean-interact's real ``LeanServer`` against ``tests/repl_replay.py``.

The replay program answers with the bytes the real Lean REPL (leanprover-community/repl @ 8948401,
Lean v4.33.0-rc2) printed in its own test-suite, so these tests pin down what our Lean layer will
receive from a real REPL: message/sorry/tactic shapes, env and proofState numbering, error replies.

Coverage: every ``.in`` with an ``.expected.out`` -- 55 top-level transcripts and 16 under
``test/Mathlib/test`` (71 transcripts, 217 commands); the 3 ``.in`` files without a recorded output
(pickle_scoped_notation*.in, Mathlib H20231214.in) cannot be checked.  ``path`` and pickle commands
work too: the replay keys on the command text and never touches the files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from lean_standin import (  # noqa: E402
    LAKE_STANDIN,
    LEAN_OUTPUT_DIR,
    REPLAY_PROGRAM,
    make_replay_config,
    make_replay_repl_dir,
    read_expected,
    read_transcript,
    repl_tests_dir,
)

DATA_DIR = repl_tests_dir()
if not (DATA_DIR / "test").is_dir():
    pytest.skip(
        f"recorded Lean REPL transcripts not available: {DATA_DIR} is missing "
        f"(expected the shared data checkout at {LEAN_OUTPUT_DIR}; or set REPL_REPLAY_DATA)",
        allow_module_level=True,
    )

import repl_replay  # noqa: E402
from lean_interact import LeanREPLConfig, LeanServer  # noqa: E402
from lean_interact.interface import (  # noqa: E402
    Command,
    CommandResponse,
    FileCommand,
    InfoTree,
    LeanError,
    PickleEnvironment,
    PickleProofState,
    Pos,
    ProofStep,
    ProofStepResponse,
    TacticNode,
    UnpickleEnvironment,
    UnpickleProofState,
)

TIMEOUT = 30
PAIRS = [(Path(i), Path(o)) for i, o in repl_replay.transcript_pairs(DATA_DIR)]
TOP_LEVEL = [p for p in PAIRS if p[0].parent == DATA_DIR / "test"]
MATHLIB = [p for p in PAIRS if p[0].parent == DATA_DIR / "test" / "Mathlib" / "test"]

# REPL/Main.lean tries these in this order; lean-interact has one request model per shape.
_REQUEST_MODELS = (
    ProofStep,
    PickleEnvironment,
    UnpickleEnvironment,
    PickleProofState,
    UnpickleProofState,
    Command,
    FileCommand,
)


def _pair_id(pair: tuple[Path, Path]) -> str:
    return pair[0].relative_to(DATA_DIR / "test").as_posix()[: -len(".in")]


def typed_request(cmd: dict):
    """The lean-interact request model that serializes to exactly ``cmd``."""
    for model in _REQUEST_MODELS:
        try:
            req = model.model_validate(cmd)
        except ValueError:
            continue
        if req.model_dump(exclude_none=True, by_alias=True) == cmd:
            return req
    raise AssertionError(f"no lean-interact request model serializes to {cmd!r}")


def typed_response(request, reply: dict):
    """Validate ``reply`` the way ``LeanServer.run`` does."""
    if set(reply) == {"message"}:
        return LeanError.model_validate(reply)
    if isinstance(request, (Command, FileCommand, PickleEnvironment, UnpickleEnvironment)):
        return CommandResponse.model_validate(reply)
    return ProofStepResponse.model_validate(reply)


@pytest.fixture(scope="module")
def replay_config(tmp_path_factory) -> LeanREPLConfig:
    return make_replay_config(tmp_path_factory.mktemp("replay"))


@pytest.fixture
def server(replay_config):
    with LeanServer(replay_config) as srv:
        yield srv


# --------------------------------------------------------------------------- full transcripts


@pytest.mark.parametrize("pair", TOP_LEVEL + MATHLIB, ids=_pair_id)
def test_transcript_replays_through_lean_interact(replay_config, pair):
    """Each recorded command, sent by lean-interact, gets exactly the recorded reply."""
    inp, out = pair
    commands, expected = read_transcript(inp), read_expected(out)
    assert len(commands) == len(expected) > 0
    with LeanServer(replay_config) as server:
        for step, (cmd, want) in enumerate(zip(commands, expected, strict=True)):
            request = typed_request(cmd)  # every recorded command is expressible with lean-interact's models
            got = server.run_dict(cmd, timeout=TIMEOUT)
            assert got == want, f"{_pair_id(pair)} command #{step}: {cmd}"
            typed_response(request, got)  # ...and every recorded reply parses into its response model


def test_coverage_counts():
    top_in = sorted((DATA_DIR / "test").glob("*.in"))
    n_commands = sum(len(read_transcript(i)) for i, _ in TOP_LEVEL)
    n_all = sum(len(read_transcript(i)) for i, _ in PAIRS)
    without_output = [p.name for p in top_in if p not in {i for i, _ in TOP_LEVEL}]
    print(
        f"\nrepl-tests coverage: {len(TOP_LEVEL)}/{len(top_in)} top-level transcripts ({n_commands} commands), "
        f"{len(PAIRS)} incl. Mathlib ({n_all} commands); no recorded output: {without_output}"
    )
    assert len(TOP_LEVEL) >= 50
    assert len(TOP_LEVEL) + len(without_output) == len(top_in)
    assert all(name.startswith("pickle_scoped_notation") for name in without_output)
    index = repl_replay.build_index(DATA_DIR)
    assert index[1] == [], index[1]  # every pair has as many replies as commands, all commands are JSON


def test_raw_stdin_reproduces_expected_output_bytes():
    """Like the upstream test.sh: ``repl < X.in`` prints exactly X.expected.out."""
    failures = []
    for inp, out in PAIRS:
        with open(inp, "rb") as stdin:
            res = subprocess.run(
                [sys.executable, str(REPLAY_PROGRAM)], stdin=stdin, capture_output=True, timeout=TIMEOUT
            )
        if res.returncode != 0 or res.stdout != out.read_bytes():
            failures.append((_pair_id((inp, out)), res.returncode, res.stderr[-300:]))
    assert not failures


# --------------------------------------------------------------------------- typed, named transcripts


def test_readme_sorry_then_tactic_mode(server):
    """readme.in: a sorry opens a proof state; tactics advance it until the proof is complete."""
    res = server.run(Command(cmd="def f (x : Unit) : Nat := by sorry"), timeout=TIMEOUT)
    assert isinstance(res, CommandResponse)
    assert res.env == 0
    (sorry,) = res.sorries
    assert sorry.goal == "x : Unit\n⊢ Nat"
    assert sorry.proof_state == 0
    assert (sorry.start_pos, sorry.end_pos) == (Pos(line=1, column=29), Pos(line=1, column=34))
    (msg,) = res.messages
    assert msg.severity == "warning"
    assert msg.data == "declaration uses `sorry`"  # backticks in this Lean version, not 'sorry'
    assert (msg.start_pos, msg.end_pos) == (Pos(line=1, column=4), Pos(line=1, column=5))
    assert not res.has_errors()
    assert res.lean_code_is_valid() and not res.lean_code_is_valid(allow_sorry=False)

    step = server.run(ProofStep(tactic="apply Int.natAbs", proof_state=0), timeout=TIMEOUT)
    assert isinstance(step, ProofStepResponse)
    assert (step.proof_state, step.goals) == (1, ["x : Unit\n⊢ Int"])
    assert step.proof_status == "Incomplete: open goals remain"

    done = server.run(ProofStep(tactic="exact -37", proof_state=1), timeout=TIMEOUT)
    assert (done.proof_state, done.goals, done.proof_status) == (2, [], "Completed")


def test_errors_and_env_chaining(server):
    """app_type_mismatch.in: a kernel error, then a sorry in a fresh env, then tactic mode."""
    res = server.run(Command(cmd="example : 1 = 0 := by\n  cases 1\n  rfl\n  apply ?succ"), timeout=TIMEOUT)
    assert res.env == 0 and res.has_errors()
    (err,) = res.get_errors()
    assert err.data == "(kernel) declaration has metavariables '_example'"
    assert (err.start_pos, err.end_pos) == (Pos(line=1, column=0), Pos(line=1, column=7))
    assert not res.lean_code_is_valid()

    res = server.run(Command(cmd="example : 1 = 0 := sorry"), timeout=TIMEOUT)
    assert res.env == 1 and res.sorries[0].proof_state == 0 and res.sorries[0].goal == "⊢ 1 = 0"
    step = server.run(ProofStep(tactic="cases 1", proof_state=0), timeout=TIMEOUT)
    assert step.goals == ["case zero\n⊢ 0 = 0", "case succ\nn✝ : Nat\n⊢ n✝ + 1 = 0"]
    step = server.run(ProofStep(tactic="rfl", proof_state=1), timeout=TIMEOUT)
    step = server.run(ProofStep(tactic="apply ?succ", proof_state=2), timeout=TIMEOUT)
    assert (step.proof_state, step.goals) == (3, [])
    assert step.proof_status == "Incomplete: contains metavariable(s)"


def test_env_reuse_and_info_message(server):
    """def_eval.in: `env` continues from an earlier environment; #check yields an info message."""
    assert server.run(Command(cmd="def f := 37"), timeout=TIMEOUT).env == 0
    res = server.run(Command(cmd="#check (rfl : f = 37)", env=0), timeout=TIMEOUT)
    assert res.env == 1
    (msg,) = res.messages
    assert (msg.severity, msg.data) == ("info", "rfl : f = f")


def test_unknown_environment_is_lean_error(server):
    res = server.run(Command(cmd="def f : Nat := by sorry", env=5), timeout=TIMEOUT)
    assert isinstance(res, LeanError) and res.message == "Unknown environment."


def test_tactic_error_in_proof_step(server):
    """invalid_tactic.in: tactic errors come back as messages positioned at 0:0, not as LeanError."""
    res = server.run(Command(cmd="theorem my_theorem (x : Nat) : x = x := by sorry"), timeout=TIMEOUT)
    assert res.sorries[0].goal == "x : Nat\n⊢ x = x"
    step = server.run(ProofStep(tactic="exact my_fake_premise", proof_state=0), timeout=TIMEOUT)
    assert isinstance(step, ProofStepResponse)
    assert step.proof_status == "Incomplete: contains sorry" and step.goals == []
    (err,) = step.get_errors()
    assert err.data == "Unknown identifier `my_fake_premise`"
    assert err.start_pos == Pos(line=0, column=0) and err.end_pos == Pos(line=0, column=0)


def test_unknown_proof_state_is_lean_error(server):
    server.run(Command(cmd="def f : Nat := by sorry"), timeout=TIMEOUT)
    res = server.run(ProofStep(tactic="exact 42", proof_state=1), timeout=TIMEOUT)
    assert isinstance(res, LeanError) and res.message == "Unknown proof state."


def test_file_command_all_tactics(server):
    """file.in: a `path` command with allTactics (the .lean file is not needed by the replay)."""
    res = server.run(FileCommand(path="test/file.lean", all_tactics=True), timeout=TIMEOUT)
    assert res.env == 0 and res.messages == []
    (tac,) = res.tactics
    assert (tac.tactic, tac.goals, tac.proof_state) == ("exact rfl", "⊢ f + g = 39", 0)
    assert (tac.start_pos, tac.end_pos) == (Pos(line=5, column=29), Pos(line=5, column=38))
    assert "HAdd.hAdd" in tac.used_constants


def test_infotree_typed(server):
    res = server.run(Command(cmd="def f (h : Int) : Nat := by constructor", infotree="substantive"), timeout=TIMEOUT)
    assert res.messages[0].severity == "warning" and "not explicitly referenced" in res.messages[0].data
    (tree,) = res.infotree
    assert isinstance(tree, InfoTree) and tree.kind == "TacticInfo"
    assert isinstance(tree.node, TacticNode)
    assert tree.node.name == "Lean.Parser.Tactic.constructor"
    assert tree.node.goals_before == ["h : Int\n⊢ Nat"] and tree.node.goals_after == []


def test_pickle_commands_typed(server):
    """pickle_environment.in: pickle/unpickle replies are plain CommandResponses with env numbers."""
    assert server.run(Command(cmd="def f := 42"), timeout=TIMEOUT).env == 0
    assert server.run(PickleEnvironment(env=0, pickle_to="test/a.olean"), timeout=TIMEOUT).env == 0
    assert server.run(UnpickleEnvironment(unpickle_env_from="test/a.olean"), timeout=TIMEOUT).env == 1
    res = server.run(Command(cmd="example : f = 42 := by rfl", env=1), timeout=TIMEOUT)
    assert res.env == 2 and res.messages == []


def test_pickle_proof_state_typed(server):
    server.run(Command(cmd="import Lean"), timeout=TIMEOUT)
    server.run(Command(cmd="def f : Nat := by sorry", env=0), timeout=TIMEOUT)
    res = server.run(PickleProofState(proof_state=0, pickle_to="test/c.olean"), timeout=TIMEOUT)
    assert isinstance(res, ProofStepResponse) and res.proof_state == 1
    res = server.run(UnpickleProofState(unpickle_proof_state_from="test/c.olean"), timeout=TIMEOUT)
    assert res.proof_state == 2 and res.goals == ["⊢ Nat"]


def test_traces_in_proof_steps(server):
    """trace_simp.in: trace output of tactics comes back in ProofStepResponse.traces."""
    server.run(Command(cmd="def f := 37"), timeout=TIMEOUT)
    server.run(Command(cmd="@[simp] theorem f_def : f = 37 := by rfl", env=0), timeout=TIMEOUT)
    server.run(Command(cmd="set_option trace.Meta.Tactic.simp true", env=1), timeout=TIMEOUT)
    res = server.run(Command(cmd="example : f = 37 := by simp", env=2), timeout=TIMEOUT)
    assert res.messages[0].severity == "info" and "[Meta.Tactic.simp.rewrite]" in res.messages[0].data
    res = server.run(Command(cmd="example : f = 37 := by sorry", env=2), timeout=TIMEOUT)
    assert res.env == 4
    step = server.run(ProofStep(tactic='trace "37"', proof_state=0), timeout=TIMEOUT)
    assert step.traces == ["37"]


# --------------------------------------------------------------------------- replay behaviour


def test_unknown_command_gives_lean_error(server):
    res = server.run(Command(cmd="theorem never_recorded : True := trivial"), timeout=TIMEOUT)
    assert isinstance(res, LeanError)
    assert res.message == "replay: no recorded reply for this command"
    # the session keeps going afterwards
    assert server.run(Command(cmd="def f := 37"), timeout=TIMEOUT).env == 0


def test_same_command_resolved_by_session_context(replay_config):
    """`theorem foo (x : Int) : x = x := by sorry` is recorded first in by_cases/sorry_hypotheses
    (env 0) and second in have_by_sorry (env 1): the reply follows the session's transcript."""
    cmd = Command(cmd="theorem foo (x : Int) : x = x := by sorry")
    with LeanServer(replay_config) as server:
        res = server.run(cmd, timeout=TIMEOUT)
        assert (res.env, res.sorries[0].proof_state) == (0, 0)
    with LeanServer(replay_config) as server:
        first = server.run(Command(cmd="theorem foo (x : Int) : x = x := by\n  have h : x = 1 := by sorry"))
        assert first.has_errors()
        res = server.run(cmd, timeout=TIMEOUT)
        assert (res.env, res.sorries[0].proof_state) == (1, 1)


def test_replayer_prefers_current_transcript():
    """`{"tactic": "apply Int.natAbs", "proofState": 0}` has different replies in proof_step.in and readme.in."""
    index = repl_replay.load_index(DATA_DIR)
    key = {"tactic": "apply Int.natAbs", "proofState": 0}
    replies = {e[0]: json.loads(e[2]) for e in index[repl_replay.command_key(key)]}
    assert len({json.dumps(r, sort_keys=True) for r in replies.values()}) == 2

    for first_cmd, transcript in (
        ({"cmd": "def f (x : Unit) : Nat := by sorry"}, "test/readme.in"),
        ({"cmd": "def f : Nat := by sorry"}, "test/proof_step.in"),
    ):
        r = repl_replay.Replayer(index)
        assert r.lookup(first_cmd) is not None
        entry = r.lookup(key)
        assert entry[0] == transcript and json.loads(entry[2]) == replies[transcript]


def test_incrementality_and_set_options_are_ignored(tmp_path):
    """lean-interact's defaults add incrementality/setOptions to commands; the replay still matches."""
    config = make_replay_config(tmp_path, enable_incremental_optimization=True, enable_parallel_elaboration=True)
    with LeanServer(config) as server:
        augmented = server._augment_request(Command(cmd="def f := 37"))
        assert augmented.incrementality is True and augmented.set_options == [(["Elab", "async"], True)]
        assert server.run(Command(cmd="def f := 37"), timeout=TIMEOUT).env == 0
        res = server.run(Command(cmd="#check (rfl : f = 37)", env=0), timeout=TIMEOUT)
        assert res.messages[0].data == "rfl : f = f"


def _run_replay(stdin: bytes, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPLAY_PROGRAM)],
        input=stdin,
        capture_output=True,
        timeout=TIMEOUT,
        env={**os.environ, **env},
    )


def test_stdin_protocol_details():
    # comments are skipped, raw line breaks inside a command vanish (REPL trims each line), EOF ends
    res = _run_replay(b'-- a comment\n\n{"cmd": "theorem foo : 1 = 1 := by\nsorry"}\n')
    assert res.returncode == 0
    assert json.loads(res.stdout)["messages"][0]["data"] == "Unknown identifier `bysorry`"
    assert res.stdout.endswith(b"}\n\n")
    # invalid JSON is fatal, as in the real REPL
    res = _run_replay(b"{not json\n\n")
    assert res.returncode == 1 and res.stdout == b""
    assert res.stderr.startswith(b'uncaught exception: {"message": "Could not parse JSON:')


def test_missing_data_dir_fails_loudly(tmp_path):
    res = _run_replay(b'{"cmd": "def f := 37"}\n\n', REPL_REPLAY_DATA=str(tmp_path / "nope"))
    assert res.returncode == 2 and b"no recorded transcripts" in res.stderr


def test_data_dir_override(tmp_path):
    data = tmp_path / "data"
    (data / "test").mkdir(parents=True)
    (data / "test" / "one.in").write_text('{"cmd": "def answer := 42"}\n', encoding="utf-8")
    (data / "test" / "one.expected.out").write_text('{"env": 7}\n\n', encoding="utf-8")
    config = make_replay_config(tmp_path / "srv", data_dir=data)
    with LeanServer(config) as server:
        assert server.run(Command(cmd="def answer := 42"), timeout=TIMEOUT).env == 7
        assert isinstance(server.run(Command(cmd="def f := 37"), timeout=TIMEOUT), LeanError)


# --------------------------------------------------------------------------- stand-in lake / repl dir


def test_standin_lake():
    res = subprocess.run([str(LAKE_STANDIN), "--version"], capture_output=True, text=True, timeout=10)
    assert res.returncode == 0 and res.stdout.startswith("Lake version") and "4.33.0-rc2" in res.stdout
    res = subprocess.run([str(LAKE_STANDIN), "env", "echo", "a b", "c"], capture_output=True, text=True, timeout=10)
    assert (res.returncode, res.stdout) == (0, "a b c\n")
    res = subprocess.run([str(LAKE_STANDIN), "update"], capture_output=True, text=True, timeout=10)
    assert res.returncode == 1 and "unsupported" in res.stderr
    # `lake build` only where there is an Atlas to build (tests/standin/lake_build.py); a REPL checkout is not
    res = subprocess.run([str(LAKE_STANDIN), "build"], capture_output=True, text=True, timeout=10, cwd=TESTS_DIR)
    assert res.returncode == 1 and "unsupported" in res.stderr


def test_repl_dir_layout_and_build_refused(tmp_path):
    repl_dir = make_replay_repl_dir(tmp_path, REPLAY_PROGRAM)
    assert (repl_dir / "lean-toolchain").read_text() == (DATA_DIR / "lean-toolchain").read_text()
    assert os.access(repl_dir / ".lake" / "build" / "bin" / "repl", os.X_OK)
    config = LeanREPLConfig(
        local_repl_path=repl_dir,
        build_repl=False,
        lake_path=LAKE_STANDIN,
        enable_incremental_optimization=False,
        enable_parallel_elaboration=False,
    )
    assert config.lean_version == "v4.33.0-rc2"
    with pytest.raises(RuntimeError, match="Failed to build the REPL"):
        LeanREPLConfig(local_repl_path=repl_dir, build_repl=True, lake_path=LAKE_STANDIN)
