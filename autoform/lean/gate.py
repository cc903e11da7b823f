"""The admission gate: the only code that can let a declaration into the Atlas.

A candidate is admitted only when a real Lean run positively confirms every rule of the design:

1. a comment-, string- and nesting-aware pre-screen of the candidate's own text finds no forbidden
   construct (``sorry``, ``admit``, ``axiom``, ``macro``, ``native_decide``, ``set_option debug.``, ...) and
   no redefinition of a name the locked statement uses;
2. the module compiles with no error message;
3. Lean reports no ``sorry`` (no sorries, no "declaration uses 'sorry'" warning, no ``sorryAx``);
4. ``#print axioms`` of the declaration answered, listing only ``propext``, ``Classical.choice`` and
   ``Quot.sound``;
5. the statement is the locked one: the prover supplies only the proof, which is spliced into the locked
   statement text, and the elaborated type (``#check`` with ``pp.all``) equals the one recorded when the
   statement was locked.

Anything Lean did not positively confirm (a timeout, a crash, a missing reply to a query) is a rejection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, Field

from autoform.lean.oracle import LeanCheck, LeanMessage, Oracle

ALLOWED_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})

#: identifiers that may not appear (as a whole token) in a candidate's own text
FORBIDDEN_TOKENS = frozenset(
    {
        "sorry", "admit", "sorryAx", "axiom", "axioms", "elab", "macro", "syntax", "macro_rules",
        "elab_rules", "implemented_by", "extern", "unsafe", "native_decide", "csimp", "ofReduceBool",
        "ofReduceNat", "notation", "infix", "infixl", "infixr", "prefix", "postfix", "opaque",
        "run_cmd", "run_tac", "run_elab", "run_meta", "import", "initialize", "builtin_initialize",
        "#eval", "#exit", "#print", "#check", "#reduce", "#synth", "#guard_msgs", "#help", "#find",
        "#exact?", "#simp", "#norm_num", "#conv", "#where", "#adaptation_note", "#long_names",
    }
)
FORBIDDEN_OPTION_PREFIXES = ("debug.", "trace.", "pp.", "backward.", "compiler.", "interpreter.")

DECL_KEYWORDS = frozenset(
    {"def", "theorem", "lemma", "abbrev", "instance", "structure", "class", "inductive", "example"}
)

_IDENT_START = re.compile(r"[A-Za-z_\u00c0-\u024f\u0370-\u03ff\u1f00-\u1fff\u2100-\u214f\U0001d400-\U0001d7ff]")
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_'!?\u00c0-\u024f\u0370-\u03ff\u1f00-\u1fff\u2070-\u209f\u2100-\u214f"
                         r"\U0001d400-\U0001d7ff]")


@dataclass(frozen=True)
class Token:
    text: str
    line: int


def lean_tokens(src: str) -> list[Token]:
    """Identifiers and ``#commands`` of Lean source, with comments and string/char literals skipped.

    Nested block comments ``/- ... -/`` (doc comments included), line comments ``--``, strings with
    escapes, raw strings ``r#"..."#`` and char literals are understood. Interpolated strings (``s!"..."``,
    ``m!"..."``, ``f!"..."``) are scanned as code, since their ``{...}`` parts are code.
    An unterminated comment or string swallows the rest of the text, as in Lean (which then fails)."""
    out: list[Token] = []
    i, n, line = 0, len(src), 1
    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
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
                    line += src[i] == "\n"
                    i += 1
        elif c == "r" and re.match(r'r#*"', src[i:]) and not (i and _IDENT_CHAR.match(src[i - 1])):
            hashes = len(re.match(r"r(#*)", src[i:]).group(1))  # type: ignore[union-attr]
            close = '"' + "#" * hashes
            j = src.find(close, i + 2 + hashes)
            j = n if j < 0 else j + len(close)
            line += src.count("\n", i, j)
            i = j
        elif c == '"':
            if i >= 2 and src[i - 1] == "!" and src[i - 2] in "smf":
                i += 1  # interpolated string: scan its contents as code (conservative)
                continue
            i += 1
            while i < n and src[i] != '"':
                if src[i] == "\\":
                    i += 1
                line += i < n and src[i] == "\n"
                i += 1
            i += 1
        elif c == "'" and not (i and _IDENT_CHAR.match(src[i - 1])) and re.match(r"'(\\.[^']*|[^\\'])'", src[i:]):
            i += len(re.match(r"'(\\.[^']*|[^\\'])'", src[i:]).group(0))  # type: ignore[union-attr]
        elif c == "«":
            j = src.find("»", i)
            j = n if j < 0 else j + 1
            out.append(Token(src[i + 1 : j - 1], line))
            i = j
        elif c == "#" and i + 1 < n and _IDENT_START.match(src[i + 1]):
            j = i + 1
            while j < n and (_IDENT_CHAR.match(src[j]) or src[j] == "?"):
                j += 1
            out.append(Token(src[i:j], line))
            i = j
        elif _IDENT_START.match(c):
            j = i + 1
            while j < n and (_IDENT_CHAR.match(src[j]) or (src[j] == "." and j + 1 < n
                                                          and _IDENT_START.match(src[j + 1]))):
                j += 1
            out.append(Token(src[i:j], line))
            i = j
        else:
            i += 1
    return out


class Reason(BaseModel):
    code: str
    message: str
    line: int | None = None


def prescreen(text: str, *, protected_names: set[str] | None = None) -> list[Reason]:
    """Forbidden constructs in a candidate's own text (not in comments or strings), and redefinitions
    of any of ``protected_names`` (the names the locked statement uses)."""
    reasons: list[Reason] = []
    toks = lean_tokens(text)
    protected = {p.rsplit(".", 1)[-1] for p in (protected_names or set())}
    for k, t in enumerate(toks):
        last = t.text.rsplit(".", 1)[-1]
        if t.text in FORBIDDEN_TOKENS or last in FORBIDDEN_TOKENS:
            reasons.append(Reason(code="forbidden", message=f"forbidden construct `{t.text}`", line=t.line))
        elif t.text == "set_option" and k + 1 < len(toks) and toks[k + 1].text.startswith(
            FORBIDDEN_OPTION_PREFIXES
        ):
            reasons.append(
                Reason(code="forbidden", message=f"forbidden option `set_option {toks[k + 1].text}`", line=t.line)
            )
        elif t.text in DECL_KEYWORDS and k + 1 < len(toks):
            name = toks[k + 1].text.rsplit(".", 1)[-1]
            if name in protected:
                reasons.append(
                    Reason(code="redefinition", message=f"redefines `{name}`, used by the locked statement",
                           line=t.line)
                )
    return reasons


def statement_names(statement: str) -> set[str]:
    """Identifiers used in a statement (to forbid their redefinition by a candidate)."""
    skip = DECL_KEYWORDS | {"Type", "Prop", "Sort", "fun", "forall", "exists", "by", "at", "with"}
    return {t.text for t in lean_tokens(statement)} - skip


_DECL_NAME = re.compile(
    r"^\s*(?:@\[[^\]]*\]\s*)?(?:(?:private|protected|noncomputable|nonrec)\s+)*"
    r"(?:theorem|lemma|def|abbrev|instance|structure|class|inductive)\s+([^\s:({\[]+)",
    re.MULTILINE,
)


def declared_name(statement: str) -> str | None:
    m = _DECL_NAME.search(statement)
    return m.group(1) if m else None


class Candidate(BaseModel):
    """What is submitted for admission. ``statement`` is the locked text (``theorem n ... : T``, no ``:=``)
    for a theorem, the whole definition for a definition. ``proof`` and ``aux`` come from the prover."""

    kind: str = Field(pattern="^(theorem|definition)$")
    namespace: str
    statement: str
    proof: str = ""
    aux: str = ""
    prelude: str = ""
    locked_type: str | None = None

    @property
    def name(self) -> str:
        return declared_name(self.statement) or ""

    @property
    def full_name(self) -> str:
        return f"{self.namespace}.{self.name}" if self.namespace else self.name


class Verdict(BaseModel):
    admitted: bool
    reasons: list[Reason] = Field(default_factory=list)
    module: str = ""
    messages: list[LeanMessage] = Field(default_factory=list)
    axioms: list[str] | None = None
    elaborated_type: str | None = None
    elapsed_s: float = 0.0
    toolchain: str = ""

    def summary(self) -> str:
        if self.admitted:
            return "admitted"
        return "; ".join(r.message for r in self.reasons) or "rejected"


def normalize_proof(proof: str) -> str:
    """The tactic block of a proof reply: strips a leading ``:=`` and ``by``; dedents."""
    p = proof.strip("\n")
    stripped = p.lstrip()
    if stripped.startswith(":="):
        stripped = stripped[2:].lstrip()
    if stripped.startswith("by") and (len(stripped) == 2 or not _IDENT_CHAR.match(stripped[2])):
        stripped = stripped[2:]
    lines = stripped.strip("\n").splitlines() or [""]
    import textwrap

    first, rest = lines[0].strip(), textwrap.dedent("\n".join(lines[1:]))
    body = "\n".join(x for x in [first, rest] if x.strip())
    return body


def _indent(text: str, n: int = 2) -> str:
    return "\n".join((" " * n + ln) if ln.strip() else ln for ln in text.splitlines())


@dataclass
class Module:
    text: str
    axioms_line: int
    check_line: int
    body_start: int
    body_end: int
    context_lines: int = 0  # leading lines shared by many checks (the prelude): see Oracle.check


def build_module(c: Candidate, *, sorry_proof: bool = False) -> Module:
    """The Lean text checked for a candidate: namespace, the trusted prelude (admitted dependencies), the
    candidate's auxiliary lemmas, the locked statement with the proof spliced in, then the two queries."""
    # the prelude is a block of its own (namespace ... end): the same text for every candidate of a unit, and
    # for many units, so an oracle may elaborate it once and check candidates on top of its environment
    context = ""
    if c.prelude.strip():
        context = c.prelude.strip("\n") + "\n"
        if c.namespace:
            context = f"namespace {c.namespace}\n{context}end {c.namespace}\n"
    head = context + (f"namespace {c.namespace}\n" if c.namespace else "")
    body: list[str] = []
    if c.aux.strip():
        body.append(c.aux.strip("\n") + "\n")
    if c.kind == "definition":
        body.append(c.statement.strip("\n") + "\n")
    else:
        proof = "sorry" if sorry_proof else normalize_proof(c.proof)
        body.append(f"{c.statement.rstrip()} := by\n{_indent(proof)}\n")
    body_text = "".join(body)
    tail = f"end {c.namespace}\n" if c.namespace else ""
    text = head + body_text + tail
    axioms_line = text.count("\n") + 1
    text += f"#print axioms {c.full_name}\n"
    check_line = text.count("\n") + 1
    text += f"set_option pp.all true in #check @{c.full_name}\n"
    body_start = head.count("\n") + 1
    return Module(text, axioms_line, check_line, body_start, body_start + body_text.count("\n"),
                  context.count("\n"))


