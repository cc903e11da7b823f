"""The commands that define macros: ``\\newcommand`` and kin, ``\\def``, ``\\let``, xparse's
``\\NewDocumentCommand``, ``\\DeclareMathOperator``, groups that scope them, and OpenLogic's text tokens."""

from __future__ import annotations

import re

from autoform.ingest.latex.argspec import Macro, latex_spec, xparse_spec
from autoform.ingest.latex.macros import MacroTable
from autoform.ingest.latex.state import Handler, Src
from autoform.ingest.latex.syntax import mandatory, optional, read_star


class DefinitionOps(MacroTable):
    """Handlers of the commands that define macros."""

    def _cs_name(self, s: str, i: int, n: int) -> tuple[str, int] | None:
        a = mandatory(s, i, n)
        if a is None:
            return None
        m = re.fullmatch(r"\s*\\([A-Za-z@]+|.)\s*", a[0])
        return (m.group(1), a[2]) if m else None

    def h_newcommand(self, name: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        _, j = read_star(s, i, n)
        got = self._cs_name(s, j, n)
        if got is None:
            return j
        cs, j = got
        nargs = optional(s, j, n)
        j = nargs[1] if nargs else j
        default = optional(s, j, n)
        j = default[1] if default else j
        body = mandatory(s, j, n)
        if body is None:
            return j
        try:
            k = int(nargs[0]) if nargs else 0
        except ValueError:
            return body[2]
        if name == "providecommand" and cs in self.macros:
            return body[2]
        spec, defaults = latex_spec(k, default[0] if default else None)
        self.define(cs, Macro.make(spec, body[0], defaults))
        return body[2]

    def h_def(self, name: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        m = re.compile(r"\s*\\([A-Za-z@]+|.)([^{}\n]{0,60})").match(s, i, n)
        if m is None:
            return i
        cs, params = m.group(1), m.group(2)
        body = mandatory(s, m.end(), n)
        if body is None or not s.startswith("{", m.end()):
            return m.end()
        p = params.replace(" ", "")
        simple = re.fullmatch(r"(#[1-9])*", p) is not None
        text = body[0]
        if name in ("edef", "xdef"):
            text = self.expand(text, strings=True)
        if name in ("gdef", "xdef"):
            self.global_next = True
        self.define(cs, Macro.make("m" * (len(p) // 2) if simple else "", text, expandable=simple))
        return body[2]

    def h_global(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        self.global_next = True
        return i

    def h_let(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        m = re.compile(r"\s*\\([A-Za-z@]+|.)\s*=?\s*(\\([A-Za-z@]+|.)|.)").match(src.masked, i, n)
        if m is None:
            return i
        a, b = m.group(1), m.group(3)
        if b is None:
            self.define(a, Macro.make("", m.group(2)))
        elif b in self.macros:
            self.define(a, self.macros[b])
        elif b in ("relax", "undefined"):
            self.define(a, None)
        else:
            self.define(a, Macro.make("", "\\" + b))
        if b in self.thm:
            self.thm[a] = self.thm[b]
            self._use_cache.clear()
        elif b in self.proof_envs:
            self.proof_envs.add(a)
            self._use_cache.clear()
        return m.end()

    def h_xparse(self, name: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        got = self._cs_name(s, i, n)
        if got is None:
            return i
        cs, j = got
        spec = mandatory(s, j, n)
        if spec is None:
            return j
        body = mandatory(s, spec[2], n)
        if body is None:
            return spec[2]
        if name == "ProvideDocumentCommand" and cs in self.macros:
            return body[2]
        parsed = xparse_spec(spec[0])
        if parsed is None:
            self.define(cs, Macro.make("", body[0], expandable=False))
        else:
            self.define(cs, Macro.make(parsed[0], body[0], parsed[1], parsed[2]))
        return body[2]

    def h_mathop(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        star, j = read_star(s, i, n)
        got = self._cs_name(s, j, n)
        if got is None:
            return j
        body = mandatory(s, got[1], n)
        if body is None:
            return got[1]
        self.define(got[0], Macro.make("", rf"\operatorname{'*' if star else ''}{{{body[0]}}}"))
        return body[2]

    def h_begingroup(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        if len(self.groups) < 64:
            self.groups.append({})
            self.toggle_groups.append({})
        return i

    def h_endgroup(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        if self.groups:
            for t, was in self.toggle_groups.pop().items():
                if was is None:
                    self.toggles.pop(t, None)
                else:
                    self.toggles[t] = was
            for name, old in self.groups.pop().items():
                if old is None:
                    self.macros.pop(name, None)
                else:
                    self.macros[name] = old
            self._int_cache.clear()
            self._content_cache.clear()
        return i

    def h_settexttoken(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        a = mandatory(s, i, n)
        if a is None:
            return i
        _, j = read_star(s, a[2], n)
        b = mandatory(s, j, n)
        c = mandatory(s, b[2], n) if b else None
        if b is None or c is None:
            return j
        j = c[2]
        d = optional(s, j, n)
        j = d[1] if d else j
        e = optional(s, j, n)
        j = e[1] if e else j
        sing, plur = b[0].strip(), c[0].strip()
        self.tokens[a[0].strip()] = (
            sing,
            plur,
            d[0].strip() if d else sing[:1].upper() + sing[1:],
            e[0].strip() if e else plur[:1].upper() + plur[1:],
        )
        for letter, form in zip("spSP", self.tokens[a[0].strip()], strict=True):
            self.macros[f"OLtok@{letter}@{a[0].strip()}"] = Macro.make("", form)
        return j

    def handler_table(self) -> dict[str, Handler]:
        return {
            **super().handler_table(),
            **dict.fromkeys(
                ("newcommand", "renewcommand", "providecommand", "DeclareRobustCommand"), self.h_newcommand
            ),
            **dict.fromkeys(("def", "gdef", "edef", "xdef"), self.h_def),
            "global": self.h_global,
            "let": self.h_let,
            **dict.fromkeys(
                (
                    "DeclareDocumentCommand",
                    "NewDocumentCommand",
                    "RenewDocumentCommand",
                    "ProvideDocumentCommand",
                    "DeclareExpandableDocumentCommand",
                    "NewExpandableDocumentCommand",
                ),
                self.h_xparse,
            ),
            "DeclareMathOperator": self.h_mathop,
            "begingroup": self.h_begingroup,
            "endgroup": self.h_endgroup,
            "settexttoken": self.h_settexttoken,
        }
