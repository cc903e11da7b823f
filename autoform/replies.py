"""Reading a model's reply the way a careful reader would: the one module every agent parses replies with.

A reply is first split into its *reasoning* (``<think>…</think>``, a lone leading ``</think>`` as vLLM serves
R1-distilled models, Kimi's ``◁think▷``, or the ``reasoning_content`` field the client keeps apart) and its
*final answer*; only the final answer is read. In it:

- :func:`lean_blocks` finds the fenced Lean blocks that are code the model proposes, leaving out quoted Lean
  errors and goal states (``⊢``), ``#check``/``#eval`` lines and earlier attempts quoted for contrast;
- :func:`parse_proof` turns the answer of a prover or gap-closer (a tactic block, a restated theorem, or a
  whole file with ``import Mathlib``/``open …`` as DeepSeek-Prover-V2, Kimina-Prover and Goedel-Prover-V2
  write it) into the tactic proof of the *locked* statement plus helper declarations; a restated theorem
  whose statement differs from the locked one is refused (:class:`MalformedReply` with the reason);
- :func:`parse_statements` cleans the drafter's statement or definition blocks (headers, ``namespace``
  wrappers, ``#`` commands, helper ``def``\\ s, proofs, comments);
- :func:`parse_json` reads the reader's and the critic's JSON tolerantly in form (no fence, prose around it,
  trailing commas, comments, raw newlines, single-backslash LaTeX) and strictly in meaning
  (:func:`read_fields` refuses a wrong type or a renamed key instead of defaulting it).

Everything raises :class:`MalformedReply` with what was wrong, which the agents' format retry sends back.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import json_repair

from autoform.lean.prescreen import comment_end


class MalformedReply(Exception):
    """The model's reply lacks what the prompt asked for (a Lean block, a field) or was truncated."""


class Truncated(MalformedReply):
    """The reply was cut off (``finish_reason`` ``length``, or visibly cut); it is never used."""


# ----------------------------------------------------------------------------------------- whitespace
_SPACES = re.compile(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_ZERO_WIDTH = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff]")


def clean_whitespace(text: str) -> str:
    """LF line ends, no-break and other Unicode spaces as spaces, zero-width characters dropped, tabs as two
    spaces (Lean refuses tabs), trailing spaces gone."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _ZERO_WIDTH.sub("", _SPACES.sub(" ", text)).replace("\t", "  ")
    return "\n".join(line.rstrip() for line in text.split("\n"))


# ------------------------------------------------------------------------------------------ reasoning
_OPEN = r"<(?:think|thinking|reasoning|thought)>|◁think▷"
_CLOSE = r"</(?:think|thinking|reasoning|thought)>|◁/think▷"
_PAIR = re.compile(rf"(?:{_OPEN})(.*?)(?:{_CLOSE})", re.S | re.I)
_LONE_CLOSE = re.compile(_CLOSE, re.I)
_LONE_OPEN = re.compile(_OPEN, re.I)


@dataclass
class Answer:
    """A reply split into the model's reasoning and its final answer."""

    reasoning: str
    text: str
    #: a reasoning block was opened and never closed: the reply stopped while thinking
    unclosed_reasoning: bool = False


def split_reasoning(text: str, reasoning: str | None = None) -> Answer:
    """Separate reasoning from the final answer: closed ``<think>`` blocks (also ``<thinking>``,
    ``<reasoning>``, Kimi's ``◁think▷``) anywhere; a lone closing tag (vLLM strips the opening ``<think>`` of
    R1-distills): everything before it; an opening tag never closed: everything after it. ``reasoning`` is
    the endpoint's separate ``reasoning_content``, kept as reasoning."""
    parts = [reasoning.strip()] if reasoning and reasoning.strip() else []
    parts += [m.group(1).strip() for m in _PAIR.finditer(text)]
    rest = _PAIR.sub("\n", text)
    closes = list(_LONE_CLOSE.finditer(rest))
    if closes:
        last = closes[-1]
        parts.append(_LONE_OPEN.sub("", rest[: last.start()]).strip())
        rest = rest[last.end() :]
    unclosed = False
    m = _LONE_OPEN.search(rest)
    if m:
        parts.append(rest[m.end() :].strip())
        rest, unclosed = rest[: m.start()], True
    return Answer(reasoning="\n\n".join(p for p in parts if p), text=rest.strip(), unclosed_reasoning=unclosed)


def answer_text(text: str) -> str:
    """The final answer of a reply (its reasoning left out)."""
    return split_reasoning(text).text


def looks_cut(text: str) -> str | None:
    """Why a reply whose ``finish_reason`` is missing (some proxies send ``null``) is visibly cut off, or None:
    it stops while thinking, inside a code block, or has reasoning and no answer."""
    ans = split_reasoning(text)
    if ans.unclosed_reasoning:
        return "it stops inside its reasoning block"
    if not ans.text and ans.reasoning:
        return "it has reasoning and no answer"
    if any(not b.closed for b in fenced_blocks(ans.text)):
        return "it ends inside an unclosed code block"
    return None


# ---------------------------------------------------------------------------------------- code blocks
@dataclass
class Block:
    lang: str
    body: str
    #: the prose between the previous block (or the start) and this block
    before: str
    closed: bool = True


_FENCE = re.compile(r"^[ \t>]*(`{3,}|~{3,})[ \t]*([^\s`]*)[^`\n]*$")


