"""The argument-taking conditionals (xparse's ``\\IfNoValueTF``, etoolbox's ``\\iftoggle``, LaTeX's
``\\@ifundefined``, ``\\@firstoftwo`` ...): how many arguments each takes, what it tests, and which argument it
leaves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from autoform.ingest.latex.argspec import NOVALUE, TRUE, Macro


class Tested(Protocol):
    """What a conditional's test reads: the toggles, the macros, and the expansion of its argument."""

    toggles: dict[str, bool]
    macros: dict[str, Macro]

    def expand(self, s: str, *, strings: bool = False, depth: int = 0) -> str: ...


def _novalue(_: Tested, a: str) -> bool:
    return a.strip() == NOVALUE


def _boolean(_: Tested, a: str) -> bool:
    return a.strip() == TRUE


def _toggle(r: Tested, a: str) -> bool:
    return r.toggles.get(r.expand(a, strings=True).strip(), False)


def _undefined(r: Tested, a: str) -> bool:
    return r.expand(a, strings=True).strip() not in r.macros


def _always(_: Tested, a: str) -> bool:
    return True


#: argument-taking conditionals: name -> (number of arguments, test of the first one or None)
BRANCHES: dict[str, tuple[int, Callable[[Tested, str], bool] | None]] = {
    "IfNoValueTF": (3, _novalue),
    "IfNoValueT": (2, _novalue),
    "IfNoValueF": (2, _novalue),
    "IfValueTF": (3, _novalue),
    "IfValueT": (2, _novalue),
    "IfValueF": (2, _novalue),
    "IfBooleanTF": (3, _boolean),
    "IfBooleanT": (2, _boolean),
    "IfBooleanF": (2, _boolean),
    "iftoggle": (3, _toggle),
    "@ifundefined": (3, _undefined),
    "@ifpackageloaded": (3, _always),
    "@ifclassloaded": (3, _always),
    "@ifpackagelater": (4, _always),
    "@ifclasslater": (4, _always),
    "@firstoftwo": (2, None),
    "@secondoftwo": (2, None),
    "@firstofone": (1, None),
    "@gobble": (1, None),
    "@gobbletwo": (2, None),
}


def pick_branch(name: str, nargs: int, first: bool) -> int:
    """Which argument a conditional leaves (-1: none)."""
    if name in ("@firstoftwo", "@firstofone"):
        return 0
    if name == "@secondoftwo":
        return 1
    if name in ("@gobble", "@gobbletwo"):
        return -1
    if name.startswith("IfValue"):
        first = not first
    if name in ("@ifpackagelater", "@ifclasslater"):
        return 2
    if nargs == 3:
        return 1 if first else 2
    if name.endswith("T"):
        return 1 if first else -1
    return -1 if first else 1
