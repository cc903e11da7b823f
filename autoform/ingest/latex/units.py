"""Units and proofs: ``\\begin`` and ``\\end`` of theorem-like and proof environments, the document's start
(where the usual environment names are assumed when the book declares none), and which unit a proof proves."""

from __future__ import annotations

from autoform.ingest.latex.argspec import NOVALUE, EnvDef, read_args
from autoform.ingest.latex.frames import FrameOps
from autoform.ingest.latex.state import STOP, EnvUse, Frame, Handler, Src, TheoremEnv
from autoform.ingest.latex.syntax import OPT_WS, mandatory, optional
from autoform.ingest.latex.theorems import TheoremOps
from autoform.ingest.model import KINDS, NAME_TO_KIND, IngestError, RawUnit


class UnitOps(TheoremOps, FrameOps):
    """Opening and closing units and proofs."""

    def h_begin(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        a = mandatory(src.masked, i, n)
        if a is None:
            return i
        env, j = a[0].strip(), a[2]
        if env == "document":
            if not self.in_document:
                self.in_document = True
                self.begin_document(src, start)
            return j
        if env == "appendices":
            self.appendix()
            return j
        if src.origin is not None or not self.in_document:
            return j
        use = self.env_use(env)
        if use is None:
            return j
        if use.role == "proof":
            return self.open_proof(env, use, src, start, j, n, depth)
        return self.open_unit(env, use, src, start, j, n, depth)

    def open_unit(self, env: str, use: EnvUse, src: Src, start: int, j: int, n: int, depth: int) -> int:
        self.close_headed(start)
        thm, title, title_at, j = self._unit_head(use, src, j, n)
        if thm is None:  # \begin{restatable} of something that is no unit
            return j
        self._admit(thm, env, src, start)
        unit = RawUnit(
            kind=thm.kind,
            number=self.number(thm.counter),
            title=title,
            statement="",
            chapter=self.chapter,
            section=self.section,
        )
        self.units.append(unit)
        self.frames.append(Frame("unit", env, src, start, j, unit))
        if title_at >= 0 and "\\" in title:  # references in the title count
            self.run(src, title_at, j, depth)
        return j

    def _unit_head(self, use: EnvUse, src: Src, j: int, n: int) -> tuple[TheoremEnv | None, str, int, int]:
        """(theorem environment, title, where the title's text starts or -1, end) of a unit's ``\\begin``."""
        if use.restatable:
            return self._restatable_head(src, j, n)
        if use.spec:
            raw, j = _alias_title(use, src.masked, j, n)
            return use.thm, use.fixed_title if use.title_arg == -2 else raw.strip(), -1, j
        opt = optional(src.masked, j, n)
        if opt is None:
            return use.thm, "", -1, j
        k = OPT_WS.match(src.masked, j, n).end()
        return use.thm, src.text[k + 1 : opt[1] - 1].strip(), k, opt[1]

    def _restatable_head(self, src: Src, j: int, n: int) -> tuple[TheoremEnv | None, str, int, int]:
        """thm-restate's ``\\begin{restatable}[title]{env}{\\name}``: the environment it states (None: no unit)."""
        s = src.masked
        title = ""
        opt = optional(s, j, n)
        if opt:
            title, j = opt[0].strip(), opt[1]
        a = mandatory(s, j, n)
        b = mandatory(s, a[2], n) if a else None
        if a is None or b is None:
            return None, title, -1, j
        inner = self.env_use(a[0].strip())
        if inner is None or inner.role != "unit" or inner.thm is None:
            return None, title, -1, b[2]
        return inner.thm, title, -1, b[2]

    def _admit(self, thm: TheoremEnv, env: str, src: Src, start: int) -> None:
        """Check a new unit against the limits (units, nesting); warn once when the usual names are assumed."""
        if thm.fallback and not self.fallback_used:
            self.fallback_used = True
            self.warnings.append(
                f"{self.rel(self.root)}: no \\newtheorem declarations found; using the usual environment names"
            )
        if len(self.units) >= self.limits.max_units:
            raise IngestError(
                f"{self.where(src, start)}: more than {self.limits.max_units} theorem-like units in "
                "one book ([ingest] max_units in autoform.toml)"
            )
        self.check_nesting(env, src, start)

    def open_proof(self, env: str, use: EnvUse, src: Src, start: int, j: int, n: int, depth: int) -> int:
        self.close_headed(start)
        if use.spec:
            title, j = _alias_title(use, src.masked, j, n)
        else:
            opt = optional(src.masked, j, n)
            title, j = (opt[0], opt[1]) if opt else ("", j)
        target, by_title = self._proved_by_title(title, env, src, start, j, depth)
        if target is None:
            enclosing = self.innermost_unit()
            if self.last_unit is not None and self.last_parent is enclosing:
                target = self.last_unit  # the unit just before (at the same nesting level)
            elif enclosing is not None:
                target = enclosing.unit  # a proof inside the unit it proves
        self.check_nesting(env, src, start)
        self.frames.append(Frame("proof", env, src, start, j, None, target, adjacent=not by_title))
        return j

    def _proved_by_title(
        self, title: str, env: str, src: Src, start: int, j: int, depth: int
    ) -> tuple[RawUnit | None, bool]:
        """The unit a proof's title names ("Proof of Theorem~\\ref{x}" proves x), and whether it is another unit
        than the one just before; (None, False) when the title names none."""
        if "\\" not in title:
            return None, False
        probe = Frame("proof", env, src, start, j)
        self.frames.append(probe)
        self.run_inline(title, src, start, depth)
        self.frames.pop()
        for lab in probe.refs:
            if lab in self.label_unit:
                return self.label_unit[lab], self.label_unit[lab] is not self.last_unit
        return None, False

    def check_nesting(self, env: str, src: Src, pos: int) -> None:
        if len(self.frames) >= self.limits.max_nesting:
            raise IngestError(
                f"{self.where(src, pos)}: \\begin{{{env}}} nested {len(self.frames) + 1} deep, over "
                f"the limit of {self.limits.max_nesting} ([ingest] max_nesting in autoform.toml)"
            )

    def h_end(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        a = mandatory(src.masked, i, n)
        if a is None:
            return i
        env, j = a[0].strip(), a[2]
        if env == "document":
            if src.origin is None and self.in_document:
                self.close_file_frames(src, start)
                return STOP
            return j
        if src.origin is not None:
            return j
        for k in range(len(self.frames) - 1, -1, -1):
            fr = self.frames[k]
            if fr.env == env and fr.role != "headed" and fr.src is src:
                while len(self.frames) > k + 1:
                    inner = self.frames.pop()
                    if inner.role == "headed":
                        self.finish_unit(inner, start, start)
                    else:
                        self.warn(src, inner.begin, f"\\begin{{{inner.env}}} is closed by \\end{{{env}}}")
                        (self.finish_proof if inner.role == "proof" else self.finish_unit)(inner, start, start)
                self.frames.pop()
                if fr.role == "proof":
                    self.finish_proof(fr, start, j)
                else:
                    self.finish_unit(fr, start, j)
                break
        return j

    def begin_document(self, src: Src, pos: int) -> None:
        if not self.thm and not any(k != "proof" for k in self.env_map.values()):
            for name in KINDS + (
                "problem",
                "note",
                "conjecture",
                "fact",
                "notation",
                "observation",
                "thm",
                "lem",
                "prop",
                "cor",
                "defn",
            ):
                self.thm[name] = TheoremEnv(name, NAME_TO_KIND[name], name.capitalize(), name, fallback=True)
                self.newcounter(name, None)
        for name, kind in self.env_map.items():
            if kind == "proof":
                self.proof_envs.add(name)
            elif name not in self.thm:
                self.thm[name] = TheoremEnv(name, kind, kind.capitalize(), name)
                self.newcounter(name, None)
            else:
                self.thm[name].kind = kind
        self._use_cache.clear()
        for code, s, p in self.at_begin_document:
            self.run_inline(code, s, p, 1)

    def h_atbegindocument(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        a = mandatory(src.masked, i, n)
        if a is None:
            return i
        if not self.in_document:
            self.at_begin_document.append((a[0], src, start))
        return a[2]

    def handler_table(self) -> dict[str, Handler]:
        return {
            **super().handler_table(),
            "begin": self.h_begin,
            "end": self.h_end,
            "AtBeginDocument": self.h_atbegindocument,
        }


def _alias_title(use: EnvUse, s: str, j: int, n: int) -> tuple[str, int]:
    """The title argument of an environment alias with its own arguments (as written; "" when absent), and the
    end of its arguments."""
    got = read_args(s, j, n, EnvDef(use.spec, use.defaults, "", ""))
    if got is None:
        return "", j
    vals, j = got
    if 0 <= use.title_arg < len(vals) and vals[use.title_arg] != NOVALUE:
        return vals[use.title_arg], j
    return "", j
