r"""Reading TeX text: balanced groups, optional and mandatory arguments, stars, key=value lists, and the plain
text of a printed name. Every function works on a string and an index range; none knows the reader's state."""

from __future__ import annotations

import re

CS_RE = re.compile(r"\\([A-Za-z@]+)")

BRACE_TOK = re.compile(r"\\.|[{}]", re.S)

_BRACKET_TOK = re.compile(r"\\.|[{}\]]", re.S)

TOKEN_RE = re.compile(r"\\(?:[A-Za-z@]+|.)|.", re.S)

OPT_WS = re.compile(r"[ \t]*(?:\r?\n[ \t]*)?")

WS = re.compile(r"\s*")

_LABEL_RE = re.compile(r"\\label\s*(?:\[[^\]]*\])?\s*\{[^{}]*\}")


def group(s: str, i: int, n: int) -> tuple[str, int] | None:
    """The content of the balanced group opening at s[i] == '{', and the index after it."""
    depth = 0
    for m in BRACE_TOK.finditer(s, i, n):
        c = m.group()
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return s[i + 1 : m.start()], m.end()
    return None


def bracket(s: str, i: int, n: int) -> tuple[str, int] | None:
    """The content of an optional argument opening at s[i] == '[' (braces protect a ']')."""
    depth = 0
    for m in _BRACKET_TOK.finditer(s, i + 1, n):
        c = m.group()
        if c == "{":
            depth += 1
        elif c == "}":
            depth = max(0, depth - 1)
        elif c == "]" and depth == 0:
            return s[i + 1 : m.start()], m.end()
    return None


def mandatory(s: str, i: int, n: int) -> tuple[str, int, int] | None:
    """(text, start, end-after) of a mandatory argument: a group or a single token, after optional spaces."""
    i = WS.match(s, i, n).end()
    if i >= n:
        return None
    if s[i] == "{":
        got = group(s, i, n)
        return (got[0], i + 1, got[1]) if got else None
    if s[i] in "}]":
        return None
    m = TOKEN_RE.match(s, i, n)
    return (m.group(), i, m.end()) if m else None


def optional(s: str, i: int, n: int, open_: str = "[") -> tuple[str, int] | None:
    j = OPT_WS.match(s, i, n).end()
    if j < n and s[j] == open_:
        return bracket(s, j, n) if open_ == "[" else None
    return None


def read_star(s: str, i: int, n: int) -> tuple[bool, int]:
    j = WS.match(s, i, n).end()
    if j < n and s[j] == "*":
        return True, j + 1
    return False, i


def clean(s: str) -> str:
    s = _LABEL_RE.sub("", s)
    s = re.sub(r"[ \t]+\n", "\n", s)
    return s.strip()


def plain(s: str) -> str:
    """A printed name without macros and braces: '{Theorem\\assumesAC{x}}' -> 'Theorem'."""
    s = re.sub(r"\\[A-Za-z@]+\*?(\s*\{[^{}]*\})*", " ", s)
    s = re.sub(r"[{}~]", " ", s)
    return " ".join(s.split())


def keyvals(s: str) -> dict[str, str]:
    """key=value pairs (and bare keys, value '') of an optional argument, split at top-level commas."""
    out: dict[str, str] = {}
    depth, cur, parts = 0, "", []
    for c in s:
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += (c == "{") - (c == "}")
        cur += c
    parts.append(cur)
    for p in parts:
        k, _, v = p.partition("=")
        v = v.strip()
        if v.startswith("{") and v.endswith("}"):
            v = v[1:-1]
        if k.strip():
            out[k.strip()] = v.strip()
    return out