_AXIOMS_RE = re.compile(r"(?P<name>\S+) depends on axioms:\s*\[(?P<list>[^\]]*)\]")
_NO_AXIOMS_RE = re.compile(r"(?P<name>\S+) does not depend on any axioms")
#: "declaration uses 'sorry'" (older Lean) or "declaration uses `sorry`" (newer)
_SORRY_WARNING = re.compile(r"declaration uses ['`]sorry['`]")


def _reports_sorry(check: LeanCheck) -> bool:
    return bool(check.sorries) or any(_SORRY_WARNING.search(m.text) for m in check.messages)


def _query_reply(check: LeanCheck, line: int) -> list[LeanMessage]:
    return [m for m in check.messages if m.line == line and m.severity == "info"]


def parse_axioms(text: str) -> list[str] | None:
    m = _AXIOMS_RE.search(text)
    if m:
        return [a.strip() for a in m.group("list").split(",") if a.strip()]
    if _NO_AXIOMS_RE.search(text):
        return []
    return None


def judge(c: Candidate, module: Module, check: LeanCheck, *, require_lock: bool = True) -> Verdict:
    """Apply rules 2-5 to what Lean said about ``module``. Positive confirmation only."""
    v = Verdict(admitted=False, module=module.text, messages=check.messages, elapsed_s=check.elapsed_s,
                toolchain=check.toolchain)
    if check.failure is not None:
        v.reasons.append(Reason(code="lean_failure", message=check.failure))
        return v
    for m in check.errors:
        v.reasons.append(Reason(code="compile_error", message=f"line {m.line}: {m.text}", line=m.line))
    if _reports_sorry(check):
        v.reasons.append(Reason(code="sorry", message="Lean reports a sorry"))
    ax_msgs = _query_reply(check, module.axioms_line)
    axioms = parse_axioms(ax_msgs[0].text) if ax_msgs else None
    v.axioms = axioms
    if axioms is None:
        v.reasons.append(Reason(code="axioms_unconfirmed", message="Lean did not answer #print axioms"))
    else:
        bad = sorted(set(axioms) - ALLOWED_AXIOMS)
        if bad:
            v.reasons.append(Reason(code="axioms", message=f"uses non-standard axioms: {', '.join(bad)}"))
        if "sorryAx" in axioms and not any(r.code == "sorry" for r in v.reasons):
            v.reasons.append(Reason(code="sorry", message="depends on sorryAx"))
    ty = _query_reply(check, module.check_line)
    v.elaborated_type = ty[0].text.strip() if ty else None
    if v.elaborated_type is None:
        v.reasons.append(Reason(code="type_unconfirmed", message="Lean did not answer #check"))
    elif require_lock and c.kind == "theorem":
        if c.locked_type is None:
            v.reasons.append(Reason(code="no_lock", message="no locked statement type to compare with"))
        elif v.elaborated_type != c.locked_type.strip():
            v.reasons.append(
                Reason(code="statement_changed", message="the elaborated statement differs from the locked one")
            )
    v.admitted = not v.reasons
    return v


