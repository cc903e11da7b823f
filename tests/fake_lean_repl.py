#!/usr/bin/env python3
"""A scripted stand-in for the Lean REPL: the oracle test double. It lives only in tests/.

It speaks the REPL's protocol (JSON commands separated by blank lines, replies in the REPL's own shapes:
``env``, ``messages`` with ``severity/pos/endPos/data``, ``sorries``) and answers by simple rules, so the
production client stack (lean-interact -> ReplOracle -> gate) runs unchanged on top of it:

* the header command (``import ...``) elaborates to env 0; every command gets a new environment holding the
  declarations of the environment it ran on plus its own (namespaces understood), and its reply holds only
  its own messages, as the real REPL's does;
* a ``sorry`` token gives the warning "declaration uses 'sorry'" and a ``sorries`` entry, and makes the
  declaration depend on ``sorryAx``;
* an identifier starting with ``bogus`` is an error "unknown identifier '...'", at its line; in a
  declaration's signature it is bound silently as an implicit variable instead, as Lean's ``autoImplicit``
  does, unless the command sets ``autoImplicit false``;
* ``axiom N : T`` declares an axiom; a declaration that mentions another depends on that one's axioms;
* ``logInfo "..."``, ``trace "..."`` and ``#print "..."`` log their text as an ``info`` message at their line,
  and ``logInfoAt`` on a position made with ``(← getFileMap).ofPosition ⟨L, C⟩`` logs it at line L (what a
  candidate that runs code could do: Lean reports a message wherever its syntax's position says);
* ``#print axioms N`` answers "'N' depends on axioms: [...]" (sorted; ``propext`` for every declaration,
  plus ``sorryAx`` when sorry was used, and ``FAKE_REPL_AXIOMS`` extra axioms named in the environment);
* a tactic proof runs on its goals (``tests/standin/repl_tactics.py``): a block that leaves goals is Lean's error
  ``unsolved goals`` at its ``by`` (or bullet), with the goals in Lean's printed form, and a declaration with an
  error gets no sorry warning; ``FAKE_REPL_LEAVES`` (JSON: tactic -> the targets it leaves) and
  ``FAKE_REPL_RESISTS`` (a regular expression: automation's closing tactics fail on a goal whose target matches
  it) tell the stand-in what a tactic does that it cannot know;
* a ``sorry`` is a hole whose goal is the one it stands for at that point of the proof (the ``have`` it proves,
  the case it closes, with the binders and earlier ``have``s as hypotheses), and a proof state of its own;
  ``{"tactic": ..., "proofState": n}`` runs a tactic on it in the REPL's tactic-mode shapes (see
  ``run_tactic``);
* ``exact?`` answers Lean's suggestion ``Try this:\n  [apply] exact TERM`` (info) when the goal it runs on
  contains a key of ``FAKE_REPL_EXACT`` (JSON: goal substring -> TERM), else Lean's error "`exact?` could not
  close the goal. ..." (in tactic mode, the REPL's own error reply, as recorded in Mathlib/test/exact);
* the equivalence checks of ``autoform eval`` (theorems ``autoform_eval_fwd``/``_bwd`` proved by automation from
  an axiom ``autoform_eval_ref``/``_drafted``) are decided as ``exact`` would: closed when the axiom states the
  theorem's statement (the same text up to whitespace), else aesop's "failed to prove the goal" error; a
  refutation ``autoform_eval_refute : ¬ (P)`` is closed, as ``decide``/``norm_num`` would, only when P is a
  comparison of integer arithmetic on literals that is false (anything else: the error);
* ``set_option pp.all true in ... #check @N`` answers "@N : <the declaration's signature, normalized>", with
  the type cut by ``⋯`` past a length unless the query raises ``pp.maxSteps``.

Fault modes (``FAKE_REPL_MODE``), for a command that is not the header: ``hang`` (never answers), ``die``
(writes half a reply and exits), ``garbage`` (prints non-JSON), ``oom`` (allocates until the memory limit).
With ``FAKE_REPL_FAULT_ON=TEXT`` the fault hits only commands containing TEXT; others are answered.
``FAKE_REPL_LOG``: a file to which each command is appended as one JSON line (with the process id, ``pid``).
A command naming an environment the process never gave gets the REPL's own reply ``{"message": "Unknown
environment."}`` (as recorded in ../shared/data/lean-output/repl-tests/test/unknown_environment).
Latency, for benchmarks: ``FAKE_REPL_LATENCY`` seconds per command, ``FAKE_REPL_HEADER_COST`` seconds for a
command that imports (as ``import Mathlib`` costs a real REPL), ``FAKE_REPL_LINE_COST`` seconds per non-blank
line of a command (elaboration grows with the text).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "standin"))

from repl_tactics import (  # noqa: E402  (tests/standin/repl_tactics.py: goals through tactic blocks)
    BOGUS,
    Chunk,
    Goal,
    Machine,
    exact_from_env,
    proof_block,
    render,
)


def read_query() -> str | None:
    lines = []
    while True:
        line = sys.stdin.readline()
        if not line:
            return "\n".join(lines) if lines else None
        if not line.strip():
            if lines:
                return "\n".join(lines)
            continue
        lines.append(line.rstrip("\n"))


def pos(line: int, col: int = 0) -> dict:
    return {"line": line, "column": col}


def decl_signature(code: str, short: str) -> str | None:
    m = re.search(r"(?:theorem|lemma|def|abbrev)\s+" + re.escape(short) + r"(?![\w'.])(.*?)(?::=|$)", code, re.S)
    if not m:
        return None
    return " ".join(m.group(1).split())


def strip_comments(code: str) -> str:
    code = re.sub(r"/-.*?-/", lambda m: "\n" * m.group(0).count("\n"), code, flags=re.S)
    return re.sub(r"--[^\n]*", "", code)


_DECL = re.compile(
    r"^\s*(?:@\[[^\]]*\]\s*)?(?:(?:private|protected|noncomputable|nonrec)\s+)*"
    r"(theorem|lemma|def|abbrev|instance|axiom)\s+([^\s:({\[]+)"
)
_LOG = re.compile(r"(?:logInfo|trace|#print)\s+\"((?:[^\"\\]|\\.)*)\"")
#: `logInfoAt` at a fabricated position: `(← getFileMap).ofPosition ⟨L, C⟩ ... logInfoAt (...) "text"`
_LOG_AT = re.compile(r"ofPosition\s*⟨(\d+),\s*(\d+)⟩.*logInfoAt\b.*\"((?:[^\"\\]|\\.)*)\"\s*$")


def _logged(i: int, text: str) -> list[dict]:
    """The info messages a line of code that runs while Lean elaborates would log."""
    at = _LOG_AT.search(text)
    if at:
        line, col = int(at.group(1)), int(at.group(2))
        return [{"severity": "info", "pos": pos(line, col), "endPos": pos(line, col), "data": at.group(3)}]
    return [
        {"severity": "info", "pos": pos(i, lg.start()), "endPos": pos(i, lg.end()), "data": lg.group(1)}
        for lg in _LOG.finditer(text)
    ]


_QUERY = re.compile(r"^\s*(#print axioms|set_option pp\.all true in .*#check @)\s*(\S+)\s*$")
#: a type longer than this prints with `⋯` unless the query raises pp.maxSteps (Lean's default is 5000 steps)
ELIDE_AFTER = 400

#: env id -> the declarations of that environment: full name -> {"sig", "axioms"}
ENVS: dict[int, dict[str, dict]] = {}


def _resolve(decls: dict[str, dict], name: str, namespaces: list[str]) -> str | None:
    for k in range(len(namespaces), -1, -1):
        full = ".".join([*namespaces[:k], name])
        if full in decls:
            return full
    return None


def _answer_query(kind: str, name: str, line: int, text: str, decls: dict[str, dict], namespaces: list[str]) -> dict:
    full = _resolve(decls, name, namespaces)
    end = pos(line, len(text))
    if full is None:
        return {"severity": "error", "pos": pos(line), "endPos": end, "data": f"unknown constant '{name}'"}
    d = decls[full]
    if kind == "#print axioms":
        axioms = sorted(d["axioms"])
        data = (
            f"'{full}' depends on axioms: [{', '.join(axioms)}]"
            if axioms
            else f"'{full}' does not depend on any axioms"
        )
        return {"severity": "info", "pos": pos(line), "endPos": end, "data": data}
    sig = d["sig"]
    if "pp.maxSteps" not in text and len(sig) > ELIDE_AFTER:
        sig = sig[:ELIDE_AFTER] + " ⋯"
    return {"severity": "info", "pos": pos(line), "endPos": end, "data": f"@{full} : {sig}"}


# ---------------------------------------------------------------------------------------------- goals
#: proof states of this process: id -> the goals it holds, as the REPL keeps them
STATES: dict[int, list[Goal]] = {}


def keep(goals: list[Goal]) -> int:
    n = len(STATES)
    STATES[n] = list(goals)
    return n


def sig_text(d: dict) -> str:
    text = "\n".join(t for _, t in d["lines"])
    head = text.split(":=", 1)[0]
    m = _DECL.match(head)
    return " ".join(head[m.end() :].split()) if m else ""


def binders(sig: str) -> tuple[list[str], str]:
    """The hypotheses a declaration's binders give (``x : Int``; an instance as ``inst✝ : C``) and its type."""
    hyps: list[str] = []
    i, n = 0, len(sig)
    while i < n:
        c = sig[i]
        if c in "([{":
            close = {"(": ")", "[": "]", "{": "}"}[c]
            depth, j = 0, i
            while j < n:
                depth += sig[j] in "([{⟨"
                depth -= sig[j] in ")]}⟩"
                if depth == 0:
                    break
                j += 1
            inner = sig[i + 1 : j]
            if c == "[" and " : " not in inner:
                hyps.append(f"inst✝ : {inner.strip()}")
            elif " : " in inner:
                names, ty = inner.split(" : ", 1)
                hyps.append(f"{names.strip()} : {ty.strip()}")
            i = j + 1 if close else j
        elif c == ":":
            return hyps, sig[i + 1 :].strip()
        else:
            i += 1
    return hyps, ""


