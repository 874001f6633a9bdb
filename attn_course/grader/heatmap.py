"""A failed attention exercise as a picture: the learner's weights beside the expected ones.

``capture`` runs in the grader's process, where ``exercise.judge`` compared the outputs of the
failing case: when the output (or an item of it) looks like attention weights, scores or a
mask, it keeps one 2-D slice of both, at most ``MAX_SIDE`` × ``MAX_SIDE`` cells around the
first difference, with the cells that differ marked. ``heatmap_svg`` draws the pair as SVG
without matplotlib (a student's page is rendered for every submission, so it must be fast):
one colour scale for both, and every cell that differs outlined, so that weight leaking past a
causal mask shows at a glance. ``from_record`` reads a heatmap back from the journal, checked
and capped (the journal is a file anyone with the folder can edit).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

MAX_SIDE = 16  # cells per side of a heatmap (a larger output shows its window with the difference)
CELL = 22  # pixels per cell in the SVG


@dataclass(frozen=True)
class Heatmap:
    """One 2-D slice of a failing case's output: ``expected`` and ``actual`` (rows of
    numbers; NaN or ±inf where the output had them), ``differs`` marks the cells that are not
    close; ``kind``: weights, scores or mask; ``case``: the case's label; ``where``: which slice
    and window of the output it is, in words (``weights[0, 1], rows 0-7``)."""

    case: str
    kind: str
    where: str
    expected: tuple[tuple[float, ...], ...]
    actual: tuple[tuple[float, ...], ...]
    differs: tuple[tuple[bool, ...], ...]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.expected), len(self.expected[0]) if self.expected else 0


def capture(name: str, case_label: str, expected: Any, actual: Any) -> Heatmap | None:
    """The heatmap of a failing case whose output (or an item of the tuple it returns) looks
    like attention weights (rows or columns of non-negative numbers summing to 1), scores
    (``name`` says so) or a boolean mask, of 2 to 4 dimensions; None for any other output."""
    import torch

    pairs = (
        list(zip(expected, actual, strict=False))
        if isinstance(expected, tuple | list) and isinstance(actual, tuple | list)
        else [(expected, actual)]
    )
    labels = ["output"] if len(pairs) == 1 else [f"output[{i}]" for i in range(len(pairs))]
    for label, (want, got) in zip(labels, pairs, strict=True):
        if not (isinstance(want, torch.Tensor) and isinstance(got, torch.Tensor)):
            continue
        if want.shape != got.shape or not 2 <= want.dim() <= 4 or min(want.shape[-2:]) < 2:
            continue
        kind = _kind(name, want)
        if kind is None or not (got.is_floating_point() or got.dtype == torch.bool):
            continue
        want64, got64 = want.detach().double(), got.detach().double()
        close = torch.isclose(got64, want64, rtol=1e-3, atol=1e-4, equal_nan=True)
        if kind == "weights" and label != "output":
            label = "weights"
        return _window(case_label, kind, label, want64, got64, ~close)
    return None


def _kind(name: str, expected: Any) -> str | None:
    import torch

    if expected.dtype == torch.bool:
        return "mask"
    if not expected.is_floating_point():
        return None
    finite = expected[torch.isfinite(expected)]
    if "score" in name.lower():
        return "scores"
    if finite.numel() == expected.numel() and bool((expected >= 0).all()):
        for dim in (-1, -2):  # rows of weights, or columns (a softmax over another dim)
            sums = expected.double().sum(dim)
            if bool((((sums - 1).abs() < 1e-3) | (sums.abs() < 1e-6)).all()):
                return "weights"
    return None


def _window(case: str, kind: str, label: str, want: Any, got: Any, differs: Any) -> Heatmap:
    """The 2-D slice with the most differing cells, cut to ``MAX_SIDE`` around the first."""
    lead = want.shape[:-2]
    flat = differs.reshape(-1, *want.shape[-2:])
    best = int(flat.sum((-2, -1)).argmax()) if flat.shape[0] else 0
    index: tuple[int, ...] = ()
    rest = best
    for size in reversed(lead):
        index = (rest % size, *index)
        rest //= size
    want, got, differs = want[index], got[index], differs[index]
    full = tuple(want.shape)
    rows, cols = differs.nonzero(as_tuple=True)
    first_row = int(rows[0]) if rows.numel() else 0
    first_col = int(cols[0]) if cols.numel() else 0
    row0 = _start(first_row, want.shape[0])
    col0 = _start(first_col, want.shape[1])
    cut = (slice(row0, row0 + MAX_SIDE), slice(col0, col0 + MAX_SIDE))
    want, got, differs = want[cut], got[cut], differs[cut]
    where = label + (f"[{', '.join(map(str, index))}]" if index else "")
    height, width = want.shape
    window = []
    if height < full[0]:
        window.append(f"rows {row0}-{row0 + height - 1}")
    if width < full[1]:
        window.append(f"columns {col0}-{col0 + width - 1}")
    if window:
        where += ", " + ", ".join(window)
    return Heatmap(
        case, kind, where, _rows(want.tolist()), _rows(got.tolist()),
        tuple(tuple(bool(v) for v in row) for row in differs.tolist()),
    )  # fmt: skip


def _start(first: int, size: int) -> int:
    """Where a window of ``MAX_SIDE`` starts so that it holds ``first`` (a little after the
    start where it can)."""
    if size <= MAX_SIDE:
        return 0
    return max(0, min(first - MAX_SIDE // 4, size - MAX_SIDE))


def _rows(values: list) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(_number(v) for v in row) for row in values)


def _number(value: object) -> float:
    """A cell's value as stored: 4 significant digits (a float; NaN for what is not one)."""
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, int | float):
        return math.nan
    value = float(value)
    return float(f"{value:.4g}") if math.isfinite(value) else value