def screen_candidate(c: Candidate) -> list[Reason]:
    """Rule 1 on what the candidate itself brings (the prelude is already admitted)."""
    own = c.aux + "\n" + (c.statement if c.kind == "definition" else c.proof)
    reasons = prescreen(own, protected_names=statement_names(c.statement) if c.kind == "theorem" else None)
    if c.kind == "theorem":
        reasons += prescreen(c.statement)
    if not c.name:
        reasons.append(Reason(code="malformed", message="no declaration name found in the statement"))
    return reasons


def _check(oracle: Oracle, module: Module) -> LeanCheck:
    if module.context_lines:
        return oracle.check(module.text, context_lines=module.context_lines)
    return oracle.check(module.text)


def admit(c: Candidate, oracle: Oracle) -> Verdict:
    """Decide admission of ``c``: pre-screen, then one Lean run, then :func:`judge`."""
    module = build_module(c)
    reasons = screen_candidate(c)
    if reasons:
        return Verdict(admitted=False, reasons=reasons, module=module.text)
    return judge(c, module, _check(oracle, module))


class StatementCheck(BaseModel):
    elaborates: bool
    elaborated_type: str | None = None
    reasons: list[Reason] = Field(default_factory=list)
    module: str = ""
    messages: list[LeanMessage] = Field(default_factory=list)
    elapsed_s: float = 0.0