_HAVE = re.compile(r"^\s*have\s+(?P<name>[^\s:]+)\s*:\s*(?P<type>.+?)\s*:=")


def goal_at(lines: list[tuple[int, str]], line: int, sig: str) -> tuple[list[str], str]:
    """The goal a `sorry` on ``line`` stands for: the `have` it proves, or the declaration's type, with the
    binders and the earlier `have`s as hypotheses."""
    hyps, target = binders(sig)
    for i, t in lines:
        m = _HAVE.match(t)
        if i == line or (m and i == line - 1 and not t.split(":=", 1)[1].strip().replace("by", "").strip()):
            if m:
                return hyps, m.group("type")
            break
        if i > line:
            break
        if m:
            hyps.append(f"{m.group('name')} : {m.group('type')}")
    return hyps, target


def run_tactic(req: dict) -> dict:
    """Tactic mode, in the REPL's reply shapes (repl-tests proof_step, proof_branching, have_by_sorry,
    invalid_tactic, Mathlib/test/exact): the tactic runs on the proof state's goals as a block does in a proof
    (tests/standin/repl_tactics.py); `bogus*` is Lean's "Unknown identifier" (the goal closed by error recovery,
    "contains sorry"); a tactic that throws (`exact?` finding nothing, a closing tactic on a goal that resists) is
    the REPL's own error reply; `exact?` that finds a term reports Lean's suggestion."""
    ps, tactic = req.get("proofState"), str(req.get("tactic", ""))
    if not isinstance(ps, int) or ps not in STATES:
        return {"message": "Unknown proof state."}
    bad = BOGUS.search(tactic)
    if bad:
        return {
            "proofStatus": "Incomplete: contains sorry",
            "proofState": keep([]),
            "goals": [],
            "messages": [
                {"severity": "error", "pos": pos(0), "endPos": pos(0), "data": f"Unknown identifier `{bad.group(1)}`"}
            ],
        }
    machine = Machine(exact_from_env, tactic_mode=True)
    lines = tactic.split("\n")
    chunks = [Chunk(k + 1, len(t) - len(t.lstrip()), t.strip()) for k, t in enumerate(lines) if t.strip()]
    left = machine.run(chunks, STATES[ps])
    out = machine.out
    thrown = [m for m in out.messages if m["severity"] == "error"] if out.failed else []
    if thrown:
        return {"message": "Lean error:\n" + thrown[-1]["data"]}
    reply: dict = {}
    if out.holes:
        reply["sorries"] = [{"proofState": keep([g]), "goal": render(g)} for _, _, g in out.holes]
    errors = any(m["severity"] == "error" for m in out.messages)
    status = "Incomplete: open goals remain" if left else "Completed"
    if not left and (out.holes or errors):
        status = "Incomplete: contains sorry"
    reply.update({"proofStatus": status, "proofState": keep(left)})
    if out.messages:
        reply["messages"] = out.messages
    reply["goals"] = [render(g) for g in left]
    return reply