def fenced_blocks(text: str) -> list[Block]:
    """Every fenced block (``` or ~~~, any info string), in order; an unclosed last block has closed=False."""
    out: list[Block] = []
    lines = text.split("\n")
    prose: list[str] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            prose.append(lines[i])
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).strip().lower()
        indent = len(lines[i]) - len(lines[i].lstrip(" >"))
        body: list[str] = []
        j, closed = i + 1, False
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                closed = True
                break
            if lines[j].rstrip().endswith(fence) and not stripped.startswith(fence[0] * 3):
                body.append(lines[j].rstrip()[: -len(fence)])  # ```...code```: the fence closes on the line
                closed = True
                break
            body.append(lines[j][indent:] if lines[j][:indent].strip(" >") == "" else lines[j])
            j += 1
        out.append(Block(lang=lang, body="\n".join(body).strip("\n"), before="\n".join(prose), closed=closed))
        prose = []
        i = j + 1
    return out


LEAN_LANGS = frozenset({"lean", "lean4", ""})

_GOAL_LINE = re.compile(r"^\s*(⊢|case\s+\S+\s*$)")
_ERROR_START = re.compile(
    r"^\s*(?:error|warning|info)\b|^\s*\S+\.lean:\d+:\d+|^\s*\d+:\d+:\s*(?:error|warning)|^\s*unsolved goals\b"
    r"|^\s*(?:unknown (?:identifier|constant)|type mismatch|linarith failed|omega could not)\b",
    re.I,
)
_HASH_CMD = re.compile(r"^\s*#[a-zA-Z_]")
_NEGATIVE = re.compile(
    r"\b(fail(?:s|ed|ing)?|wrong|incorrect|broken|buggy|original|previous(?:ly)?|old|earlier|doesn'?t work|"
    r"does not work|did(?:n'?t| not) work|won'?t work|rejected|instead of|mistaken?)\b|❌|✗",
    re.I,
)
_POSITIVE = re.compile(
    r"\b(fix(?:e[sd])?|correct(?:ed)?|repair(?:ed)?|revised|updated|final|complete|full|working|solution|"
    r"here(?:'s| is| are)|new|improved|proof:|instead[,:])\b|✅",
    re.I,
)


def _is_goal_or_error(body: str) -> bool:
    lines = [ln for ln in body.split("\n") if ln.strip()]
    if not lines:
        return False
    return bool(_ERROR_START.match(lines[0])) or any(_GOAL_LINE.match(ln) for ln in lines)


def _quoted_for_contrast(before: str) -> bool:
    """The prose just before a block presents it as a failing or earlier attempt (not as the answer)."""
    last = [ln.strip() for ln in before.strip().split("\n") if ln.strip()]
    if not last:
        return False
    lead = last[-1]
    return lead.endswith((":", "：")) and bool(_NEGATIVE.search(lead)) and not _POSITIVE.search(lead)


def _drop_hash_commands(body: str) -> str:
    return "\n".join(ln for ln in body.split("\n") if not _HASH_CMD.match(ln)).strip("\n")


def lean_blocks(text: str, *, exclude: Iterable[str] = ()) -> list[str]:
    """The Lean code blocks a careful reader takes from a reply's final answer, in order: ```lean, ```lean4
    and unlabelled blocks; not quoted errors or goal states, not ``#check``/``#eval`` lines, not blocks the
    prose presents as a failing or earlier attempt, not blocks equal to one of ``exclude`` (e.g. the failed
    proof the gap-closer was shown). Raises MalformedReply when the answer ends inside an unclosed block."""
    ans = split_reasoning(clean_whitespace(text))
    blocks = fenced_blocks(ans.text)
    if blocks and not blocks[-1].closed:
        raise Truncated("the reply ends inside an unclosed code block (truncated?)")
    skip = {_squash(_strip_proof_prefix(e)) for e in exclude if e.strip()}
    code, quoted = [], []
    for b in blocks:
        if b.lang not in LEAN_LANGS or _is_goal_or_error(b.body):
            continue
        body = _drop_hash_commands(b.body)
        if not body.strip() or _squash(_strip_proof_prefix(body)) in skip:
            continue
        (quoted if _quoted_for_contrast(b.before) else code).append(body)
    return code or quoted  # when every block is introduced as an earlier attempt, they are all there is


def no_lean_block(text: str) -> MalformedReply:
    ans = split_reasoning(clean_whitespace(text))
    if ans.unclosed_reasoning:
        return Truncated("the reply stops inside its reasoning block (truncated?): no final answer")
    if not ans.text and ans.reasoning:
        return MalformedReply("the reply has reasoning but no final answer after it")
    if any(b.lang in LEAN_LANGS for b in fenced_blocks(ans.text)):
        return MalformedReply("the reply's ```lean blocks hold only Lean messages, goals or #check lines, not code")
    return MalformedReply("the reply has no ```lean code block")


# ------------------------------------------------------------------------------------- Lean commands
_COMMENT_OR_STRING = re.compile(r"--[^\n]*|/-.*?-/|\"(?:\\.|[^\"\\])*\"", re.S)


def strip_comments(code: str) -> str:
    """Lean code without comments (``--`` and nested ``/- -/``); strings are kept."""
    out, i, n = [], 0, len(code)
    while i < n:
        if (end := comment_end(code, i)) is not None:
            i = end
        elif code[i] == '"':
            j = i + 1
            while j < n and code[j] != '"':
                j += 2 if code[j] == "\\" else 1
            out.append(code[i : j + 1])
            i = j + 1
        else:
            out.append(code[i])
            i += 1
    return "".join(out)