def from_record(record: object, text: Any = str) -> Heatmap | None:
    """A heatmap as the journal holds it (a dict, or a ``Heatmap``) checked: rows of numbers
    of one shape, at most ``MAX_SIDE`` each way, ``differs`` of the same shape; its texts passed
    through ``text`` (the reports' cleaning). None for anything else."""
    if isinstance(record, Heatmap) and _well_formed(record):  # already checked: labels only
        case, kind, where = (text(label) for label in (record.case, record.kind, record.where))
        if (case, kind, where) == (record.case, record.kind, record.where):
            return record
        return Heatmap(case, kind, where, record.expected, record.actual, record.differs)
    if isinstance(record, Heatmap):
        record = {
            "case": record.case, "kind": record.kind, "where": record.where,
            "expected": record.expected, "actual": record.actual, "differs": record.differs,
        }  # fmt: skip
    if not isinstance(record, dict):
        return None
    try:
        expected, actual = _matrix(record["expected"]), _matrix(record["actual"])
        differs = record["differs"]
        shape = (len(expected), len(expected[0]))
        if not (
            1 <= shape[0] <= MAX_SIDE and 1 <= shape[1] <= MAX_SIDE
            and all(len(row) == shape[1] for row in (*expected, *actual))
            and len(actual) == shape[0]
            and isinstance(differs, list | tuple) and len(differs) == shape[0]
            and all(isinstance(row, list | tuple) and len(row) == shape[1] for row in differs)
            and all(isinstance(v, bool) for row in differs for v in row)
        ):  # fmt: skip
            return None
        labels = [record[key] for key in ("case", "kind", "where")]
    except (KeyError, TypeError, IndexError):
        return None
    if not all(isinstance(label, str) for label in labels):
        return None
    case, kind, where = (text(label) for label in labels)
    differs = tuple(tuple(row) for row in differs)
    return Heatmap(case, kind, where, expected, actual, differs)


def _well_formed(heatmap: Heatmap) -> bool:
    """Whether a ``Heatmap`` holds three tuples of tuples of one shape within the cap, of
    floats and bools (cheap: what ``capture`` and ``from_record`` make passes)."""
    grids = (heatmap.expected, heatmap.actual, heatmap.differs)
    if not all(type(grid) is tuple and 0 < len(grid) <= MAX_SIDE for grid in grids):
        return False
    width = len(heatmap.expected[0])
    if not 0 < width <= MAX_SIDE or len({len(grid) for grid in grids}) != 1:
        return False
    for want, got, differs in zip(*grids, strict=True):
        if not (type(want) is type(got) is type(differs) is tuple):
            return False
        if not len(want) == len(got) == len(differs) == width:
            return False
        if not all(type(v) is float for v in (*want, *got)):
            return False
        if not all(type(v) is bool for v in differs):
            return False
    return all(isinstance(label, str) for label in (heatmap.case, heatmap.kind, heatmap.where))