SORRY_WARNING = "declaration uses 'sorry'"


def _run_proof(d: dict) -> Machine | None:
    """The declaration's tactic proof run on its goal (tests/standin/repl_tactics.py); None for a term proof."""
    block = proof_block(d["lines"]) if d["kind"] != "axiom" else None
    if block is None:
        return None
    by, by_col, chunks = block
    hyps, target = binders(sig_text(d))
    machine = Machine(exact_from_env)
    machine.block(by, by_col, chunks, [Goal(hyps, target)])
    return machine


def _library_search(i: int, text: str, sig: str) -> dict:
    """`exact?` on a goal: the term found, as Lean reports a suggestion (Lean/Meta/Tactic/TryThis.lean), when
    FAKE_REPL_EXACT (JSON: signature substring -> term) knows the goal; else Lean's error."""
    col = text.index("exact?")
    known = json.loads(os.environ.get("FAKE_REPL_EXACT", "{}"))
    for pattern, term in known.items():
        if pattern in sig:
            return {
                "severity": "info",
                "pos": pos(i, col),
                "endPos": pos(i, col + 6),
                "data": f"Try this:\n  [apply] exact {term}",
            }
    return {
        "severity": "error",
        "pos": pos(i, col),
        "endPos": pos(i, col + 6),
        "data": "`exact?` could not close the goal. Try `apply?` to see partial suggestions.",
    }


