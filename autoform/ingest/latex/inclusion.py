"""Inclusion: reading a file (within the limits, confined to the book's directories), masking it, and scanning it
in place of ``\\input``, ``\\include``, ``\\subfile``, ``\\import`` and local packages."""

from __future__ import annotations

import re
from pathlib import Path

from autoform.ingest.latex.commands import IMPORTS, INCLUDE_MACROS
from autoform.ingest.latex.masking import mask, unmatched_braces
from autoform.ingest.latex.state import Handler, Src
from autoform.ingest.latex.syntax import WS, mandatory, optional, read_star
from autoform.ingest.latex.units import UnitOps
from autoform.ingest.model import IngestError

_BARE_NAME = re.compile(r"[^\s{}%\\]+")
_VERBATIM_DECL = re.compile(
    r"\\(?:lstnewenvironment|DefineVerbatimEnvironment|newminted|NewEnviron)\s*"
    r"\{([^{}]+)\}"
)
_BEGIN_DOCUMENT = re.compile(r"\\begin\s*\{document\}")
_END_DOCUMENT = re.compile(r"\\end\s*\{document\}")
_DOCUMENTCLASS = re.compile(r"\\documentclass\s*(?:\[[^\]]*\])?\s*\{([^}]*)\}")
#: the import package's commands, which take a directory and a file
_DIR_AND_FILE = IMPORTS - {"subfile"}


