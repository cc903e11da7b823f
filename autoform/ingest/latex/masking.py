"""Masking: comments and verbatim material blanked before scanning, every offset kept, so the scanner never
mistakes them for structure and every position still maps to a file and line."""

from __future__ import annotations

import re

from autoform.ingest.latex.syntax import BRACE_TOK

VERBATIM_ENVS = {
    "verbatim",
    "verbatim*",
    "Verbatim",
    "Verbatim*",
    "BVerbatim",
    "LVerbatim",
    "lstlisting",
    "minted",
    "comment",
    "filecontents",
    "filecontents*",
    "spverbatim",
    "alltt*",
}


def mask(text: str, verbatim: set[str]) -> tuple[str, str]:
    """(text with comments and verbatim material blanked, text with only comments blanked); same length as
    ``text``, newlines kept."""
    names = "|".join(re.escape(v) for v in sorted(verbatim, key=len, reverse=True))
    pat = re.compile(
        r"\\[^A-Za-z]"  # an escaped character (\\, \%, \{): kept
        r"|\\verb\*?([^\sA-Za-z*])[^\n]*?\1"
        r"|\\(?:lstinline|mintinline\{[^}\n]*\}|lstinline\[[^\]\n]*\])(?:([^\s{A-Za-z\[])[^\n]*?\2|\{[^}\n]*\})"
        rf"|\\begin\s*\{{({names})\}}.*?\\end\s*\{{\3\}}"
        r"|%[^\n]*",
        re.S,
    )

    comments: list[tuple[int, int]] = []

    def blank(m: re.Match[str]) -> str:
        s = m.group()
        if s[0] == "\\" and len(s) == 2:
            return s
        if s[0] == "%":
            comments.append(m.span())
        if "\n" not in s:
            return " " * len(s)
        return re.sub(r"[^\n]", " ", s)

    masked = pat.sub(blank, text)
    if not comments:
        return masked, text
    parts, last = [], 0
    for a, b in comments:
        parts += [text[last:a], " " * (b - a)]
        last = b
    parts.append(text[last:])
    return masked, "".join(parts)


def unmatched_braces(masked: str) -> list[int]:
    stack: list[int] = []
    bad: list[int] = []
    for m in BRACE_TOK.finditer(masked):
        c = m.group()
        if c == "{":
            stack.append(m.start())
        elif c == "}":
            if stack:
                stack.pop()
            else:
                bad.append(m.start())
    return sorted(bad + stack)