def _eval_check(short: str, sig: str, decls: dict[str, dict]) -> str:
    """The error automation leaves on an equivalence check of `autoform eval` ("" when it closes the goal)."""
    failed = "aesop: failed to prove the goal after exhaustive search."
    if short in ("autoform_eval_fwd", "autoform_eval_bwd"):
        hyp = "autoform_eval_ref" if short == "autoform_eval_fwd" else "autoform_eval_drafted"
        given = [d["sig"] for n, d in decls.items() if n.rsplit(".", 1)[-1] == hyp]
        return "" if given and " ".join(given[-1].split()) == " ".join(sig.split()) else failed
    if short == "autoform_eval_refute":
        m = re.fullmatch(r":\s*¬\s*\((.*)\)", sig.strip())
        value = _arith_claim(m.group(1)) if m else None
        return "" if value is False else failed
    return ""


def _arith_claim(text: str) -> bool | None:
    """The truth of `a = b` (also ≠ < ≤ > ≥) over integer literals with + - * and type ascriptions; else None."""
    t = re.sub(r"\((\d+)\s*:\s*[ℕℤ]\)", r"\1", text)
    m = re.fullmatch(r"([\d\s+*()-]+)(=|≠|<|≤|>|≥)([\d\s+*()-]+)", t.strip())
    if not m:
        return None
    try:
        a, b = eval(m.group(1), {"__builtins__": {}}), eval(m.group(3), {"__builtins__": {}})  # digits and + - * only
    except SyntaxError:
        return None
    return {"=": a == b, "≠": a != b, "<": a < b, "≤": a <= b, ">": a > b, "≥": a >= b}[m.group(2)]


