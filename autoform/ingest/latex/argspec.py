"""Argument specs: a macro or environment as the book defines it (``\\newcommand``'s argument count and default,
xparse's ``m o O{…} s t…`` specs), how its arguments are read at a use, and how they are substituted into its
body."""

from __future__ import annotations

import re
from dataclasses import dataclass

from autoform.ingest.latex.syntax import CS_RE, WS, mandatory, optional

NOVALUE = "-NoValue-"

TRUE, FALSE = r"\BooleanTrue", r"\BooleanFalse"

_PARAM_RE = re.compile(r"#(#|[1-9])")
_ALIAS_RE = re.compile(r"\s*\\([A-Za-z@]+)\s*")


@dataclass
class Macro:
    spec: str  # one letter per argument: m (mandatory), o (optional, -NoValue-), O (optional, default), s, t
    body: str
    defaults: tuple[str | None, ...] = ()
    tokens: tuple[str, ...] = ()
    expandable: bool = True
    words: frozenset[str] = frozenset()
    alias: str | None = None  # the body is just another control word (\let\a\b, \def\a{\b})

    @staticmethod
    def make(
        spec: str,
        body: str,
        defaults: tuple[str | None, ...] = (),
        tokens: tuple[str, ...] = (),
        expandable: bool = True,
    ) -> Macro:
        al = _ALIAS_RE.fullmatch(body) if not spec and expandable else None
        return Macro(
            spec, body, defaults, tokens, expandable, frozenset(CS_RE.findall(body)), al.group(1) if al else None
        )


@dataclass
class EnvDef:
    spec: str
    defaults: tuple[str | None, ...]
    begin: str
    end: str


def read_args(
    s: str, i: int, n: int, mac: Macro | EnvDef, spans: list[tuple[int, int] | None] | None = None
) -> tuple[list[str], int] | None:
    """The arguments of ``mac`` at s[i:] by its spec (and, in ``spans``, where each one's text lies)."""
    vals: list[str] = []
    for k, c in enumerate(mac.spec):
        if c == "m":
            a = mandatory(s, i, n)
            if a is None:
                return None
            vals.append(a[0])
            if spans is not None:
                spans.append((a[1], a[1] + len(a[0])))
            i = a[2]
            continue
        if spans is not None:
            spans.append(None)
        if c in "oO":
            got = optional(s, i, n)
            if got is None:
                d = mac.defaults[k] if k < len(mac.defaults) else None
                vals.append(NOVALUE if c == "o" or d is None else d)
            else:
                vals.append(got[0])
                if spans is not None:
                    spans[-1] = (got[1] - 1 - len(got[0]), got[1] - 1)
                i = got[1]
        elif c in "st":
            tok = "*" if c == "s" else (mac.tokens[k] if isinstance(mac, Macro) and k < len(mac.tokens) else "*")
            j = WS.match(s, i, n).end()
            if s.startswith(tok, j):
                vals.append(TRUE)
                i = j + len(tok)
            else:
                vals.append(FALSE)
    return vals, i


def latex_spec(nargs: int, default: str | None) -> tuple[str, tuple[str | None, ...]]:
    """The spec and defaults of a ``\\newcommand`` or ``\\newenvironment`` with ``nargs`` arguments, the first
    optional when it has a ``default``."""
    spec = ("O" + "m" * (nargs - 1)) if default is not None and nargs else "m" * nargs
    return spec, (default,) + (None,) * max(0, nargs - 1)


def substitute(body: str, args: list[str]) -> str:
    if "#" not in body:
        return body

    def rep(m: re.Match[str]) -> str:
        g = m.group(1)
        if g == "#":
            return "#"
        k = int(g)
        return args[k - 1] if k <= len(args) else ""

    return _PARAM_RE.sub(rep, body)


def xparse_spec(spec: str) -> tuple[str, tuple[str | None, ...], tuple[str, ...]] | None:
    letters: list[str] = []
    defaults: list[str | None] = []
    tokens: list[str] = []
    i, n = 0, len(spec)
    while i < n:
        c = spec[i]
        i += 1
        if c in " \t\n+!":
            continue
        if c in "mos":
            letters.append(c)
            defaults.append(None)
            tokens.append("*")
        elif c == "O":
            g = mandatory(spec, i, n)
            if g is None:
                return None
            letters.append("O")
            defaults.append(g[0])
            tokens.append("")
            i = g[2]
        elif c == "t":
            g = mandatory(spec, i, n)
            if g is None:
                return None
            letters.append("t")
            defaults.append(None)
            tokens.append(g[0].strip() or "*")
            i = g[2]
        else:
            return None
    return "".join(letters), tuple(defaults), tuple(tokens)