def _matrix(rows: object) -> tuple[tuple[float, ...], ...]:
    if not isinstance(rows, list | tuple) or not rows or len(rows) > MAX_SIDE:
        raise TypeError("not a matrix")
    matrix = []
    for row in rows:
        if not isinstance(row, list | tuple) or not row or len(row) > MAX_SIDE:
            raise TypeError("not a row")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in row):
            raise TypeError("not a number")
        matrix.append(tuple(float(v) for v in row))
    return tuple(matrix)


# a colour scale from pale to dark blue (light for 0, dark for the largest weight), 256 steps
_ENDS = ((247, 8), (251, 48), (255, 107))  # (red, green, blue) of 0 and of the top
_PALETTE = tuple(
    "#" + "".join(f"{round(low + (high - low) * step / 255):02x}" for low, high in _ENDS)
    for step in range(256)
)


def _colour(value: float, low: float, high: float) -> str:
    if not math.isfinite(value):
        return "#f0a202"  # NaN or inf: amber, named in the cell's tooltip
    share = 0.0 if high <= low else min(1.0, max(0.0, (value - low) / (high - low)))
    return _PALETTE[round(share * 255)]


def _label(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def _outline(x: int, y: int, leak: bool) -> str:
    """The red outline of a cell that differs: thick where the expected value is 0 and the
    learner's is not (weight past a mask), thin elsewhere."""
    width, inset = (3, 2) if leak else (1.5, 1)
    css = "outline leak" if leak else "outline"
    return (
        f'<rect class="{css}" x="{x + inset}" y="{y + inset}" width="{CELL - 2 * inset}" '
        f'height="{CELL - 2 * inset}" fill="none" stroke="#cf222e" stroke-width="{width}"/>'
    )


@functools.lru_cache(maxsize=256)  # a mistake common in the class draws the same picture
def heatmap_svg(heatmap: Heatmap) -> Markup:
    """The learner's slice beside the expected one as one SVG element: one colour scale for
    both, a red outline (class ``outline``; ``outline leak`` where only the learner's value
    is not 0) on every cell that differs; a cell of yours shows both values in its tooltip."""
    values = [v for grid in (heatmap.expected, heatmap.actual) for row in grid for v in row]
    finite = [v for v in values if math.isfinite(v)] or [0.0]
    low, high = min(min(finite), 0.0), max(finite)
    rows, cols = heatmap.shape
    gap, top, left = 2 * CELL, 22, 4
    width = left + 2 * cols * CELL + gap + 4
    height = top + rows * CELL + 6
    parts = [
        f'<svg class="heatmap" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="your {escape(heatmap.kind)} beside the expected ones">'
    ]
    for position, (title, grid) in enumerate(
        (("yours", heatmap.actual), ("expected", heatmap.expected))
    ):
        x0 = left + position * (cols * CELL + gap)
        parts.append(f'<text x="{x0}" y="{top - 8}" class="grid-title">{title}</text>')
        parts.append(f'<g class="grid {title}">')
        outlines = []
        for r, (row, wanted, differs) in enumerate(
            zip(grid, heatmap.expected, heatmap.differs, strict=True)
        ):
            y = top + r * CELL
            for c, value in enumerate(row):
                x = x0 + c * CELL
                css = ' class="differs"' if differs[c] else ""
                rect = (
                    f'<rect{css} x="{x}" y="{y}" width="{CELL}" height="{CELL}" '
                    f'fill="{_colour(value, low, high)}"'
                )
                if position == 0:  # the tooltip, once: yours and the expected value
                    tip = f"[{r}, {c}] yours: {_label(value)}, expected {_label(wanted[c])}"
                    rect += f"><title>{tip}</title></rect>"
                else:
                    rect += "/>"
                parts.append(rect)
                if differs[c]:  # drawn last, over the neighbours
                    outlines.append(_outline(x, y, leak=wanted[c] == 0 and row[c] != 0))
        parts += outlines
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))