def answer(cmd: str, env: int | None = None) -> dict:
    """The reply to one command, on environment ``env`` (None: a fresh one). Like the real REPL, the reply
    holds only this command's messages; a query command (``#print axioms N`` on ``env``) is answered from the
    declarations of that environment."""
    code = strip_comments(cmd)
    lines = code.split("\n")
    decls: dict[str, dict] = dict(ENVS.get(env, {})) if env is not None else {}
    auto_implicit = not re.search(r"set_option\s+autoImplicit\s+false", code)
    extra_axioms = {a for a in os.environ.get("FAKE_REPL_AXIOMS", "").split(",") if a}
    messages: list[dict] = []
    sorries: list[dict] = []
    namespaces: list[str] = []
    current: dict | None = None  # the declaration being read: kind, full name, first line, lines

    def finish() -> None:
        nonlocal current
        if current is None:
            return
        d, current = current, None
        text = "\n".join(t for _, t in d["lines"])
        head, _, _ = text.partition(":=")
        m = _DECL.match(head)
        sig = " ".join(head[m.end() :].split()) if m else ""
        axioms: set[str] = set()
        implicit: list[str] = []
        errors = False
        machine = _run_proof(d)  # the goals through its tactic proof (None for a term proof)
        holes = {(ln, col): g for ln, col, g in machine.out.holes} if machine is not None else {}
        for i, t in d["lines"]:
            sig_end = len(t) if i < d["body_line"] else (t.index(":=") if i == d["body_line"] else 0)
            for s in re.finditer(r"(?<![\w.'])sorry(?![\w'])", t):
                axioms.add("sorryAx")
                goal = holes.get((i, s.start())) or Goal(*goal_at(d["lines"], i, sig_text(d)))
                sorries.append(
                    {
                        "proofState": keep([goal]),
                        "pos": pos(i, s.start()),
                        "endPos": pos(i, s.end()),
                        "goal": render(goal),
                    }
                )
                if not any(
                    m["data"] == SORRY_WARNING and m["pos"]["line"] == d["line"] for m in messages
                ):  # once per declaration, as Lean warns
                    messages.append(
                        {
                            "severity": "warning",
                            "pos": pos(d["line"]),
                            "endPos": pos(d["line"], 7),
                            "data": SORRY_WARNING,
                        }
                    )
            for b in re.finditer(r"(?<![\w.'])(bogus[\w']*)", t):
                if b.start() < sig_end and auto_implicit:  # bound silently as an implicit variable (autoImplicit)
                    implicit.append(b.group(1))
                    continue
                errors = True
                messages.append(
                    {
                        "severity": "error",
                        "pos": pos(i, b.start()),
                        "endPos": pos(i, b.end()),
                        "data": f"unknown identifier '{b.group(1)}'",
                    }
                )
            messages.extend(_logged(i, t))
            if machine is None and re.search(r"(?<![\w.'])exact\?", t):
                found = _library_search(i, t, sig)
                messages.append(found)
                errors = errors or found["severity"] == "error"
        if machine is not None:  # `unsolved goals` and `exact?` as Lean reports them, after the block's own messages
            messages.extend(machine.out.messages)
            errors = errors or any(x["severity"] == "error" for x in machine.out.messages)
        if errors:  # Lean warns of a sorry only in a declaration without errors (have_by_sorry)
            messages[:] = [x for x in messages if not (x["data"] == SORRY_WARNING and x["pos"]["line"] == d["line"])]
        short = d["name"].rsplit(".", 1)[-1]
        if d["kind"] == "theorem" and short.startswith("autoform_eval_") and not errors:
            problem = _eval_check(short, sig, decls)
            if problem:
                errors = True
                messages.append(
                    {"severity": "error", "pos": pos(d["line"]), "endPos": pos(d["line"], 7), "data": problem}
                )
        if d["kind"] == "axiom":
            axioms = {d["name"]}
        else:
            axioms |= {"propext"} | extra_axioms
            for other, od in list(decls.items()):  # what it uses brings that declaration's axioms
                short = other.rsplit(".", 1)[-1]
                if re.search(r"(?<![\w'])(" + re.escape(other) + "|" + re.escape(short) + r")(?![\w'])", text):
                    axioms |= od["axioms"]
        if errors:
            axioms.add("sorryAx")
        if implicit:
            sig = "".join(f"{{{v} : Sort u_1}} " for v in dict.fromkeys(implicit)) + sig
        decls[d["name"]] = {"sig": sig, "axioms": axioms}

    for i, text in enumerate(lines, start=1):
        imp = re.match(r"^import\s+(\S+)", text)
        if imp and imp.group(1).startswith("bogus"):  # the REPL's reply to a module that is not on the path
            messages.append(
                {
                    "severity": "error",
                    "pos": pos(i),
                    "endPos": pos(i, len(text)),
                    "data": f"unknown module prefix '{imp.group(1)}'\n\nNo directory '{imp.group(1)}' or "
                    f"file '{imp.group(1)}.olean' in the search path entries",
                }
            )
            continue
        q = _QUERY.match(text)
        if q:
            finish()
            messages.append(
                _answer_query(
                    q.group(1) if q.group(1) == "#print axioms" else "#check", q.group(2), i, text, decls, namespaces
                )
            )
            continue
        m = _DECL.match(text)
        ns = re.match(r"^\s*(namespace|section|end)\b\s*(\S*)", text)
        if m:
            finish()
            current = {
                "kind": m.group(1),
                "name": ".".join([*namespaces, m.group(2)]),
                "line": i,
                "lines": [],
                "body_line": i + 10**6,
            }
        elif ns:
            finish()
            if ns.group(1) == "namespace":
                namespaces.extend(ns.group(2).split("."))
            elif ns.group(1) == "end" and ns.group(2):
                del namespaces[len(namespaces) - len(ns.group(2).split(".")) :]
            continue
        if current is not None:
            current["lines"].append((i, text))
            if ":=" in text and current["body_line"] > i:
                current["body_line"] = i
        else:
            messages.extend(_logged(i, text))
    finish()
    new_env = answer.env  # type: ignore[attr-defined]
    answer.env += 1  # type: ignore[attr-defined]
    ENVS[new_env] = decls
    reply: dict = {"env": new_env}
    if messages:
        reply["messages"] = messages
    if sorries:
        reply["sorries"] = sorries
    return reply


