"""The admission gate: the only code that can let a declaration into the Atlas.

A candidate is admitted only when a real Lean run positively confirms every rule of the design:

1. the pre-screen (:mod:`autoform.lean.prescreen`), an allow-list read on the candidate's own text with
   comments and strings understood, admits only declarations, tactics, listed attributes and options: nothing
   that runs code while Lean elaborates, no ``#`` command, no ``sorry``/``axiom``/``native_decide``, no
   redefinition of a name the locked statement uses;
2. the module compiles with no error message;
3. Lean reports no ``sorry`` (no sorries, no "declaration uses 'sorry'" warning, no ``sorryAx``);
4. ``#print axioms`` of the declaration answered, listing only ``propext``, ``Classical.choice`` and
   ``Quot.sound``;
5. the statement is the locked one: the prover supplies only the proof, which is spliced into the locked
   statement text, and the complete elaborated type (``#check`` with ``pp.all``, no elision) equals the one
   recorded when the statement was locked; every module is checked with ``autoImplicit`` off.

The gate's queries (rules 4 and 5) are not part of the candidate's text: the oracle runs each as a command of
its own on the environment the candidate produced and returns that command's messages only, so nothing the
candidate logs can be taken for Lean's answer; an answer must be the only message and name the declaration.

Anything Lean did not positively confirm (a timeout, a crash, a missing reply to a query) is a rejection.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from pydantic import BaseModel, Field

from autoform.lean.oracle import LeanCheck, LeanMessage, Oracle
from autoform.lean.prescreen import (
    _IDENT_CHAR,
    DECL_KEYWORDS,
    Reason,
    clean_whitespace,
    indentation_problem,
    lean_tokens,
    prescreen,
    statement_names,
)

__all__ = [
    "Candidate",
    "Module",
    "Reason",
    "StatementCheck",
    "Verdict",
    "admit",
    "admit_stated",
    "build_module",
    "check_file",
    "check_statement",
    "declared_name",
    "declared_names",
    "judge",
    "lean_tokens",
    "normalize_proof",
    "prescreen",
    "rename_declaration",
    "screen_candidate",
    "screen_file",
    "statement_names",
]

ALLOWED_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})


_DECL_NAME = re.compile(
    r"^\s*(?:@\[[^\]]*\]\s*)?(?:(?:private|protected|noncomputable|nonrec)\s+)*"
    r"(?:theorem|lemma|def|abbrev|instance|structure|class|inductive)\s+([^\s:({\[]+)",
    re.MULTILINE,
)


def declared_name(statement: str) -> str | None:
    m = _DECL_NAME.search(statement)
    return m.group(1) if m else None


def declared_names(text: str) -> list[str]:
    """The names ``text`` declares, in order, each once (``instance`` and ``example`` without a name aside)."""
    return list(dict.fromkeys(m.group(1) for m in _DECL_NAME.finditer(text)))


def rename_declaration(statement: str, new: str) -> str:
    """``statement`` with its declaration's own name replaced by ``new`` (not the first substring that
    matches the old name)."""
    m = _DECL_NAME.search(statement)
    if m is None:
        raise ValueError("no declaration name found in the statement")
    return statement[: m.start(1)] + new + statement[m.end(1) :]


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


#: every checked module starts with these (a misspelled identifier in a statement is an error, never a variable)
STRICT_OPTIONS = "set_option autoImplicit false\nset_option relaxedAutoImplicit false\n"
#: the type query prints the whole elaborated type: every implicit argument, universe and proof, no elision
TYPE_QUERY_PREFIX = (
    "set_option pp.all true in set_option pp.maxSteps 100000000 in "
    "set_option pp.deepTerms true in set_option pp.proofs true in "
)
ELIDED = "⋯"


def axioms_query(name: str) -> str:
    return f"#print axioms {name}"


def type_query(name: str) -> str:
    return f"{TYPE_QUERY_PREFIX}#check @{name}"


def proof_format_problem(proof: str) -> str | None:
    """Why a proof's whitespace cannot be spliced as it is (tabs mixed with spaces), or None."""
    return indentation_problem(proof)


def normalize_proof(proof: str) -> str:
    """The tactic block of a proof reply: strips a leading ``:=`` and ``by``; no-break spaces and tabs in the
    indentation are normalised; the block is dedented as a whole, so continuation lines keep their place
    relative to the line they continue. Tactics written on the line of ``by`` are placed at the column of the
    lines after them."""
    p = clean_whitespace(proof).strip("\n")
    lines = p.splitlines() or [""]
    first = lines[0]
    stripped, cut = first.lstrip(), False
    if stripped.startswith(":="):
        stripped, cut = stripped[2:].lstrip(), True
    if stripped.startswith("by") and (len(stripped) == 2 or not _IDENT_CHAR.match(stripped[2])):
        stripped, cut = stripped[2:].lstrip(), True
    if not cut:
        return textwrap.dedent("\n".join(lines)).strip("\n")
    rest = textwrap.dedent("\n".join(lines[1:])).strip("\n")
    return "\n".join(x for x in (stripped.strip(), rest) if x.strip())


