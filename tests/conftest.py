"""Shared fixtures: a temporary workspace wired to the oracle test double (a scripted Lean REPL driven through
lean-interact and a stand-in lake) and to an OpenAI-compatible server on 127.0.0.1 with scripted replies."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SHARED = ROOT.parent / "shared" / "data"
SAMPLE_BOOK = ROOT / "textbooks" / "elementary-number-theory" / "main.tex"
FORMALIZATION = json.loads((TESTS / "fixtures" / "sample_formalization.json").read_text(encoding="utf-8"))
LAKE_STANDIN = TESTS / "standin" / "lake"
FAKE_REPL = TESTS / "fake_lean_repl.py"

sys.path.insert(0, str(TESTS))

from fake_llm import FakeLLM, Reply  # noqa: E402


def make_repl_dir(where: Path, program: Path = FAKE_REPL, env: dict[str, str] | None = None) -> Path:
    """A directory laid out like a built REPL checkout whose binary runs ``program``."""
    repl = where / "repl"
    (repl / ".lake" / "build" / "bin").mkdir(parents=True, exist_ok=True)
    (repl / "lean-toolchain").write_text("leanprover/lean4:v4.24.0\n")
    exports = "".join(f"export {k}='{v}'\n" for k, v in (env or {}).items())
    script = repl / ".lake" / "build" / "bin" / "repl"
    script.write_text(f"#!/bin/sh\n{exports}exec '{sys.executable}' '{program}' \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return repl


#: the scripted jobs count proof attempts: their workspaces pin the attempts strategy (the default budget strategy
#: has tests of its own, which set ``[prove] strategy`` or use ``--unit-budget``)
PINNED_STRATEGY = 'strategy = "attempts"'


def _pin_strategy(extra: str) -> str:
    """``extra`` with ``[prove] strategy = "attempts"`` unless it chooses a strategy itself."""
    if "strategy" in extra:
        return extra
    if "[prove]\n" in extra:
        return extra.replace("[prove]\n", f"[prove]\n{PINNED_STRATEGY}\n", 1)
    return f"{extra}\n[prove]\n{PINNED_STRATEGY}\n"


def write_config(home: Path, *, base_url: str, repl_dir: Path, extra: str = "", automation: bool = False) -> None:
    project = home / "lean_project"
    project.mkdir(parents=True, exist_ok=True)
    (project / "lean-toolchain").write_text("leanprover/lean4:v4.24.0\n")
    (home / "autoform.toml").write_text(
        f"""
[llm]
base_url = "{base_url}"
model = "test-model"
api_key = "test-key"
max_retries = 2
timeout_s = 10

[lean]
backend = "repl"
project_dir = "{project}"
lake_path = "{LAKE_STANDIN}"
repl_path = "{repl_dir}"
timeout_s = 20
start_timeout_s = 20
memory_mb = 4096

[job]
# the oracle double accepts any identifier but `bogus*`, so automation would prove everything: the tests that
# exercise automation turn it on themselves
automation = {"true" if automation else "false"}
{_pin_strategy(extra)}
""",
        encoding="utf-8",
    )


# ------------------------------------------------------------------------------- scripted LLM replies
def _role(body: dict) -> str:
    system = body["messages"][0]["content"]
    m = re.match(r"You are the (reader|statement drafter|prover|gap-closer|fidelity critic)", system)
    names = {"statement drafter": "drafter", "gap-closer": "gap_closer", "fidelity critic": "critic"}
    return names.get(m.group(1), m.group(1)) if m else "?"


def _label(body: dict) -> str:
    m = re.search(r"\[label: ([^\]]+)\]", body["messages"][-1]["content"])
    return m.group(1) if m else ""


def lean(text: str) -> str:
    return f"Here it is.\n\n```lean\n{text}\n```\n"


def book_script(overrides: dict[tuple[str, str], Callable[[dict], str | Reply]] | None = None) -> Callable:
    """Replies of a competent formalizer for the sample book (from tests/fixtures), per role and label;
    ``overrides[(role, label)]`` replaces one of them."""
    overrides = overrides or {}

    def script(body: dict) -> str | Reply:
        role, label = _role(body), _label(body)
        if (role, label) in overrides:
            return overrides[(role, label)](body)
        f = FORMALIZATION.get(label)
        if role == "reader":
            return (
                "```json\n"
                + json.dumps({"statement": "restated", "concepts": ["integer"], "conventions": [], "dependencies": []})
                + "\n```"
            )
        if role == "critic":
            return (
                "```json\n"
                + json.dumps({"back_translation": "the same statement", "faithful": True, "score": 9, "issues": []})
                + "\n```"
            )
        if f is None:
            return "I cannot help with that."
        if role == "drafter":
            return lean(f["statement"])
        return lean(f["proof"])

    return script


def role_of(body: dict) -> str:
    return _role(body)


def label_of(body: dict) -> str:
    return _label(body)


@dataclass
class Workspace:
    home: Path
    llm: FakeLLM
    tmp: Path

    @property
    def repl_log(self) -> list[dict]:
        log = self.tmp / "repl.log"
        return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def fake_llm_factory() -> Iterator[Callable[..., FakeLLM]]:
    servers: list[FakeLLM] = []

    def make(script: Callable | None = None) -> FakeLLM:
        srv = FakeLLM(script or book_script())
        srv.__enter__()
        servers.append(srv)
        return srv

    yield make
    for s in servers:
        s.__exit__(None, None, None)


@pytest.fixture
def workspace(tmp_path: Path, fake_llm_factory: Callable[..., FakeLLM]) -> Callable[..., Workspace]:
    """A workspace (temporary home) wired to the oracle double and a scripted LLM server."""

    def make(
        script: Callable | None = None,
        *,
        repl_env: dict[str, str] | None = None,
        extra: str = "",
        llm: FakeLLM | None = None,
    ) -> Workspace:
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        srv = llm or fake_llm_factory(script)
        repl_env = dict(repl_env or {})
        repl_env.setdefault("FAKE_REPL_LOG", str(tmp_path / "repl.log"))
        write_config(home, base_url=srv.base_url, repl_dir=make_repl_dir(tmp_path, env=repl_env), extra=extra)
        return Workspace(home, srv, tmp_path)

    return make


def autoform(
    home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120, check: bool = False
) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AUTOFORM_"))}
    e.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "autoform", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=e,
        cwd=home,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"autoform {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def lake_available() -> bool:
    """A real lake: on PATH or where elan puts it (~/.elan/bin), as autoform itself finds it."""
    from autoform.toolchain.workspace import find_lake

    return not find_lake()[1].startswith("not found")


needs_lean = pytest.mark.skipif(
    not lake_available(),
    reason="needs a real Lean 4 toolchain: `lake` is neither on PATH nor in ~/.elan/bin (run scripts/setup.sh)",
)


# "no tests collected" must be impossible, not hidden: a full run that collects fewer tests than this fails.
MIN_TESTS_IN_FULL_RUN = 150


def pytest_collection_finish(session: pytest.Session) -> None:
    full_run = not session.config.args or [Path(a).resolve() for a in session.config.args] in ([ROOT], [TESTS])
    if (
        full_run
        and len(session.items) < MIN_TESTS_IN_FULL_RUN
        and not session.config.option.keyword
        and not session.config.option.markexpr
    ):
        raise pytest.UsageError(
            f"only {len(session.items)} tests collected in a full run (at least {MIN_TESTS_IN_FULL_RUN} expected): "
            "a test module failed to import or was not found"
        )
