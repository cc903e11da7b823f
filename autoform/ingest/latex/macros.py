"""The macro table and its expansion: what the book's macros are, which of them the scanner must expand (they
reach structure: labels, inclusions, sections ...), which are content (text and mathematics, expanded in a stored
statement), and the expansion itself, within the book's budget of expansion work."""

from __future__ import annotations

import re
from collections.abc import Callable

from autoform.ingest.latex.argspec import Macro, read_args, substitute
from autoform.ingest.latex.branches import BRANCHES, pick_branch
from autoform.ingest.latex.commands import INTEREST, PROGRAMMING
from autoform.ingest.latex.state import ReaderState
from autoform.ingest.latex.syntax import CS_RE, mandatory

_CS_OR_TOKEN = re.compile(r"\\([A-Za-z@]+)|!!")
_TOKEN_USE = re.compile(r"(\^?)(a?)\{([^{}]*)\}(s?)")
_NL_WS = re.compile(r"[ \t]*\n\s*")
_LONE_LABEL = re.compile(r"\s*\\label\s*\{(?:[^{}]|\{[^{}]*\})*\}\s*")
_ENDS_IN_WORD = re.compile(r"\\[A-Za-z@]+$")
_CS_NAMES = frozenset({"csuse", "csname", "usetoken"})
#: dropped when expanding for a string (a label, a file name, a number)
_DROPPED_IN_STRINGS = frozenset(
    {
        "relax",
        "protect",
        "noexpand",
        "expandafter",
        "ignorespaces",
        "unskip",
        "xspace",
        "nobreak",
        "@",
        "leavevmode",
        "string",
    }
)


def _alpha(k: int) -> str:
    return chr(ord("a") + k - 1) if 1 <= k <= 26 else str(k)


def _roman(k: int) -> str:
    if k <= 0:
        return str(k)
    out = ""
    for v, r in (
        (1000, "m"),
        (900, "cm"),
        (500, "d"),
        (400, "cd"),
        (100, "c"),
        (90, "xc"),
        (50, "l"),
        (40, "xl"),
        (10, "x"),
        (9, "ix"),
        (5, "v"),
        (4, "iv"),
        (1, "i"),
    ):
        while k >= v:
            out += r
            k -= v
    return out


COUNTER_FORMATS: dict[str, Callable[[int], str]] = {
    "arabic": str,
    "alph": _alpha,
    "Alph": lambda k: _alpha(k).upper(),
    "roman": _roman,
    "Roman": lambda k: _roman(k).upper(),
    "value": str,
    "number": str,
}