def _indent(text: str, n: int = 2) -> str:
    return "\n".join((" " * n + ln) if ln.strip() else ln for ln in text.splitlines())


@dataclass
class Module:
    """The Lean text checked for a candidate, and the gate's own queries, which the oracle runs as separate
    commands on the environment that text produced (so nothing in the text can write their answers)."""

    text: str
    queries: list[str]
    body_start: int
    body_end: int
    context_lines: int = 0  # leading lines shared by many checks (the prelude): see Oracle.check
    proof_line: int = 0  # the line of the proof's first tactic (the `sorry` of a statement check)


def build_module(c: Candidate, *, sorry_proof: bool = False) -> Module:
    """The Lean text checked for a candidate: the strict options, namespace, the trusted prelude (admitted
    dependencies), the candidate's auxiliary lemmas, the locked statement with the proof spliced in. The
    queries (``#print axioms``, the type with ``pp.all``) are not part of the text."""
    # the prelude is a block of its own (namespace ... end): the same text for every candidate of a unit, and
    # for many units, so an oracle may elaborate it once and check candidates on top of its environment; the
    # options are set again after it, since a REPL command does not inherit the options of the one before
    context = ""
    if c.prelude.strip():
        prelude = c.prelude.strip("\n") + "\n"
        if c.namespace:
            prelude = f"namespace {c.namespace}\n{prelude}end {c.namespace}\n"
        context = STRICT_OPTIONS + prelude
    head = context + STRICT_OPTIONS + (f"namespace {c.namespace}\n" if c.namespace else "")
    body: list[str] = []
    if c.aux.strip():
        body.append(c.aux.strip("\n") + "\n")
    proof_line = 0
    if c.kind == "definition":
        body.append(c.statement.strip("\n") + "\n")
    else:
        proof = "sorry" if sorry_proof else normalize_proof(c.proof)
        before = head.count("\n") + "".join(body).count("\n") + c.statement.rstrip().count("\n") + 1
        proof_line = before + 1
        body.append(f"{c.statement.rstrip()} := by\n{_indent(proof)}\n")
    body_text = "".join(body)
    tail = f"end {c.namespace}\n" if c.namespace else ""
    text = head + body_text + tail
    body_start = head.count("\n") + 1
    queries = [axioms_query(c.full_name), type_query(c.full_name)]
    return Module(text, queries, body_start, body_start + body_text.count("\n"), context.count("\n"), proof_line)


_AXIOMS_RE = re.compile(r"^\s*['`](?P<name>.+?)['`] depends on axioms:\s*\[(?P<list>[^\]]*)\]\s*$", re.S)
_NO_AXIOMS_RE = re.compile(r"^\s*['`](?P<name>.+?)['`] does not depend on any axioms\s*$", re.S)
#: "declaration uses 'sorry'" (older Lean) or "declaration uses `sorry`" (newer)
_SORRY_WARNING = re.compile(r"declaration uses ['`]sorry['`]")


def _reports_sorry(check: LeanCheck) -> bool:
    return bool(check.sorries) or any(_SORRY_WARNING.search(m.text) for m in check.messages)


def parse_axioms_answer(text: str) -> tuple[str, list[str]] | None:
    """``(name, axioms)`` from Lean's answer to ``#print axioms``; None when the text is not such an answer."""
    m = _AXIOMS_RE.match(text)
    if m:
        return m.group("name"), [a.strip() for a in m.group("list").split(",") if a.strip()]
    m = _NO_AXIOMS_RE.match(text)
    if m:
        return m.group("name"), []
    return None


def parse_axioms(text: str) -> list[str] | None:
    parsed = parse_axioms_answer(text)
    return None if parsed is None else parsed[1]


def _sole_answer(check: LeanCheck, k: int) -> tuple[LeanMessage | None, str]:
    """The one informational message that answers query ``k``; else None and why there is none."""
    if check.answers is None or k >= len(check.answers):
        return None, "Lean gave no answer"
    msgs = check.answers[k]
    errors = [m for m in msgs if m.severity == "error"]
    if errors:
        return None, f"Lean answered with an error: {errors[0].text[:200]}"
    if len(msgs) != 1 or msgs[0].severity != "info":
        return None, f"expected exactly one answer, Lean gave {len(msgs)} message(s)"
    return msgs[0], ""


