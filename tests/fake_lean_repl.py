#!/usr/bin/env python3
"""A scripted stand-in for the Lean REPL: the oracle test double. It lives only in tests/.

It speaks the REPL's protocol (JSON commands separated by blank lines, replies in the REPL's own shapes:
``env``, ``messages`` with ``severity/pos/endPos/data``, ``sorries``) and answers by simple rules, so the
production client stack (lean-interact -> ReplOracle -> gate) runs unchanged on top of it:

* the header command (``import ...``) elaborates to env 0;
* a ``sorry`` token gives the warning "declaration uses 'sorry'" and a ``sorries`` entry, and makes the
  declaration depend on ``sorryAx``;
* an identifier starting with ``bogus`` is an error "unknown identifier '...'", at its line;
* ``#print axioms N`` answers "'N' depends on axioms: [propext]" (plus ``sorryAx`` when sorry was used, and
  ``FAKE_REPL_AXIOMS`` extra axioms named in the environment);
* ``set_option pp.all true in #check @N`` answers "@N : <the declaration's signature, normalized>".

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


def answer(cmd: str) -> dict:
    code = strip_comments(cmd)
    lines = code.split("\n")
    messages: list[dict] = []
    sorries: list[dict] = []
    uses_sorry = False
    decl_line = 1
    for i, text in enumerate(lines, start=1):
        if re.match(r"\s*(theorem|lemma|def|abbrev|instance)\b", text):
            decl_line = i
        if text.lstrip().startswith(("#print", "set_option pp.all")):
            continue
        for m in re.finditer(r"(?<![\w.'])sorry(?![\w'])", text):
            uses_sorry = True
            sorries.append({"proofState": len(sorries), "pos": pos(i, m.start()), "endPos": pos(i, m.end()),
                            "goal": "⊢ False"})
            messages.append({"severity": "warning", "pos": pos(decl_line), "endPos": pos(decl_line, 7),
                             "data": "declaration uses 'sorry'"})
        for m in re.finditer(r"(?<![\w.'])(bogus[\w']*)", text):
            messages.append({"severity": "error", "pos": pos(i, m.start()), "endPos": pos(i, m.end()),
                             "data": f"unknown identifier '{m.group(1)}'"})
    for i, text in enumerate(lines, start=1):
        m = re.match(r"\s*#print axioms\s+(\S+)", text)
        if m:
            axioms = ["propext"] + [a for a in os.environ.get("FAKE_REPL_AXIOMS", "").split(",") if a]
            if uses_sorry:
                axioms.append("sorryAx")
            messages.append({"severity": "info", "pos": pos(i), "endPos": pos(i, len(text)),
                             "data": f"'{m.group(1)}' depends on axioms: [{', '.join(axioms)}]"})
        m = re.match(r"\s*set_option pp\.all true in #check @(\S+)", text)
        if m:
            short = m.group(1).rsplit(".", 1)[-1]
            sig = decl_signature(code, short)
            if sig is None:
                messages.append({"severity": "error", "pos": pos(i), "endPos": pos(i, len(text)),
                                 "data": f"unknown constant '{m.group(1)}'"})
            else:
                messages.append({"severity": "info", "pos": pos(i), "endPos": pos(i, len(text)),
                                 "data": f"@{m.group(1)} : {sig}"})
    reply: dict = {"env": answer.env}
    answer.env += 1
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
        cmd = req.get("cmd", "")
        is_header = cmd.strip().startswith("import") and "\n" not in cmd.strip()
        imports = any(line.startswith("import ") for line in cmd.splitlines())
        time.sleep(latency + (header_cost if imports else 0.0)
                   + line_cost * sum(1 for line in cmd.splitlines() if line.strip()))
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
        sys.stdout.write(json.dumps(answer(cmd), ensure_ascii=False, indent=1) + "\n\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
