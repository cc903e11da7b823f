#!/usr/bin/env python3
"""Stand-in for the Lean REPL binary (leanprover-community/repl) that replays recorded transcripts.

The REPL test-suite (``repl-tests/test/*.in`` + ``*.expected.out`` and ``test/Mathlib/test/*``) holds
real commands and the real REPL's exact replies.  This program speaks the REPL's stdin/stdout protocol
and answers each command with the recorded reply:

* stdin is read exactly like ``REPL/Main.lean`` ``getLines`` does: lines are accumulated (each
  ``trimRight``-ed, so raw line breaks inside a JSON string vanish) until a blank line or EOF; an empty
  query (EOF) ends the program; a query starting with ``#`` or ``--`` is skipped without a reply.
* the query is parsed as JSON; like the REPL, a parse failure is fatal
  (``uncaught exception: {"message": "Could not parse JSON: ..."}`` on stderr, exit status 1).
* the reply is the recorded text, byte for byte, followed by a blank line (``"\\n\\n"``), then flushed.
* a command with no recording gets ``{"message": "replay: no recorded reply for this command"}`` (the
  REPL's own error shape, which lean-interact turns into a ``LeanError``).

Lookup key: canonical JSON (sorted keys) of the command without ``incrementality`` and ``setOptions``
(lean-interact may add them).  Env / proofState numbers are part of the key and only mean something
inside one transcript, so when a key was recorded in several transcripts (sometimes with different
replies: the numbering depends on what ran before), the replay follows the session: it keeps the set
of transcripts consistent with the commands seen so far and the number of commands seen, and prefers,
in order: a consistent transcript at exactly this step, a consistent transcript at a later position,
any consistent transcript, any transcript at exactly this step, anything.  Ties go to the transcript
the previous command matched ("current file"), then by name.

Environment:
  REPL_REPLAY_DATA   repl-tests directory (default ``<project>/../shared/data/lean-output/repl-tests``)
  REPL_REPLAY_LOG    optional file to append one line per command to (match / miss diagnostics)

Stdlib only; also importable (``load_index``, ``Replayer``, ``read_query``, ``command_key``).
"""

from __future__ import annotations

# Start-up time matters (one process per REPL session): only cheap stdlib imports
# (no pathlib / dataclasses / tempfile / typing), which halves the start-up time (~24 ms vs ~55 ms).
import json
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT_DIR = os.path.dirname(_HERE)
DEFAULT_DATA_DIR = os.path.join(os.path.dirname(PROJECT_DIR), "shared", "data", "lean-output", "repl-tests")
IGNORED_KEYS = frozenset({"incrementality", "setOptions"})
UNKNOWN_REPLY = {"message": "replay: no recorded reply for this command"}
_WS = " \t\r\n"  # Lean's Char.isWhitespace

# An index entry is a tuple (file, pos, reply):
#   file  transcript path relative to the data dir, e.g. "test/readme.in"
#   pos   0-based index of the command within its transcript
#   reply the recorded reply text exactly as the REPL printed it (without the trailing blank line)
Entry = tuple  # (str, int, str)
Index = dict  # dict[str, list[Entry]]


# --------------------------------------------------------------------------- parsing


def split_queries(text: str) -> list[str]:
    """Split stdin text into queries the way the REPL's ``getLines`` loop does (comments dropped)."""
    queries: list[str] = []
    parts: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.strip(_WS) == "":
            if parts:
                queries.append("".join(parts))
                parts = []
        else:
            parts.append(line.rstrip(_WS))
    if parts:
        queries.append("".join(parts))
    return [q for q in queries if not (q.startswith("#") or q.startswith("--"))]


def split_replies(text: str) -> list[str]:
    """Split a ``.expected.out`` file into reply blocks (pretty-printed JSON never holds a blank line)."""
    return [b for b in text.split("\n\n") if b.strip()]


def command_key(cmd: dict) -> str:
    return json.dumps(
        {k: v for k, v in cmd.items() if k not in IGNORED_KEYS},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )


def transcript_pairs(data_dir: str | os.PathLike) -> list[tuple[str, str]]:
    """All (X.in, X.expected.out) path pairs under test/ and test/Mathlib/test/, sorted by name."""
    data_dir = os.fspath(data_dir)
    pairs = []
    for sub in ("test", os.path.join("test", "Mathlib", "test")):
        d = os.path.join(data_dir, sub)
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for name in names:
            if not name.endswith(".in"):
                continue
            inp = os.path.join(d, name)
            out = os.path.join(d, name[: -len(".in")] + ".expected.out")
            if os.path.isfile(inp) and os.path.isfile(out):
                pairs.append((inp, out))
    return pairs


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def build_index(data_dir: str | os.PathLike) -> tuple[Index, list[str]]:
    """Parse every transcript pair; returns (index, problems)."""
    data_dir = os.fspath(data_dir)
    index: Index = {}
    problems: list[str] = []
    for inp, out in transcript_pairs(data_dir):
        rel = os.path.relpath(inp, data_dir).replace(os.sep, "/")
        queries = split_queries(_read(inp))
        replies = split_replies(_read(out))
        if len(queries) != len(replies):
            problems.append(f"{rel}: {len(queries)} commands but {len(replies)} replies")
        for pos, (q, r) in enumerate(zip(queries, replies, strict=False)):
            try:
                cmd = json.loads(q)
            except ValueError as e:
                problems.append(f"{rel}#{pos}: command is not JSON: {e}")
                continue
            if not isinstance(cmd, dict):
                problems.append(f"{rel}#{pos}: command is not a JSON object")
                continue
            index.setdefault(command_key(cmd), []).append((rel, pos, r))
    return index, problems