class InclusionOps(UnitOps):
    """Files: reading, resolving, confining and including them."""

    def read_file(self, path: Path, src: Src | None, pos: int) -> str | None:
        try:
            size = path.stat().st_size
            if size > self.limits.max_file_bytes:
                where = f"{self.where(src, pos)}: " if src is not None else ""
                raise IngestError(
                    f"{where}{path}: {size / 2**20:.1f} MB, over the limit of "
                    f"{self.limits.max_file_bytes / 2**20:.0f} MB for one source file "
                    "([ingest] max_file_mb in autoform.toml)"
                )
            self.charge(f"input{{{path.name}}}", 640 + size)  # a file costs its reading and scanning
            data = path.read_bytes()
        except OSError as e:
            if src is not None:
                self.warn(src, pos, f"{path.name}: cannot be read ({e.strerror}); skipped")
            return None
        if b"\x00" in data:
            if src is None:
                raise IngestError(f"{path}: not a text file (it holds binary data); pass a LaTeX source")
            self.warn(src, pos, f"{self.rel(path)}: binary file, not LaTeX; skipped")
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            self.warnings.append(f"{self.rel(path)}:{line}: not valid UTF-8 ({e.reason}); read as Latin-1")
            return data.decode("latin-1")

    def run_file(self, path: Path, *, via: Src | None = None, pos: int = 0, imported: bool = False) -> None:
        """Read the file ``path`` (the root when ``via`` is None) and scan it, in place of the command at ``pos``
        of ``via`` that includes it."""
        text = self.read_file(path, via, pos)
        if text is None:
            return
        src = self.source(path, text, imported)
        start, end = 0, len(text)
        doc = _BEGIN_DOCUMENT.search(src.masked)
        if via is None:
            cls = _DOCUMENTCLASS.search(src.masked)
            self.setup_class(cls.group(1).strip() if cls else "article")
            if doc is None:
                self.in_document = True
                self.begin_document(src, 0)
        elif doc is not None and "\\documentclass" in src.masked[: doc.start()]:
            start = doc.end()  # a subfile/standalone document: only its body counts
            stop = _END_DOCUMENT.search(src.masked, start)
            end = stop.start() if stop else end
        self.stack.append(path.resolve())
        if len(self.stack) > self.limits.max_input_depth:
            assert via is not None
            chain = " -> ".join(p.name for p in self.stack)
            raise IngestError(
                f"{self.where(via, pos)}: more than {self.limits.max_input_depth} files open at once "
                f"through \\input (TeX's limit is 15): {chain}"
            )
        try:
            self.run(src, start, end, 0)
        finally:
            self.stack.pop()
            self.close_file_frames(src, end)

    def source(self, path: Path, text: str, imported: bool) -> Src:
        """A file's text, masked (after learning the verbatim environments it declares), with a warning for each
        unbalanced brace, which is blanked so that the rest of the file still reads (packages excepted)."""
        for m in _VERBATIM_DECL.finditer(text):
            if not m.group(0).startswith(r"\NewEnviron"):
                self.verbatim.add(m.group(1).strip())
        masked, text = mask(text, self.verbatim)
        bad = unmatched_braces(masked) if path.suffix not in (".sty", ".cls") else []
        if bad:
            chars = list(masked)
            tmp = Src(text, masked, path)
            for b in bad:
                what = "unbalanced '}'" if masked[b] == "}" else "unclosed '{' (the group opened here never closes)"
                self.warnings.append(f"{self.rel(path)}:{tmp.line(b)}: {what}")
                chars[b] = " "
            masked = "".join(chars)
        return Src(text, masked, path, imported=imported)

    def resolve(self, kind: str, target: str, src: Src, pos: int) -> Path | None:
        fsrc, _ = src.at(pos)
        here = fsrc.file.parent if fsrc.file else self.base
        t = target.strip().strip('"')
        if not t:
            return None
        p = Path(t)
        # TeX looks in the directory it runs in (the root's); the import package and subfiles make paths
        # relative to the including file
        here_first = kind in IMPORTS or fsrc.imported
        dirs = [here, self.base] if here_first else [self.base, here]
        exts = [".sty"] if kind in ("usepackage", "RequirePackage") else ["", ".tex"]
        for d in dirs:
            for ext in exts:
                c = (d / p) if not p.is_absolute() else p
                c = c.with_name(c.name + ext) if ext and not c.name.endswith(ext) else c
                if c.is_file():
                    self.confine(kind, target, c, src, pos)
                    return c
        return None

    def confine(self, kind: str, target: str, found: Path, src: Src, pos: int) -> None:
        """Refuse a file outside the book's directory (and the directories allowed): a book must not pull in
        any readable file, whose text would go to the LLM and the site."""
        real = found.resolve()
        if not any(real == d or real.is_relative_to(d) for d in self.allowed):
            raise IngestError(
                f"{self.where(src, pos)}: \\{kind}{{{target}}} refused: {real} is outside the book's "
                f"directory {self.allowed[0]} (allow it with `autoform ingest --allow-input DIR`)"
            )

    def include(self, kind: str, target: str, src: Src, pos: int, *, silent: bool = False) -> bool:
        target = self.expand(target, strings=True).strip()
        if not target:
            return False
        if "\\" in target or "#" in target:
            if not silent:
                self.warn(src, pos, f"\\{kind}{{{target}}}: file name uses an undefined macro; skipped")
            return False
        found = self.resolve(kind, target, src, pos)
        if found is None:
            if not silent:
                self.warn(src, pos, f"\\{kind}{{{target}}}: file not found; skipped")
            return False
        if found.resolve() in self.stack:
            self.warn(src, pos, f"\\{kind}{{{target}}} includes itself; skipped")
            return False
        self.run_file(found, via=src, pos=pos, imported=kind in IMPORTS or src.at(pos)[0].imported)
        return True

    def h_include(self, name: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        if name in ("usepackage", "RequirePackage"):
            return self._use_packages(name, src, i, n, start)
        if name in _DIR_AND_FILE:
            return self._import(name, src, i, n, start)
        if name == "InputIfFileExists":
            return self._input_if_exists(name, src, i, n, start, depth)
        s = src.masked
        j = WS.match(s, i, n).end()
        if name == "input" and j < n and s[j] != "{":  # \input file (TeX's own syntax)
            m = _BARE_NAME.match(s, j, n)
            if m is None:
                return j
            self.include(name, m.group(), src, start)
            return m.end()
        a = mandatory(s, i, n)
        if a is None:
            return i
        if src.origin is not None or self.in_document or name != "include":
            self.include(name, a[0], src, start)
        return a[2]

    def _use_packages(self, name: str, src: Src, i: int, n: int, start: int) -> int:
        """``\\usepackage[opts]{a,b}[date]``: the packages found beside the book are read, the others skipped."""
        s = src.masked
        opt = optional(s, i, n)
        j = opt[1] if opt else i
        a = mandatory(s, j, n)
        if a is None:
            return j
        for pkg in a[0].split(","):
            pkg = pkg.strip()
            if pkg and self.resolve(name, pkg, src, start) is not None:
                self.include(name, pkg, src, start, silent=True)
        opt2 = optional(s, a[2], n)
        return opt2[1] if opt2 else a[2]

    def _import(self, name: str, src: Src, i: int, n: int, start: int) -> int:
        """The import package's ``\\import{dir}{file}`` and kin: the file in that directory."""
        s = src.masked
        _, j = read_star(s, i, n)
        a = mandatory(s, j, n)
        b = mandatory(s, a[2], n) if a else None
        if a is None or b is None:
            return j
        d = self.expand(a[0], strings=True).strip()
        target = (d.rstrip("/") + "/" if d else "") + b[0].strip()
        self.include(name, target, src, start)
        return b[2]

    def _input_if_exists(self, name: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        """``\\InputIfFileExists{file}{then}{else}``: the file and the first branch, or the second."""
        s = src.masked
        a = mandatory(s, i, n)
        if a is None:
            return i
        t = mandatory(s, a[2], n)
        f = mandatory(s, t[2], n) if t else None
        ok = self.include(name, a[0], src, start, silent=True)
        if t is None or f is None:
            return a[2]
        branch = t if ok else f
        self.run(src, branch[1], branch[1] + len(branch[0]), depth)
        return f[2]

    def h_iffileexists(self, _: str, src: Src, i: int, n: int, start: int, depth: int) -> int:
        s = src.masked
        a = mandatory(s, i, n)
        t = mandatory(s, a[2], n) if a else None
        f = mandatory(s, t[2], n) if t else None
        if a is None or t is None or f is None:
            return i
        target = self.expand(a[0], strings=True).strip()
        found = "\\" not in target and self.resolve("input", target, src, start) is not None
        c = t if found else f
        self.run(src, c[1], c[1] + len(c[0]), depth)
        return f[2]

    def handler_table(self) -> dict[str, Handler]:
        return {
            **super().handler_table(),
            **dict.fromkeys(INCLUDE_MACROS, self.h_include),
            "IfFileExists": self.h_iffileexists,
        }
