"""Regions of a PDF page that are not the body's text: the margin column and figures, found from the page's own
geometry (issue 19).

pypdf's ``visitor_operand_before`` sees every drawing operator with the current transformation, so the painted
paths and images of a page are known with their bounding boxes (:class:`Graphics`). A **figure** is a group of
painted shapes, touching or nearly so, holding at least one drawing (a curve, a slanted line, a non-rectangular
fill, an image) and no line of prose: rules, fraction bars, tables and the frames of boxed statements are made of
axis-parallel lines and rectangles, and a frame or a background holds prose. The short lines of text on or just
around a figure are its labels, and the lines starting "Figure 3.1" next to it are its caption.

The **margin column** lies outside the body's text block: the block's left edge is where most lines of prose start
and its right edge where they end (each piece's width learnt from the page itself: the distance to the next piece
on its baseline, by font and size). A piece starting right of the block, or ending left of it with words in it
(not a hanging label such as "3.4."), is in the margin, unless the page has a second column of prose there.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

#: a line with this many letters is prose, never a figure's label
PROSE_LETTERS = 20
#: shapes this close (PDF units) are parts of one drawing
_TOUCH = 3.0
#: how far (in font sizes) around a figure its labels sit
_LABEL_PAD = 0.8
_CAPTION_RE = re.compile(r"^\s*(?:Figure|Fig\.|FIGURE|Diagram)\s*\d[\w.\-]*\s*[:.]?")
_WORD_RE = re.compile(r"[A-Za-z]{3,}")
_PAINT = {b"S", b"s", b"f", b"F", b"f*", b"B", b"B*", b"b", b"b*"}
_PATH_OPS = frozenset({b"m", b"l", b"c", b"v", b"y", b"re", b"n", b"Do"} | _PAINT)


@dataclass
class Piece:
    """A run of text as pypdf's visitor reports it, with its font, size and place (its width estimated later)."""

    text: str
    font: str
    size: float
    x: float
    y: float
    width: float = 0.0
    region: str = ""  # "margin" | "figure" | "caption" | "" (the body)


@dataclass(frozen=True)
class Shape:
    """A painted path or an image: its bounding box and whether it is a drawing (not a rule or a frame)."""

    x0: float
    y0: float
    x1: float
    y1: float
    drawn: bool

    def near(self, other: Shape, pad: float) -> bool:
        return (
            self.x0 - pad <= other.x1
            and other.x0 - pad <= self.x1
            and self.y0 - pad <= other.y1
            and other.y0 - pad <= self.y1
        )

    def holds(self, x: float, y: float) -> bool:
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1


@dataclass
class Graphics:
    """A ``visitor_operand_before`` collecting the page's painted shapes (``images``: the page's image names)."""

    images: set[str] = field(default_factory=set)
    shapes: list[Shape] = field(default_factory=list)
    _pts: list[tuple[float, float]] = field(default_factory=list)
    _drawn: bool = False

    def __call__(self, op: bytes, args: list[object], cm: list[float], tm: list[float]) -> None:
        if op not in _PATH_OPS:
            return
        try:
            self._op(op, [float(a) for a in args if isinstance(a, (int, float))], args, cm)
        except (TypeError, ValueError, IndexError):
            self._pts, self._drawn = [], False

    def _op(self, op: bytes, nums: list[float], args: list[object], cm: list[float]) -> None:
        def pt(x: float, y: float) -> tuple[float, float]:
            return x * cm[0] + y * cm[2] + cm[4], x * cm[1] + y * cm[3] + cm[5]

        if op in (b"m", b"l"):
            p = pt(nums[0], nums[1])
            if op == b"l" and self._pts:
                q = self._pts[-1]
                self._drawn |= abs(p[0] - q[0]) > 0.5 and abs(p[1] - q[1]) > 0.5  # a slanted line
            self._pts.append(p)
        elif op in (b"c", b"v", b"y"):
            ctrl = [pt(nums[i], nums[i + 1]) for i in range(0, len(nums) - 1, 2)]
            self._pts += _on_curve(self._pts[-1], ctrl) if self._pts and len(ctrl) == 3 else ctrl
            self._drawn = True
        elif op == b"re":
            x, y, w, h = nums[:4]
            self._pts += [pt(x, y), pt(x + w, y + h)]
        elif op in _PAINT:
            self._shape(self._drawn)
        elif op == b"n":
            self._pts, self._drawn = [], False
        elif op == b"Do" and args and str(args[0]) in self.images:
            self._pts = [pt(0, 0), pt(1, 1)]
            self._shape(True)

    def _shape(self, drawn: bool) -> None:
        if self._pts:
            xs, ys = [p[0] for p in self._pts], [p[1] for p in self._pts]
            self.shapes.append(Shape(min(xs), min(ys), max(xs), max(ys), drawn))
        self._pts, self._drawn = [], False


