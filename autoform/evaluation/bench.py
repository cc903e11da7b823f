"""Benchmark files: JSON Lines, one problem a line, with an informal statement and a reference Lean statement.

Field names accepted (the first present wins):

=================  ===========================================================================================
field              names
=================  ===========================================================================================
name               ``name``, ``id``, ``problem_name``, ``full_name``, ``theorem_name`` (else ``line<N>``); a
                   name met again is that problem's name ``@line<N>`` (ProofNet-Verified has one such pair)
informal statement ``informal_stmt``, ``informal_statement``, ``nl_statement``, ``natural_language_statement``,
                   ``informal_prefix`` (miniF2F style), ``problem``
reference (Lean)   ``formal_stmt``, ``formal_statement``, ``lean4_statement``, ``lean4_code``, ``lean_statement``
header             ``header``, ``lean4_header``, ``src_header``, ``imports`` (else ``import Mathlib``)
helper             ``helper``, ``helpers`` (definitions the reference needs, put after the header)
informal proof     ``informal_proof``, ``nl_proof``, ``informal_solution``
split              ``split`` (``--split`` keeps one value)
prove reference    ``prove_reference`` (``true``: prove the reference statement too, as ``--prove-reference``
                   asks for every problem)
=================  ===========================================================================================

A file whose content is one JSON array of such objects is read too (its problems numbered ``item N``). Anything
else (a line that is not a JSON object, a missing field, a repeated name, text that is not UTF-8) is an error
naming the file and line, what was expected and what to do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from autoform.errors import UsageError

NAME_KEYS = ("name", "id", "problem_name", "full_name", "theorem_name")
INFORMAL_KEYS = (
    "informal_stmt",
    "informal_statement",
    "nl_statement",
    "natural_language_statement",
    "informal_prefix",
    "problem",
)
FORMAL_KEYS = ("formal_stmt", "formal_statement", "lean4_statement", "lean4_code", "lean_statement")
HEADER_KEYS = ("header", "lean4_header", "src_header", "imports")
HELPER_KEYS = ("helper", "helpers")
PROOF_KEYS = ("informal_proof", "nl_proof", "informal_solution")
DEFAULT_HEADER = "import Mathlib"


class BenchError(UsageError):
    """A benchmark file that cannot be read; the message names the file and line."""


class Problem(BaseModel):
    name: str
    informal: str
    formal: str  # the reference statement, as given (``theorem n ... := by sorry`` or without a proof)
    header: str = DEFAULT_HEADER
    helper: str = ""
    informal_proof: str = ""
    split: str = ""
    prove_reference: bool = False
    line: int = 0

    @property
    def lean_header(self) -> str:
        """The Lean header of this problem's checks: the benchmark's header, then its helper definitions."""
        return self.header.rstrip() + ("\n\n" + self.helper.strip() if self.helper.strip() else "")


def _first(row: dict, keys: tuple[str, ...]) -> str | None:
    for k in keys:
        v = row.get(k)
        if isinstance(v, str) and v.strip():
            return v
        if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
            return "\n".join(v)
    return None


def _strip_informal(text: str) -> str:
    """miniF2F's ``informal_prefix`` is a Lean doc comment: its text only."""
    t = text.strip()
    m = re.fullmatch(r"/--?(.*?)-/", t, re.S)
    return m.group(1).strip() if m else t


def _json_row(path: Path, n: int, raw: str) -> dict[str, Any]:
    """One line of a benchmark file as a JSON object; a BenchError naming the line otherwise."""
    try:
        row = json.loads(raw)
    except json.JSONDecodeError as e:
        raise BenchError(
            f"{path}:{n}: not a JSON object ({e.msg} at column {e.colno}); a benchmark is "
            "JSON Lines, one problem object a line"
        ) from None
    if not isinstance(row, dict):
        raise BenchError(f"{path}:{n}: expected a JSON object, found {type(row).__name__}")
    return row


def _flag(where: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise BenchError(f"{where}: prove_reference must be true or false, found {value!r}")


def _problem(where: str, n: int, row: dict[str, Any]) -> Problem:
    """The problem of one benchmark line; a BenchError naming the fields that are missing."""
    informal, formal = _first(row, INFORMAL_KEYS), _first(row, FORMAL_KEYS)
    missing = [
        what
        for what, v in (
            ("an informal statement (" + ", ".join(INFORMAL_KEYS) + ")", informal),
            ("a reference Lean statement (" + ", ".join(FORMAL_KEYS) + ")", formal),
        )
        if v is None
    ]
    if missing or informal is None or formal is None:
        raise BenchError(
            f"{where}: expected {' and '.join(missing)}; found the fields "
            f"{', '.join(sorted(row)) or '(none)'}. Rename the fields or see "
            "autoform/evaluation/bench.py for the names accepted"
        )
    return Problem(
        name=str(next((row[k] for k in NAME_KEYS if row.get(k) not in (None, "")), f"line{n}")),
        informal=_strip_informal(informal),
        formal=formal,
        header=_first(row, HEADER_KEYS) or DEFAULT_HEADER,
        helper=_first(row, HELPER_KEYS) or "",
        informal_proof=_first(row, PROOF_KEYS) or "",
        split=str(row.get("split") or ""),
        prove_reference=_flag(where, row.get("prove_reference", False)),
        line=n,
    )


def _rows(path: Path) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(where, line or item number, object) of each problem: JSON Lines, or one JSON array (numbered by item)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise BenchError(f"{path}:{line}: not UTF-8 text ({e.reason}); save the benchmark as UTF-8") from None
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise BenchError(f"{path}:{e.lineno}: not a JSON array ({e.msg} at column {e.colno})") from None
        for n, row in enumerate(items, start=1):
            if not isinstance(row, dict):
                raise BenchError(f"{path}: item {n}: expected a JSON object, found {type(row).__name__}")
            yield f"{path}: item {n}", n, row
        return
    for n, raw in enumerate(text.splitlines(), start=1):
        if raw.strip():
            yield f"{path}:{n}", n, _json_row(path, n, raw)


def _read_problems(path: Path) -> Iterator[Problem]:
    """Every problem of a benchmark file, in file order; a BenchError at the first bad line or repeated name."""
    seen: set[str] = set()
    for where, n, row in _rows(path):
        p = _problem(where, n, row)
        if p.name in seen:  # ProofNet-Verified names two different problems Rudin_exercise_4_8a (lines 168, 351)
            p.name = f"{p.name}@line{n}"
            if p.name in seen:
                raise BenchError(f"{where}: problem name {p.name!r} appears twice; names must be unique")
        seen.add(p.name)
        yield p


def load(path: Path, *, split: str | None = None, limit: int | None = None) -> list[Problem]:
    """The problems of a benchmark file, in file order (``split``: only those of that split)."""
    if not path.is_file():
        raise BenchError(f"{path}: no such file; pass a benchmark in JSON Lines (one problem a line)")
    problems: list[Problem] = []
    for p in _read_problems(path):
        if split is not None and p.split != split:
            continue
        problems.append(p)
        if limit is not None and len(problems) >= limit:
            break
    if split is not None and not problems:
        raise BenchError(f"{path}: no problem has split {split!r}")
    return problems
