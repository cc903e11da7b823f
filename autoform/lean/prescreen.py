"""The pre-screen: an allow-list of what a candidate's own text may contain, read before Lean sees it.

A candidate is a statement, a tactic proof and helper declarations. None of them needs to run code while Lean
elaborates, to change how Lean checks, or to talk to the gate, so the pre-screen admits only:

* declarations and the few commands that organise them (``theorem``, ``def``, ``instance``, ``open``,
  ``namespace``/``section``/``end``, ``variable``, ``universe``, ``set_option``, ``attribute``, ...): in a
  helper or a statement, every line that starts at column 0 must start with one of them;
* attributes from :data:`ALLOWED_ATTRIBUTES` (lemma tags such as ``simp``, ``ext``, ``gcongr``); attributes
  that register elaborators, tactics, delaborators, simprocs or compiler hooks are refused;
* options from :data:`ALLOWED_OPTIONS` (heartbeats, recursion depth, linters), with names normalised first
  (``«debug».skipKernelTC`` is ``debug.skipKernelTC``);
* no ``#`` command at all (``#eval``, ``#eval!``, ``#print``, ``#exit``, ...), no word of
  :data:`FORBIDDEN_WORDS` (``sorry``, ``axiom``, ``elab``, ``macro``, ``run_cmd``, ``by_elab``, ``simproc``,
  ``initialize``, ``native_decide``, ...), no ``eval%``, no ``decide +native``;
* in a proof, no declaration or scope command (a proof cannot end its tactic block and add declarations).

Comments, doc comments, strings and character literals are skipped, so honest look-alikes pass: a name that
contains a forbidden word, a comment that mentions ``sorry``, a string ``"axiom"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel

_IDENT_START = re.compile(r"[A-Za-z_\u00c0-\u024f\u0370-\u03ff\u1f00-\u1fff\u2100-\u214f\U0001d400-\U0001d7ff]")
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_'!?\u00c0-\u024f\u0370-\u03ff\u1f00-\u1fff\u2070-\u209f\u2100-\u214f"
                         r"\U0001d400-\U0001d7ff]")
_CHAR_LIT = re.compile(r"'(\\.[^']*|[^\\'])'")
_RAW_STRING = re.compile(r'r(#*)"')
#: punctuation the rules read; two-character ones first
_PUNCT = ("@[", ":=", "[", "]", ",", "(", ")", ":", "%", "+", "-", "|", "{", "}")

#: words that are never part of an honest candidate, as a whole token
FORBIDDEN_COMMANDS = frozenset(
    {
        "axiom", "elab", "elab_rules", "macro", "macro_rules", "syntax", "declare_syntax_cat", "notation",
        "notation3", "infix", "infixl", "infixr", "prefix", "postfix", "unsafe", "opaque", "import", "export",
        "initialize", "builtin_initialize", "run_cmd", "run_tac", "run_elab", "run_meta", "simproc",
        "dsimproc", "simproc_decl", "dsimproc_decl", "builtin_simproc", "builtin_dsimproc",
        "builtin_simproc_decl", "builtin_dsimproc_decl", "register_option", "register_builtin_option",
        "register_simp_attr", "register_label_attr", "declare_simp_like_tactic", "declare_config_elab",
        "declare_command_config_elab", "implemented_by", "extern", "csimp", "axioms",
    }
)
#: words refused as a whole token or as the last component of a name (``Lean.ofReduceBool``)
FORBIDDEN_TERMS = frozenset(
    {
        "sorry", "admit", "sorryAx", "native_decide", "ofReduceBool", "ofReduceNat", "reduceBool", "reduceNat",
        "by_elab", "unsafeBaseIO", "unsafeIO", "unsafeEIO", "unsafeCast", "trustCompiler",
    }
)
FORBIDDEN_WORDS = FORBIDDEN_COMMANDS | FORBIDDEN_TERMS
#: term elaborators written ``name%`` that run code or read files while Lean elaborates
FORBIDDEN_PERCENT = frozenset({"eval", "compile_inductive", "include_str", "reduce"})

#: options a candidate may set; every ``linter.*`` option too
ALLOWED_OPTIONS = frozenset(
    {"maxHeartbeats", "maxRecDepth", "synthInstance.maxHeartbeats", "synthInstance.maxSize",
     "push_neg.use_distrib", "simprocs", "tactic.skipAssignedInstances"}
)
ALLOWED_OPTION_PREFIXES = ("linter.",)

#: attributes a candidate may use: they tag lemmas and definitions for Lean's and Mathlib's own tactics and
#: never make the candidate's code run; any ``*_simps`` simp set is allowed too
ALLOWED_ATTRIBUTES = frozenset(
    {
        "simp", "norm_cast", "push_cast", "ext", "reducible", "irreducible", "semireducible", "instance",
        "default_instance", "inline", "noinline", "specialize", "elab_as_elim", "refl", "symm", "trans",
        "congr", "gcongr", "mono", "continuity", "measurability", "fun_prop", "bound", "grind", "coe", "nolint",
        "deprecated", "inherit_doc", "match_pattern", "to_additive", "simps", "reassoc", "elementwise",
        "nontriviality", "induction_eliminator", "cases_eliminator", "pp_nodot", "class", "local", "scoped",
        "field_simps", "norm_num_lemma",
    }
)
#: attributes that make a declaration run as code (elaborators, tactics, delaborators, simprocs, compiler
#: hooks, extensions of Mathlib's tactics): refused wherever they appear, also nested in another attribute
DANGEROUS_ATTRIBUTES = frozenset(
    {
        "command_elab", "term_elab", "tactic", "macro", "delab", "app_delab", "app_unexpander", "simproc",
        "init", "builtin_init", "export", "extern", "implemented_by", "csimp", "env_linter", "positivity",
        "norm_num", "aesop", "builtin_command_elab", "builtin_term_elab", "builtin_tactic", "builtin_macro",
        "builtin_delab", "combinator_formatter", "combinator_parenthesizer", "code_action_provider",
        "hole_code_action", "command_code_action", "tactic_code_action", "widget", "widget_module",
        "server_rpc_method", "run_builtin_parser_attribute_hooks", "builtin_doc", "incremental",
        "builtin_incremental", "term_parser", "command_parser", "tactic_parser", "category_parenthesizer",
        "progress", "linter",
    }
)

DECL_KEYWORDS = frozenset(
    {"def", "theorem", "lemma", "abbrev", "instance", "structure", "class", "inductive", "example"}
)
#: words that may start a line at column 0 in a helper, a statement or a definition
LINE_STARTS = DECL_KEYWORDS | frozenset(
    {
        "noncomputable", "private", "protected", "partial", "nonrec", "open", "namespace", "section", "end",
        "universe", "variable", "set_option", "attribute", "mutual", "where", "deriving", "termination_by",
        "decreasing_by", "with", "irreducible_def", "alias", "omit", "include", "in",
    }
)
#: commands a proof may not hold: a proof cannot end its tactic block and add declarations or scopes
NOT_IN_PROOFS = DECL_KEYWORDS | frozenset(
    {"namespace", "section", "end", "universe", "variable", "mutual", "deriving", "noncomputable", "private",
     "protected", "irreducible_def", "alias"}
)

ROLES = ("proof", "helper", "statement")


@dataclass(frozen=True)
class Token:
    """A token of Lean source: an identifier (guillemets stripped, ``«debug».x`` is ``debug.x``), a ``#``
    command, or a piece of punctuation the rules read."""

    text: str
    line: int
    col: int = 0
    kind: str = "ident"  # ident | hash | punct
    offset: int = 0
    end: int = 0


class Reason(BaseModel):
    code: str
    message: str
    line: int | None = None


def _scan(src: str) -> list[Token]:
    out: list[Token] = []
    i, n, line, line_start = 0, len(src), 1, 0

    def newline_at(k: int) -> None:
        nonlocal line, line_start
        line += 1
        line_start = k + 1

    while i < n:
        c = src[i]
        if c == "\n":
            newline_at(i)
            i += 1
        elif src.startswith("--", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/-", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if src.startswith("/-", i):
                    depth, i = depth + 1, i + 2
                elif src.startswith("-/", i):
                    depth, i = depth - 1, i + 2
                else:
                    if src[i] == "\n":
                        newline_at(i)
                    i += 1
        elif c == "r" and _RAW_STRING.match(src, i) and not (i and _IDENT_CHAR.match(src[i - 1])):
            hashes = len(_RAW_STRING.match(src, i).group(1))  # type: ignore[union-attr]
            close = '"' + "#" * hashes
            j = src.find(close, i + 2 + hashes)
            j = n if j < 0 else j + len(close)
            for k in range(i, j):
                if src[k] == "\n":
                    newline_at(k)
            i = j
        elif c == '"':
            if i >= 2 and src[i - 1] == "!" and src[i - 2] in "smf":
                i += 1  # interpolated string: its contents are scanned as code (conservative)
                continue
            i += 1
            while i < n and src[i] != '"':
                if src[i] == "\\":
                    i += 1
                if i < n and src[i] == "\n":
                    newline_at(i)
                i += 1
            i += 1
        elif c == "'" and not (i and _IDENT_CHAR.match(src[i - 1])) and _CHAR_LIT.match(src, i):
            i = _CHAR_LIT.match(src, i).end()  # type: ignore[union-attr]
        elif c == "#" and i + 1 < n and _IDENT_START.match(src[i + 1]):
            j = i + 1
            while j < n and _IDENT_CHAR.match(src[j]):
                j += 1
            out.append(Token(src[i:j], line, i - line_start, "hash", i, j))
            i = j
        elif c == "«" or _IDENT_START.match(c):
            parts, j = [], i
            while True:
                if j < n and src[j] == "«":
                    k = src.find("»", j)
                    k = n if k < 0 else k
                    parts.append(src[j + 1 : k])
                    j = min(n, k + 1)
                elif j < n and _IDENT_START.match(src[j]):
                    k = j + 1
                    while k < n and _IDENT_CHAR.match(src[k]):
                        k += 1
                    parts.append(src[j:k])
                    j = k
                else:
                    break
                if j + 1 < n and src[j] == "." and (src[j + 1] == "«" or _IDENT_START.match(src[j + 1])):
                    j += 1
                    continue
                break
            out.append(Token(".".join(parts), line, i - line_start, "ident", i, j))
            for k in range(i, j):  # a name in guillemets may span lines
                if src[k] == "\n":
                    newline_at(k)
            i = j
        else:
            for p in _PUNCT:
                if src.startswith(p, i):
                    out.append(Token(p, line, i - line_start, "punct", i, i + len(p)))
                    i += len(p)
                    break
            else:
                i += 1
    return out


def lean_tokens(src: str, *, punctuation: bool = False) -> list[Token]:
    """Identifiers and ``#commands`` of Lean source (and, with ``punctuation``, the punctuation the pre-screen
    reads), with comments and string/char literals skipped.

    Nested block comments ``/- ... -/`` (doc comments included), line comments ``--``, strings with escapes,
    raw strings ``r#"..."#`` and char literals are understood. Interpolated strings (``s!"..."``, ``m!"..."``,
    ``f!"..."``) are scanned as code, since their ``{...}`` parts are code. An unterminated comment or string
    swallows the rest of the text, as in Lean (which then fails)."""
    toks = _scan(src)
    return toks if punctuation else [t for t in toks if t.kind != "punct"]


def option_allowed(name: str) -> bool:
    return name in ALLOWED_OPTIONS or name.startswith(ALLOWED_OPTION_PREFIXES)


def _attribute_reasons(toks: list[Token], k: int) -> tuple[list[Reason], int]:
    """Check the attribute list whose ``[`` (or ``@[``) is ``toks[k]``; return the reasons and the index after
    its closing ``]``."""
    reasons: list[Reason] = []
    depth, j, entry_start = 1, k + 1, True
    while j < len(toks) and depth:
        t = toks[j]
        if t.kind == "punct" and t.text in ("[", "@["):
            depth += 1
        elif t.kind == "punct" and t.text == "]":
            depth -= 1
        elif t.kind == "punct" and t.text == "," and depth == 1:
            entry_start = True
        elif t.kind == "ident":
            if t.text in DANGEROUS_ATTRIBUTES or t.text.rsplit(".", 1)[-1] in DANGEROUS_ATTRIBUTES:
                reasons.append(Reason(code="forbidden", line=t.line,
                                      message=f"attribute `{t.text}` makes a declaration run as code"))
            elif entry_start and depth == 1 and t.text not in ("local", "scoped"):
                if t.text not in ALLOWED_ATTRIBUTES and not t.text.endswith("_simps"):
                    reasons.append(Reason(code="not_allowed", line=t.line,
                                          message=f"attribute `{t.text}` is not one a candidate may use"))
                entry_start = False
        j += 1
    return reasons, j


def _skip_group(toks: list[Token], k: int) -> int:
    """Index after the parenthesised group opening at ``toks[k]``."""
    depth, j = 0, k
    while j < len(toks):
        if toks[j].kind == "punct" and toks[j].text == "(":
            depth += 1
        elif toks[j].kind == "punct" and toks[j].text == ")":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return j


def declared_after(toks: list[Token], k: int) -> Token | None:
    """The name declared by the keyword ``toks[k]`` (None for an anonymous ``instance`` or an ``example``)."""
    kw = toks[k].text
    if kw == "example":
        return None
    j = k + 1
    if kw == "instance" and j + 1 < len(toks) and toks[j].text == "(" and toks[j + 1].text == "priority":
        j = _skip_group(toks, j)
    if j < len(toks) and toks[j].kind == "ident":
        return toks[j]
    return None


def prescreen(text: str, *, role: str = "helper", protected_names: set[str] | None = None) -> list[Reason]:
    """What in ``text`` (a candidate's ``proof``, ``helper`` declarations or ``statement``) the allow-list does
    not admit, and redefinitions of ``protected_names`` (the names the locked statement uses)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")
    reasons: list[Reason] = []
    toks = lean_tokens(text, punctuation=True)
    protected = {p.rsplit(".", 1)[-1] for p in (protected_names or set())}
    seen_lines: set[int] = set()
    k = 0
    while k < len(toks):
        t = toks[k]
        prev = toks[k - 1] if k else None
        nxt = toks[k + 1] if k + 1 < len(toks) else None
        first_on_line = t.line not in seen_lines
        seen_lines.add(t.line)
        if t.kind == "hash":
            reasons.append(Reason(code="forbidden", line=t.line,
                                  message=f"forbidden construct `{t.text}`: no `#` command may appear in a candidate"))
        elif t.kind == "punct":
            if t.text == "@[" or (t.text == "[" and prev is not None and prev.text == "attribute"):
                found, k = _attribute_reasons(toks, k)
                reasons += found
                continue
        else:
            last = t.text.rsplit(".", 1)[-1]
            if t.text in FORBIDDEN_WORDS or last in FORBIDDEN_TERMS:
                reasons.append(Reason(code="forbidden", line=t.line, message=f"forbidden construct `{t.text}`"))
            elif nxt is not None and nxt.text == "%" and nxt.offset == t.end and t.text in FORBIDDEN_PERCENT:
                reasons.append(Reason(code="forbidden", line=t.line, message=f"forbidden construct `{t.text}%`"))
            elif last == "native" and ((prev is not None and prev.text == "+" and prev.end == t.offset)
                                       or (nxt is not None and nxt.text == ":=")):
                reasons.append(Reason(code="forbidden", line=t.line,
                                      message="forbidden construct `decide +native` (native code is not checked "
                                              "by the kernel)"))
            elif t.text == "set_option" and nxt is not None and nxt.kind == "ident":
                if not option_allowed(nxt.text):
                    allowed = ", ".join(sorted(ALLOWED_OPTIONS)) + ", linter.*"
                    reasons.append(Reason(code="forbidden", line=t.line,
                                          message=f"forbidden option `set_option {nxt.text}` (a candidate may set "
                                                  f"only {allowed})"))
            elif role == "proof" and t.text in NOT_IN_PROOFS:
                reasons.append(Reason(code="not_allowed", line=t.line,
                                      message=f"`{t.text}` in a proof: a proof holds tactics only; put helper "
                                              "declarations beside it"))
            elif role != "proof" and first_on_line and t.col == 0 and t.text not in LINE_STARTS:
                reasons.append(Reason(code="not_allowed", line=t.line,
                                      message=f"line {t.line} starts with `{t.text}`: only declarations and "
                                              "`open`, `namespace`, `section`, `end`, `variable`, `universe`, "
                                              "`set_option`, `attribute` may start a line at column 0 (indent "
                                              "continuation lines)"))
            if t.text in DECL_KEYWORDS and protected:
                name = declared_after(toks, k)
                if name is not None and name.text.rsplit(".", 1)[-1] in protected:
                    short = name.text.rsplit(".", 1)[-1]
                    reasons.append(Reason(code="redefinition", line=t.line,
                                          message=f"redefines `{short}`, used by the locked statement"))
        k += 1
    return reasons


def statement_names(statement: str) -> set[str]:
    """Identifiers used in a statement (to forbid their redefinition by a candidate)."""
    skip = DECL_KEYWORDS | {"Type", "Prop", "Sort", "fun", "forall", "exists", "by", "at", "with"}
    return {t.text for t in lean_tokens(statement) if t.kind == "ident"} - skip


_LEADING_WS = re.compile(r"^[ \t\u00a0\u2007\u202f]*")
_NBSP = str.maketrans({"\u00a0": " ", "\u2007": " ", "\u202f": " "})


def indentation_problem(text: str) -> str | None:
    """Why the indentation of ``text`` cannot be read unambiguously (tabs mixed with spaces in one block),
    or None. Tabs alone and no-break spaces are normalised by :func:`clean_whitespace`."""
    kinds = set()
    for ln in text.splitlines():
        lead = _LEADING_WS.match(ln).group(0).translate(_NBSP)  # type: ignore[union-attr]
        if ln.strip() and lead:
            if "\t" in lead and " " in lead:
                return f"a line is indented with both tabs and spaces: {ln.strip()[:60]!r}"
            kinds.add("\t" if "\t" in lead else " ")
    if len(kinds) > 1:
        return "the proof is indented with tabs on some lines and spaces on others"
    return None


def clean_whitespace(text: str) -> str:
    """No-break spaces become spaces; a leading tab becomes two spaces (Lean refuses tabs); other tabs one space."""
    out = []
    for ln in text.translate(_NBSP).splitlines():
        lead = _LEADING_WS.match(ln).group(0)  # type: ignore[union-attr]
        out.append(lead.replace("\t", "  ") + ln[len(lead):].replace("\t", " "))
    return "\n".join(out)