def _on_curve(p0: tuple[float, float], ctrl: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points on a Bézier curve (its control points lie outside it: a bounding box from them is too wide)."""
    (p1, p2, p3), out = ctrl, []
    for t in (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0):
        a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3
        out.append((a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0], a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1]))
    return out


def image_names(resources: object) -> set[str]:
    """The names of the image XObjects in a page's resources ("/Im0")."""
    try:
        xobjects = resources.get("/XObject") or {}  # type: ignore[attr-defined]
        return {str(k) for k, v in xobjects.items() if v.get_object().get("/Subtype") == "/Image"}
    except Exception:  # a broken resource dictionary: no images known
        return set()


# ------------------------------------------------------------------------------------------ widths


def estimate_widths(lines: list[list[Piece]]) -> None:
    """Each piece's width: the distance to the next piece on its baseline, unless that is a gap (wider than its
    characters can be), else its characters times the width per character learnt on this page for its font and
    size (half its size when too little is seen)."""
    learnt: dict[tuple[str, float], list[float]] = {}
    for line in lines:
        for a, b in zip(line, line[1:], strict=False):
            if abs(a.y - b.y) < 0.1 * a.size and 0 < b.x - a.x < 0.8 * a.size * len(a.text):
                seen = learnt.setdefault((a.font, round(a.size, 1)), [0.0, 0.0])
                seen[0] += b.x - a.x
                seen[1] += len(a.text)
    for line in lines:
        for k, a in enumerate(line):
            total, n = learnt.get((a.font, round(a.size, 1)), (0.0, 0.0))
            a.width = len(a.text) * (total / n if n >= 20 else 0.5 * a.size)
            b = line[k + 1] if k + 1 < len(line) else None
            if b is not None and abs(a.y - b.y) < 0.1 * a.size and 0 < b.x - a.x <= 1.3 * a.width:
                a.width = b.x - a.x


def _letters(pieces: list[Piece]) -> int:
    return sum(c.isalpha() for p in pieces for c in p.text)


# ------------------------------------------------------------------------------------------ the margin


@dataclass(frozen=True)
class Block:
    """The body's text block on a page: where its lines of prose start and end."""

    left: float
    right: float


def _prose(line: list[Piece]) -> bool:
    """A line of running text (four words or more), not a display whose variables are letters too."""
    return len(_WORD_RE.findall("".join(p.text for p in line))) >= 4


def text_block(lines: list[list[Piece]]) -> Block | None:
    """The page's text block, or None when its prose does not show it: the left edge is the leftmost start shared by
    two lines of prose; the right edge the furthest end of the prose starting near it (at the edge, indented, in a
    frame: not beyond the width of the lines at the edge), which three lines reach (justified text; within 5%)."""
    prose = [line for line in lines if line and _prose(line)]
    starts = Counter(round(line[0].x) for line in prose)
    shared = [x for x, n in starts.items() if n >= 2]
    if not shared:
        return None
    left = min(shared)
    at_left = [_line_end(line) for line in prose if abs(line[0].x - left) < 2.0]
    reach = 0.3 * (max(at_left) - left)
    ends = sorted((_line_end(line) for line in prose if line[0].x < left + reach), reverse=True)
    if len(ends) < 3 or ends[2] < ends[0] - 0.05 * (ends[0] - left):
        return None
    return Block(left, ends[0])


def _line_end(line: list[Piece]) -> float:
    """Where a line's text ends: its pieces side by side from its start, up to a gap (a note set beyond it)."""
    end = line[0].x + line[0].width
    for p in sorted(line[1:], key=lambda p: p.x):
        if p.x > end + 1.5 * p.size:
            break
        end = max(end, p.x + p.width)
    return end


def mark_margin(lines: list[list[Piece]], block: Block) -> None:
    """Mark the pieces set in the margin column: words (two or more) starting right of the block past a gap after
    the line's own text (a display that overflows the block runs on without one), or ending left of it."""
    width = block.right - block.left
    outside = [_outside(line, block) for line in lines]
    # a second column to the right, as long as the body, is a two-column page, not a margin
    body = sum(1 for line in lines if any(p.text.strip() and not _right_of(p, block) for p in line))
    if sum(1 for line in outside if line) >= max(4, 0.5 * body) or any(
        _prose(line) and sum(p.width for p in line) > 0.6 * width for line in outside
    ):
        return
    for line in outside:
        for p in line:
            p.region = "margin"


def _outside(line: list[Piece], block: Block) -> list[Piece]:
    """The pieces of a line set in the margin (none unless they hold two words)."""
    visible = [p for p in line if p.text.strip()]
    if not visible:
        return []
    end = _line_end(visible) if not _right_of(visible[0], block) else None
    out = [
        p for p in visible if (_right_of(p, block) and (end is None or p.x > end + 0.5 * p.size)) or _left_of(p, block)
    ]
    return out if len(_WORD_RE.findall(" ".join(p.text for p in out))) >= 2 else []


def _right_of(p: Piece, block: Block) -> bool:
    return p.x > block.right + 0.5 * p.size


def _left_of(p: Piece, block: Block) -> bool:
    return p.x + p.width < block.left - 0.5 * p.size and sum(c.isalpha() for c in p.text) >= 4


# ------------------------------------------------------------------------------------------ figures


def figures(shapes: list[Shape], lines: list[list[Piece]]) -> list[Shape]:
    """The page's figures: groups of touching shapes with a drawing among them and no prose inside."""
    if not any(s.drawn for s in shapes):
        return []  # rules, frames and tables only (most pages)
    prose = [(p.x, p.y) for line in lines if _letters(line) >= PROSE_LETTERS for p in line if p.text.strip()]
    # a shape holding prose is a frame or a background, not part of a drawing
    parts = [s for s in shapes if not _holds_any(s, prose)]
    out: list[Shape] = []
    for g in _touching(parts):
        box = Shape(min(s.x0 for s in g), min(s.y0 for s in g), max(s.x1 for s in g), max(s.y1 for s in g), True)
        big = box.x1 - box.x0 >= 20 or box.y1 - box.y0 >= 20
        if big and any(s.drawn for s in g) and not _holds_any(box, prose):
            out.append(box)
    return out


def _holds_any(box: Shape, points: list[tuple[float, float]]) -> bool:
    return any(box.holds(x, y) for x, y in points)


def _touching(shapes: list[Shape]) -> list[list[Shape]]:
    """The shapes in groups that touch (or nearly), each shape joining every group it touches."""
    groups: list[list[Shape]] = []
    for s in shapes:
        near = [g for g in groups if any(s.near(t, _TOUCH) for t in g)]
        groups = [g for g in groups if g not in near] + [[s] + [t for g in near for t in g]]
    return groups


def mark_figures(lines: list[list[Piece]], boxes: list[Shape]) -> None:
    """Mark the lines that are a figure's labels (short lines on or just around it) and its caption."""
    for k, line in enumerate(lines):
        visible = [p for p in line if p.text.strip() and not p.region]
        if not visible:
            continue
        for box in boxes:
            if _letters(visible) < PROSE_LETTERS and all(_on(p, box) for p in visible):
                for p in visible:
                    p.region = "figure"
                break
            if _CAPTION_RE.match("".join(p.text for p in visible)) and _next_to(visible[0], box):
                _mark_caption(lines, k)
                break


def _on(p: Piece, box: Shape) -> bool:
    """Whether a piece sits on a figure or just around it (not on its left: a list's "(a)" hangs there)."""
    pad = _LABEL_PAD * p.size
    return (
        p.x < box.x1 + pad
        and p.x + p.width > box.x0 - 0.2 * p.size
        and p.y - 0.2 * p.size < box.y1 + pad
        and p.y + 0.7 * p.size > box.y0 - pad
    )


def _next_to(p: Piece, box: Shape) -> bool:
    """A caption's first line: within three lines below the figure or above it, over its width."""
    below = 0 < box.y0 - p.y < 3.5 * p.size
    above = 0 < p.y - box.y1 < 3 * p.size
    return box.x0 - 10 * p.size < p.x < box.x1 and (below or above)


def _mark_caption(lines: list[list[Piece]], k: int) -> None:
    """The caption starting on line ``k`` and the lines it wraps onto (one baseline pitch apart, no wider gap)."""
    prev: Piece | None = None
    for line in lines[k:]:
        visible = [p for p in line if p.text.strip() and not p.region]
        if not visible:
            continue
        first = visible[0]
        if prev is not None and not (0 < prev.y - first.y < 1.5 * first.size):
            return
        for p in visible:
            p.region = "caption"
        prev = first


__all__ = ["Block", "Graphics", "Piece", "Shape", "estimate_widths", "figures", "image_names", "mark_figures"]