answer.env = 0  # type: ignore[attr-defined]


def main() -> None:
    mode = os.environ.get("FAKE_REPL_MODE", "")
    fault_on = os.environ.get("FAKE_REPL_FAULT_ON", "")
    log = os.environ.get("FAKE_REPL_LOG")
    latency = float(os.environ.get("FAKE_REPL_LATENCY", "0"))
    header_cost = float(os.environ.get("FAKE_REPL_HEADER_COST", "0"))
    line_cost = float(os.environ.get("FAKE_REPL_LINE_COST", "0"))
    while True:
        q = read_query()
        if q is None:
            return
        req = json.loads(q)
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps({**req, "pid": os.getpid()}) + "\n")
        if "tactic" in req:
            sys.stdout.write(json.dumps(run_tactic(req), ensure_ascii=False, indent=1) + "\n\n")
            sys.stdout.flush()
            continue
        cmd = req.get("cmd", "")
        is_header = cmd.strip().startswith("import") and "\n" not in cmd.strip()
        imports = any(line.startswith("import ") for line in cmd.splitlines())
        time.sleep(
            latency
            + (header_cost if imports else 0.0)
            + line_cost * sum(1 for line in cmd.splitlines() if line.strip())
        )
        if "env" in req and not (isinstance(req["env"], int) and 0 <= req["env"] < answer.env):
            sys.stdout.write(json.dumps({"message": "Unknown environment."}) + "\n\n")
            sys.stdout.flush()
            continue
        mode = "" if fault_on and fault_on not in cmd else os.environ.get("FAKE_REPL_MODE", "")
        if not is_header and mode == "hang":
            time.sleep(3600)
        if not is_header and mode == "die":
            sys.stdout.write('{"env": 1, "messages": [{"severity"')
            sys.stdout.flush()
            os._exit(1)
        if not is_header and mode == "garbage":
            sys.stdout.write("PANIC at Lean.Elab.Command unreachable code\n\n")
            sys.stdout.flush()
            continue
        if not is_header and mode == "oom":
            hog = []
            while True:
                hog.append(bytearray(50 * 1024 * 1024))
        sys.stdout.write(json.dumps(answer(cmd, req.get("env")), ensure_ascii=False, indent=1) + "\n\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
