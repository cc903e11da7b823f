"""Declarations read from Lean source without running Lean: the names Mathlib (or the Atlas) declares, with
kind, signature, docstring, module, line, attributes and deprecated aliases with their targets.

The reader is a line scanner that knows what the index needs of Lean's syntax: comments (nested), doc comments,
``namespace``/``section``/``end`` scopes, attributes (over several lines), declaration modifiers, ``alias``
(also ``alias ⟨mp, mpr⟩ := iff``), ``_root_`` names and ``protected``/``private`` declarations. Names that
Lean generates (anonymous instances, structure projections, equation lemmas) are not in the source; the
``--from-lean`` route is the one that sees them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = {
    "theorem": "theorem",
    "lemma": "theorem",
    "def": "def",
    "abbrev": "def",
    "instance": "instance",
    "structure": "structure",
    "class": "class",
    "inductive": "inductive",
    "opaque": "def",
    "axiom": "axiom",
    "irreducible_def": "def",
    "alias": "alias",
}
_MODIFIERS = (
    "private",
    "protected",
    "noncomputable",
    "nonrec",
    "partial",
    "unsafe",
    "scoped",
    "local",
    "public",
    "meta",
)
_SECTION = re.compile(r"^(?:(?:public|private|meta|noncomputable|@\[[^\]]*\])\s+)*section\b")
_DECL = re.compile(
    r"^(?P<mods>(?:(?:" + "|".join(_MODIFIERS) + r")\s+)*)"
    r"(?:class\s+inductive|(?P<kw>theorem|lemma|def|abbrev|instance|structure|class|inductive|opaque|axiom"
    r"|irreducible_def|alias))\b\s*(?P<rest>.*)$"
)
_NAME = re.compile(r"^(«[^»]+»|[^\s:({\[⦃⟨|,]+)")
_ALIAS_PAIR = re.compile(r"^⟨\s*([^,⟩]+?)\s*(?:,\s*([^⟩]+?)\s*)?⟩\s*:=\s*(\S+)")
_DEPRECATED = re.compile(r"\bdeprecated\b\s*(?P<target>[A-Za-z_«][^\s(,\]\"]*)?")
_ATTR_NAME = re.compile(r"(?:^|,)\s*(?:local\s+|scoped\s+)?([A-Za-z_][\w.]*)")
MAX_SIGNATURE = 600


@dataclass
class Decl:
    name: str
    kind: str
    signature: str
    module: str
    line: int
    doc: str = ""
    attrs: list[str] = field(default_factory=list)
    deprecated_to: str | None = None  # the current name, for a deprecated declaration or alias
    deprecated: bool = False


def module_name(root: Path, path: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts)


def _strip_line_comment(line: str) -> str:
    """The line without a trailing ``--`` comment (strings with ``--`` are rare in declarations' heads)."""
    i = line.find("--")
    return line if i < 0 else line[:i]


def _signature(lines: list[str], start: int, rest: str) -> str:
    """The declaration's head from after its name up to ``:=``, ``where``, ``|`` or the next command."""
    parts: list[str] = [rest]
    k = start + 1
    while k < len(lines) and len(" ".join(parts)) < MAX_SIGNATURE:
        nxt = lines[k]
        if not nxt.strip() or (nxt[:1].strip() and not nxt.startswith((")", "]", "}", "→", ":", "("))):
            break
        parts.append(_strip_line_comment(nxt).strip())
        k += 1
    text = " ".join(" ".join(parts).split())
    cut = len(text)
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{⦃⟨":
            depth += 1
        elif ch in ")]}⦄⟩":
            depth -= 1
        elif depth <= 0 and (text.startswith(":=", i) or text.startswith(" where", i) or text.startswith(" |", i)):
            cut = i
            break
    return text[:cut].strip()[:MAX_SIGNATURE]


def read_declarations(text: str, module: str) -> list[Decl]:
    """The declarations a Lean file declares, with their fully qualified names."""
    return _FileReader(text.split("\n"), module).run()


class _FileReader:
    """One pass over a Lean file's lines: comments skipped, doc comments and attributes kept for the
    declaration after them, namespaces and sections followed."""

    def __init__(self, lines: list[str], module: str) -> None:
        self.lines, self.module = lines, module
        self.out: list[Decl] = []
        self.scopes: list[tuple[str, list[str]]] = []  # ("namespace", parts) or ("section", [])
        self.doc = ""
        self.attrs: list[str] = []
        self.attr_buf: str | None = None  # an attribute list that goes on over lines
        self.depth = 0  # nesting of /- -/ comments

    def run(self) -> list[Decl]:
        i = 0
        while i < len(self.lines):
            i = self._line(i) + 1
        return self.out

    def _line(self, i: int) -> int:
        """Reads the line at ``i`` (with the lines a doc comment takes); returns the last line it read."""
        line = self.lines[i]
        if self.depth or line.lstrip().startswith("/-") and not line.lstrip().startswith("/--"):
            self._follow_comment(line)  # inside a (non-doc) block comment: follow the nesting
            return i
        stripped = line.strip()
        if stripped.startswith("/--"):
            i, stripped = self._doc_comment(i, stripped)
            if not stripped:
                return i
            line = stripped
        if self.attr_buf is not None or stripped.startswith("@["):
            after = self._attributes(stripped)
            if after is None:
                return i
            line = stripped = after
        if not line[:1].isspace():  # declarations of interest start at column 0
            self._command(_strip_line_comment(stripped), i)
        return i

    def _follow_comment(self, s: str) -> None:
        j = 0
        while j < len(s):
            if s.startswith("/-", j):
                self.depth += 1
                j += 2
            elif s.startswith("-/", j):
                self.depth -= 1
                j += 2
            else:
                j += 1
        self.depth = max(self.depth, 0)

    def _doc_comment(self, i: int, stripped: str) -> tuple[int, str]:
        """(the doc comment's last line, what follows the comment on it)."""
        buf = [stripped[3:]]
        while "-/" not in buf[-1] and i + 1 < len(self.lines):
            i += 1
            buf.append(self.lines[i].strip())
        joined = " ".join(buf)
        self.doc = " ".join(joined.split("-/")[0].split())
        return i, (joined.split("-/", 1)[1].strip() if "-/" in joined else "")

    def _attributes(self, stripped: str) -> str | None:
        """What follows the attributes at the start of the line (None: nothing more to read on this line)."""
        if self.attr_buf is not None:
            self.attr_buf += " " + stripped
            if self.attr_buf.count("[") > self.attr_buf.count("]"):
                return None
            stripped, self.attr_buf = _take_attrs(self.attr_buf, self.attrs), None
            if not stripped:
                return None
        if stripped.startswith("@["):
            if stripped.count("[") > stripped.count("]"):
                self.attr_buf = stripped
                return None
            stripped = _take_attrs(stripped, self.attrs)
            if not stripped:
                return None
        return stripped

    def _command(self, code: str, i: int) -> None:
        word = code.split(" ", 1)[0]
        if word == "namespace":
            self.scopes.append(("namespace", code.split()[1].split(".") if len(code.split()) > 1 else []))
        elif _SECTION.match(code):
            self.scopes.append(("section", []))
        elif word == "end":
            if self.scopes:
                self.scopes.pop()
        else:
            m = _DECL.match(code)
            if m:
                self.out.extend(_declared(m, self.lines, i, self.scopes, self.module, self.doc, self.attrs))
        if code and not code.startswith(("@[", "/--")):
            self.doc, self.attrs = "", []


def _take_attrs(text: str, attrs: list[str]) -> str:
    """Parse ``@[...]`` at the start of ``text`` into ``attrs``; return what follows it."""
    depth, j = 0, 1
    while j < len(text):
        if text[j] == "[":
            depth += 1
        elif text[j] == "]":
            depth -= 1
            if depth == 0:
                break
        j += 1
    inner = text[2:j]
    attrs.append(inner.strip())
    return text[j + 1 :].strip()


def _namespace(scopes: list[tuple[str, list[str]]]) -> list[str]:
    return [p for kind, parts in scopes if kind == "namespace" for p in parts]


def _qualify(name: str, scopes: list[tuple[str, list[str]]]) -> str:
    name = name.replace("«", "").replace("»", "")
    if name.startswith("_root_."):
        return name[len("_root_.") :]
    return ".".join([*_namespace(scopes), name])


@dataclass
class _Site:
    """Where a declaration stands: its module and line, the doc comment and attributes before it, the scopes."""

    module: str
    line: int
    doc: str
    attrs: list[str]
    scopes: list[tuple[str, list[str]]]

    def deprecation(self) -> tuple[bool, str | None]:
        """(deprecated?, the name it points to) from a ``@[deprecated …]`` attribute."""
        deprecated, target = False, None
        for a in self.attrs:
            dm = _DEPRECATED.search(a)
            if dm:
                deprecated, target = True, dm.group("target")
        return deprecated, target

    def decl(self, name: str, kind: str, signature: str, **more: Any) -> Decl:
        attrs = more.pop("attrs", list(self.attrs))
        fields = {"module": self.module, "line": self.line, "doc": self.doc, "attrs": attrs}
        return Decl(name=_qualify(name, self.scopes), kind=kind, signature=signature, **fields, **more)


def _declared(
    m: re.Match[str],
    lines: list[str],
    i: int,
    scopes: list[tuple[str, list[str]]],
    module: str,
    doc: str,
    attrs: list[str],
) -> list[Decl]:
    kw = m.group("kw") or "inductive"
    if "private" in (m.group("mods") or ""):
        return []  # private names are mangled by Lean: nothing outside the file can use them
    site = _Site(module, i + 1, doc, attrs, scopes)
    rest = m.group("rest").strip()
    if kw == "alias":
        return _alias_decls(rest, lines, i, site)
    return _plain_decls(kw, rest, lines, i, site)


def _alias_names(rest: str, lines: list[str], i: int) -> list[tuple[str, str]]:
    """(name, alias target) of ``alias``: ``alias ⟨a, b⟩ := t`` or ``alias a := t`` (target maybe on the next
    line)."""
    pair = _ALIAS_PAIR.match(rest)
    if pair:
        tgt = pair.group(3)
        return [(x.strip(), tgt) for x in (pair.group(1), pair.group(2)) if x and x.strip() != "_"]
    nm = _NAME.match(rest)
    if not nm:
        return []
    after = rest[nm.end() :].strip()
    tgt = ""
    if after.startswith(":="):
        tgt = after[2:].strip().split()[0] if after[2:].strip() else ""
        if not tgt and i + 1 < len(lines):
            tgt = lines[i + 1].strip().split()[0] if lines[i + 1].strip() else ""
    return [(nm.group(1), tgt)]


def _alias_decls(rest: str, lines: list[str], i: int, site: _Site) -> list[Decl]:
    deprecated, target = site.deprecation()
    return [
        site.decl(
            name,
            "alias",
            f":= {tgt}" if tgt else "",
            deprecated=deprecated,
            deprecated_to=(target or tgt) if deprecated else None,
        )
        for name, tgt in _alias_names(rest, lines, i)
    ]


def _plain_decls(kw: str, rest: str, lines: list[str], i: int, site: _Site) -> list[Decl]:
    """A declaration, and its additive twin where ``@[to_additive]`` makes one."""
    nm = _NAME.match(rest)
    if not nm or (kw == "instance" and rest.startswith((":", "[", "(", "{"))):
        return []
    name = nm.group(1)
    if kw == "instance" and name in ("priority",):
        return []
    kind = KINDS[kw]
    deprecated, target = site.deprecation()
    sig = _signature(lines, i, rest[nm.end() :])
    out = [site.decl(name, kind, sig, deprecated=deprecated, deprecated_to=target if deprecated else None)]
    if kind in ("structure", "class"):
        out += _fields(lines, i, out[0].name, site.module)
    additive = _to_additive_name(site.attrs, name)
    if additive and additive != name:
        twin_to = to_additive(target) if deprecated and target else None
        twin_attrs = [a for a in site.attrs if not a.startswith("to_additive")]
        out.append(
            site.decl(additive, kind, to_additive(sig), attrs=twin_attrs, deprecated=deprecated, deprecated_to=twin_to)
        )
    return out


_FIELD = re.compile(r"^(?:protected\s+)?(?P<name>[A-Za-z_][\w']*)\s*(?P<rest>[:({\[⦃].*)$")
_WHERE = re.compile(r"(?:^|\s)where$")


def _fields(lines: list[str], i: int, struct: str, module: str) -> list[Decl]:
    """The fields of a structure or class declared with ``where`` (``Monoid.mul_assoc``, ``IsAlgClosed.splits``):
    one a line at the first field's indentation, with their doc comments; a field's type is its first line."""
    k = next(
        (k for k in range(i, min(i + 12, len(lines))) if _WHERE.search(_strip_line_comment(lines[k]).rstrip())), -1
    )
    if k < 0 or any(lines[j][:1].strip() for j in range(i + 1, k + 1)):
        return []  # no `where` in the head (another command came first)
    out: list[Decl] = []
    indent, doc, comment, in_doc = -1, "", False, False
    for j in range(k + 1, len(lines)):
        line = lines[j]
        if not line.strip():
            continue
        if line[:1].strip():
            break  # column 0: the next command
        text = line.strip()
        if comment or text.startswith("/-"):
            if text.startswith("/--"):
                in_doc, doc, text = True, "", text[3:]
            elif not comment:
                in_doc = False
            if in_doc:
                doc = " ".join([doc, *text.split("-/")[0].split()]).strip()
            comment = "-/" not in text
            continue
        at = len(line) - len(line.lstrip())
        indent = at if indent < 0 else indent
        m = _FIELD.match(_strip_line_comment(text).strip())
        if at == indent and m and not m.group("rest").startswith("::"):
            sig = m.group("rest").split(":=")[0].strip()[:MAX_SIGNATURE]
            out.append(
                Decl(
                    name=f"{struct}.{m.group('name')}", kind="field", signature=sig, module=module, line=j + 1, doc=doc
                )
            )
        doc = ""
    return out


#: Mathlib's ``@[to_additive]`` renames a multiplicative declaration into its additive twin; these are its most
#: common translations of name components (Mathlib/Tactic/Translate/ToAdditive.lean holds the full dictionary)
_ADDITIVE = {
    "mul": "add",
    "one": "zero",
    "prod": "sum",
    "inv": "neg",
    "div": "sub",
    "pow": "nsmul",
    "zpow": "zsmul",
    "smul": "vadd",
    "npow": "nsmul",
    "finprod": "finsum",
    "tprod": "tsum",
    "mulIndicator": "indicator",
    "orderOf": "addOrderOf",
    "commute": "addCommute",
    "unit": "addUnit",
    "units": "addUnits",
    "isUnit": "isAddUnit",
    "Mul": "Add",
    "One": "Zero",
    "Inv": "Neg",
    "Div": "Sub",
    "Monoid": "AddMonoid",
    "Group": "AddGroup",
    "CommGroup": "AddCommGroup",
    "CommMonoid": "AddCommMonoid",
    "Semigroup": "AddSemigroup",
    "Subgroup": "AddSubgroup",
    "Submonoid": "AddSubmonoid",
    "Commute": "AddCommute",
    "IsUnit": "IsAddUnit",
    "Units": "AddUnits",
    "MonoidHom": "AddMonoidHom",
    "MulEquiv": "AddEquiv",
    "MulAction": "AddAction",
    "Pow": "SMul",
    "SMul": "VAdd",
    "mulSupport": "support",
    "Prod": "Prod",
}
_WORDS = re.compile(r"[A-Z][a-z0-9]*|[a-z0-9]+|[^A-Za-z0-9]+")


def to_additive(text: str) -> str:
    """``text`` (a name or a signature) with multiplicative words made additive, as ``@[to_additive]`` does."""

    def component(word: str) -> str:
        if word in _ADDITIVE:
            return _ADDITIVE[word]
        parts = _WORDS.findall(word)
        return "".join(_ADDITIVE.get(p, _ADDITIVE.get(p.lower(), p) if p.islower() else p) for p in parts)

    return re.sub(r"[A-Za-z][A-Za-z0-9']*", lambda m: component(m.group(0)), text.replace("*", "+").replace("∏", "∑"))


def _to_additive_name(attrs: list[str], name: str) -> str | None:
    for a in attrs:
        for part in a.split(","):
            p = part.strip()
            if not p.startswith("to_additive"):
                continue
            words = re.sub(r"\(attr := [^)]*\)|\(reorder := [^)]*\)|\"[^\"]*\"", " ", p).split()[1:]
            if words and words[0] == "existing":
                return None  # the additive declaration exists under its own name
            if words and re.match(r"^[A-Za-z_][\w.']*$", words[0]):
                return words[0]
            return ".".join(to_additive(c) for c in name.split("."))
    return None


def read_file(root: Path, path: Path) -> list[Decl]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return read_declarations(text, module_name(root, path))
