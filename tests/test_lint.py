"""The code base stays ruff clean and ruff formatted (part of the test command, so CI enforces it)."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_ruff_clean():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_formatted():
    """`ruff format` is the formatter: a file it would change fails here (run `ruff format .` to fix)."""
    r = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr
