"""Frames: the units and proofs open at a point of the scan, what each collects (labels, references, the nested
material cut from its text), and how a closed frame becomes a unit's statement, proof and source span."""

from __future__ import annotations

import re

from autoform.ingest.latex.commands import REF_MACROS
from autoform.ingest.latex.macros import MacroTable
from autoform.ingest.latex.state import Frame, Handler, Src
from autoform.ingest.latex.syntax import clean, mandatory, optional, read_star
from autoform.ingest.model import RawUnit


class FrameOps(MacroTable):
    """Opening and closing frames, and the labels and references they collect."""

    def innermost_unit(self) -> Frame | None:
        for fr in reversed(self.frames):
            if fr.role in ("unit", "headed"):
                return fr
        return None

    def close_headed(self, pos: int) -> None:
        if self.frames and self.frames[-1].role == "headed":
            fr = self.frames.pop()
            self.finish_unit(fr, pos, pos)

    def close_file_frames(self, src: Src, end: int) -> None:
        while self.frames and self.frames[-1].src is src:
            fr = self.frames.pop()
            if fr.role != "headed":
                self.warn(src, fr.begin, f"\\begin{{{fr.env}}} is never closed; it ends with its file")
                end = min(end, len(src.text))
                if fr.role == "proof":
                    self.finish_proof(fr, end, end)
                    continue
            self.finish_unit(fr, end, end)

    def finish_unit(self, fr: Frame, stop: int, after: int) -> None:
        u = fr.unit
        assert u is not None
        src = fr.src
        pieces, at = [], fr.body  # the text minus its proofs and nested units, in one pass (linear in the text)
        for a, b in sorted(fr.cut):
            if at <= a < b <= stop:
                pieces.append(src.text[at:a])
                at = b
        pieces.append(src.text[at:stop])
        body = "".join(pieces)
        raw = clean(self.drop_label_macros(body))
        u.statement_raw = raw
        u.statement = clean(self.expand(body))
        parent = self.innermost_unit()
        if parent is not None and parent.src is src:  # a unit nested in another is its own unit, not its text
            parent.cut.append((fr.begin, after))
        stmt_labels = list(dict.fromkeys(x for x in fr.labels if x))
        u.labels = list(dict.fromkeys(stmt_labels + u.labels))
        u.label = stmt_labels[0] if stmt_labels else ""
        u.refs = list(dict.fromkeys(fr.refs + u.refs))
        last = after - 1
        while last > fr.body and src.text[last].isspace():
            last -= 1
        l1, l2 = src.line(fr.begin), src.line(max(last, fr.begin))
        u.source = f"{self.rel(src.file)}:{l1}-{max(l2, self._span_end(u, src))}"
        for lab in u.labels:
            self.label_unit.setdefault(lab, u)
        self.last_unit, self.last_parent = u, self.innermost_unit()

    def drop_label_macros(self, s: str) -> str:
        if not self.label_macros:
            return s
        if self._label_macro_re is None:
            names = "|".join(re.escape(n) for n in sorted(self.label_macros, key=len, reverse=True))
            self._label_macro_re = re.compile(rf"\\(?:{names})(?![A-Za-z@])\s*\{{[^{{}}]*\}}")
        return self._label_macro_re.sub("", s)

    def _span_end(self, u: RawUnit, src: Src) -> int:
        if u.source and u.source.rsplit(":", 1)[0] == self.rel(src.file):
            return int(u.source.rsplit("-", 1)[1])
        return 0

    def finish_proof(self, fr: Frame, stop: int, after: int) -> None:
        src = fr.src
        parent = self.innermost_unit()
        if parent is not None and parent.src is src:
            parent.cut.append((fr.begin, after))
        u = fr.target
        if u is None:
            self.warn(src, fr.begin, "a proof with no statement before it; ignored")
            return
        body = src.text[fr.body : stop]
        raw = clean(self.drop_label_macros(body))
        text = clean(self.expand(body))
        u.proof = f"{u.proof}\n\n{text}" if u.proof else text
        u.proof_raw = f"{u.proof_raw}\n\n{raw}" if u.proof_raw else raw
        u.refs = list(dict.fromkeys(u.refs + fr.refs))
        u.labels = list(dict.fromkeys(u.labels + [x for x in fr.labels if x]))
        for lab in fr.labels:
            self.label_unit.setdefault(lab, u)
        if u.source and fr.adjacent:
            file, span = u.source.rsplit(":", 1)
            if file == self.rel(src.file):
                a, b = span.split("-")
                last = after - 1
                while last > fr.body and src.text[last].isspace():
                    last -= 1
                u.source = f"{file}:{a}-{max(int(b), src.line(last))}"

    def add_label(self, label: str) -> None:
        if self.frames and label:
            self.frames[-1].labels.append(label)

    def add_refs(self, labels: list[str]) -> None:
        if self.frames:
            self.frames[-1].refs.extend(x for x in labels if x)

    def h_label(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        opt = optional(src.masked, i, n)
        j = opt[1] if opt else i
        a = mandatory(src.masked, j, n)
        if a is None:
            return j
        self.add_label(self.expand(a[0], strings=True).strip())
        return a[2]

    def h_ref(self, name: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        _, j = read_star(s, i, n)
        opt = optional(s, j, n)  # \cref[...] is rare; skip it
        j = opt[1] if opt else j
        labels: list[str] = []
        for _k in range(REF_MACROS[name]):
            a = mandatory(s, j, n)
            if a is None:
                break
            labels += [x.strip() for x in self.expand(a[0], strings=True).split(",")]
            j = a[2]
        self.add_refs(labels)
        return j

    def h_hyperref(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        opt = optional(src.masked, i, n)
        if opt is not None:
            self.add_refs([self.expand(opt[0], strings=True).strip()])
            return opt[1]
        return i

    def handler_table(self) -> dict[str, Handler]:
        return {
            **super().handler_table(),
            "label": self.h_label,
            **dict.fromkeys(REF_MACROS, self.h_ref),
            "hyperref": self.h_hyperref,
        }
