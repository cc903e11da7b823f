"""The CLI's contracts: --help everywhere, exit codes, and what happens when Lean or the LLM is missing."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pytest
from conftest import SAMPLE_BOOK, autoform, make_repl_dir, write_config


def _command_paths() -> list[str]:
    """Every command and subcommand the CLI registers (the source of truth: a new command is covered here
    without editing this test), as the words that invoke it; "" is the top level."""
    import typer.core
    import typer.main

    from autoform.cli import app

    def walk(cmd: object, path: tuple[str, ...]) -> list[str]:
        paths = [" ".join(path)]
        if isinstance(cmd, typer.core.TyperGroup):
            for name, sub in cmd.commands.items():
                paths += walk(sub, (*path, name))
        return paths

    return walk(typer.main.get_command(app), ())


COMMANDS = _command_paths()


def test_command_tree_is_walked():
    """The walk finds the commands and subcommands (it would otherwise test nothing)."""
    for cmd in ("init", "run", "status", "check", "atlas", "atlas build", "atlas site", "mathlib search", "eval"):
        assert cmd in COMMANDS


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_everywhere(tmp_path, cmd):
    r = autoform(tmp_path, *cmd.split(), "--help")
    assert r.returncode == 0, r.stderr
    assert "Usage" in r.stdout
    usage = " ".join(r.stdout[r.stdout.index("Usage") :].split()[:8])
    assert f"autoform {cmd} [OPTIONS]".replace("  ", " ") in usage, usage


def _store_digest(home: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(home.glob("autoform.sqlite*")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def _dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _no_lean_home(tmp_path: Path, base_url: str) -> Path:
    """A workspace whose lake does not exist (as on a machine without elan)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "autoform.toml").write_text(f"""
[llm]
base_url = "{base_url}"
api_key = "k"
model = "test-model"
max_retries = 0
timeout_s = 3

[lean]
lake_path = "{tmp_path / "no-such-dir" / "lake"}"
project_dir = "{tmp_path / "no-project"}"
""")
    return home


def test_doctor_without_lean_names_what_is_missing(tmp_path, fake_llm_factory):
    srv = fake_llm_factory()
    home = _no_lean_home(tmp_path, srv.base_url)
    r = autoform(home, "doctor")
    assert r.returncode == 3
    assert "Traceback" not in r.stderr + r.stdout
    assert "lake" in r.stdout and "elan" in r.stdout.replace("\n", "")
    r = autoform(home, "doctor", "--json")
    data = json.loads(r.stdout)
    assert data["ready"] is False
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["lake"]["ok"] is False and "elan" in checks["lake"]["detail"]
    assert checks["python packages"]["ok"] is True
    assert checks["llm endpoint"]["ok"] is True  # the scripted server answers /v1/models
    assert not (home / "autoform.sqlite").exists()  # doctor writes nothing
    # optional extras are reported, never required by run
    import importlib.util

    for module, extra in (("ray", "ray"), ("lean_dojo", "dojo")):
        c = checks[f"optional: {module}"]
        assert c["needed_by_run"] is False and c["ok"] is (importlib.util.find_spec(module) is not None)
        assert c["ok"] or f"pip install -e '.[{extra}]'" in c["detail"]


def test_doctor_without_llm_names_the_endpoint(workspace, tmp_path):
    ws = workspace()
    toml = (ws.home / "autoform.toml").read_text().replace(ws.llm.base_url, f"http://127.0.0.1:{_dead_port()}/v1")
    (ws.home / "autoform.toml").write_text(toml)
    r = autoform(ws.home, "doctor", "--json")
    assert r.returncode == 3
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["llm endpoint"]["ok"] is False and "127.0.0.1" in checks["llm endpoint"]["detail"]
    assert checks["oracle start"]["ok"] is True  # the oracle double elaborated the header


def test_doctor_openai_without_key(tmp_path):
    home = _no_lean_home(tmp_path, "https://api.openai.com/v1")
    toml = (home / "autoform.toml").read_text().replace('api_key = "k"\n', "")
    (home / "autoform.toml").write_text(toml)
    r = autoform(home, "doctor", "--json", env={"OPENAI_API_KEY": ""})
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert "OPENAI_API_KEY" in checks["llm endpoint"]["detail"]