def top_level_assign(code: str) -> int | None:
    """Index of the first ``:=`` outside brackets, comments and strings (where a proof or body starts)."""
    depth, i, n = 0, 0, len(code)
    while i < n:
        c = code[i]
        if (end := comment_end(code, i)) is not None:
            i = end
            continue
        if c == '"':
            i += 1
            while i < n and code[i] != '"':
                i += 2 if code[i] == "\\" else 1
            i += 1
            continue
        if c in "([{⟨⦃":
            depth += 1
        elif c in ")]}⟩⦄":
            depth -= 1
        elif c == ":" and depth <= 0 and code.startswith(":=", i):
            return i
        i += 1
    return None


_MODIFIERS = ("private", "protected", "noncomputable", "partial", "nonrec", "unsafe", "scoped", "local")
DECL_WORDS = frozenset(
    {"theorem", "lemma", "def", "abbrev", "instance", "structure", "class", "inductive", "example", "axiom", "opaque"}
)
_OTHER_COMMANDS = frozenset(
    {
        "import",
        "open",
        "namespace",
        "end",
        "section",
        "variable",
        "variables",
        "universe",
        "set_option",
        "attribute",
        "mutual",
        "noncomputable",
        "macro",
        "syntax",
        "notation",
        "infix",
        "infixl",
        "infixr",
        "prefix",
        "postfix",
        "elab",
        "deriving",
        "export",
        "initialize",
    }
)
_WORD = re.compile(r"[^\s(\[{:]+")


@dataclass
class Command:
    """One top-level Lean command of a code block."""

    kind: str  # a declaration keyword (theorem, def, ...), another command word (open, import, ...), or "#"
    text: str
    name: str = ""

    @property
    def is_decl(self) -> bool:
        return self.kind in DECL_WORDS


def _head(line: str) -> tuple[str, str]:
    """(command word, declared name) of a line that starts a command, ("", "") otherwise."""
    s = line.strip()
    if s.startswith("#"):
        return "#", ""
    if s.startswith("@["):
        depth = 0
        for k, c in enumerate(s):
            depth += c == "["
            depth -= c == "]"
            if depth == 0 and c == "]":
                s = s[k + 1 :].strip()
                break
        else:
            return "@", ""
        if not s:
            return "@", ""
    words = s.split()
    while words and words[0] in _MODIFIERS:
        words = words[1:]
    if not words:
        return ("noncomputable", "") if s.split() and s.split()[0] == "noncomputable" else ("", "")
    w = words[0]
    if w in DECL_WORDS:
        m = _WORD.match(" ".join(words[1:]))
        name = m.group(0) if m and w not in ("example",) else ""
        return w, name
    if w in _OTHER_COMMANDS:
        return w, ""
    return "", ""


def split_commands(code: str) -> tuple[str, list[Command]]:
    """(leading code that is not a command, e.g. a tactic proof; the top-level commands after it). A command
    starts on a line at the block's base indentation with a command word, an attribute or a doc comment;
    ordinary comments between commands are dropped, a doc comment stays with its declaration."""
    return _CommandSplitter(textwrap.dedent(code.strip("\n")).split("\n")).run()


