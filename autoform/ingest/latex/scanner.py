"""The scanner: walks the masked text from control word to control word (a C-level regex search; plain text is
skipped at regex speed), runs the handler of each control word the reader knows, and expands the book's macros
that reach one (reading arguments that hold units in place, in their file)."""

from __future__ import annotations

import re

from autoform.ingest.latex.argspec import Macro, read_args, substitute
from autoform.ingest.latex.commands import SECTION_LEVELS
from autoform.ingest.latex.conditionals import ConditionalOps
from autoform.ingest.latex.state import MAX_DEPTH, STOP, ExpansionLimit, Handler, Src
from autoform.ingest.latex.syntax import CS_RE, mandatory, optional, read_star
from autoform.ingest.latex.theorems import TheoremOps

_UNIT_BEGIN = re.compile(r"\\begin\s*\{([^{}]*)\}")


class Scanner(ConditionalOps, TheoremOps):
    """The scan loop and the macro uses it expands."""

    def run(self, src: Src, i: int, n: int, depth: int) -> int:
        """Scan ``src`` from ``i`` to ``n``; ``n``, or :data:`STOP` when the document ended."""
        masked = src.masked
        search = CS_RE.search
        while (m := search(masked, i, n)) is not None:
            try:
                i = self.control_word(m, src, n, depth)
            except ExpansionLimit as e:
                raise self.expansion_error(e, src, m.start()) from None
            if i == STOP:
                return STOP
        return n

    def control_word(self, m: re.Match[str], src: Src, n: int, depth: int) -> int:
        """Act on the control word ``m`` found in ``src``: run its handler, read on in the argument a marker
        stands for, expand the book's macro that reaches structure, or follow a ``\\newif`` switch; where the
        scan goes on (or :data:`STOP`)."""
        name, j = self.dealias(m.group(1)), m.end()
        if self.markers and name in self.markers:
            msrc, a, b = self.markers[name]
            return STOP if self.run(msrc, a, b, depth + 1) == STOP else j
        h = self.handlers.get(name)
        if h is not None:
            r = h(name, src, j, n, m.start(), depth)
            return STOP if r == STOP else max(r, j)
        mac = self.macros.get(name)
        if mac is not None and self.interesting(name):
            if depth >= MAX_DEPTH:
                # TeX's input stack overflows here too ("TeX capacity exceeded"); real books stay far below
                raise ExpansionLimit(name, self.steps, nested=depth)
            return self.invoke(name, mac, src, j, n, m.start(), depth)
        return self.switch(name, src, j, n)

    def dealias(self, name: str) -> str:
        """The control word ``name`` stands for through ``\\let``-style aliases (\\a -> \\b), up to 8 deep."""
        for _ in range(8):
            mac = self.macros.get(name)
            if mac is None or mac.alias is None or name in self.handlers:
                break
            name = mac.alias
        return name

    def invoke(self, name: str, mac: Macro, src: Src, j: int, n: int, start: int, depth: int) -> int:
        spans: list[tuple[int, int] | None] = []
        got = read_args(src.masked, j, n, mac, spans)
        if got is None:
            return j
        vals, end = got
        self.charge(name, len(mac.body))
        markers: list[str] = []
        if src.origin is None:
            # an argument holding theorem environments or proofs (\iftag{t}{\begin{thm}...}{...}) is replaced
            # by a marker; where the expansion reaches the marker, the argument is read in place, in its file
            for k, (v, span) in enumerate(zip(vals, spans, strict=True)):
                if span is not None and any(self.env_use(e.strip()) for e in _UNIT_BEGIN.findall(v)):
                    self.marker_seq += 1
                    mark = "autoformArg" + _letters(self.marker_seq)
                    self.markers[mark] = (src, span[0], span[1])
                    markers.append(mark)
                    vals[k] = f"\\{mark} "
        body = substitute(mac.body, vals)
        if body.strip():
            self.run(Src(body, body, None, src.at(start)), 0, len(body), depth + 1)
        for mark in markers:
            self.markers.pop(mark, None)
        return end

    def h_csuse(self, name: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        got = self._csname(name, src.masked, i, n)
        if got is None or depth >= MAX_DEPTH:
            return i
        cs, j = got
        if cs not in self.handlers and cs not in self.macros:
            return j
        # read on as if \<cs> were written here: the command with the arguments that follow it
        ext = self._args_extent(cs, "\\" + cs + src.masked[j:n])
        view = "\\" + cs + src.masked[j : j + ext]
        self.run(Src(view, view, None, src.at(start)), 0, len(view), depth + 1)
        return j + ext

    def _args_extent(self, cs: str, text: str) -> int:
        """How many characters after '\\cs' in ``text`` the command's arguments take (best effort)."""
        k = len(cs) + 1
        mac = self.macros.get(cs)
        if mac is not None:
            got = read_args(text, k, len(text), mac)
            return (got[1] - k) if got else 0
        if cs in SECTION_LEVELS:
            _, j = read_star(text, k, len(text))
            while (opt := optional(text, j, len(text))) is not None:
                j = opt[1]
            a = mandatory(text, j, len(text))
            return (a[2] - k) if a else 0
        a = mandatory(text, k, len(text))
        return (a[2] - k) if a and text[a[1] - 1 : a[1]] == "{" else 0

    def h_endinput(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        return n if src.origin is None else i  # the rest of the file is not read

    def h_skip_args(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        opt = optional(src.masked, i, n)
        j = opt[1] if opt else i
        a = mandatory(src.masked, j, n)
        return a[2] if a else j

    def handler_table(self) -> dict[str, Handler]:
        return {
            **super().handler_table(),
            "csuse": self.h_csuse,
            "csname": self.h_csuse,
            "endinput": self.h_endinput,
            "documentclass": self.h_skip_args,
        }


def _letters(k: int) -> str:
    """0 -> "a", 25 -> "z", 26 -> "ba": a marker's name, letters only (a control word)."""
    out = ""
    while True:
        k, r = divmod(k, 26)
        out = chr(ord("a") + r) + out
        if k == 0:
            return out
