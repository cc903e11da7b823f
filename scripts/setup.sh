#!/usr/bin/env bash
# One command sets up everything autoform needs:
#   1. a virtual environment (.venv) with autoform and its dev extras;
#   2. the Lean toolchain through elan, Mathlib's prebuilt cache in lean_project/, and the Lean REPL
#      (built by lean-interact), when the network allows.
# Without network access to GitHub, step 2 is skipped with a clear message: the Python part works,
# and `autoform doctor` says what is missing for `autoform run`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
warn() { printf '\033[1;33mwarning:\033[0m %s\n' "$*" >&2; }

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "autoform needs Python >= 3.11 ($PYTHON is $("$PYTHON" --version 2>&1)); set PYTHON=python3.11" >&2
  exit 1
fi

say "Python: virtual environment .venv with autoform[dev]"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

# ---- browser for the site's tests (tests/test_browser.py) -------------------------------------------------
# Debian's chromium, driven by Playwright's Python package (which brings its own driver; we never run
# `playwright install`: the browser is the system's /usr/bin/chromium). Without them the browser tests skip.
say "Browser tests: chromium (apt) and Playwright (pip)"
if [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
    as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
    if as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; then
      say "chromium installed at /usr/bin/chromium"
    else
      warn "apt-get could not install chromium; the browser tests (tests/test_browser.py) will be skipped"
    fi
  else
    warn "/usr/bin/chromium is missing and cannot be installed here (needs apt-get and root or password-less"
    warn "sudo): the browser tests (tests/test_browser.py) will be skipped. Install it with: apt-get install chromium"
  fi
fi
.venv/bin/python -m pip install --quiet playwright \
  || warn "pip could not install playwright; the browser tests (tests/test_browser.py) will be skipped"
# ---- end of the browser block --------------------------------------------------------------------------------

say "Lean: toolchain through elan"
export PATH="$HOME/.elan/bin:$PATH"
lean_ok=1
if ! command -v lake >/dev/null 2>&1; then
  if curl -sSf --max-time 30 https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh -o /tmp/elan-init.sh; then
    sh /tmp/elan-init.sh -y --default-toolchain none --no-modify-path
  else
    lean_ok=0
    warn "cannot download elan from GitHub (no network?). Lean is MISSING: autoform can ingest books, build"
    warn "the site and run its tests, but 'autoform run' and 'autoform check' need Lean. Install elan by hand"
    warn "(https://github.com/leanprover/elan) and run scripts/setup.sh again."
  fi
fi

if [ "$lean_ok" = 1 ] && command -v lake >/dev/null 2>&1; then
  say "Lean: Mathlib (prebuilt cache) in lean_project/"
  if (cd lean_project && lake exe cache get && lake build); then
    say "Lean: the REPL, built by lean-interact for this toolchain"
    .venv/bin/python - <<'PY' || warn "the Lean REPL could not be built; see the message above"
from lean_interact import LeanREPLConfig, LocalProject
LeanREPLConfig(project=LocalProject(directory="lean_project", auto_build=False), verbose=True)
print("Lean REPL ready")
PY
  else
    warn "fetching or building Mathlib failed (network?). Run 'cd lean_project && lake exe cache get' later."
  fi
fi

say "Status"
.venv/bin/autoform --home "$ROOT" doctor --quick || true
echo
echo "Set up. Run the tests with: .venv/bin/pytest"