class _CommandSplitter:
    """One pass over a block's lines, gathering the lead and the commands."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.lead: list[str] = []
        self.cmds: list[Command] = []
        self.cur: list[str] | None = None  # the lines of the command being read
        self.kind = self.name = ""
        self.pending_doc: list[str] = []  # a doc comment or attribute waiting for what follows it

    def run(self) -> tuple[str, list[Command]]:
        i = 0
        while i < len(self.lines):
            i = self._line(i)
        self._close()
        return "\n".join(self.lead).strip("\n"), self.cmds

    def _line(self, i: int) -> int:
        """Reads the line at ``i`` (with what belongs to it) and returns the index of the next unread line."""
        line = self.lines[i]
        at_base = line[:1] not in (" ", "")
        if at_base and line.startswith("/-") and not line.startswith("/--"):  # a block comment: skipped
            return self._skip_block_comment(i)
        if at_base and line.startswith("/--"):
            return self._doc_comment(i)
        if at_base and line.startswith("--"):
            return i + 1
        k, nm = _head(line) if at_base else ("", "")
        if k in ("open", "set_option") and self._prefix_of_tactics(i, line):
            k = ""  # `open … in` / `set_option … in` before tactics: part of the tactic proof
        if k == "@":
            self.pending_doc = [*self.pending_doc, line]  # an attribute on its own line: it belongs to what follows
        elif k:
            self._close()
            self.cur, self.kind, self.name = [*self.pending_doc, line], k, nm
            self.pending_doc = []
        elif self.cur is not None:
            self.cur.append(line)
        else:
            self.lead.extend([*self.pending_doc, line])
            self.pending_doc = []
        return i + 1

    def _skip_block_comment(self, i: int) -> int:
        depth = 0
        while i < len(self.lines):
            depth += self.lines[i].count("/-") - self.lines[i].count("-/")
            i += 1
            if depth <= 0:
                break
        return i

    def _doc_comment(self, i: int) -> int:
        doc: list[str] = []
        while i < len(self.lines):
            doc.append(self.lines[i])
            i += 1
            if "-/" in doc[-1]:
                break
        self.pending_doc = doc
        return i

    def _prefix_of_tactics(self, i: int, line: str) -> bool:
        """An ``open … in`` / ``set_option … in`` line that prefixes tactics, not a command."""
        if self.cur is not None or not line.rstrip().endswith(" in"):
            return False
        following = next((x for x in self.lines[i + 1 :] if x.strip()), "")
        tactic_follows = (
            following[:1] not in (" ", "") and not _head(following)[0] and not following.startswith(("/-", "--"))
        )
        return any(x.strip() for x in self.lead) or tactic_follows

    def _close(self) -> None:
        if self.cur is not None:
            self.cmds.append(Command(self.kind, "\n".join(self.cur).rstrip(), self.name))


def _squash(code: str) -> str:
    """Code compared as a reader compares it: no comments, whitespace only where two identifiers meet."""
    s = re.sub(r"\s+", " ", strip_comments(code)).strip()
    return re.sub(r"\s*([^\w\s'.!?₀-₉ᵢ-ᵪ])\s*", r"\1", s)


def _signature(decl: str) -> str:
    """The part of a theorem after its name and before ``:=``, comparable with :func:`_squash`."""
    head = _statement_part(decl)
    m = re.search(r"\b(?:theorem|lemma)\s+[^\s(\[{:]+", head)
    return _squash(head[m.end() :] if m else head)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip("«»")


# ---------------------------------------------------------------------------------------------- proofs
@dataclass
class ProofReply:
    """What a prover's or gap-closer's answer yields: helper declarations and the tactic proof."""

    aux: str
    proof: str
    notes: list[str] = field(default_factory=list)


_BY = re.compile(r"^by(?![\w'!?])")


def _strip_proof_prefix(body: str) -> str:
    """``:= by`` / ``by`` before a tactic block, and comments before ``by``."""
    s = body.strip()
    if s.startswith(":="):
        s = s[2:]
    s2 = strip_comments(s).lstrip() if s.lstrip().startswith(("--", "/-")) else s.lstrip()
    if _BY.match(s2):
        return s2[2:]
    return s


def _tactic_block(proof: str) -> str:
    """A clean tactic block: ``by`` stripped, the first line's own indentation and the rest's common one
    removed (a model often writes ``by simp`` on the first line and the rest indented)."""
    p = proof.strip("\n")
    lines = p.split("\n")
    first = lines[0].strip()
    rest = textwrap.dedent("\n".join(lines[1:])).strip("\n")
    return "\n".join(x for x in (first, rest) if x.strip())


def _body_as_tactics(body: str) -> str:
    """The part of a declaration after ``:=`` as tactics: ``by …`` -> its tactics, a term -> ``exact term``."""
    s = body.lstrip()
    probe = strip_comments(s).lstrip()
    if _BY.match(probe):
        return _tactic_block(probe[2:])
    while s.startswith(("--", "/-")):  # comments before the term
        s = (
            s.split("\n", 1)[1].lstrip()
            if s.startswith("--") and "\n" in s
            else (s[s.find("-/") + 2 :].lstrip() if s.startswith("/-") and "-/" in s else "")
        )
    term = _tactic_block(s)
    lines = term.split("\n")
    return "\n".join([f"exact {lines[0]}", *(("  " + ln if ln.strip() else ln) for ln in lines[1:])])


def _opens(cmds: list[Command], upto: int) -> list[str]:
    """The namespaces opened for command ``upto`` of a block: by the ``open`` commands before it, and by an
    ``open … in`` just before it."""
    out = []
    for k, c in enumerate(cmds[:upto]):
        words = c.text.split()
        if c.kind != "open" or len(words) < 2:
            continue
        if words[-1] == "in":
            if k == upto - 1:
                out.extend(words[1:-1])
        else:
            out.extend(words[1:])
    return list(dict.fromkeys(out))


def _with_opens(text: str, opens: list[str]) -> str:
    """``open A B in`` before a declaration or a tactic block (both are Lean syntax), so that the names a
    whole-file answer opened still resolve."""
    return f"open {' '.join(opens)} in\n{text}" if opens else text


def parse_proof(text: str, *, locked: str, known: Iterable[str] = (), exclude: Iterable[str] = ()) -> ProofReply:
    """The tactic proof of the ``locked`` statement (``theorem name binders : type``, no ``:=``) and the helper
    declarations in a prover's or gap-closer's reply.

    - the answer's last Lean block is the proof: a tactic block as it is; a block restating the locked theorem
      (alone or in a whole file, DeepSeek-Prover-V2 / Kimina / Goedel style) yields the proof after its
      ``:=`` (``by`` tactics, or ``exact term``) and its earlier declarations as helpers, with the file's
      ``open`` commands kept (``open … in``); a restated theorem is compared with the locked statement,
      whitespace-normalised and without comments, its declared name ignored (the proof is spliced into the
      locked text whatever name the model gave it, and prover models often add a prefix or a prime);
      a different statement is refused;
    - helpers are the real declarations of earlier blocks and those before the restated theorem: no
      ``example``, no ``#`` commands, no restatement of the locked theorem (a ``sorry`` sketch), no
      redefinition of ``known`` names (the locked statement's identifiers, the Atlas's declarations) that a
      whole-file answer copies from the prompt, the last definition of a name winning;
    - ``exclude``: code quoted from the prompt (the failed proof) that is not an answer."""
    target = _Target.of(locked, known)
    blocks = lean_blocks(text, exclude=exclude)
    if not blocks:
        raise no_lean_block(text)
    parsed = [split_commands(b) for b in blocks]
    chosen = _proof_block(parsed, target)
    helpers = _Helpers(target)
    for k in [*range(chosen), *range(chosen + 1, len(parsed))]:  # helpers written after the proof go first too
        cmds = parsed[k][1]
        if not any(target.matches(c) for c in cmds):  # an earlier restatement (a sketch, a first attempt) is
            helpers.add(cmds, len(cmds))  # superseded by the chosen block
    lead, cmds = parsed[chosen]
    targets = [i for i, c in enumerate(cmds) if target.matches(c)]
    if targets:
        proof = _restated_proof(cmds, targets[-1], target)
        helpers.add(cmds, targets[-1])
    else:
        proof = _tactic_block(_strip_proof_prefix(lead))
        helpers.add(cmds, 0)
    if not proof.strip():
        raise MalformedReply("the reply's proof is empty")
    return ProofReply(aux=helpers.text(), proof=proof, notes=helpers.notes)


@dataclass
class _Target:
    """The locked theorem as a reply may restate it: its text, short name, signature, and the names a helper
    may not redefine."""

    locked: str
    name: str
    signature: str
    protected: set[str]

    @classmethod
    def of(cls, locked: str, known: Iterable[str]) -> _Target:
        lk_cmds = split_commands(clean_whitespace(locked))[1]
        lk = next((c for c in lk_cmds if c.kind in ("theorem", "lemma")), None)
        name = _short(lk.name) if lk else ""
        signature = _signature(lk.text) if lk else _squash(locked)
        protected = {_short(k) for k in known} | _identifiers(locked) | ({name} if name else set())
        return cls(locked, name, signature, protected)

    def matches(self, c: Command) -> bool:
        """``c`` restates the locked theorem (by name, or by signature under another name)."""
        return c.kind in ("theorem", "lemma") and (_short(c.name) == self.name or _signature(c.text) == self.signature)


def _proof_block(parsed: list[tuple[str, list[Command]]], target: _Target) -> int:
    """The block that holds the proof: the last one with tactic code or a restatement of the locked theorem;
    failing that, the last block's last theorem is read as the restatement it must be (and refused)."""
    for k in range(len(parsed) - 1, -1, -1):
        lead, cmds = parsed[k]
        if any(target.matches(c) for c in cmds) or (lead.strip() and not cmds):
            return k
        if lead.strip() and _looks_like_tactics(lead):
            return k
    thms = [c for c in parsed[-1][1] if c.kind in ("theorem", "lemma")]
    if thms:
        raise MalformedReply(
            f"the reply's theorem `{thms[-1].name}` does not restate the locked statement: "
            f"`{_one_line(_statement_part(thms[-1].text))}`"
            f" differs from the locked `{_one_line(target.locked)}`; write only the proof of the locked statement"
        )
    raise MalformedReply("the reply's Lean block holds no proof (no tactics and no restated theorem)")


