#!/usr/bin/env bash
# One command sets up everything autoform needs:
#   1. a virtual environment (.venv) with autoform and its dev extras;
#   2. the Lean toolchain through elan, Mathlib's prebuilt cache in the repository's Lake workspace, what the
#      checks import (lake build Mathlib), the Lean REPL (built once by lean-interact) and the Atlas, when the
#      network allows.
# Without network access to GitHub, step 2 is skipped with a clear message: the Python part works,
# and `autoform doctor` says what is missing for `autoform run`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ORIG_PATH=$PATH
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
# elan is installed with --no-modify-path: nothing of the user's shell files is edited. autoform finds elan's lake
# in ~/.elan/bin by itself (autoform/toolchain/workspace.py: find_lake); this script puts it on its own PATH only.
ELAN_BIN="${ELAN_HOME:-$HOME/.elan}/bin"
export PATH="$ELAN_BIN:$PATH"
lean_ok=1
if ! command -v lake >/dev/null 2>&1; then
  if curl -sSf --max-time 30 https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh -o /tmp/elan-init.sh; then
    sh /tmp/elan-init.sh -y --default-toolchain none --no-modify-path || lean_ok=0
  else
    lean_ok=0
  fi
fi
if [ "$lean_ok" = 1 ] && ! command -v lake >/dev/null 2>&1; then
  lean_ok=0
fi

# One Lake workspace: the repository root (lakefile.lean requires Mathlib at the pinned tag; lake-manifest.json
# pins every commit). Mathlib's prebuilt cache is fetched once, then what the checks import is built (a bare
# `lake build` builds only the Atlas's default target), then the REPL (once: starting the pool never fetches),
# then the Atlas on that Mathlib.
if [ "$lean_ok" = 1 ]; then
  LAKE=$(command -v lake)
  case ":$ORIG_PATH:" in
    *":$(dirname "$LAKE"):"*) ;;
    *) say "lake is at $LAKE, not on your PATH: autoform finds it there by itself. For your own shell, add"
       echo "    export PATH=\"$(dirname "$LAKE"):\$PATH\"" ;;
  esac
  TARGETS=$(.venv/bin/python -m autoform.toolchain.setup_steps targets "$ROOT")
  say "Lean: $(cd "$ROOT" && "$LAKE" --version 2>&1 | head -1) at $LAKE (toolchain $(cat lean-toolchain))"
  say "Lean: Mathlib's prebuilt cache (lake exe cache get), then lake build ${TARGETS:-<nothing to build>}"
  if "$LAKE" exe cache get && { [ -z "$TARGETS" ] || "$LAKE" build $TARGETS; }; then
    say "Lean: the REPL (built once by lean-interact for $(cat lean-toolchain))"
    if .venv/bin/python -m autoform.toolchain.setup_steps build-repl "$ROOT"; then
      say "Lean: the Atlas (lake build, on the cached Mathlib)"
      "$LAKE" build || warn "lake build of the Atlas failed; see the messages above"
    else
      lean_ok=0
      warn "the Lean REPL could not be built (network?); see the message above, then run scripts/setup.sh again"
    fi
  else
    lean_ok=0
    warn "fetching Mathlib's cache or building ${TARGETS} failed (network?): run scripts/setup.sh again later"
  fi
fi
# The Mathlib index needs only Mathlib's source (no Lean run): built wherever Lake fetched it, even when a later
# Lean step failed.
if [ -d "$ROOT/.lake/packages/mathlib/Mathlib" ]; then
  say "Mathlib: the declaration index the agents search (autoform mathlib index, from Mathlib's source)"
  .venv/bin/autoform --home "$ROOT" mathlib index || warn "the Mathlib index could not be built; see above"
fi
if [ "$lean_ok" != 1 ]; then
  warn "Lean is MISSING (GitHub could not be reached, or a Lean step failed above): autoform can ingest books,"
  warn "build the site and run its tests, but 'autoform run', 'autoform check' and 'autoform atlas build' need"
  warn "Lean. With access to GitHub, run scripts/setup.sh again (it installs elan, the toolchain, Mathlib's cache"
  warn "and the REPL)."
fi

say "Status"
.venv/bin/autoform --home "$ROOT" doctor --quick || true
echo
echo "Set up. Run the tests with: .venv/bin/pytest"