def confirmed_axioms(check: LeanCheck, k: int, name: str) -> tuple[list[str] | None, str]:
    """The axioms Lean listed for ``name`` in answer ``k``; None with the reason when it did not answer so."""
    msg, why = _sole_answer(check, k)
    if msg is None:
        return None, why
    parsed = parse_axioms_answer(msg.text)
    if parsed is None:
        return None, f"not an answer to #print axioms: {msg.text[:120]!r}"
    if parsed[0] != name:
        return None, f"the answer names `{parsed[0]}`, not `{name}`"
    return parsed[1], ""


def confirmed_type(check: LeanCheck, k: int, name: str) -> tuple[str | None, str]:
    """The complete elaborated type of ``name`` in answer ``k`` (``@name : T``); None with the reason."""
    msg, why = _sole_answer(check, k)
    if msg is None:
        return None, why
    text = msg.text.strip()
    if not re.match(re.escape(f"@{name}") + r"(\.\{[^}]*\})?\s+:", text):
        return None, f"the answer is not the type of `{name}`: {text[:120]!r}"
    if ELIDED in text:
        return None, "Lean elided part of the type (⋯), so it cannot be compared"
    return text, ""


def _lean_reasons(check: LeanCheck) -> list[Reason]:
    reasons = [Reason(code="compile_error", message=f"line {m.line}: {m.text}", line=m.line) for m in check.errors]
    if _reports_sorry(check):
        reasons.append(Reason(code="sorry", message="Lean reports a sorry"))
    return reasons


def judge(c: Candidate, module: Module, check: LeanCheck, *, require_lock: bool = True) -> Verdict:
    """Apply rules 2-5 to what Lean said about ``module`` and answered to its queries. Positive confirmation
    only: an answer must come from the query's own command, be the only message there, and name the
    candidate's declaration."""
    v = Verdict(
        admitted=False,
        module=module.text,
        messages=check.messages,
        elapsed_s=check.elapsed_s,
        toolchain=check.toolchain,
    )
    if check.failure is not None:
        v.reasons.append(Reason(code="lean_failure", message=check.failure))
        return v
    v.reasons += _lean_reasons(check)
    axioms, why = confirmed_axioms(check, 0, c.full_name)
    v.axioms = axioms
    if axioms is None:
        v.reasons.append(Reason(code="axioms_unconfirmed", message=f"Lean did not confirm the axioms: {why}"))
    else:
        bad = sorted(set(axioms) - ALLOWED_AXIOMS)
        if bad:
            v.reasons.append(Reason(code="axioms", message=f"uses non-standard axioms: {', '.join(bad)}"))
        if "sorryAx" in axioms and not any(r.code == "sorry" for r in v.reasons):
            v.reasons.append(Reason(code="sorry", message="depends on sorryAx"))
    v.elaborated_type, why = confirmed_type(check, 1, c.full_name)
    if v.elaborated_type is None:
        v.reasons.append(Reason(code="type_unconfirmed", message=f"Lean did not confirm the type: {why}"))
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
    if c.kind == "definition":
        return prescreen(c.aux + "\n" + c.statement, role="helper") + (
            [] if c.name else [Reason(code="malformed", message="no declaration name found in the definition")]
        )
    protected = statement_names(c.statement)
    reasons = prescreen(c.aux, role="helper", protected_names=protected)
    reasons += prescreen(c.proof, role="proof", protected_names=protected)
    reasons += prescreen(c.statement, role="statement")
    problem = proof_format_problem(c.proof)
    if problem:
        reasons.append(Reason(code="format", message=f"the proof's indentation is ambiguous: {problem}"))
    if not c.name:
        reasons.append(Reason(code="malformed", message="no declaration name found in the statement"))
    return reasons


def _check(oracle: Oracle, module: Module, queries: list[str]) -> LeanCheck:
    if module.context_lines:
        return oracle.check(module.text, context_lines=module.context_lines, queries=queries)
    return oracle.check(module.text, queries=queries)


def admit(c: Candidate, oracle: Oracle) -> Verdict:
    """Decide admission of ``c``: pre-screen, then one Lean run with the gate's queries, then :func:`judge`."""
    module = build_module(c)
    reasons = screen_candidate(c)
    if reasons:
        return Verdict(admitted=False, reasons=reasons, module=module.text)
    return judge(c, module, _check(oracle, module, module.queries))


class StatementCheck(BaseModel):
    elaborates: bool
    elaborated_type: str | None = None
    reasons: list[Reason] = Field(default_factory=list)
    module: str = ""
    messages: list[LeanMessage] = Field(default_factory=list)
    elapsed_s: float = 0.0