def _restated_proof(cmds: list[Command], t: int, target: _Target) -> str:
    """The proof after the ``:=`` of the restated theorem ``cmds[t]``, as tactics, with the block's opens."""
    decl = cmds[t]
    if _signature(decl.text) != target.signature:
        raise MalformedReply(
            f"the reply restates `{decl.name}` with a different statement: "
            f"`{_one_line(_statement_part(decl.text))}` is not the locked `{_one_line(target.locked)}`; the locked "
            "statement cannot change: write only its proof"
        )
    body_at = top_level_assign(decl.text)
    if body_at is None:
        raise MalformedReply(
            f"the restated `{decl.name}` has no `:=` proof (pattern-matching equations "
            "cannot be spliced into the locked statement): write a tactic proof"
        )
    return _with_opens(_body_as_tactics(decl.text[body_at + 2 :]), _opens(cmds, t))


class _Helpers:
    """The helper declarations of a reply, the last definition of a name winning; redefinitions of protected
    names dropped (with a note)."""

    def __init__(self, target: _Target) -> None:
        self.target = target
        self.named: dict[str, str] = {}
        self.unnamed: list[str] = []
        self.notes: list[str] = []

    def add(self, cmds: list[Command], upto: int) -> None:
        """The declarations among ``cmds[:upto]``, with the ``open`` commands in force before ``upto``."""
        opens = _opens(cmds, upto)
        for c in cmds[:upto]:
            if not c.is_decl or c.kind == "example" or self.target.matches(c):
                continue
            short = _short(c.name)
            if short in self.target.protected:
                self.notes.append(f"dropped a redefinition of `{short}`")
                continue
            decl = _with_opens(c.text, opens)
            if short:
                self.named.pop(short, None)
                self.named[short] = decl
            else:
                self.unnamed.append(decl)

    def text(self) -> str:
        return "\n\n".join([*self.unnamed, *self.named.values()])


_TACTIC_START = re.compile(r"^\s*(?:[·.•]|\(|<;>|[a-z_][\w'!?]*|⟨|refine|exact|intro)", re.I)


def _looks_like_tactics(lead: str) -> bool:
    return bool(_TACTIC_START.match(lead.strip().split("\n")[0]))


def _statement_part(decl: str) -> str:
    text = strip_comments(decl)
    cut = top_level_assign(text)
    if cut is None:  # equations (`| 0 => …`) or `where`: the statement ends before them
        m = re.search(r"\n\s*\||\bwhere\b", text)
        cut = m.start() if m else None
    return text[:cut] if cut is not None else text


