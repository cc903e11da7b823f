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

# Lean's own identifier characters (``Lean.isIdFirst``/``isIdRest``, ``isLetterLike`` and ``isSubScriptAlnum`` of
# Init/Meta/Defs.lean), exactly: a scanner that reads more characters as part of a name than Lean does (``×``,
# ``λ``, ``Π``, ``Σ``, superscripts) joins what Lean splits, and a quote after them then starts a string for the
# scanner that Lean reads as a character literal, hiding code from the pre-screen
_LETTER_LIKE = (
    "\u03b1-\u03ba\u03bc-\u03c9\u0391-\u039f\u03a1\u03a2\u03a4-\u03a9\u03ca-\u03fb\u1f00-\u1ffe"
    "\u2100-\u214f\U0001d49c-\U0001d59f\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0100-\u017f"
)
_SUBSCRIPT = "\u2080-\u2089\u2090-\u209c\u1d62-\u1d6a\u2c7c"
_IDENT_START = re.compile(f"[A-Za-z_{_LETTER_LIKE}]")
_IDENT_CHAR = re.compile(f"[A-Za-z0-9_'!?{_LETTER_LIKE}{_SUBSCRIPT}]")
_HEX = "0123456789abcdefABCDEF"
#: the escapes Lean's ``quotedCharCoreFn`` accepts after a backslash (besides ``x`` + 2 and ``u`` + 4 hex digits)
_QUOTABLE = frozenset("\\\"'rnt")
_RAW_STRING = re.compile(r'r(#*)"')
#: characters after which a quote surely starts a new token for Lean (no symbol token such as ``∑'``, ``×'``,
#: ``⁻¹'`` can end there)
_TOKEN_BOUNDARY = frozenset(" \t\n([{⟨,;")
#: punctuation the rules read; two-character ones first
_PUNCT = ("@[", ":=", "[", "]", ",", "(", ")", ":", "%", "+", "-", "|", "{", "}")