def check_statement(c: Candidate, oracle: Oracle) -> StatementCheck:
    """Does a drafted theorem statement elaborate (with ``sorry`` as its proof)? Records its complete
    elaborated type, which becomes the lock that every later proof is compared with."""
    module = build_module(c, sorry_proof=True)
    reasons = prescreen(c.statement, role="statement")
    if not c.name:
        reasons.append(Reason(code="malformed", message="no `theorem NAME` found in the drafted statement"))
    if reasons:
        return StatementCheck(elaborates=False, reasons=reasons, module=module.text)
    # the same queries as admission as stated, so that its check of this very text is answered from the cache
    check = _check(oracle, module, module.queries)
    out = StatementCheck(elaborates=False, module=module.text, messages=check.messages, elapsed_s=check.elapsed_s)
    if check.failure is not None:
        out.reasons.append(Reason(code="lean_failure", message=check.failure))
        return out
    out.reasons += [Reason(code="compile_error", message=f"line {m.line}: {m.text}", line=m.line) for m in check.errors]
    out.elaborated_type, why = confirmed_type(check, 1, c.full_name)
    if out.elaborated_type is None:
        out.reasons.append(Reason(code="type_unconfirmed", message=f"Lean did not confirm the type: {why}"))
    out.elaborates = not out.reasons
    return out


def file_declarations(text: str) -> list[str]:
    """Fully qualified names of the theorems and definitions a Lean file declares (namespace-aware)."""
    toks = lean_tokens(text, punctuation=True)
    stack: list[str | None] = []
    names: list[str] = []
    for k, t in enumerate(toks):
        if t.kind != "ident":
            continue
        nxt = toks[k + 1].text if k + 1 < len(toks) and toks[k + 1].kind == "ident" else ""
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


def _split_imports(text: str) -> tuple[list[str], str]:
    lines = text.splitlines()
    imports = [ln.strip() for ln in lines if ln.strip().startswith("import ")]
    body = "\n".join("" if ln.strip().startswith("import ") else ln for ln in lines)
    return imports, body


def screen_file(text: str, *, header: str) -> Verdict | None:
    """Rule 1 on a whole Lean file (``autoform check``), without Lean: the rejection, or None when the file
    passes the pre-screen and only Lean can judge it further."""
    imports, body = _split_imports(text)
    wanted = [ln.strip() for ln in header.splitlines() if ln.strip()]
    v = Verdict(admitted=False, module=text)
    if imports and sorted(imports) != sorted(wanted):
        v.reasons.append(
            Reason(
                code="header",
                message=f"the file imports {imports}, but the oracle's header is "
                f"{wanted}; set [lean] header in autoform.toml to check it",
            )
        )
        return v
    v.reasons += prescreen(body, role="helper")
    if not file_declarations(body):
        v.reasons.append(Reason(code="malformed", message="the file declares no theorem or definition"))
    return v if v.reasons else None


def check_file(text: str, oracle: Oracle, *, header: str) -> Verdict:
    """The gate's rules 1-4 on a whole Lean file (``autoform check``): the file's imports must be the
    configured header; every declaration's axioms are queried, each by a command of its own on the file's
    environment. (Rule 5 needs a locked statement, which a bare file does not have.)"""
    rejected = screen_file(text, header=header)
    if rejected is not None:
        return rejected
    _, body = _split_imports(text)
    names = file_declarations(body)
    v = Verdict(admitted=False, module=text)
    check = oracle.check(STRICT_OPTIONS + body, queries=[axioms_query(n) for n in names])
    # messages at the file's own lines (its import lines are kept, blank)
    check = check.shifted(STRICT_OPTIONS.count("\n"))
    v.messages, v.elapsed_s, v.toolchain = check.messages, check.elapsed_s, check.toolchain
    if check.failure is not None:
        v.reasons.append(Reason(code="lean_failure", message=check.failure))
        return v
    v.reasons += _lean_reasons(check)
    all_axioms: set[str] = set()
    for k, name in enumerate(names):
        axioms, why = confirmed_axioms(check, k, name)
        if axioms is None:
            v.reasons.append(
                Reason(code="axioms_unconfirmed", message=f"{name}: Lean did not confirm the axioms: {why}")
            )
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
    reasons = prescreen(c.statement, role="statement") + prescreen(c.aux, role="helper")
    if reasons:
        return Verdict(admitted=False, reasons=reasons, module=module.text)
    check = _check(oracle, module, module.queries)
    v = judge(c, module, check)
    expected = {"sorry", "axioms"}
    other = [r for r in v.reasons if r.code not in expected]
    if v.axioms is not None and set(v.axioms) - ALLOWED_AXIOMS - {"sorryAx"}:
        other.append(Reason(code="axioms", message=f"uses non-standard axioms: {', '.join(sorted(v.axioms))}"))
    stray = [s for s in check.sorries if s.line is not None and s.line != module.proof_line]
    if stray:
        other.append(Reason(code="sorry", message=f"a sorry outside the proof, line {stray[0].line}"))
    v.reasons = other
    v.admitted = check.failure is None and not other
    return v