def test_run_without_lean_changes_nothing(tmp_path, fake_llm_factory):
    srv = fake_llm_factory()
    home = _no_lean_home(tmp_path, srv.base_url)
    autoform(home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    before = _store_digest(home)
    r = autoform(home, "run", "ent")
    assert r.returncode == 3
    assert "Traceback" not in r.stderr
    assert "lake" in r.stderr and "elan" in r.stderr.replace("\n", "")
    assert "Nothing was changed" in r.stderr
    assert _store_digest(home) == before
    assert len(srv.requests) == 0  # no chat call either
    assert not (home / "atlas").exists()


def test_run_without_llm_changes_nothing(workspace):
    ws = workspace()
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    port = _dead_port()
    toml = (ws.home / "autoform.toml").read_text().replace(ws.llm.base_url, f"http://127.0.0.1:{port}/v1")
    (ws.home / "autoform.toml").write_text(toml)
    before = _store_digest(ws.home)
    r = autoform(ws.home, "run", "ent")
    assert r.returncode == 3
    assert f"127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr
    assert _store_digest(ws.home) == before


def test_run_with_rejected_key_is_a_clear_error(workspace):
    from fake_llm import Reply

    ws = workspace(lambda body: Reply(status=401, text="Incorrect API key provided"))
    autoform(ws.home, "ingest", str(SAMPLE_BOOK), "--book", "ent", check=True)
    # /v1/models answers, the chat endpoint refuses: the job stops at once with the reason, nothing admitted
    r = autoform(ws.home, "run", "ent", "--json")
    assert r.returncode == 3
    summary = json.loads(r.stdout)
    assert summary["status"] == "interrupted" and "401" in summary["message"]
    assert "OPENAI_API_KEY" in summary["message"]
    r = autoform(ws.home, "status", "ent", "--json", check=True)
    assert json.loads(r.stdout)["atlas_entries"] == 0


def test_run_unknown_book_and_bad_budget(workspace):
    ws = workspace()
    autoform(ws.home, "init", check=True)
    r = autoform(ws.home, "run", "nosuch")
    assert r.returncode == 2 and "no book 'nosuch'" in r.stderr
    r = autoform(ws.home, "run", "nosuch", "--budget-usd", "0")
    assert r.returncode == 2 and "budget" in r.stderr


def test_store_from_newer_schema_is_refused(workspace):
    import sqlite3

    ws = workspace()
    autoform(ws.home, "init", check=True)
    conn = sqlite3.connect(ws.home / "autoform.sqlite")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    r = autoform(ws.home, "status")
    assert r.returncode == 2 and "newer" in r.stderr and "Traceback" not in r.stderr


def test_bad_config_names_file_and_key(tmp_path):
    home = tmp_path / "h"
    home.mkdir()
    (home / "autoform.toml").write_text("[lean]\ntimeout_s = 'soon'\n")
    r = autoform(home, "status")
    assert r.returncode == 2 and "autoform.toml" in r.stderr and "lean.timeout_s" in r.stderr
    (home / "autoform.toml").write_text("[lean\n")
    r = autoform(home, "status")
    assert r.returncode == 2 and "not valid TOML" in r.stderr


def test_check_file_verdicts(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    write_config(home, base_url="http://127.0.0.1:9/v1", repl_dir=make_repl_dir(tmp_path))
    good = tmp_path / "Good.lean"
    good.write_text("import Mathlib\n\nnamespace Foo\ntheorem t (n : ℕ) : n + 0 = n := by simp\nend Foo\n")
    r = autoform(home, "check", str(good), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    v = json.loads(r.stdout)
    assert v["admitted"] is True and v["axioms"] == ["propext"]

    bad = tmp_path / "Bad.lean"
    bad.write_text("import Mathlib\n\ntheorem t : 1 = 2 := by\n  -- sorry is fine in a comment\n  exact bogus\n")
    r = autoform(home, "check", str(bad))
    assert r.returncode == 1
    assert "REJECTED" in r.stdout and "unknown identifier 'bogus'" in r.stdout
    assert "line 5:" in r.stdout  # the line of the file itself

    cheat = tmp_path / "Cheat.lean"
    cheat.write_text("import Mathlib\n\naxiom magic : False\ntheorem t : 1 = 2 := magic.elim\n")
    r = autoform(home, "check", str(cheat), "--json")
    assert r.returncode == 1
    assert any(x["code"] == "forbidden" and "axiom" in x["message"] for x in json.loads(r.stdout)["reasons"])

    r = autoform(home, "check", str(tmp_path / "missing.lean"))
    assert r.returncode == 2 and "missing.lean" in r.stderr


def test_check_without_lean(tmp_path):
    home = _no_lean_home(tmp_path, "http://127.0.0.1:9/v1")
    f = tmp_path / "A.lean"
    f.write_text("import Mathlib\ntheorem t : True := trivial\n")
    r = autoform(home, "check", str(f))
    assert r.returncode == 3 and "lake" in r.stderr and "Traceback" not in r.stderr
    assert "passes the pre-screen" in r.stderr


def test_check_rejects_a_cheat_even_without_lean(tmp_path):
    """The pre-screen needs no Lean: a cheat is rejected outright (exit 1) with each reason, never exit 3."""
    home = _no_lean_home(tmp_path, "http://127.0.0.1:9/v1")
    f = tmp_path / "Cheat.lean"
    f.write_text(
        "import Mathlib\n\ntheorem t : 1 = 2 := by\n  native_decide\n\n#eval! (pure () : IO Unit)\n"
        "set_option «debug».skipKernelTC true\n"
    )
    r = autoform(home, "check", str(f), "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    v = json.loads(r.stdout)
    assert v["admitted"] is False and len(v["reasons"]) == 3
    assert {x["line"] for x in v["reasons"]} == {4, 6, 7}  # the file's own lines
    r = autoform(home, "check", str(f))
    assert r.returncode == 1 and "REJECTED" in r.stdout and "#eval!" in r.stdout


def test_default_toml_is_rendered_from_the_settings_model(tmp_path):
    """`autoform init`'s commented autoform.toml comes from the settings model: it mentions every setting, parses
    to the defaults as written, and to the defaults again with every setting line uncommented."""
    import re
    import tomllib

    from pydantic import BaseModel

    from autoform.config import EXAMPLE_SUBSECTIONS, Settings, render_default_toml

    text = render_default_toml()
    defaults = Settings(home=tmp_path)
    assert Settings(home=tmp_path, **tomllib.loads(text)) == defaults
    uncommented = tomllib.loads(re.sub(r"(?m)^# (\w+ = )", r"\1", text))
    assert Settings(home=tmp_path, **uncommented) == defaults
    for section, field in Settings.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        assert f"[{section}]" in text
        for name, f in model.model_fields.items():
            example = EXAMPLE_SUBSECTIONS.get((section, name))
            if example is not None:  # a table of sub-sections: an example sub-section with each of its settings
                sub, sub_model = example
                assert f"# [{section}.{name}.{sub}]" in text
                assert all(re.search(rf"(?m)^# {n}\b", text) for n in sub_model.model_fields)
                continue
            assert re.search(rf"(?m)^#? ?{name}( = |: unset by default)", text), f"[{section}] {name} is not shown"
            if f.get_default(call_default_factory=True) is not None:
                assert name in uncommented[section], f"[{section}] {name} is not a setting line"
    home = tmp_path / "ws"
    home.mkdir()
    autoform(home, "init", check=True)
    assert (home / "autoform.toml").read_text(encoding="utf-8") == text


def test_errors_are_mapped_in_one_place(monkeypatch, capsys):
    """An error a command raises reaches main(), which prints it as one line and exits with its class's code."""
    import signal

    import autoform.cli as cli
    from autoform.cli_errors import MissingParts
    from autoform.config import ConfigError
    from autoform.errors import AutoformError, MissingError, UsageError
    from autoform.store import StoreUnwritable

    cases = [
        (UsageError("bad input"), 2, ["error: bad input"]),
        (ConfigError("autoform.toml: [lean] timeout_s"), 2, ["error: autoform.toml: [lean] timeout_s"]),
        (MissingError("no lake"), 3, ["error: no lake"]),
        (AutoformError("lake build failed"), 1, ["error: lake build failed"]),
        (StoreUnwritable("read-only"), 3, ["error: read-only"]),
        (MissingParts(["LLM: down", "Lean: absent"], "Nothing was changed."), 3, ["missing: LLM: down"]),
    ]
    old = signal.getsignal(signal.SIGINT)
    try:
        for exc, code, lines in cases:

            def raise_it(exc: Exception = exc) -> None:
                raise exc

            monkeypatch.setattr(cli, "app", raise_it)
            with pytest.raises(SystemExit) as e:
                cli.main()
            stderr = capsys.readouterr().err
            assert e.value.code == code, (exc, stderr)
            assert all(line in stderr for line in lines) and "Traceback" not in stderr, stderr
    finally:
        signal.signal(signal.SIGINT, old)
    assert "missing: Lean: absent\nNothing was changed." in stderr