def load_index(data_dir: str | os.PathLike | None = None) -> Index:
    """Index of recorded replies: command key -> entries (every transcript position with that key).

    Built from scratch at every start: parsing all 71 transcript pairs takes ~4 ms (~15 ms with a cold
    page cache), next to ~12 ms of interpreter start-up, so an on-disk cache would not pay for itself.
    """
    data_dir = os.fspath(data_dir) if data_dir is not None else data_dir_from_env()
    return build_index(data_dir)[0]


def data_dir_from_env() -> str:
    return os.environ.get("REPL_REPLAY_DATA") or DEFAULT_DATA_DIR


# --------------------------------------------------------------------------- replay state


class Replayer:
    """Per-session lookup state (one REPL process = one session)."""

    def __init__(self, index: Index):
        self.index = index
        self.step = 0  # number of commands received so far
        self.files: set[str] | None = None  # transcripts consistent with the session (None = all)
        self.current: str | None = None  # transcript of the previous match
        self.last_pos: dict[str, int] = {}

    def lookup(self, cmd: dict) -> Entry | None:
        """The recorded (file, pos, reply) for ``cmd`` in this session, or None."""
        step = self.step
        self.step += 1
        entries = self.index.get(command_key(cmd))
        if not entries:
            return None
        files = self.files
        last = self.last_pos
        tiers = (
            [e for e in entries if (files is None or e[0] in files) and e[1] == step],
            [e for e in entries if files is not None and e[0] in files and e[1] > last.get(e[0], -1)],
            [e for e in entries if files is not None and e[0] in files],
            [e for e in entries if e[1] == step],
            list(entries),
        )
        tier = next(t for t in tiers if t)
        tier.sort(key=lambda e: (e[0] != self.current, abs(e[1] - step), e[0], e[1]))
        first_per_file: dict[str, int] = {}
        for file, pos, _ in tier:
            first_per_file.setdefault(file, pos)
        self.files = set(first_per_file)
        last.update(first_per_file)
        self.current = tier[0][0]
        return tier[0]


# --------------------------------------------------------------------------- I/O loop


def read_query(stream) -> str:
    """One query read from a binary stream as the REPL's ``getLines`` does; ``""`` means EOF."""
    parts: list[str] = []
    while True:
        raw = stream.readline()
        if not raw:
            return "".join(parts)
        line = raw.decode("utf-8", errors="replace")
        if line.strip(_WS) == "":
            return "".join(parts) + line
        parts.append(line.rstrip(_WS))


def _log(msg: str) -> None:
    path = os.environ.get("REPL_REPLAY_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(msg + "\n")


def _fatal(message: str) -> int:
    # What the real REPL does when `parse` throws: the exception escapes `main`.
    sys.stderr.write("uncaught exception: " + json.dumps({"message": message}, ensure_ascii=False) + "\n")
    sys.stderr.flush()
    return 1


def main() -> int:
    data_dir = data_dir_from_env()
    if not os.path.isdir(os.path.join(data_dir, "test")):
        sys.stderr.write(f"repl_replay: no recorded transcripts at {data_dir} (set REPL_REPLAY_DATA)\n")
        return 2
    replayer = Replayer(load_index(data_dir))
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    while True:
        query = read_query(stdin)
        if query == "":
            return 0
        if query.strip(_WS) == "":  # stray blank line: the real REPL would die on it; be lenient
            continue
        if query.startswith("#") or query.startswith("--"):
            continue
        try:
            cmd = json.loads(query)
        except ValueError as e:
            return _fatal(f"Could not parse JSON:\n{e}")
        if not isinstance(cmd, dict):
            return _fatal("Could not parse as a valid JSON command:\nexpected a JSON object")
        entry = replayer.lookup(cmd)
        if entry is None:
            reply = json.dumps(UNKNOWN_REPLY, ensure_ascii=False)
            _log(f"MISS step={replayer.step - 1} key={command_key(cmd)}")
        else:
            reply = entry[2]
            _log(f"HIT step={replayer.step - 1} {entry[0]}#{entry[1]}")
        stdout.write(reply.encode("utf-8") + b"\n\n")
        stdout.flush()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(1)
