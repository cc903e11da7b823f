"""Conditionals: TeX's primitive ``\\if…`` (``\\ifdefined``, ``\\ifx``, the book's ``\\newif`` switches)
skipped to their ``\\else`` or ``\\fi``, the argument-taking ones (:mod:`~autoform.ingest.latex.branches`) read
on in the branch they leave, etoolbox's toggles and ``\\docsvlist``."""

from __future__ import annotations

import re

from autoform.ingest.latex.argspec import substitute
from autoform.ingest.latex.branches import BRANCHES, pick_branch
from autoform.ingest.latex.macros import MacroTable
from autoform.ingest.latex.state import MAX_DEPTH, STOP, Handler, Src
from autoform.ingest.latex.syntax import mandatory

ETOOLBOX_IFS = {  # macros whose name starts with "if" but that take arguments (no \fi)
    "ifdef",
    "ifundef",
    "ifcsdef",
    "ifcsundef",
    "ifdefmacro",
    "ifcsmacro",
    "ifdefparam",
    "ifdefprefix",
    "ifdefempty",
    "ifcsempty",
    "ifdefvoid",
    "ifcsvoid",
    "ifdefequal",
    "ifcsequal",
    "ifdefstring",
    "ifcsstring",
    "ifdefstrequal",
    "ifbool",
    "ifboolexpr",
    "ifboolexpe",
    "iftoggle",
    "ifnumcomp",
    "ifnumequal",
    "ifnumgreater",
    "ifnumless",
    "ifnumodd",
    "ifdimcomp",
    "ifstrequal",
    "ifstrempty",
    "ifblank",
    "ifinlist",
    "ifthenelse",
    "ifcommand",
    "ifdimequal",
    "ifdimgreater",
    "ifdimless",
    "ifrmnum",
    "ifltxcounter",
    "iflinguistics",
}

PRIM_IFS = frozenset({"ifdefined", "ifcsname", "ifx", "iftrue", "iffalse"})


class ConditionalOps(MacroTable):
    """Handlers of the conditionals, and skipping the branch not taken."""

    def switch(self, name: str, src: Src, j: int, n: int) -> int:
        """A ``\\newif`` switch at s[:j]: ``\\footrue`` / ``\\foofalse`` set it, a false ``\\iffoo`` skips to its
        ``\\else`` or ``\\fi``; where the scan goes on (any other control word: ``j``)."""
        if name.endswith(("true", "false")):
            base = name[:-4] if name.endswith("true") else name[:-5]
            if "if" + base in self.ifs:
                self.ifs["if" + base] = name.endswith("true")
            return j
        if name in self.ifs and not self.ifs[name]:
            return self.skip_conditional(src, j, n, to_else=True)
        return j

    def skip_conditional(self, src: Src, i: int, n: int, *, to_else: bool) -> int:
        """Skip to the matching \\else (when ``to_else``) or \\fi, counting nested primitive conditionals."""
        depth = 0
        for m in re.finditer(r"\\(if[A-Za-z@]*|else|fi|or)(?![A-Za-z@])", src.masked[i:n]):
            w = m.group(1)
            if w.startswith("if"):
                if w in ETOOLBOX_IFS or w in self.macros or w in self.handlers and w not in PRIM_IFS:
                    continue
                depth += 1
            elif w == "fi":
                if depth == 0:
                    return i + m.end()
                depth -= 1
            elif w == "else" and depth == 0 and to_else:
                return i + m.end()
        return n

    def h_branch(self, name: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        nargs, test = BRANCHES[name]
        spans: list[tuple[str, int, int]] = []
        j = i
        for _k in range(nargs):
            a = mandatory(src.masked, j, n)
            if a is None:
                return j
            spans.append(a)
            j = a[2]
        first = test(self, spans[0][0]) if test else True
        k_arg = pick_branch(name, nargs, first)
        if k_arg >= 0:
            text, a, _b = spans[k_arg]
            if a > 0 and src.masked[a - 1] == "{":
                r = self.run(src, a, a + len(text), depth)
                if r == STOP:
                    return STOP
            else:
                self.run_inline(text, src, start, depth)
        return j

    def h_toggle(self, name: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        a = mandatory(src.masked, i, n)
        if a is None:
            return i
        t = self.expand(a[0], strings=True).strip()
        if self.toggle_groups and t not in self.toggle_groups[-1]:  # etoolbox toggles are local to a group
            self.toggle_groups[-1][t] = self.toggles.get(t)
        if name == "toggletrue":
            self.toggles[t] = True
        elif name == "togglefalse":
            self.toggles[t] = False
        elif name == "settoggle":
            b = mandatory(src.masked, a[2], n)
            if b is None:
                return a[2]
            self.toggles[t] = b[0].strip() == "true"
            return b[2]
        else:
            self.toggles.setdefault(t, False)
        return a[2]

    def h_docsvlist(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        a = mandatory(src.masked, i, n)
        if a is None:
            return i
        do = self.macros.get("do")
        if do is not None and depth < MAX_DEPTH:
            for item in self.expand(a[0], strings=True).split(","):
                if item.strip():
                    self.run_inline(substitute(do.body, [item.strip()]), src, start, depth)
        return a[2]

    def h_newif(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        m = re.compile(r"\s*\\(if[A-Za-z@]+)").match(src.masked, i, n)
        if m is None:
            return i
        self.ifs[m.group(1)] = False
        return m.end()

    def h_if(self, name: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        value: bool | None = None
        j = i
        if name == "ifdefined":
            m = re.compile(r"\s*\\([A-Za-z@]+|.)").match(s, i, n)
            if m:
                value, j = (m.group(1) in self.macros or m.group(1) in self.handlers), m.end()
        elif name == "ifcsname":
            k = s.find(r"\endcsname", i, n)
            if k >= 0:
                cs = self.expand(s[i:k], strings=True).strip()
                value, j = cs in self.macros, k + len(r"\endcsname")
        elif name == "ifx":
            m = re.compile(r"\s*\\([A-Za-z@]+|.)\s*\\([A-Za-z@]+|.)").match(s, i, n)
            if m and m.group(2) in ("undefined", "relax") and m.group(1) not in ("undefined", "relax"):
                value, j = m.group(1) not in self.macros, m.end()
        elif name == "iftrue":
            value = True
        elif name == "iffalse":
            value = False
        if value is False:
            return self.skip_conditional(src, j, n, to_else=True)
        return j

    def h_else(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        return self.skip_conditional(src, i, n, to_else=False)

    def handler_table(self) -> dict[str, Handler]:
        return {
            **super().handler_table(),
            **dict.fromkeys(BRANCHES, self.h_branch),
            **dict.fromkeys(("toggletrue", "togglefalse", "settoggle", "newtoggle", "providetoggle"), self.h_toggle),
            "docsvlist": self.h_docsvlist,
            "newif": self.h_newif,
            **dict.fromkeys(PRIM_IFS, self.h_if),
            "else": self.h_else,
        }