def _one_line(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def _identifiers(code: str) -> set[str]:
    words = set(re.findall(r"[A-Za-z_][\w'!?.]*", strip_comments(code)))
    return {_short(w) for w in words if w[0].isupper() or "." in w} - {"Prop", "Type", "Sort"}


# ------------------------------------------------------------------------------------------ statements
def parse_statements(
    text: str, *, kind: Literal["theorem", "definition"], header: str = "", last_only: bool = False
) -> list[str]:
    """The drafter's Lean statements (``theorem name binders : type``, proofs cut) or definitions.

    Headers (``import``, ``open``, ``set_option``, ``namespace``/``end``/``section``) and ``#`` commands are
    dropped; a helper ``def`` before a theorem is not a statement; two theorems are two drafts; a comment
    holding ``:=`` is not a proof; ``lemma`` becomes ``theorem``. ``variable`` declarations are refused (the
    statement would not say what it quantifies over). With ``last_only`` only the answer's last block with a
    statement counts (the model's final word when one draft was asked for)."""
    blocks = lean_blocks(text)
    if not blocks:
        raise no_lean_block(text)
    per_block: list[list[str]] = []
    for b in blocks:
        if header and b.strip().startswith(header.strip()):
            b = b.strip()[len(header.strip()) :]
        _, cmds = split_commands(b)
        if any(c.kind in ("variable", "variables") for c in cmds):
            raise MalformedReply("the draft uses `variable` declarations: state every binder in the declaration itself")
        found = _theorem_statements(cmds) if kind == "theorem" else _definitions(cmds)
        if found:
            per_block.append(found)
    if not per_block:
        what = "`theorem NAME`" if kind == "theorem" else "`def NAME` (or `structure`, `inductive`, `abbrev`)"
        raise MalformedReply(f"the draft declares no {what}")
    texts = per_block[-1] if last_only else [t for f in per_block for t in f]
    return list(dict.fromkeys(texts))


def _without_blank_lines(text: str) -> str:
    return "\n".join(ln.rstrip() for ln in text.split("\n") if ln.strip())


def _theorem_statements(cmds: list[Command]) -> list[str]:
    """Each theorem's statement (its proof cut, comments dropped, ``lemma`` made ``theorem``)."""
    found = []
    for c in cmds:
        if c.kind in ("theorem", "lemma"):
            stmt = _without_blank_lines(strip_comments(_statement_part(c.text)).strip())
            found.append(re.sub(r"^((?:@\[[^\]]*\]\s*)?(?:(?:private|protected)\s+)*)lemma\b", r"\1theorem", stmt))
    return found


_DEFINING = ("def", "abbrev", "structure", "inductive", "class", "instance")


def _definitions(cmds: list[Command]) -> list[str]:
    """The definition, with the declarations after it (no examples, nothing with ``sorry``), as one text."""
    start = next((i for i, c in enumerate(cmds) if c.kind in _DEFINING), None)
    if start is None:
        return []
    keep = [
        strip_comments(c.text).strip()
        for c in cmds[start:]
        if c.is_decl and c.kind != "example" and not re.search(r"\bsorry\b", c.text)
    ]
    return ["\n\n".join(_without_blank_lines(k) for k in keep)]


# ------------------------------------------------------------------------------------------------ JSON
_JSON_ESCAPES = {'"', "\\", "/", "b", "f", "n", "r", "t", "u"}
#: LaTeX commands that begin with a JSON escape letter (n, r, t, u): a single backslash before them is LaTeX
_LATEX_NRTU = frozenset(
    [
        "nabla",
        "ne",
        "neq",
        "neg",
        "ni",
        "not",
        "notin",
        "nmid",
        "nleq",
        "ngeq",
        "nless",
        "ngtr",
        "nsubseteq",
        "nsupseteq",
        "nexists",
        "newline",
        "newcommand",
        "nu",
        "nolimits",
        "normalsize",
        "nparallel",
        "nRightarrow",
        "nLeftrightarrow",
        "nleftarrow",
        "nrightarrow",
        "noindent",
        "nonumber",
        "natural",
        "times",
        "to",
        "top",
        "theta",
        "tau",
        "text",
        "textbf",
        "textit",
        "textrm",
        "textsf",
        "texttt",
        "textnormal",
        "tfrac",
        "tbinom",
        "tilde",
        "triangle",
        "triangleleft",
        "triangleright",
        "trianglelefteq",
        "trianglerighteq",
        "therefore",
        "tan",
        "tanh",
        "tt",
        "tiny",
        "textstyle",
        "thinspace",
        "rho",
        "right",
        "rangle",
        "rceil",
        "rfloor",
        "rightarrow",
        "Rightarrow",
        "rightleftharpoons",
        "rbrace",
        "rbrack",
        "restriction",
        "rm",
        "rvert",
        "rVert",
        "rtimes",
        "rmoreover",
        "rad",
        "underline",
        "uparrow",
        "Uparrow",
        "upsilon",
        "Upsilon",
        "cup",
        "uplus",
        "underbrace",
        "unlhd",
        "unrhd",
        "updownarrow",
    ]
)  # noqa: SIM905


def _fix_backslashes(s: str) -> str:
    """Single backslashes of LaTeX inside JSON strings made literal (``\\frac`` stays ``\\frac``, never a
    form feed), raw newlines and tabs in strings escaped; everything outside strings untouched."""
    out: list[str] = []
    i, n, in_str = 0, len(s), False
    while i < n:
        c = s[i]
        if not in_str:
            out.append(c)
            in_str = c == '"'
            i += 1
            continue
        if c == '"':
            out.append(c)
            in_str = False
            i += 1
        elif c == "\n":
            out.append("\\n")
            i += 1
        elif c == "\t":
            out.append("\\t")
            i += 1
        elif c == "\\" and i + 1 < n:
            nxt = s[i + 1]
            run = re.match(r"[A-Za-z]+", s[i + 1 :])
            word = run.group(0) if run else ""
            if nxt in '"\\/':
                out.append(s[i : i + 2])
                i += 2
            elif nxt == "u" and re.match(r"u[0-9a-fA-F]{4}", s[i + 1 : i + 6]) and word not in _LATEX_NRTU:
                out.append(s[i : i + 6])
                i += 6
            elif nxt in "nrt" and word not in _LATEX_NRTU:
                out.append(s[i : i + 2])
                i += 2
            else:  # \frac, \binom, \beta, \(, \{, \, ... and LaTeX commands starting with n, r, t, u
                out.append("\\\\")
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _json_candidates(answer: str) -> list[str]:
    """Where the JSON of an answer may be, most likely first: the last ```json block, other fenced blocks,
    then the last balanced ``{…}`` of the prose, then the whole answer."""
    blocks = fenced_blocks(answer)
    out = [b.body for b in reversed(blocks) if b.lang in ("json", "json5", "jsonc")]
    if not blocks and answer.lstrip().startswith(("{", "[")):
        out.append(answer)
    out += [b.body for b in reversed(blocks) if b.lang in ("", "javascript", "js", "python") and "{" in b.body]
    prose = "\n".join(b.before for b in blocks) + "\n" + answer.rsplit("```", 1)[-1] if blocks else answer
    out += list(reversed(_balanced_objects(prose)))
    return out


def _balanced_objects(text: str) -> list[str]:
    out, depth, start, in_str, esc = [], 0, -1, False, False
    for i, c in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
            continue
        if c == '"' and depth > 0:
            in_str = True
        elif c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                out.append(text[start : i + 1])
    return out


def parse_json(text: str, keys: Iterable[str] = ()) -> dict[str, Any]:
    """The JSON object of a reply's final answer, repaired where its form is off (no fence, prose around,
    trailing commas, comments, raw newlines, single-backslash LaTeX, Python literals); never a guess at its
    meaning: see :func:`read_fields`. With ``keys``, the first object holding one of them is preferred
    (prose may hold other braces)."""
    ans = split_reasoning(clean_whitespace(text))
    if not ans.text:
        if ans.unclosed_reasoning:
            raise Truncated("the reply stops inside its reasoning block (truncated?): no JSON answer")
        raise MalformedReply("the reply is not the JSON asked for: it has no final answer after its reasoning")
    blocks = fenced_blocks(ans.text)
    if blocks and not blocks[-1].closed and not _balanced_objects(ans.text):
        raise Truncated("the reply ends inside an unclosed code block (truncated?)")
    wanted = {_key(k) for k in keys}
    found: list[dict[str, Any]] = []
    not_object = False
    for cand in _json_candidates(ans.text):
        data = _loads(cand)
        if isinstance(data, dict) and data:
            if not wanted or _mentions(data, wanted):
                return data
            found.append(data)
        not_object |= isinstance(data, list) and cand.lstrip().startswith("[")
    if found:
        return found[0]
    if not_object or ans.text.lstrip().startswith("["):
        raise MalformedReply("the reply's JSON is not an object")
    raise MalformedReply("the reply is not the JSON asked for: no JSON object found in its answer")


def _loads(cand: str) -> Any:
    """A candidate's JSON value, repaired where its form is off; a one-object list is read as its object; None
    when nothing can be read."""
    fixed = _fix_backslashes(cand.strip())
    try:
        data = json.loads(fixed)
    except json.JSONDecodeError:
        try:
            data = json_repair.loads(fixed)
        except Exception:  # json_repair raises little, but a parse of garbage must never crash an agent
            return None
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
        return data[0]
    return data


def _mentions(data: dict[str, Any], wanted: set[str]) -> bool:
    if any(_key(k) in wanted for k in data):
        return True
    return (
        len(data) == 1 and isinstance(next(iter(data.values())), dict) and _mentions(next(iter(data.values())), wanted)
    )


FieldType = Literal["str", "bool", "score", "list[str]"]


def _key(k: str) -> str:
    """A key compared as a reader would: case, hyphens, spaces and camelCase do not matter."""
    k = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", k.strip())
    return re.sub(r"[\s\-]+", "_", k).lower()


def read_fields(data: dict[str, Any], spec: dict[str, tuple[FieldType, bool]]) -> dict[str, Any]:
    """The fields of ``spec`` (name -> (type, required)) from a reply's JSON object, with their meaning kept:

    - a key matches when it is the same name up to case, hyphens, spaces or camelCase (``Faithful``,
      ``back-translation``, ``backTranslation``); a key that matches none while a field is missing is taken
      as a renamed field and refused, never silently defaulted; extra keys beside complete fields are ignored;
    - ``bool``: ``true``/``false``, or the strings ``"true"``/``"false"``/``"yes"``/``"no"``; anything else
      is refused (``"false"`` is false, never true);
    - ``score``: a number or a numeric string (``"8"``, ``"8/10"``), refused otherwise;
    - ``list[str]``: a list of strings (objects are read as their values joined); a lone string is ONE item,
      never split into characters; an empty string or null is an empty list;
    - ``str``: a string (a number is written out); a list or object is refused.
    One level of wrapping (``{"critique": {...}}``) is unwrapped."""
    by_key, unknown = _matched_keys(_unwrapped(data, spec), spec)
    missing = [name for name, (_, required) in spec.items() if required and name not in by_key]
    if missing:
        extra = f"; it has {', '.join(repr(u) for u in unknown)} instead" if unknown else ""
        raise MalformedReply(
            f"the JSON lacks the field(s) {', '.join(repr(m) for m in missing)}{extra} "
            f"(expected the keys {', '.join(repr(s) for s in spec)})"
        )
    if unknown and len(by_key) < len(spec):
        absent = [s for s in spec if s not in by_key]
        raise MalformedReply(
            f"the JSON has unknown key(s) {', '.join(repr(u) for u in unknown)} where "
            f"{', '.join(repr(a) for a in absent)} were expected: use exactly the keys asked for"
        )
    return {name: _typed(name, by_key[name], ty) if name in by_key else _DEFAULTS[ty] for name, (ty, _) in spec.items()}


def _unwrapped(data: dict[str, Any], spec: dict[str, tuple[FieldType, bool]]) -> dict[str, Any]:
    """``{"critique": {...}}`` read as its inside, when the outer key is none of the fields."""
    if len(data) == 1:
        (only,) = data.values()
        if isinstance(only, dict) and not any(_key(k) in spec for k in data):
            return only
    return data


def _matched_keys(data: dict[str, Any], spec: dict[str, tuple[FieldType, bool]]) -> tuple[dict[str, Any], list[str]]:
    """(the values by field name, for keys that name a field up to case and spelling; the other keys)."""
    by_key: dict[str, Any] = {}
    unknown: list[str] = []
    for k, v in data.items():
        nk = _key(k)
        if nk in spec:
            by_key[nk] = v
        else:
            unknown.append(k)
    return by_key, unknown


def _as_bool(name: str, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "yes", "false", "no"):
        return v.strip().lower() in ("true", "yes")
    raise MalformedReply(f"the JSON field {name!r} must be true or false, not {json.dumps(v)}")


def _as_score(name: str, v: Any) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*10)?\s*", v) if isinstance(v, str) else None
    if m:
        return float(m.group(1))
    raise MalformedReply(f"the JSON field {name!r} must be a number, not {json.dumps(v)}")


