"""Terminal tables that fit the terminal: the columns a person needs at a glance first, the others only where
they fit whole (every column keeps its full header and cells; nothing is cut to "bo…"). The rest is in
``--json`` or ``--wide``."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

#: rich's default box: one character of border per column plus one, and one space of padding on each side
_BORDER, _PAD = 1, 2


def column_width(header: str, cells: Sequence[str]) -> int:
    """The width a column needs to show its header and every cell without cutting them."""
    return max([len(header), *(len(c) for c in cells)])


def natural_width(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """The width of the whole table, every column shown whole."""
    return _BORDER + sum(column_width(h, [r[k] for r in rows]) + _PAD + _BORDER for k, h in enumerate(headers))


def fit_columns(
    headers: Sequence[str], rows: Sequence[Sequence[str]], priority: Sequence[int], width: int, *, wide: bool = False
) -> list[int]:
    """The indices of the columns to show, in table order: all of them with ``wide``; else the columns of
    ``priority`` (most needed first) as long as the table, with its borders, stays within ``width``. The first
    column of ``priority`` is always shown."""
    if wide:
        return list(range(len(headers)))
    chosen: list[int] = []
    used = _BORDER
    for k in priority:
        need = column_width(headers[k], [r[k] for r in rows]) + _PAD + _BORDER
        if chosen and used + need > width:
            continue  # a narrower column further down the list may still fit
        chosen.append(k)
        used += need
    return sorted(chosen)


def fitted_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    priority: Sequence[int],
    width: int,
    *,
    wide: bool = False,
) -> Table:
    """A rich table of the columns :func:`fit_columns` chooses; with ``wide`` none is dropped."""
    keep = fit_columns(headers, rows, priority, width, wide=wide)
    hidden = len(headers) - len(keep)
    caption = f"{hidden} more column(s) with --wide or --json" if hidden else None
    t = Table(title=title, caption=caption)
    for k in keep:
        t.add_column(headers[k], no_wrap=True)
    for r in rows:
        t.add_row(*(Text(r[k]) for k in keep))
    return t


def fit_line(parts: Sequence[tuple[str, str]], width: int, sep: str = "  ") -> Text:
    """One line of ``(text, style)`` parts, most needed first: the parts that fit in ``width``, in their order."""
    chosen: list[int] = []
    used = 0
    for k, (text, _) in enumerate(parts):
        need = len(text) + (len(sep) if chosen else 0)
        if used + need <= width:
            chosen.append(k)
            used += need
    line = Text()
    for n, k in enumerate(chosen):
        if n:
            line.append(sep)
        line.append(parts[k][0], style=parts[k][1])
    return line