def check_statement(c: Candidate, oracle: Oracle) -> StatementCheck:
    """Does a drafted theorem statement elaborate (with ``sorry`` as its proof)? Records its elaborated
    type, which becomes the lock that every later proof is compared with."""
    module = build_module(c, sorry_proof=True)
    reasons = prescreen(c.statement)
    if not c.name:
        reasons.append(Reason(code="malformed", message="no `theorem NAME` found in the drafted statement"))
    if reasons:
        return StatementCheck(elaborates=False, reasons=reasons, module=module.text)
    check = _check(oracle, module)
    out = StatementCheck(elaborates=False, module=module.text, messages=check.messages, elapsed_s=check.elapsed_s)
    if check.failure is not None:
        out.reasons.append(Reason(code="lean_failure", message=check.failure))
        return out
    out.reasons += [Reason(code="compile_error", message=f"line {m.line}: {m.text}", line=m.line)
                    for m in check.errors]
    ty = _query_reply(check, module.check_line)
    out.elaborated_type = ty[0].text.strip() if ty else None
    if out.elaborated_type is None:
        out.reasons.append(Reason(code="type_unconfirmed", message="Lean did not answer #check"))
    out.elaborates = not out.reasons
    return out


def file_declarations(text: str) -> list[str]:
    """Fully qualified names of the theorems and definitions a Lean file declares (namespace-aware)."""
    toks = lean_tokens(text)
    stack: list[str | None] = []
    names: list[str] = []
    for k, t in enumerate(toks):
        nxt = toks[k + 1].text if k + 1 < len(toks) else ""
        if t.text == "namespace" and nxt:
            stack.append(nxt)
        elif t.text == "section":
            stack.append(None)
        elif t.text == "end" and stack:
            stack.pop()
        elif t.text in DECL_KEYWORDS - {"example", "instance"} and nxt:
            prefix = ".".join(s for s in stack if s)
            names.append(f"{prefix}.{nxt}" if prefix else nxt)
    return names