def _as_strings(name: str, v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v.strip()] if v.strip() else []
    if not isinstance(v, list):
        raise MalformedReply(f"the JSON field {name!r} must be a list of strings, not {json.dumps(v)}")
    items = []
    for it in v:
        if isinstance(it, dict):
            it = ": ".join(str(x) for x in it.values() if x is not None and str(x).strip())
        elif isinstance(it, list):
            raise MalformedReply(f"the JSON field {name!r} must be a list of strings, not a list of lists")
        if it is not None and str(it).strip():
            items.append(str(it).strip())
    return items


def _as_str(name: str, v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, int | float) and not isinstance(v, bool):
        return str(v)
    raise MalformedReply(f"the JSON field {name!r} must be a string, not {type(v).__name__}")


#: each field type's reader (the value as the model wrote it -> the value it means, or MalformedReply)
_READERS: dict[str, Callable[[str, Any], Any]] = {
    "bool": _as_bool,
    "score": _as_score,
    "list[str]": _as_strings,
    "str": _as_str,
}
#: a field that is not required and absent
_DEFAULTS: dict[str, Any] = {"str": "", "bool": False, "score": 0.0, "list[str]": []}


def _typed(name: str, v: Any, ty: FieldType) -> Any:
    return _READERS[ty](name, v)


