"""LaTeX ingest: theorem-like environments with numbers, titles, labels, proofs, references and source spans.

The book is flattened (``\\input``, ``\\include``, ``\\subfile``) with a map from every character back to its
file and line, then parsed with pylatexenc's LatexWalker. Theorem environments come from the book's own
``\\newtheorem`` declarations (shared and per-chapter/section counters, starred forms), plus the usual names
and any mapping in ``[ingest] environments`` of autoform.toml. Nothing here calls an LLM.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import Path

from pylatexenc import macrospec
from pylatexenc.latexwalker import (
    LatexCharsNode,
    LatexCommentNode,
    LatexEnvironmentNode,
    LatexGroupNode,
    LatexMacroNode,
    LatexMathNode,
    LatexWalker,
    get_default_latex_context_db,
)

from autoform.ingest.model import KINDS, IngestResult, RawUnit

INCLUDE_MACROS = ("input", "include", "subfile")
REF_MACROS = ("ref", "eqref", "cref", "Cref", "autoref", "pageref", "vref", "Vref", "nameref", "cpageref")
PROOF_ENVS = {"proof", "proof*", "pf", "Proof"}

#: printed theorem names -> unit kinds (lower case)
NAME_TO_KIND = {
    "theorem": "theorem", "thm": "theorem", "lemma": "lemma", "proposition": "proposition",
    "corollary": "corollary", "definition": "definition", "example": "example", "exercise": "exercise",
    "problem": "exercise", "axiom": "axiom", "remark": "remark", "note": "remark", "claim": "claim",
    "fact": "proposition", "conjecture": "claim", "observation": "remark", "notation": "definition",
}


class IngestError(Exception):
    """The book cannot be read at all (missing root file, not LaTeX); the message names the file."""


@dataclass
class _Segment:
    flat_start: int
    file: Path
    file_line: int  # line number in `file` of the first character of this segment
    text: str


@dataclass
class Flattened:
    text: str
    segments: list[_Segment]
    warnings: list[str] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list)

    def locate(self, pos: int) -> tuple[Path, int]:
        if not self._starts:
            self._starts = [s.flat_start for s in self.segments]
        k = max(0, bisect.bisect_right(self._starts, pos) - 1)
        seg = self.segments[k]
        return seg.file, seg.file_line + seg.text.count("\n", 0, pos - seg.flat_start)


_INCLUDE_RE = re.compile(r"\\(input|include|subfile)\s*\{([^}]*)\}")


_SIMPLE_DEF_RE = re.compile(
    r"\\(?:re|provide)?newcommand\*?\s*\{?\\([A-Za-z@]+)\}?\s*\{([^{}]*)\}|\\def\\([A-Za-z@]+)\s*\{([^{}]*)\}"
)


def _strip_comment(line: str) -> str:
    m = re.search(r"(?<!\\)%", line)
    return line if m is None else line[: m.start()]


def _read(path: Path, warnings: list[str]) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        warnings.append(f"{path}:{line}: not valid UTF-8 ({e.reason}); read as Latin-1")
        return data.decode("latin-1")


def flatten(root: Path, *, base: Path | None = None) -> Flattened:
    """Inline ``\\input``/``\\include``/``\\subfile`` recursively, keeping where each line came from."""
    base = base or root.parent
    segments: list[_Segment] = []
    warnings: list[str] = []
    defs: dict[str, str] = {}  # argument-less macros seen so far, for \\input{dir/\\macro/file}
    pos = 0

    def emit(file: Path, line: int, text: str) -> None:
        nonlocal pos
        if text:
            segments.append(_Segment(pos, file, line, text))
            pos += len(text)

    def visit(path: Path, stack: tuple[Path, ...]) -> None:
        text = _read(path, warnings)
        buf_start_line, buf = 1, []
        for lineno, line in enumerate(text.splitlines(keepends=True), start=1):
            code = _strip_comment(line)
            for d in _SIMPLE_DEF_RE.finditer(code):
                defs[d.group(1) or d.group(3)] = d.group(2) if d.group(1) else d.group(4)
            m = _INCLUDE_RE.search(code)
            if not m:
                buf.append(line)
                continue
            emit(path, buf_start_line, "".join(buf) + line[: m.start()])
            target = re.sub(r"\\([A-Za-z@]+)\s*", lambda t: defs.get(t.group(1), t.group(0)), m.group(2)).strip()
            cand = [base / target, base / (target + ".tex"), path.parent / target, path.parent / (target + ".tex")]
            found = next((c for c in cand if c.is_file()), None)
            if found is None:
                warnings.append(f"{path}:{lineno}: \\{m.group(1)}{{{target}}}: file not found; skipped")
            elif found.resolve() in stack:
                warnings.append(f"{path}:{lineno}: \\{m.group(1)}{{{target}}} includes itself; skipped")
            else:
                emit(path, lineno, "\n")
                visit(found, stack + (found.resolve(),))
                emit(path, lineno, "\n")
            buf, buf_start_line = [line[m.end():]], lineno
        emit(path, buf_start_line, "".join(buf))

    visit(root, (root.resolve(),))
    return Flattened("".join(s.text for s in segments), segments, warnings)


@dataclass
class TheoremEnv:
    env: str
    kind: str
    printed: str
    counter: str | None  # None: unnumbered (starred)
    within: str | None  # 'chapter' | 'section' | None


def _balanced(text: str, start: int, open_: str = "{", close: str = "}") -> tuple[str, int] | None:
    """The content of a balanced group starting at text[start] == open_, and the index after it."""
    if start >= len(text) or text[start] != open_:
        return None
    depth, i = 0, start
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
        i += 1
    return None


def _args(text: str, i: int, spec: str) -> tuple[list[str | None], int]:
    """Parse macro arguments by spec ('*', '[', '{') from text[i]; missing optional ones are None."""
    out: list[str | None] = []
    for s in spec:
        while i < len(text) and text[i] in " \t\n":
            i += 1
        if s == "*":
            if i < len(text) and text[i] == "*":
                out.append("*")
                i += 1
            else:
                out.append(None)
        elif s == "[":
            got = _balanced(text, i, "[", "]")
            out.append(got[0] if got else None)
            i = got[1] if got else i
        else:
            got = _balanced(text, i)
            if got is None:  # \newcommand\foo{...} form: a single token argument
                m = re.match(r"\\[A-Za-z@]+|.", text[i:], re.S)
                out.append(m.group(0) if m else None)
                i += len(m.group(0)) if m else 0
            else:
                out.append(got[0])
                i = got[1]
    return out, i


def _kind_for(env: str, printed: str, config_map: dict[str, str]) -> str | None:
    if env in config_map:
        return config_map[env]
    for key in (printed.strip().lower(), env.rstrip("*").lower()):
        if key in NAME_TO_KIND:
            return NAME_TO_KIND[key]
    return None


def theorem_envs(preamble_and_body: str, config_map: dict[str, str]) -> dict[str, TheoremEnv]:
    """Environments declared by ``\\newtheorem`` (and the mapped/usual names as a fallback)."""
    envs: dict[str, TheoremEnv] = {}
    for m in re.finditer(r"\\newtheorem(?![A-Za-z])", preamble_and_body):
        (star, name, shared, printed, within), _ = _args(preamble_and_body, m.end(), "*{[{[")
        if not name or printed is None:
            continue
        kind = _kind_for(name, printed, config_map)
        if kind is None:
            continue
        if star:
            envs[name] = TheoremEnv(name, kind, printed, None, None)
        elif shared and shared in envs:
            envs[name] = TheoremEnv(name, kind, printed, envs[shared].counter, envs[shared].within)
        else:
            envs[name] = TheoremEnv(name, kind, printed, name, within)
    for m in re.finditer(r"\\declaretheorem(?![A-Za-z])", preamble_and_body):  # thmtools
        (opts_s, name), _ = _args(preamble_and_body, m.end(), "[{")
        if not name:
            continue
        opts = _keyvals(opts_s or "")
        printed = re.sub(r"\\[A-Za-z@]+|[{}]", " ", opts.get("name", name)).split()
        kind = _kind_for(name, printed[0] if printed else name, config_map)
        if kind is None:
            continue
        shared = opts.get("sibling") or opts.get("numberlike") or opts.get("sharenumber")
        if opts.get("numbered", "yes") == "no" or name.endswith("*"):
            envs[name] = TheoremEnv(name, kind, " ".join(printed), None, None)
        elif shared and shared in envs:
            envs[name] = TheoremEnv(name, kind, " ".join(printed), envs[shared].counter, envs[shared].within)
        else:
            envs[name] = TheoremEnv(name, kind, " ".join(printed), name, opts.get("numberwithin"))
    for name, kind in config_map.items():
        envs.setdefault(name, TheoremEnv(name, kind, kind.capitalize(), name, None))
    return envs


def _keyvals(s: str) -> dict[str, str]:
    """key=value pairs of an optional argument, split at top-level commas."""
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
        if "=" in p:
            k, v = p.split("=", 1)
            v = v.strip()
            if v.startswith("{") and v.endswith("}"):
                v = v[1:-1]
            out[k.strip()] = v.strip()
    return out


def user_macros(text: str) -> dict[str, tuple[int, str | None, str]]:
    """``\\newcommand``/``\\renewcommand``/``\\def``/``\\DeclareMathOperator``: name -> (nargs, default, body)."""
    macros: dict[str, tuple[int, str | None, str]] = {}
    for m in re.finditer(r"\\(?:re)?newcommand(?![A-Za-z])|\\providecommand(?![A-Za-z])", text):
        (_star, name, nargs, default, body), _ = _args(text, m.end(), "*{[[{")
        if name and body is not None and name.startswith("\\"):
            try:
                n = int(nargs) if nargs else 0
            except ValueError:
                continue
            macros[name[1:]] = (n, default, body)
    for m in re.finditer(r"\\DeclareMathOperator(\*?)\s*\{?\\([A-Za-z]+)\}?\s*\{([^{}]*)\}", text):
        macros[m.group(2)] = (0, None, rf"\operatorname{m.group(1)}{{{m.group(3)}}}")
    for m in re.finditer(r"\\def\\([A-Za-z]+)\s*\{", text):
        got = _balanced(text, m.end() - 1)
        if got:
            macros[m.group(1)] = (0, None, got[0])
    return macros


def expand_macros(text: str, macros: dict[str, tuple[int, str | None, str]], depth: int = 0) -> str:
    """Expand user macros in ``text`` (bounded depth; unknown macros are left as they are)."""
    if not macros or depth > 8:
        return text
    out, i, changed = [], 0, False
    pat = re.compile(r"\\([A-Za-z]+)")
    while True:
        m = pat.search(text, i)
        if not m:
            out.append(text[i:])
            break
        out.append(text[i : m.start()])
        name = m.group(1)
        if name not in macros:
            out.append(m.group(0))
            i = m.end()
            continue
        n, default, body = macros[name]
        j = m.end()
        args: list[str] = []
        if n:
            spec = ("[" if default is not None else "{") + "{" * (n - (1 if default is not None else 0))
            parsed, j = _args(text, j, spec)
            args = [a if a is not None else (default or "") for a in parsed]
        rep = body
        for k, a in enumerate(args, start=1):
            rep = rep.replace(f"#{k}", a)
        if not n and j < len(text) and text[j].isalpha():
            rep += " "
        out.append(rep)
        changed = True
        i = j
    res = "".join(out)
    return expand_macros(res, macros, depth + 1) if changed else res


_TEXT_REF_RE = re.compile(
    r"\b(Theorem|Lemma|Proposition|Corollary|Definition|Exercise|Claim|Axiom|Example|Remark)s?"
    r"(?:~|\s|\\,|\\ )*(\d+(?:\.\d+)*)"
)


def textual_refs(text: str) -> list[tuple[str, str]]:
    """("lemma", "1.3") for phrases like "by Lemma 1.3" (a reference without \\ref)."""
    return [(m.group(1).lower(), m.group(2)) for m in _TEXT_REF_RE.finditer(text)]


def _context_db(envs: dict[str, TheoremEnv]) -> macrospec.LatexContextDb:
    db = get_default_latex_context_db()
    db.add_context_category(
        "autoform-theorems",
        prepend=True,
        macros=[macrospec.MacroSpec(m, "*[{") for m in ("chapter", "section", "subsection", "part")]
        + [macrospec.MacroSpec(m, "{") for m in REF_MACROS],
        environments=[macrospec.EnvironmentSpec(e, "[") for e in list(envs) + sorted(PROOF_ENVS)],
    )
    return db


def _arg_text(node: LatexMacroNode, k: int = -1) -> str:
    if node.nodeargd is None or not node.nodeargd.argnlist:
        return ""
    args = [a for a in node.nodeargd.argnlist if a is not None]
    if not args:
        return ""
    a = args[k]
    return a.latex_verbatim()[1:-1] if isinstance(a, LatexGroupNode) else a.latex_verbatim()


def _body(node: LatexEnvironmentNode) -> tuple[str, str]:
    """(optional title, body latex) of an environment node."""
    title = ""
    if node.nodeargd and node.nodeargd.argnlist and node.nodeargd.argnlist[0] is not None:
        title = node.nodeargd.argnlist[0].latex_verbatim()[1:-1].strip()
    body = "".join(n.latex_verbatim() for n in node.nodelist)
    return title, body


def _refs_in(nodes: list, out: list[str]) -> None:
    for n in nodes or []:
        if isinstance(n, LatexMacroNode) and n.macroname in REF_MACROS:
            for lab in _arg_text(n).split(","):
                if lab.strip():
                    out.append(lab.strip())
        for child in _children(n):
            _refs_in(child, out)


def _children(n: object) -> list[list]:
    kids: list[list] = []
    if isinstance(n, (LatexEnvironmentNode, LatexGroupNode, LatexMathNode)):
        kids.append(n.nodelist)
    if isinstance(n, (LatexMacroNode, LatexEnvironmentNode)) and n.nodeargd and n.nodeargd.argnlist:
        kids.append([a for a in n.nodeargd.argnlist if a is not None])
    return kids


def _labels_in(nodes: list) -> list[str]:
    found: list[str] = []

    def rec(ns: list) -> None:
        for n in ns or []:
            if isinstance(n, LatexMacroNode) and n.macroname == "label":
                found.append(_arg_text(n).strip())
            if isinstance(n, LatexEnvironmentNode) and n.environmentname in PROOF_ENVS:
                continue
            for child in _children(n):
                rec(child)

    rec(nodes)
    return found


_LABEL_RE = re.compile(r"\\label\s*\{[^}]*\}")


def _clean(body: str) -> str:
    body = _LABEL_RE.sub("", body)
    body = re.sub(r"(?<!\\)%[^\n]*", "", body)
    return re.sub(r"[ \t]+\n", "\n", body).strip()


def ingest_latex(path: Path, *, env_map: dict[str, str] | None = None) -> IngestResult:
    """Read a .tex root file (or a directory holding one) into units with dependencies."""
    root = _find_root(path)
    flat = flatten(root)
    text = flat.text
    warnings = list(flat.warnings)
    begin = text.find("\\begin{document}")
    preamble = text[:begin] if begin >= 0 else ""
    envs = theorem_envs(text if begin < 0 else preamble + text[begin:], env_map or {})
    if not envs:
        for name, kind in NAME_TO_KIND.items():
            envs[name] = TheoremEnv(name, kind, name.capitalize(), name, None)
        warnings.append(f"{root}: no \\newtheorem declarations found; using the usual environment names")
    macros = user_macros(preamble or text)
    title_m = re.search(r"\\title\s*\{", preamble)
    book_title = ""
    if title_m:
        got = _balanced(preamble, title_m.end() - 1)
        book_title = re.sub(r"\s+", " ", got[0]).strip() if got else ""

    text = _check_braces(flat, root, warnings)
    walker = LatexWalker(text, latex_context=_context_db(envs), tolerant_parsing=True)
    try:
        nodes, _, _ = walker.get_latex_nodes(pos=max(begin, 0))
    except Exception as e:  # pylatexenc raises on pathological input even when tolerant
        raise IngestError(f"{root}: the LaTeX could not be parsed: {e}") from e

    counters: dict[str, int] = {}
    chapter_no = section_no = 0
    chapter = section = ""
    units: list[RawUnit] = []
    last_unit: RawUnit | None = None

    def number_for(env: TheoremEnv) -> str:
        if env.counter is None:
            return ""
        counters[env.counter] = counters.get(env.counter, 0) + 1
        n = counters[env.counter]
        if env.within == "chapter":
            return f"{chapter_no}.{n}"
        if env.within == "section":
            return f"{chapter_no}.{section_no}.{n}" if chapter_no else f"{section_no}.{n}"
        return str(n)

    def reset(level: str) -> None:
        for e in envs.values():
            if e.counter and (e.within == level or (level == "chapter" and e.within == "section")):
                counters[e.counter] = 0

    def walk(ns: list) -> None:
        nonlocal chapter_no, section_no, chapter, section, last_unit
        for n in ns or []:
            if isinstance(n, LatexMacroNode) and n.macroname in ("chapter", "section"):
                starred = bool(n.nodeargd and n.nodeargd.argnlist and n.nodeargd.argnlist[0] is not None)
                title = re.sub(r"\s+", " ", _arg_text(n)).strip()
                if n.macroname == "chapter":
                    if not starred:
                        chapter_no += 1
                        section_no = 0
                        reset("chapter")
                    chapter, section = title, ""
                else:
                    if not starred:
                        section_no += 1
                        reset("section")
                    section = title
                last_unit = None
            elif isinstance(n, LatexEnvironmentNode) and n.environmentname in envs:
                env = envs[n.environmentname]
                title, body = _body(n)
                file, l1 = flat.locate(n.pos)
                _, l2 = flat.locate(n.pos + n.len - 1)
                refs: list[str] = []
                _refs_in(n.nodelist, refs)
                labels = _labels_in(n.nodelist)
                raw = _clean(body)
                unit = RawUnit(
                    kind=env.kind,
                    number=number_for(env),
                    title=title,
                    label=labels[0] if labels else "",
                    labels=labels,
                    statement=expand_macros(raw, macros),
                    statement_raw=raw,
                    chapter=chapter,
                    section=section,
                    source=f"{_rel(file, root)}:{l1}-{l2}",
                    refs=list(dict.fromkeys(refs)),
                    text_refs=textual_refs(raw),
                )
                units.append(unit)
                last_unit = unit
            elif isinstance(n, LatexEnvironmentNode) and n.environmentname in PROOF_ENVS:
                _, body = _body(n)
                file, l1 = flat.locate(n.pos)
                pfile, l2 = flat.locate(n.pos + n.len - 1)
                if last_unit is None or last_unit.proof:
                    warnings.append(f"{_rel(file, root)}:{l1}: a proof with no statement before it; ignored")
                    continue
                refs = []
                _refs_in(n.nodelist, refs)
                raw = _clean(body)
                last_unit.proof = expand_macros(raw, macros)
                last_unit.proof_raw = raw
                last_unit.refs += [r for r in dict.fromkeys(refs) if r not in last_unit.refs]
                last_unit.text_refs += textual_refs(raw)
                src_file, span = last_unit.source.rsplit(":", 1)
                if src_file == _rel(pfile, root):
                    last_unit.source = f"{src_file}:{span.split('-')[0]}-{l2}"
            elif isinstance(n, (LatexCharsNode, LatexCommentNode)):
                continue
            else:
                for child in _children(n):
                    walk(child)

    walk(nodes)
    return IngestResult(title=book_title, source_kind="latex", units=units, warnings=warnings, root=str(root))


def _unmatched_braces(text: str) -> list[int]:
    """Positions of braces that have no partner (escaped braces and comments skipped)."""
    stack: list[int] = []
    bad: list[int] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "%":
            j = text.find("\n", i)
            i = len(text) if j < 0 else j
            continue
        if c == "{":
            stack.append(i)
        elif c == "}":
            if stack:
                stack.pop()
            else:
                bad.append(i)
        i += 1
    return sorted(bad + stack)


def _check_braces(flat: Flattened, root: Path, warnings: list[str]) -> str:
    """Warn (with file and line) about every brace without a partner, and return the text with those braces
    blanked out (same length, so positions and lines still map), so one typo cannot swallow the rest of the book."""
    text = flat.text
    bad = _unmatched_braces(text)
    chars = list(text)
    for i in bad:
        f, ln = flat.locate(i)
        if text[i] == "}":
            warnings.append(f"{_rel(f, root)}:{ln}: unbalanced '}}'")
        else:
            warnings.append(f"{_rel(f, root)}:{ln}: unclosed '{{' (the group opened here never closes)")
        chars[i] = " "
    return "".join(chars)


def _rel(file: Path, root: Path) -> str:
    try:
        return str(file.resolve().relative_to(root.parent.resolve()))
    except ValueError:
        return str(file)


def _find_root(path: Path) -> Path:
    if path.is_file():
        return path
    if not path.exists():
        raise IngestError(f"{path}: no such file or directory")
    cands = sorted(p for p in path.glob("*.tex") if "\\documentclass" in p.read_text(errors="replace"))
    if not cands:
        raise IngestError(f"{path}: no .tex file with \\documentclass in this directory; pass the root file")
    for preferred in ("main.tex", "book.tex"):
        for c in cands:
            if c.name == preferred:
                return c
    return cands[0]


__all__ = ["ingest_latex", "IngestError", "KINDS"]
