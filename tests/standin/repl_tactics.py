"""Tactic proofs as the stand-in REPL (tests/fake_lean_repl.py) runs them: goals through a tactic block, Lean's
``unsolved goals`` error where goals are left, the goal of each ``sorry`` and of each ``exact?``.

What Lean does, and what is kept here (the recorded replies are ../shared/data/lean-output/repl-tests):

* A ``by`` block that ends with goals left is Lean's error ``unsolved goals`` followed by the goals, separated by
  blank lines, each in Lean's pretty-printed form (``case tag`` first, hypotheses of one type grouped as
  ``h1 h2 : T``, then ``⊢ target``). Its position is the ``by`` token, its end the end of the block's last
  tactic (``Term.runTactic`` reports at the ``by`` syntax: have_by_sorry, incomplete, Mathlib/test/H20231115_3,
  unfinished_tactic_block); for a ``·`` bullet it is the bullet and its tactics (``evalTacticCDot``:
  ``withCaseRef stx[0] stx[1]``). A declaration with an error logs no "declaration uses 'sorry'" warning
  (have_by_sorry's first reply).
* A tactic that fails (here: one naming an unknown ``bogus*`` identifier, ``exact?`` that finds nothing, a
  closing tactic on a goal that resists) ends its block: the error is logged and the block's goals are admitted,
  so no ``unsolved goals`` follows it (Lean's error recovery).
* The tactics modelled: ``have name : T := proof`` (``have : T`` names it ``this``; a ``by`` proof is a nested
  block on the goal ``T``) adds a hypothesis; ``constructor`` splits ``A ∧ B`` into ``case left``/``case right``
  (``A ↔ B`` into ``mp``/``mpr``); ``·`` focuses the first goal, which its tactics must close; ``skip`` does
  nothing; ``sorry``/``admit`` close the goal (a hole); ``exact?`` closes it when ``FAKE_REPL_EXACT`` knows the
  goal (JSON: substring of the goal -> term), with Lean's suggestion ``Try this:\\n  [apply] exact TERM``;
  ``all_goals``/``any_goals``/``<;>`` act on every goal. A tactic named in ``FAKE_REPL_LEAVES`` (JSON: tactic
  text -> the targets it leaves) replaces the goal with those. Any other tactic closes the goal it runs on (the
  stand-in accepts any proof step), except the closing tactics of ``CLOSERS`` on a goal whose target matches the
  regular expression ``FAKE_REPL_RESISTS``: those fail as Lean's do. With no goal left, a further tactic is
  accepted silently.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

BOGUS = re.compile(r"(?<![\w.'])(bogus[\w']*)")
SORRY = re.compile(r"(?<![\w.'])(sorry|admit)(?![\w'])")
EXACT = re.compile(r"(?<![\w.'])exact\?")
#: ``have name : T := rest`` / ``have : T := rest`` (the type up to the first ``:=``)
HAVE = re.compile(r"^have\s+(?:(?P<name>[^\s:]+)\s*)?:\s*(?P<type>.+?)\s*:=\s*(?P<rest>.*)$", re.S)
#: the closing tactics automation tries (autoform/pipeline/automation.py): they fail on a goal that resists
CLOSERS = ("omega", "simp", "linarith", "nlinarith", "norm_num", "positivity", "aesop", "decide")
NOT_FOUND = "`exact?` could not close the goal. Try `apply?` to see partial suggestions."


@dataclass
class Goal:
    hyps: list[str]
    target: str
    case: str = ""

    def with_hyp(self, hyp: str) -> Goal:
        return Goal([*self.hyps, hyp], self.target, self.case)


def _hyp_parts(h: str) -> tuple[str, str]:
    names, _, ty = h.partition(" : ")
    return names.strip(), ty.strip()


def render(goal: Goal) -> str:
    """A goal as Lean prints it: ``case tag``, hypotheses (consecutive ones of one type grouped), ``⊢ target``."""
    grouped: list[tuple[str, str]] = []
    for h in goal.hyps:
        names, ty = _hyp_parts(h)
        if grouped and grouped[-1][1] == ty:
            grouped[-1] = (f"{grouped[-1][0]} {names}", ty)
        else:
            grouped.append((names, ty))
    lines = [f"case {goal.case}"] if goal.case else []
    lines += [f"{n} : {t}" for n, t in grouped]
    return "\n".join([*lines, f"⊢ {goal.target}"])


def unsolved(goals: list[Goal]) -> str:
    return "unsolved goals\n" + "\n\n".join(render(g) for g in goals)


def split_top(text: str, op: str) -> tuple[str, str] | None:
    """``text`` split at its first ``op`` outside brackets."""
    depth = 0
    for i, c in enumerate(text):
        depth += c in "([{⟨"
        depth -= c in ")]}⟩"
        if depth == 0 and text.startswith(op, i):
            return text[:i].strip(), text[i + len(op) :].strip()
    return None


def pos(line: int, col: int) -> dict:
    return {"line": line, "column": col}


@dataclass
class Chunk:
    """A piece of a tactic block: text starting at (line, col)."""

    line: int
    col: int
    text: str

    @property
    def end(self) -> dict:
        return pos(self.line, self.col + len(self.text.rstrip()))


@dataclass
class Outcome:
    """What a tactic proof logged: messages (errors, suggestions), holes (line, col, goal), whether it failed."""

    messages: list[dict] = field(default_factory=list)
    holes: list[tuple[int, int, Goal]] = field(default_factory=list)
    failed: bool = False


def tactics_of(chunks: list[Chunk]) -> list[list[Chunk]]:
    """The tactics of a block: each its first chunk and the chunks indented deeper after it."""
    if not chunks:
        return []
    col = chunks[0].col
    out: list[list[Chunk]] = []
    for c in chunks:
        if c.col <= col or not out:
            out.append([c])
        else:
            out[-1].append(c)
    return out


def nested(head: Chunk, offset: int, rest: list[Chunk]) -> list[Chunk]:
    """The chunks of a block that starts ``offset`` characters into ``head`` (its inline part) and goes on in
    ``rest``."""
    inline = head.text[offset:]
    lead = len(inline) - len(inline.lstrip())
    first = [Chunk(head.line, head.col + offset + lead, inline.strip())] if inline.strip() else []
    return first + rest


class Machine:
    """Runs tactic blocks on goals. ``exact``: goal -> the term ``exact?`` finds, or None."""

    def __init__(self, exact: Callable[[Goal], str | None], tactic_mode: bool = False) -> None:
        self.exact = exact
        self.tactic_mode = tactic_mode
        self.leaves: dict[str, list[str]] = json.loads(os.environ.get("FAKE_REPL_LEAVES", "{}"))
        self.resists = os.environ.get("FAKE_REPL_RESISTS", "")
        self.out = Outcome()

    def at(self, p: dict) -> dict:
        return pos(0, 0) if self.tactic_mode else p

    def error(self, start: dict, end: dict, text: str, severity: str = "error") -> None:
        self.out.messages.append({"severity": severity, "pos": self.at(start), "endPos": self.at(end), "data": text})

    def block(self, by: Chunk, by_col: int, chunks: list[Chunk], goals: list[Goal]) -> None:
        """A ``by`` block at (by.line, by_col): its tactics run on ``goals``; goals left are Lean's error."""
        left = self.run(chunks, goals)
        if left:
            end = chunks[-1].end if chunks else pos(by.line, by_col + 2)
            self.error(pos(by.line, by_col), end, unsolved(left))

    def run(self, chunks: list[Chunk], goals: list[Goal]) -> list[Goal]:
        """The goals left after the block ``chunks`` (none when a tactic failed: its goals are admitted)."""
        goals = list(goals)
        for tactic in tactics_of(chunks):
            goals = self.step(tactic, goals)
            if self.out.failed:
                return []
        return goals

    def step(self, tactic: list[Chunk], goals: list[Goal]) -> list[Goal]:
        head = tactic[0]
        text = head.text
        if text.startswith(("·", ". ")):
            return self.bullet(tactic, goals)
        m = HAVE.match(text)
        if m:
            return self.have(tactic, m, goals)
        if not goals:
            return goals  # no goal left: accepted silently
        main, rest = goals[0], goals[1:]
        whole = "\n".join(c.text for c in tactic)
        word = text.split()[0]
        if SORRY.fullmatch(whole.strip()):
            self.out.holes.append((head.line, head.col, main))
            return rest
        if word in ("all_goals", "any_goals") or "<;>" in whole:
            if SORRY.fullmatch(whole.removeprefix(word).strip()):
                self.out.holes += [(head.line, head.col + len(word) + 1, g) for g in goals]
                return []
            return [] if not any(self.fails(tactic, g) for g in goals) else []
        if word == "skip":
            return goals
        if word == "constructor":
            return (self.constructor(main) or []) + rest
        if EXACT.search(whole):
            return self.search(head, main, rest)
        for key, targets in self.leaves.items():
            if " ".join(whole.split()) == " ".join(key.split()):
                return [Goal(main.hyps, t, main.case) for t in targets] + rest
        self.fails(tactic, main)
        return rest

    def fails(self, tactic: list[Chunk], goal: Goal) -> bool:
        """Whether the tactic fails on ``goal`` (an unknown identifier, a closing tactic on a goal that resists);
        the error is logged and the block ends."""
        whole = "\n".join(c.text for c in tactic)
        head = tactic[0]
        bad = BOGUS.search(whole)
        if bad:
            self.out.failed = True  # the unknown identifier's error is the caller's (the line scan logs it)
            return True
        words = set(re.findall(r"[\w_]+", whole))
        if self.resists and re.search(self.resists, goal.target) and words & set(CLOSERS):
            last = [w for w in re.findall(r"[\w_]+", whole) if w in CLOSERS][-1]
            self.error(pos(head.line, head.col), tactic[-1].end, f"{last} failed to prove the goal\n{render(goal)}")
            self.out.failed = True
            return True
        return False

    def bullet(self, tactic: list[Chunk], goals: list[Goal]) -> list[Goal]:
        head = tactic[0]
        if not goals:
            return goals
        inner = nested(head, 1, tactic[1:])
        left = self.run(inner, goals[:1])
        if left and not self.out.failed:
            self.error(pos(head.line, head.col), tactic[-1].end, unsolved(left))
        return goals[1:]

    def have(self, tactic: list[Chunk], m: re.Match, goals: list[Goal]) -> list[Goal]:
        head = tactic[0]
        name, ty, rest = m.group("name") or "this", m.group("type"), m.group("rest")
        ctx = goals[0] if goals else Goal([], "")
        sub = Goal(ctx.hyps, ty)
        if rest.startswith("by") and (len(rest) == 2 or not rest[2].isalnum()):
            by_col = head.text.index(":=", m.start("type")) + 2
            by_col += len(head.text[by_col:]) - len(head.text[by_col:].lstrip())
            inner = nested(head, by_col + 2, tactic[1:])
            machine = Machine(self.exact, self.tactic_mode)
            machine.block(head, head.col + by_col, inner, [sub])
            self.out.messages += machine.out.messages
            self.out.holes += machine.out.holes
        else:
            s = SORRY.search(head.text, m.start("rest"))
            if s and s.start() >= m.start("rest"):
                self.out.holes.append((head.line, head.col + s.start(), sub))
        return [goals[0].with_hyp(f"{name} : {ty}"), *goals[1:]] if goals else goals

    def constructor(self, main: Goal) -> list[Goal]:
        for op, cases, build in (
            (" ∧ ", ("left", "right"), lambda a, b: (a, b)),
            (" ↔ ", ("mp", "mpr"), lambda a, b: (f"{a} → {b}", f"{b} → {a}")),
        ):
            parts = split_top(main.target, op)
            if parts:
                first, second = build(*parts)
                return [Goal(main.hyps, first, cases[0]), Goal(main.hyps, second, cases[1])]
        return []

    def search(self, head: Chunk, main: Goal, rest: list[Goal]) -> list[Goal]:
        col = head.col + EXACT.search(head.text).start() if EXACT.search(head.text) else head.col
        term = self.exact(main)
        start, end = pos(head.line, col), pos(head.line, col + 6)
        if term is None:
            self.error(start, end, NOT_FOUND)
            self.out.failed = True
            return []
        self.error(start, end, f"Try this:\n  [apply] exact {term}", severity="info")
        return rest


def exact_from_env(goal: Goal) -> str | None:
    """``FAKE_REPL_EXACT`` (JSON: substring of the goal -> term): what ``exact?`` finds for ``goal``."""
    known = json.loads(os.environ.get("FAKE_REPL_EXACT", "{}"))
    text = render(goal)
    return next((term for pattern, term in known.items() if pattern in text), None)


def proof_block(lines: list[tuple[int, str]]) -> tuple[Chunk, int, list[Chunk]] | None:
    """A declaration's tactic proof: the chunk holding its ``:= by``, the column of ``by``, the block's chunks;
    None for a term proof."""
    for k, (i, t) in enumerate(lines):
        at = t.find(":=")
        if at < 0:
            continue
        after = t[at + 2 :]
        rest = after.lstrip()
        if not (rest.startswith("by") and (len(rest) == 2 or not rest[2].isalnum())):
            return None
        by_col = at + 2 + len(after) - len(rest)
        chunks = nested(Chunk(i, 0, t), by_col + 2, [])
        chunks += [Chunk(j, len(s) - len(s.lstrip()), s.strip()) for j, s in lines[k + 1 :] if s.strip()]
        return Chunk(i, 0, t), by_col, chunks
    return None