#: words that are never part of an honest candidate, as a whole token
FORBIDDEN_COMMANDS = frozenset(
    {
        "axiom",
        "elab",
        "elab_rules",
        "macro",
        "macro_rules",
        "syntax",
        "declare_syntax_cat",
        "notation",
        "notation3",
        "infix",
        "infixl",
        "infixr",
        "prefix",
        "postfix",
        "unsafe",
        "opaque",
        "import",
        "export",
        "initialize",
        "builtin_initialize",
        "run_cmd",
        "run_tac",
        "run_elab",
        "run_meta",
        "simproc",
        "dsimproc",
        "simproc_decl",
        "dsimproc_decl",
        "builtin_simproc",
        "builtin_dsimproc",
        "builtin_simproc_decl",
        "builtin_dsimproc_decl",
        "register_option",
        "register_builtin_option",
        "register_simp_attr",
        "register_label_attr",
        "declare_simp_like_tactic",
        "declare_config_elab",
        "declare_command_config_elab",
        "implemented_by",
        "extern",
        "csimp",
        "axioms",
        # commands that register code to run later, evaluate terms, or define syntax, under other names
        "add_aesop_rules",
        "erase_aesop_rules",
        "declare_aesop_rule_sets",
        "set_premise_selector",
        "set_library_suggestions",
        "binder_predicate",
        "test_extern",
        "register_hint",
        # tactics that compile and run the candidate's own code (its instances, or a `tactic` rule of Aesop:
        # `aesop (add safe tactic myTac)`), call external programs, or read files
        "plausible",
        "slim_check",
        "tactic",
        "bv_decide",
        "bv_check",
        "bv_normalize",
        "polyrith",
    }
)
#: words refused as a whole token or as the last component of a name (``Lean.ofReduceBool``)
FORBIDDEN_TERMS = frozenset(
    {
        "sorry",
        "admit",
        "sorryAx",
        "native_decide",
        "ofReduceBool",
        "ofReduceNat",
        "reduceBool",
        "reduceNat",
        "by_elab",
        "unsafeBaseIO",
        "unsafeIO",
        "unsafeEIO",
        "unsafeCast",
        "trustCompiler",
    }
)
FORBIDDEN_WORDS = FORBIDDEN_COMMANDS | FORBIDDEN_TERMS
#: tactics that search Mathlib each time Lean checks the proof and only suggest what they found (`Try this:`):
#: an admitted proof holds what they suggest, never the search (it could find another proof, or none, after an
#: update of Mathlib)
SEARCH_TACTICS = frozenset(
    {
        "exact?",
        "apply?",
        "rw?",
        "rw??",
        "simp?",
        "simp?!",
        "simp_all?",
        "simp_all?!",
        "dsimp?",
        "dsimp?!",
        "simpa?",
        "simpa?!",
        "simp_arith?",
        "aesop?",
        "observe?",
        "unfold?",
        "says",
    }
)
#: term elaborators written ``name%`` that run code or read files while Lean elaborates
FORBIDDEN_PERCENT = frozenset({"eval", "compile_inductive", "compile_def", "include_str", "reduce"})
#: namespaces of Lean's, Mathlib's and their dependencies' meta-programming API (elaborators, tactics, IO): a
#: proof or a helper about mathematics never names them, and code that runs while Lean elaborates (a tactic's
#: configuration is compiled and run: ``linarith (discharger := myTac)``) needs them to do harm
META_ROOTS = frozenset(
    {"Lean", "IO", "EIO", "BaseIO", "System", "Qq", "Aesop", "Elab", "Meta", "ProofWidgets", "Plausible", "Lake"}
)
META_PREFIXES = (
    "Mathlib.Tactic.",
    "Mathlib.Meta.",
    "Mathlib.Util.",
    "Batteries.Tactic.",
    "Batteries.Lean.",
    "Std.Tactic.",
    "Linarith.",
    "Polyrith.",
)
#: meta-level types, whatever namespace they are reached through
META_TYPES = frozenset(
    {
        "TacticM",
        "MetaM",
        "CoreM",
        "TermElabM",
        "CommandElabM",
        "MacroM",
        "DelabM",
        "SimpM",
        "Environment",
        "unsafeIO",
        "IO",
    }
)
#: tactic configuration fields that hold code (run when the tactic runs): ``linarith (discharger := t)``,
#: ``solve_by_elim (config := { proc := p })``
CODE_CONFIG_FIELDS = frozenset({"discharger", "preprocessors", "oracle", "discharge", "proc", "suspend"})
#: in a ``(config := ...)`` value (compiled and run by ``declare_config_elab``), the only words allowed besides
#: field names and ``.constructor`` names
CONFIG_WORDS = frozenset({"true", "false", "with"})
CONFIG_PUNCT = frozenset({"{", "}", ",", ":=", "[", "]", "(", ")", "-", "+"})

#: options a candidate may set; every ``linter.*`` option too
ALLOWED_OPTIONS = frozenset(
    {
        "maxHeartbeats",
        "maxRecDepth",
        "synthInstance.maxHeartbeats",
        "synthInstance.maxSize",
        "push_neg.use_distrib",
        "simprocs",
        "tactic.skipAssignedInstances",
    }
)
ALLOWED_OPTION_PREFIXES = ("linter.",)