class MacroTable(ReaderState):
    """The book's macros: defining them (with ``\\begingroup`` scoping), classifying them, expanding them."""

    def define(self, name: str, macro: Macro | None) -> None:
        if self.groups and not self.global_next:
            top = self.groups[-1]
            if name not in top:
                top[name] = self.macros.get(name)
        self.global_next = False
        is_label = macro is not None and macro.spec == "m" and _LONE_LABEL.fullmatch(macro.body) is not None
        if is_label != (name in self.label_macros):
            (self.label_macros.add if is_label else self.label_macros.discard)(name)
            self._label_macro_re = None
        old = self.macros.get(name)
        if name in self._content_cache:
            self._content_cache.clear()
        old_int = self._int_cache.pop(name, None)
        if macro is None:
            self.macros.pop(name, None)
            if old_int:
                self._int_cache.clear()
            return
        self.macros[name] = macro
        if old is not None and old.words == macro.words and old.expandable == macro.expandable:
            if old_int is not None:
                self._int_cache[name] = old_int
            return
        new_int = self.interesting(name)
        if (old_int is not None and old_int != new_int) or (old is None and new_int):
            self._int_cache.clear()

    def interesting(self, name: str) -> bool:
        c = self._int_cache.get(name)
        if c is not None:
            return c
        self._int_cache[name] = False  # cycles are not interesting
        mac = self.macros[name]
        res = mac.expandable and any(w in INTEREST or (w in self.macros and self.interesting(w)) for w in mac.words)
        self._int_cache[name] = res
        return res

    def content(self, name: str) -> bool:
        """A macro whose expansion is text and mathematics (no definitions, no TeX programming)."""
        c = self._content_cache.get(name)
        if c is not None:
            return c
        self._content_cache[name] = False
        mac = self.macros[name]
        res = (
            mac.expandable
            and len(mac.body) < 2000
            and not any(w in PROGRAMMING or (w in self.macros and not self.content(w)) for w in mac.words)
        )
        self._content_cache[name] = res
        return res

    def expand(self, s: str, *, strings: bool = False, depth: int = 0) -> str:
        """Expand the book's macros in ``s`` (unknown macros are kept). ``strings``: also evaluate counter
        formats and drop \\relax-like tokens (for labels, file names and numbers)."""
        if depth > 16 or ("\\" not in s and "!!" not in s):
            return s
        out: list[str] = []
        i = size = 0
        pat = _CS_OR_TOKEN if self.tokens else CS_RE
        while (m := pat.search(s, i)) is not None:
            out.append(s[i : m.start()])
            name = m.group(1)
            if name in _CS_NAMES:  # \csname x\endcsname: read on as if \x were written here
                got = self._csname(name, s, m.end(), len(s))
                if got is not None:
                    s, i = "\\" + got[0] + s[got[1] :], 0
                    continue
            rep, i = self._replacement(name, s, m.end(), strings, depth)
            if rep is None:
                out.append(m.group())
                continue
            out.append(rep)
            size += len(rep)
            if size > 500_000:
                break
        out.append(s[i:])
        return "".join(out)

    def _replacement(self, name: str | None, s: str, j: int, strings: bool, depth: int) -> tuple[str | None, int]:
        """What the control word ``name`` (None: a ``!!{token}``) at s[:j] expands to, and where its use ends;
        (None, j) when it stays as it is."""
        if name is None:
            return self._token(s, j, len(s))
        rep, end = self._builtin(name, s, j, strings, depth)
        if rep is not None:
            return rep, end
        mac = self.macros.get(name)
        if mac is not None and mac.expandable and (strings or self.content(name)):
            return self._expand_use(name, mac, s, j, strings, depth)
        if strings and name.startswith("the") and name[3:] in self.values:
            return str(self.values[name[3:]]), j
        return None, j

    def _builtin(self, name: str, s: str, j: int, strings: bool, depth: int) -> tuple[str | None, int]:
        """The expansion of a conditional, and in ``strings`` of a counter format or a \\relax-like token."""
        if name in BRANCHES:
            got = self._branch(name, s, j, len(s))
            if got is None:
                return None, j
            return self.expand(got[0], strings=strings, depth=depth + 1), got[1]
        if not strings:
            return None, j
        if name in COUNTER_FORMATS:
            a = mandatory(s, j, len(s))
            if a is None:
                return None, j
            return COUNTER_FORMATS[name](self.values.get(a[0].strip(), 0)), a[2]
        if name in _DROPPED_IN_STRINGS:
            return "", j
        return None, j

    def _expand_use(self, name: str, mac: Macro, s: str, j: int, strings: bool, depth: int) -> tuple[str | None, int]:
        """A use of the book's macro ``name`` at s[:j], expanded (None when its arguments cannot be read)."""
        n = len(s)
        args = read_args(s, j, n, mac)
        if args is None:
            return None, j
        vals, j = args
        rep = substitute(mac.body, vals)
        self.charge(name, len(rep))
        rep = self.expand(rep, strings=strings, depth=depth + 1)
        if "\n" in rep:
            rep = _NL_WS.sub(" ", rep.strip())
        if not mac.spec and j < n and (s[j].isalpha() or s[j] == "@") and _ENDS_IN_WORD.search(rep):
            rep += " "  # \foo followed by a letter: keep them apart
        return rep, j

    def _token(self, s: str, j: int, n: int) -> tuple[str | None, int]:
        """OpenLogic's terminology tokens: !!{t}, !!{t}s, !!^{t}, !!a{t}, !!^a{t}."""
        m = _TOKEN_USE.match(s, j, n)
        if m is None or m.group(3) not in self.tokens:
            return None, j
        sing, plur, Sing, Plur = self.tokens[m.group(3)]
        word = (Plur if m.group(4) else Sing) if m.group(1) else (plur if m.group(4) else sing)
        if m.group(2):
            art = "an" if word[:1].lower() in "aeiou" else "a"
            if m.group(1):
                art, word = art.capitalize(), word[:1].lower() + word[1:]
            word = f"{art} {word}"
        return word, m.end()

    def _csname(self, name: str, s: str, j: int, n: int) -> tuple[str, int] | None:
        if name == "csname":
            k = s.find(r"\endcsname", j, n)
            if k < 0:
                return None
            return self.expand(s[j:k], strings=True).strip(), k + len(r"\endcsname")
        if name == "usetoken":
            a = mandatory(s, j, n)
            b = mandatory(s, a[2], n) if a else None
            if a is None or b is None:
                return None
            form, tok = a[0].strip(), b[0].strip()
            if tok in self.tokens and form in ("s", "p", "S", "P"):
                return f"OLtok@{form}@{tok}", b[2]
            return None
        a = mandatory(s, j, n)
        if a is None:
            return None
        return self.expand(a[0], strings=True).strip(), a[2]

    def _branch(self, name: str, s: str, j: int, n: int) -> tuple[str, int] | None:
        """Evaluate the argument-taking conditionals; returns (chosen text, end)."""
        nargs, test = BRANCHES[name]
        args: list[str] = []
        k = j
        for _ in range(nargs):
            a = mandatory(s, k, n)
            if a is None:
                return None
            args.append(a[0])
            k = a[2]
        first = test(self, args[0]) if test else True
        k_arg = pick_branch(name, nargs, first)
        return (args[k_arg] if k_arg >= 0 else ""), k