def check_file(text: str, oracle: Oracle, *, header: str) -> Verdict:
    """The gate's rules 1-4 on a whole Lean file (``autoform check``): the file's imports must be the
    configured header; every declaration's axioms are queried. (Rule 5 needs a locked statement, which a
    bare file does not have.)"""
    lines = text.splitlines()
    imports = [ln.strip() for ln in lines if ln.strip().startswith("import ")]
    body = "\n".join(ln for ln in lines if not ln.strip().startswith("import "))
    wanted = [ln.strip() for ln in header.splitlines() if ln.strip()]
    v = Verdict(admitted=False, module=text)
    if sorted(imports) != sorted(wanted) and imports:
        v.reasons.append(Reason(code="header", message=f"the file imports {imports}, but the oracle's header is "
                                f"{wanted}; set [lean] header in autoform.toml to check it"))
        return v
    v.reasons += prescreen(body)
    names = file_declarations(body)
    if not names:
        v.reasons.append(Reason(code="malformed", message="the file declares no theorem or definition"))
    if v.reasons:
        return v
    queries = "".join(f"\n#print axioms {n}" for n in names)
    module_text = body.rstrip("\n") + "\n" + queries + "\n"
    first_query = body.rstrip("\n").count("\n") + 3
    check = oracle.check(module_text)
    v.messages, v.elapsed_s, v.toolchain = check.messages, check.elapsed_s, check.toolchain
    if check.failure is not None:
        v.reasons.append(Reason(code="lean_failure", message=check.failure))
        return v
    for m in check.errors:
        v.reasons.append(Reason(code="compile_error", message=f"line {m.line}: {m.text}", line=m.line))
    if _reports_sorry(check):
        v.reasons.append(Reason(code="sorry", message="Lean reports a sorry"))
    all_axioms: set[str] = set()
    for k, name in enumerate(names):
        reply = _query_reply(check, first_query + k)
        axioms = parse_axioms(reply[0].text) if reply else None
        if axioms is None:
            v.reasons.append(Reason(code="axioms_unconfirmed", message=f"Lean did not answer #print axioms {name}"))
            continue
        all_axioms |= set(axioms)
        bad = sorted(set(axioms) - ALLOWED_AXIOMS)
        if bad:
            v.reasons.append(Reason(code="axioms", message=f"{name} uses non-standard axioms: {', '.join(bad)}"))
    v.axioms = sorted(all_axioms)
    v.admitted = not v.reasons
    return v


def admit_stated(c: Candidate, oracle: Oracle) -> Verdict:
    """Admit a theorem the book does not prove as *stated*: the locked statement with ``sorry`` as its proof,
    for the separate ``AtlasStated`` library. Lean must confirm that it elaborates with no error, that the only
    sorry is that proof, that no axiom beyond the standard three and ``sorryAx`` is used, and that the
    elaborated type is the locked one."""
    module = build_module(c, sorry_proof=True)
    reasons = prescreen(c.statement) + prescreen(c.aux)
    if reasons:
        return Verdict(admitted=False, reasons=reasons, module=module.text)
    check = _check(oracle, module)
    v = judge(c, module, check)
    proof_line = module.body_end - 1  # the `sorry` line
    expected = {"sorry", "axioms"}
    other = [r for r in v.reasons if r.code not in expected]
    if v.axioms is not None and set(v.axioms) - ALLOWED_AXIOMS - {"sorryAx"}:
        other.append(Reason(code="axioms", message=f"uses non-standard axioms: {', '.join(sorted(v.axioms))}"))
    stray = [s for s in check.sorries if s.line is not None and s.line != proof_line]
    if stray:
        other.append(Reason(code="sorry", message=f"a sorry outside the proof, line {stray[0].line}"))
    v.reasons = other
    v.admitted = check.failure is None and not other
    return v
