"""Theorem-like environments: their declarations (``\\newtheorem``, thmtools' ``\\declaretheorem``,
``\\newenvironment`` aliases), the unit kind a printed name means, and how a ``\\begin{name}`` is read."""

from __future__ import annotations

import re

from autoform.ingest.latex.argspec import EnvDef, latex_spec, xparse_spec
from autoform.ingest.latex.counters import CounterOps
from autoform.ingest.latex.state import EnvUse, Handler, Src, TheoremEnv
from autoform.ingest.latex.syntax import keyvals, mandatory, optional, plain, read_star
from autoform.ingest.model import NAME_TO_KIND


class TheoremOps(CounterOps):
    """The book's theorem-like and proof-like environments."""

    def env_use(self, name: str) -> EnvUse | None:
        if name in self._use_cache:
            return self._use_cache[name]
        use: EnvUse | None = None
        if name in self.thm:
            use = EnvUse("unit", self.thm[name])
        elif name in self.proof_envs:
            use = EnvUse("proof", None)
        elif name in ("restatable", "restatable*"):
            use = EnvUse("unit", None, restatable=True)
        elif name in self.envdefs:
            d = self.envdefs[name]
            m = re.search(r"\\begin\s*\{([^{}]+)\}\s*(\[([^\]]*)\])?", d.begin)
            if m:
                inner = self.env_use(m.group(1).strip())
                if inner is not None and not inner.restatable:
                    use = EnvUse(inner.role, inner.thm, d.spec, d.defaults)
                    if m.group(3) is not None:
                        k = re.fullmatch(r"\s*#([1-9])\s*", m.group(3))
                        if k:
                            use.title_arg = int(k.group(1)) - 1
                        else:
                            use.fixed_title = m.group(3).strip()
                            use.title_arg = -2
        self._use_cache[name] = use
        return use

    def declare_theorem(
        self, name: str, printed: str, own: bool, other: str | None, within: str | None, refname: str = ""
    ) -> None:
        name = name.strip()
        if not name:
            return
        kind = self.kind_for(name, printed, refname)
        self._use_cache.clear()
        if kind == "proof":
            self.proof_envs.add(name)
            self.thm.pop(name, None)
            return
        counter: str | None
        if not own:
            counter = None
        elif other:
            other = other.strip()
            counter = self.thm[other].counter if other in self.thm and self.thm[other].counter else other
            if counter not in self.values:
                self.newcounter(counter, None)
        else:
            counter = name
            self.newcounter(name, within.strip() if within else None)
        self.thm[name] = TheoremEnv(name, kind, printed, counter)

    def kind_for(self, env: str, printed: str, refname: str = "") -> str:
        if env in self.env_map:
            return self.env_map[env]
        p = printed.strip()
        m = re.fullmatch(r"\\([A-Za-z]+)name", p)
        if m and p[1:] not in self.macros:  # \theoremname (babel-style), undefined here: "theorem"
            p = m.group(1)
        words = plain(self.expand(p, strings=True)).lower().split()
        ref = plain(refname).lower().split(",")[0].split()
        cands = [
            " ".join(words),
            words[-1] if words else "",
            " ".join(ref),
            ref[-1] if ref else "",
            env.rstrip("*").lower(),
            re.sub(r"\d+$", "", env.rstrip("*")).lower(),
        ]
        for c in cands:
            if c in NAME_TO_KIND:
                return NAME_TO_KIND[c]
        if words and NAME_TO_KIND.get(words[0], "proof") != "proof":  # "Lemma A"
            return NAME_TO_KIND[words[0]]
        return "remark"

    def h_newenv(self, name: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        _, j = read_star(s, i, n)
        a = mandatory(s, j, n)
        if a is None:
            return j
        env, j = a[0].strip(), a[2]
        got = _env_spec(name, s, j, n)
        if got is None:
            return j
        spec, defaults, j = got
        b = mandatory(s, j, n)
        if b is None:
            return j
        end_code, j = _end_code(name, s, b[2], n)
        if name == "lstnewenvironment":
            self.verbatim.add(env)
            return j
        self.envdefs[env] = EnvDef(spec, defaults, b[0], end_code)
        if env in self.thm and name.startswith(("renew", "Renew")):
            del self.thm[env]
        self._use_cache.clear()
        return j

    def h_newtheorem(self, name: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        j = i
        if name == "newmdtheoremenv":
            opt = optional(s, j, n)
            j = opt[1] if opt else j
        star, j = read_star(s, j, n)
        a = mandatory(s, j, n)
        if a is None:
            return j
        env, j = a[0].strip(), a[2]
        shared = optional(s, j, n)
        j = shared[1] if shared else j
        printed = mandatory(s, j, n)
        if printed is None:
            return j
        j = printed[2]
        within = optional(s, j, n) if not shared else None
        j = within[1] if within else j
        if name == "spnewtheorem":
            for _k in range(2):
                x = mandatory(s, j, n)
                j = x[2] if x else j
        self.declare_theorem(env, printed[0], not star, shared[0] if shared else None, within[0] if within else None)
        return j

    def h_declaretheorem(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        opt = optional(s, i, n)
        j = opt[1] if opt else i
        a = mandatory(s, j, n)
        if a is None:
            return j
        j = a[2]
        opt2 = optional(s, j, n)
        if opt2:
            j = opt2[1]
        kv = keyvals((opt[0] if opt else "") + "," + (opt2[0] if opt2 else ""))
        for env in a[0].split(","):
            env = env.strip()
            printed = kv.get("name", kv.get("title", env.rstrip("*").capitalize()))
            unnumbered = (
                kv.get("numbered", "yes").strip() == "no" or "unnumbered" in kv or "nonumber" in kv or env.endswith("*")
            )
            shared = kv.get("sibling") or kv.get("numberlike") or kv.get("sharenumber") or kv.get("sharecounter")
            within = kv.get("numberwithin") or kv.get("parent") or kv.get("within")
            refname = kv.get("refname", "") or kv.get("Refname", "")
            self.declare_theorem(env, printed, not unnumbered, shared, within, refname)
        return j

    def handler_table(self) -> dict[str, Handler]:
        environments = (
            "newenvironment",
            "renewenvironment",
            "NewEnviron",
            "RenewEnviron",
            "lstnewenvironment",
            "NewDocumentEnvironment",
            "RenewDocumentEnvironment",
            "DeclareDocumentEnvironment",
        )
        return {
            **super().handler_table(),
            **dict.fromkeys(environments, self.h_newenv),
            **dict.fromkeys(("newtheorem", "spnewtheorem", "newmdtheoremenv"), self.h_newtheorem),
            "declaretheorem": self.h_declaretheorem,
        }


def _env_spec(name: str, s: str, j: int, n: int) -> tuple[str, tuple[str | None, ...], int] | None:
    """The argument spec and defaults of a new environment (xparse's spec, or ``[nargs][default]``), and the end
    of their text; None when an xparse spec is missing."""
    if name in ("NewDocumentEnvironment", "RenewDocumentEnvironment", "DeclareDocumentEnvironment"):
        sp = mandatory(s, j, n)
        if sp is None:
            return None
        parsed = xparse_spec(sp[0]) or ("", (), ())
        return parsed[0], parsed[1], sp[2]
    nargs = optional(s, j, n)
    j = nargs[1] if nargs else j
    default = optional(s, j, n)
    j = default[1] if default else j
    try:
        k = int(nargs[0]) if nargs else 0
    except ValueError:
        k = 0
    spec, defaults = latex_spec(k, default[0] if default else None)
    return spec, defaults, j


def _end_code(name: str, s: str, j: int, n: int) -> tuple[str, int]:
    """The code a new environment runs at its end (environ's ``\\NewEnviron`` takes it optionally), and where
    the definition ends."""
    if name in ("NewEnviron", "RenewEnviron"):
        e = optional(s, j, n)
        return (e[0], e[1]) if e else ("", j)
    e2 = mandatory(s, j, n)
    return (e2[0], e2[2]) if e2 is not None else ("", j)