#: attributes a candidate may use: they tag lemmas and definitions for Lean's and Mathlib's own tactics and
#: never make the candidate's code run; any ``*_simps`` simp set is allowed too
ALLOWED_ATTRIBUTES = frozenset(
    {
        "simp",
        "norm_cast",
        "push_cast",
        "ext",
        "reducible",
        "irreducible",
        "semireducible",
        "instance",
        "default_instance",
        "inline",
        "noinline",
        "specialize",
        "elab_as_elim",
        "refl",
        "symm",
        "trans",
        "congr",
        "gcongr",
        "mono",
        "continuity",
        "measurability",
        "fun_prop",
        "bound",
        "grind",
        "coe",
        "nolint",
        "deprecated",
        "inherit_doc",
        "match_pattern",
        "to_additive",
        "simps",
        "reassoc",
        "elementwise",
        "nontriviality",
        "induction_eliminator",
        "cases_eliminator",
        "pp_nodot",
        "class",
        "local",
        "scoped",
        "field_simps",
        "norm_num_lemma",
    }
)
#: attributes that make a declaration run as code (elaborators, tactics, delaborators, simprocs, compiler
#: hooks, extensions of Mathlib's tactics): refused wherever they appear, also nested in another attribute
DANGEROUS_ATTRIBUTES = frozenset(
    {
        "command_elab",
        "term_elab",
        "tactic",
        "macro",
        "delab",
        "app_delab",
        "app_unexpander",
        "simproc",
        "init",
        "builtin_init",
        "export",
        "extern",
        "implemented_by",
        "csimp",
        "env_linter",
        "positivity",
        "norm_num",
        "aesop",
        "builtin_command_elab",
        "builtin_term_elab",
        "builtin_tactic",
        "builtin_macro",
        "builtin_delab",
        "combinator_formatter",
        "combinator_parenthesizer",
        "code_action_provider",
        "hole_code_action",
        "command_code_action",
        "tactic_code_action",
        "widget",
        "widget_module",
        "server_rpc_method",
        "run_builtin_parser_attribute_hooks",
        "builtin_doc",
        "incremental",
        "builtin_incremental",
        "term_parser",
        "command_parser",
        "tactic_parser",
        "category_parenthesizer",
        "progress",
        "linter",
    }
)