@dataclass(frozen=True)
class NameProposals:
    """The Mathlib grounder's reply: the notions of a unit and the Mathlib names the model expects it to use
    (unchecked: :mod:`autoform.mathlib.grounding` checks them against the index)."""

    concepts: list[str]
    names: list[str]


#: a proposed name as a model writes it: ``Nat.Prime``, `` `Nat.Prime` ``, ``@Nat.Prime``, optionally followed by
#: its signature or a gloss after ``:``, ``(``, ``-`` or ``,``
_PROPOSED = re.compile(
    r"@?`?@?(?P<name>(?:[^\W\d]|_)[\w'!?]*(?:\.(?:[^\W\d]|_)[\w'!?]*)*)`?(?:\s*(?:[:(\-\u2013\u2014,]|:=).*)?",
    re.DOTALL,
)


def parse_name_proposals(text: str, *, max_names: int = 12) -> NameProposals:
    """The grounder's JSON ``{"concepts": [...], "names": [...]}`` (tolerant in form, strict in meaning: see
    :func:`read_fields`); each name is read from backticks or before its signature, and an item that is no Lean
    name ("greatest common divisor") is refused; repeats dropped, at most ``max_names`` kept."""
    spec: dict[str, tuple[FieldType, bool]] = {"concepts": ("list[str]", False), "names": ("list[str]", True)}
    data = read_fields(parse_json(text, spec), spec)
    names: list[str] = []
    for item in data["names"]:
        m = _PROPOSED.fullmatch(item.strip())
        if m is None:
            raise MalformedReply(
                f"the JSON field 'names' holds {item!r}, which is not a Lean name: give full Mathlib names "
                "(`Nat.Prime`, `Subgroup.index`) there and notions under 'concepts'"
            )
        names.append(m.group("name"))
    return NameProposals(concepts=data["concepts"], names=list(dict.fromkeys(names))[:max_names])


__all__ = [
    "Answer",
    "Block",
    "Command",
    "MalformedReply",
    "NameProposals",
    "ProofReply",
    "Truncated",
    "answer_text",
    "clean_whitespace",
    "fenced_blocks",
    "lean_blocks",
    "looks_cut",
    "parse_json",
    "parse_name_proposals",
    "parse_proof",
    "parse_statements",
    "read_fields",
    "split_commands",
    "split_reasoning",
    "strip_comments",
    "top_level_assign",
]