DECL_KEYWORDS = frozenset(
    {"def", "theorem", "lemma", "abbrev", "instance", "structure", "class", "inductive", "example"}
)
#: keywords after which a candidate declares a name (checked against the names the locked statement uses)
NAMING_KEYWORDS = DECL_KEYWORDS | frozenset({"alias", "irreducible_def"})
#: commands that may prefix another with ``in`` (``open Nat in theorem ...``): what follows is a command too
PREFIX_COMMANDS = frozenset({"open", "set_option", "attribute", "omit", "include", "variable", "universe"})
#: words that may start a line at column 0 in a helper, a statement or a definition
LINE_STARTS = DECL_KEYWORDS | frozenset(
    {
        "noncomputable",
        "private",
        "protected",
        "partial",
        "nonrec",
        "open",
        "namespace",
        "section",
        "end",
        "universe",
        "variable",
        "set_option",
        "attribute",
        "mutual",
        "where",
        "deriving",
        "termination_by",
        "decreasing_by",
        "with",
        "irreducible_def",
        "alias",
        "omit",
        "include",
        "in",
    }
)
#: commands a proof may not hold: a proof cannot end its tactic block and add declarations or scopes
NOT_IN_PROOFS = DECL_KEYWORDS | frozenset(
    {
        "namespace",
        "section",
        "end",
        "universe",
        "variable",
        "mutual",
        "deriving",
        "noncomputable",
        "private",
        "protected",
        "irreducible_def",
        "alias",
    }
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


def _escape_end(src: str, i: int, hi: int, extra: str = "") -> int:
    """End of the escape whose backslash is just before ``src[i]`` (Lean's ``quotedCharCoreFn``), or -1 when Lean
    refuses it: then Lean reports an error inside the literal and its error recovery reads the rest as code."""
    if i >= hi:
        return -1
    c = src[i]
    if c in _QUOTABLE or c in extra:
        return i + 1
    width = {"x": 2, "u": 4}.get(c, 0)
    if width and i + width < hi and all(ch in _HEX for ch in src[i + 1 : i + 1 + width]):
        return i + 1 + width
    return -1


def _char_literal_end(src: str, i: int, hi: int) -> int:
    """End of the character literal whose quote is ``src[i]`` (Lean's ``charLitFnAux``), or -1."""
    j = i + 1
    if j >= hi:
        return -1
    k = _escape_end(src, j + 1, hi) if src[j] == "\\" else j + 1
    return k + 1 if 0 <= k < hi and src[k] == "'" else -1


def comment_end(src: str, i: int) -> int | None:
    """Where a comment starting at ``i`` ends: after a nested ``/- … -/`` (doc comments too), or at the newline
    ending a ``--`` comment; None when no comment starts at ``i``."""
    if src.startswith("--", i):
        j = src.find("\n", i)
        return len(src) if j < 0 else j
    if src.startswith("/-", i):
        return _block_comment_end(src, i, len(src))
    return None


def _block_comment_end(src: str, i: int, hi: int) -> int:
    depth, i = 1, i + 2
    while i < hi and depth:
        if src.startswith("/-", i):
            depth, i = depth + 1, i + 2
        elif src.startswith("-/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return min(i, hi)


def _raw_string_end(src: str, i: int, hi: int) -> int:
    hashes = len(_RAW_STRING.match(src, i).group(1))  # type: ignore[union-attr]
    close = '"' + "#" * hashes
    j = src.find(close, i + 2 + hashes, hi)
    return hi if j < 0 else j + len(close)


def _plain_string(src: str, i: int, hi: int) -> tuple[int, bool]:
    """End of the string literal opening at ``src[i]`` read as a plain string, and whether Lean accepts it."""
    j, ok = i + 1, True
    while j < hi:
        c = src[j]
        if c == '"':
            return j + 1, ok
        if c == "\\":
            k = _escape_end(src, j + 1, hi)
            ok, j = (ok, k) if k >= 0 else (False, j + 2)
            continue
        j += 1
    return hi, False


def _code_end(src: str, i: int, hi: int) -> int:
    """Index of the ``}`` closing the code part of an interpolated string that starts at ``src[i]`` (or ``hi``)."""
    depth, j = 0, i
    while j < hi:
        c = src[j]
        if src.startswith("--", j):
            k = src.find("\n", j, hi)
            j = hi if k < 0 else k
        elif src.startswith("/-", j):
            j = _block_comment_end(src, j, hi)
        elif c == '"':
            j = _string(src, j, hi)[0]
        elif c == "'" and j + 1 < hi and src[j + 1] != "'" and _char_literal_end(src, j, hi) >= 0:
            j = _char_literal_end(src, j, hi)
        elif c == "r" and _RAW_STRING.match(src, j) and not (j > i and _IDENT_CHAR.match(src[j - 1])):
            j = _raw_string_end(src, j, hi)
        elif c == "{":
            depth, j = depth + 1, j + 1
        elif c == "}":
            if depth == 0:
                return j
            depth, j = depth - 1, j + 1
        else:
            j += 1
    return hi


def _string(src: str, i: int, hi: int) -> tuple[int, list[str], list[tuple[int, int]]]:
    """A string literal opening at ``src[i]``: its end, what makes it unreadable, and its code parts.

    Whether a string is interpolated depends on the syntax around it (``s!``, ``m!``, ``f!``, ``throwError``,
    ``dbg_trace``, ``trace[..]``, with or without a space), which a scanner cannot know; its ``{...}`` parts are
    code then. So a string with a ``{`` is read both ways: when the two readings end at different places, the
    string is refused (the scanner could not tell where Lean's code resumes); otherwise its ``{...}`` parts are
    scanned as code (a plain string that merely contains braces costs at most a false refusal)."""
    end, ok = _plain_string(src, i, hi)
    problems = [] if ok else ["a string literal Lean cannot read (bad escape or unterminated)"]
    if "{" not in src[i + 1 : end]:
        return end, problems, []
    j, spans, iok = i + 1, [], True
    while j < hi:
        c = src[j]
        if c == '"':
            j += 1
            break
        if c == "\\":
            k = _escape_end(src, j + 1, hi, extra="{")
            iok, j = (iok, k) if k >= 0 else (False, j + 2)
            continue
        if c == "{":
            k = _code_end(src, j + 1, hi)
            spans.append((j + 1, k))
            j = k + 1
            continue
        j += 1
    else:
        iok = False
    if j != end:
        problems = [
            "a string literal with `{...}` that reads differently as an interpolated string (`s!`, `m!`, "
            "`throwError`): where its code resumes cannot be told"
        ]
        end = max(end, min(j, hi))
    elif not ok and iok:
        problems = []
    return end, problems, spans


def _scan(
    src: str, lo: int = 0, hi: int | None = None, out: list[Token] | None = None, starts: list[int] | None = None
) -> list[Token]:
    """Lean's tokens of ``src[lo:hi]`` as far as the rules need them, read as Lean's tokenizer reads them
    (``Lean.Parser.tokenFn``: whitespace and comments, strings, character literals, numbers, names, tokens)."""
    # complexity: one branch per kind of token, in the order Lean's tokenFn tries them; each branch's reading is
    # a helper of its own, and keeping the dispatch whole lets it be read against Lean's source side by side
    import bisect

    hi = len(src) if hi is None else hi
    out = [] if out is None else out
    if starts is None:
        starts = [0] + [k + 1 for k, ch in enumerate(src) if ch == "\n"]

    def add(text: str, kind: str, a: int, b: int) -> None:
        ln = bisect.bisect_right(starts, a)
        out.append(Token(text, ln, a - starts[ln - 1], kind, a, b))

    def bad(message: str, a: int) -> None:
        add(message, "bad", a, a)

    i = lo
    while i < hi:
        c = src[i]
        if c.isspace():
            i += 1
        elif src.startswith("--", i):
            j = src.find("\n", i, hi)
            i = hi if j < 0 else j
        elif src.startswith("/-", i):
            i = _block_comment_end(src, i, hi)
        elif c == '"':
            end, problems, spans = _string(src, i, hi)
            for msg in problems:
                bad(msg, i)
            for a, b in spans:
                _scan(src, a, b, out, starts)
            i = end
        elif c == "'":
            end, problem = _quote(src, i, lo, hi)
            if problem:
                bad(problem, i)
            i = end
        elif c == "r" and _RAW_STRING.match(src, i):
            i = _raw_string_end(src, i, hi)
        elif c.isdigit() and c.isascii():
            i = _number_end(src, i, hi)
        elif c == "#" and i + 1 < hi and _IDENT_START.match(src[i + 1]):
            j = _ident_part_end(src, i + 1, hi)
            add(src[i:j], "hash", i, j)
            i = j
        elif c == "«" or _IDENT_START.match(c):
            name, j = _name(src, i, hi)
            add(name, "ident", i, j)
            i = j
        else:
            for p in _PUNCT:
                if src.startswith(p, i):
                    add(p, "punct", i, i + len(p))
                    i += len(p)
                    break
            else:
                i += 1
    return out


def _quote(src: str, i: int, lo: int, hi: int) -> tuple[int, str]:
    """Where reading resumes after the quote at ``src[i]``, and a problem to report at ``i`` (or '')."""
    if i + 1 < hi and src[i + 1] == "'":  # not a character literal for Lean (`''` is a token)
        return i + 1, ""
    end = _char_literal_end(src, i, hi)
    boundary = i == lo or src[i - 1] in _TOKEN_BOUNDARY
    problem = ""
    if boundary and end < 0:
        problem = "a character literal Lean cannot read"
    elif not boundary and end >= 0:
        problem = "a quote right after a symbol that Lean may read as a character literal (write a space before it)"
    return (end if end >= 0 else i + 1), problem


def _digits_end(src: str, j: int, hi: int) -> int:
    while j < hi and src[j].isdigit() and src[j].isascii():
        j += 1
    return j


def _number_end(src: str, i: int, hi: int) -> int:
    """The end of the number literal at ``src[i]`` (binary, octal, hex, decimal, scientific)."""
    j = i + 1
    if src[i] == "0" and j < hi and src[j] in "bBoOxX":
        j += 1
        while j < hi and src[j] in _HEX:
            j += 1
        return j
    j = _digits_end(src, j, hi)
    if j < hi and src[j] == ".":
        j = _digits_end(src, j + 1, hi)
    if j < hi and src[j] in "eE":
        k = j + 1 + (j + 1 < hi and src[j + 1] in "+-")
        if k < hi and src[k].isdigit():
            j = _digits_end(src, k, hi)
    return j


def _ident_part_end(src: str, j: int, hi: int) -> int:
    """The end of the identifier part starting at ``src[j]`` (an identifier's first character)."""
    k = j + 1
    while k < hi and _IDENT_CHAR.match(src[k]):
        k += 1
    return k


def _name(src: str, i: int, hi: int) -> tuple[str, int]:
    """The dotted name at ``src[i]`` (parts plain or in «»), as Lean joins it, and where it ends."""
    parts, j = [], i
    while True:
        if j < hi and src[j] == "«":
            k = src.find("»", j, hi)
            k = hi if k < 0 else k
            parts.append(src[j + 1 : k])
            j = min(hi, k + 1)
        elif j < hi and _IDENT_START.match(src[j]):
            k = _ident_part_end(src, j, hi)
            parts.append(src[j:k])
            j = k
        else:
            break
        if not (j + 1 < hi and src[j] == "." and (src[j + 1] == "«" or _IDENT_START.match(src[j + 1]))):
            break
        j += 1
    return ".".join(parts), j


def lean_tokens(src: str, *, punctuation: bool = False) -> list[Token]:
    """Identifiers and ``#commands`` of Lean source (and, with ``punctuation``, the punctuation the pre-screen
    reads), with comments and string/char literals skipped.

    Nested block comments ``/- ... -/`` (doc comments included), line comments ``--``, strings with escapes,
    raw strings ``r#"..."#`` and char literals are understood. Interpolated strings (``s!"..."``, ``m!"..."``,
    ``f!"..."``) are scanned as code, since their ``{...}`` parts are code. An unterminated comment or string
    swallows the rest of the text, as in Lean (which then fails)."""
    toks = _scan(src)
    return toks if punctuation else [t for t in toks if t.kind in ("ident", "hash")]


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
                reasons.append(
                    Reason(
                        code="forbidden", line=t.line, message=f"attribute `{t.text}` makes a declaration run as code"
                    )
                )
            elif entry_start and depth == 1 and t.text not in ("local", "scoped"):
                if t.text not in ALLOWED_ATTRIBUTES and not t.text.endswith("_simps"):
                    reasons.append(
                        Reason(
                            code="not_allowed",
                            line=t.line,
                            message=f"attribute `{t.text}` is not one a candidate may use",
                        )
                    )
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
    return _Screen(text, role, {p.rsplit(".", 1)[-1] for p in (protected_names or set())}).run()


class _Screen:
    """One pass over a candidate's tokens: each token is held to the rule of its kind (punctuation, `#`,
    identifiers); commands are tracked across tokens (`open ... in <command>`, declarations counted)."""

    def __init__(self, text: str, role: str, protected: set[str]) -> None:
        self.text, self.role, self.protected = text, role, protected
        self.toks = lean_tokens(text, punctuation=True)
        self.reasons: list[Reason] = []
        self.seen_lines: set[int] = set()
        self.prefix_line = 0  # the line of an `open ... in`-like command whose `in` is still to come
        self.command_after_in = False
        self.declarations = 0

    def run(self) -> list[Reason]:
        for k, t in enumerate(self.toks):
            first_on_line = t.line not in self.seen_lines
            self.seen_lines.add(t.line)
            after_in = self.command_after_in
            if after_in:  # `open Nat in <command>`: the command is held to the same rule as a line start
                self.command_after_in = False
                self._command_after_in(t)
            if t.kind == "bad":
                self.reasons.append(Reason(code="malformed", line=t.line, message=t.text))
            elif t.kind == "hash":
                message = f"forbidden construct `{t.text}`: no `#` command may appear in a candidate"
                self.reasons.append(Reason(code="forbidden", line=t.line, message=message))
            elif t.kind == "punct":
                self._punctuation(k)
            else:
                self._word(k, first_on_line, after_in)
        if self.role == "statement" and self.declarations > 1:
            message = f"a statement declares exactly one theorem; it holds {self.declarations} declarations"
            self.reasons.append(Reason(code="not_allowed", message=message))
        return self.reasons

    def _near(self, k: int) -> tuple[Token | None, Token | None]:
        return (self.toks[k - 1] if k else None), (self.toks[k + 1] if k + 1 < len(self.toks) else None)

    def _command_after_in(self, t: Token) -> None:
        if self.role != "proof" and t.kind == "ident" and t.text not in LINE_STARTS:
            message = (
                f"`... in {t.text}`: only a declaration or one of the commands allowed at the start of a line "
                "may follow `in`"
            )
            self.reasons.append(Reason(code="not_allowed", line=t.line, message=message))

    def _punctuation(self, k: int) -> None:
        t, toks = self.toks[k], self.toks
        prev, nxt = self._near(k)
        if t.text == "@[" or (t.text == "[" and prev is not None and prev.text == "attribute"):
            # the attribute names are checked here; their arguments are read as code below, like any term
            self.reasons += _attribute_reasons(toks, k)[0]
        elif (
            t.text == "(" and nxt is not None and nxt.kind == "ident" and k + 2 < len(toks) and toks[k + 2].text == ":="
        ):
            self.reasons += _named_argument_reasons(self.text, toks, k)

    def _word(self, k: int, first_on_line: bool, after_in: bool) -> None:
        t = self.toks[k]
        prev, nxt = self._near(k)
        for rule in _WORD_RULES:  # the first rule that refuses the word gives the reason
            reason = rule(t, prev, nxt, self.role, first_on_line)
            if reason is not None:
                self.reasons.append(reason)
                break
        meta = _meta_name(t.text)
        if meta and not any(r.line == t.line for r in self.reasons):  # once a line, beside other reasons
            message = (
                f"`{t.text}` names the meta-programming API ({meta}): a candidate states and proves "
                "mathematics, it does not program Lean"
            )
            self.reasons.append(Reason(code="forbidden", line=t.line, message=message))
        self._track_commands(t, first_on_line, after_in)
        if t.text in DECL_KEYWORDS:
            self.declarations += 1
        if t.text in NAMING_KEYWORDS and self.protected:
            name = declared_after(self.toks, k)
            short = name.text.rsplit(".", 1)[-1] if name is not None else None
            if short is not None and short in self.protected:
                message = f"redefines `{short}`, used by the locked statement"
                self.reasons.append(Reason(code="redefinition", line=t.line, message=message))

    def _track_commands(self, t: Token, first_on_line: bool, after_in: bool) -> None:
        """Where an `open ... in`-like command starts, and whether the token after its `in` is a command."""
        if first_on_line and t.col == 0:
            self.prefix_line = 0  # a new command at column 0
        if self.role != "proof" and t.text in PREFIX_COMMANDS and (first_on_line or after_in):
            self.prefix_line = t.line
        elif t.text == "in" and self.prefix_line:
            self.prefix_line, self.command_after_in = 0, True


def _forbidden_word(t: Token, prev: Token | None, nxt: Token | None, role: str, first: bool) -> Reason | None:
    if t.text in FORBIDDEN_WORDS or t.text.rsplit(".", 1)[-1] in FORBIDDEN_TERMS:
        return Reason(code="forbidden", line=t.line, message=f"forbidden construct `{t.text}`")
    if nxt is not None and nxt.text == "%" and nxt.offset == t.end and t.text in FORBIDDEN_PERCENT:
        return Reason(code="forbidden", line=t.line, message=f"forbidden construct `{t.text}%`")
    return None


def _native(t: Token, prev: Token | None, nxt: Token | None, role: str, first: bool) -> Reason | None:
    if t.text.rsplit(".", 1)[-1] != "native":
        return None
    if (prev is not None and prev.text == "+" and prev.end == t.offset) or (nxt is not None and nxt.text == ":="):
        message = "forbidden construct `decide +native` (native code is not checked by the kernel)"
        return Reason(code="forbidden", line=t.line, message=message)
    return None


def _option(t: Token, prev: Token | None, nxt: Token | None, role: str, first: bool) -> Reason | None:
    if t.text != "set_option" or nxt is None or nxt.kind != "ident" or option_allowed(nxt.text):
        return None
    allowed = ", ".join(sorted(ALLOWED_OPTIONS)) + ", linter.*"
    message = f"forbidden option `set_option {nxt.text}` (a candidate may set only {allowed})"
    return Reason(code="forbidden", line=t.line, message=message)


def _declaration_in_proof(t: Token, prev: Token | None, nxt: Token | None, role: str, first: bool) -> Reason | None:
    if role == "proof" and t.text in NOT_IN_PROOFS:
        message = f"`{t.text}` in a proof: a proof holds tactics only; put helper declarations beside it"
        return Reason(code="not_allowed", line=t.line, message=message)
    return None


def _line_start(t: Token, prev: Token | None, nxt: Token | None, role: str, first: bool) -> Reason | None:
    if role != "proof" and first and t.col == 0 and t.text not in LINE_STARTS:
        message = (
            f"line {t.line} starts with `{t.text}`: only declarations and `open`, `namespace`, `section`, `end`, "
            "`variable`, `universe`, `set_option`, `attribute` may start a line at column 0 (indent continuation "
            "lines)"
        )
        return Reason(code="not_allowed", line=t.line, message=message)
    return None


#: the rules an identifier is held to, in order: the first that refuses it gives the reason
def _search_tactic(t: Token, prev: Token | None, nxt: Token | None, role: str, first: bool) -> Reason | None:
    if t.text not in SEARCH_TACTICS:
        return None
    message = (
        f"`{t.text}` searches Mathlib whenever Lean checks the proof: write what it suggests (its `Try this:`) instead"
    )
    return Reason(code="not_allowed", line=t.line, message=message)


_WORD_RULES = (_forbidden_word, _search_tactic, _native, _option, _declaration_in_proof, _line_start)


def _meta_name(name: str) -> str:
    """Why ``name`` belongs to the meta-programming API, or ''."""
    parts = name.split(".")
    if parts and parts[0] == "_root_":
        parts = parts[1:]
    if parts and parts[0] in META_ROOTS:
        return f"namespace `{parts[0]}`"
    joined = ".".join(parts) + "."
    for p in META_PREFIXES:
        if joined.startswith(p):
            return f"namespace `{p[:-1]}`"
    for part in parts:
        if part in META_TYPES:
            return f"`{part}`"
    return ""


def _named_argument_reasons(src: str, toks: list[Token], k: int) -> list[Reason]:
    """``(name := value)`` at ``toks[k]``: a named argument, or a tactic's configuration item, whose value Lean
    compiles and runs while it elaborates (``declare_config_elab``). A configuration may hold only data."""
    name = toks[k + 1]
    depth, j = 1, k + 3
    while j < len(toks) and depth:
        if toks[j].text == "(" and toks[j].kind == "punct":
            depth += 1
        elif toks[j].text == ")" and toks[j].kind == "punct":
            depth -= 1
        j += 1
    value = toks[k + 3 : j - 1]
    reasons: list[Reason] = []
    if name.text in CODE_CONFIG_FIELDS:
        reasons.append(
            Reason(
                code="forbidden",
                line=name.line,
                message=f"`({name.text} := ...)` passes code to a tactic, which runs it",
            )
        )
    if any(v.kind == "ident" and v.text == "do" for v in value):
        reasons.append(Reason(code="forbidden", line=name.line, message=f"`do` code in `({name.text} := ...)`"))
    if name.text == "config":
        reasons += _config_reasons(src, value)
    return reasons


def _config_reasons(src: str, value: list[Token]) -> list[Reason]:
    """The first token of a ``(config := ...)`` value that is not data, as a reason (a configuration is compiled
    and run)."""
    for n, v in enumerate(value):
        follows = value[n + 1].text if n + 1 < len(value) else ""
        if v.kind == "punct" and v.text in CONFIG_PUNCT:
            continue
        if v.kind == "ident" and (v.text in CONFIG_WORDS or follows == ":=" or (v.offset and src[v.offset - 1] == ".")):
            continue
        message = (
            f"`(config := ...)` holds `{v.text}`: a tactic's configuration is compiled and run, so it may hold only "
            "data (`true`, numbers, `.constructor`, fields)"
        )
        return [Reason(code="forbidden", line=v.line, message=message)]
    return []


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
        out.append(lead.replace("\t", "  ") + ln[len(lead) :].replace("\t", " "))
    return "\n".join(out)
