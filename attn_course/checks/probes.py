"""Experiments the probes run on what the learner's code did: which axis sums to 1, which
scale the scores had, whether the output is a constant multiple of the right one.

Each reads outcomes already recorded (the learner's output on a case and on the cases derived
from it, see ``Exercise.derived``) and recomputes only reference values, so a probe judges the
same way in ``run_check`` and in the grader, where the learner's code ran in a sandbox.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from attn_course.checks.exercise import same


def finite(value: Any) -> bool:
    """Whether ``value`` is a tensor (or a tuple of them) with only finite values."""
    if isinstance(value, tuple | list):
        return bool(value) and all(finite(item) for item in value)
    return isinstance(value, torch.Tensor) and bool(torch.isfinite(value).all())


def normalised_axes(weights: Any, atol: float = 1e-4) -> list[int]:
    """The axes (negative indices) along which ``weights`` sums to 1 everywhere."""
    if not finite(weights) or not weights.is_floating_point() or weights.dim() == 0:
        return []
    return [
        axis - weights.dim()
        for axis in range(weights.dim())
        if weights.size(axis) >= 3  # a sum over 2 or fewer can be 1 by chance
        and torch.allclose(weights.double().sum(axis), torch.ones(()).double(), atol=atol)
    ]


def constant_factor(actual: Any, expected: Any) -> float | None:
    """``k`` where ``actual`` = k · ``expected`` (k ≠ 1), else None."""
    if not (finite(actual) and finite(expected) and actual.shape == expected.shape):
        return None
    a, e = actual.double().flatten(), expected.double().flatten()
    if float(e.norm()) == 0.0:
        return None
    k = float(a @ e / (e @ e))
    if abs(k - 1) < 1e-3 or not torch.allclose(a, k * e, rtol=1e-3, atol=1e-5):
        return None
    return k


def fitted_scale(
    output: Any, run: Callable[[float], Any], right: float, tries: Sequence[float] = ()
) -> float | None:
    """The scale ``s`` for which ``run(s)`` gives ``output`` (None: none does), trying the
    named ``tries`` first and then a search over s on a log grid. ``right`` is the right
    scale, never returned."""
    if not finite(output):
        return None
    for s in tries:
        if not math.isclose(s, right) and same(output, run(s), check_dtype=False):
            return s

    def error(log_s: float) -> float:
        value = run(math.exp(log_s))
        value = value[0] if isinstance(value, tuple) else value
        mine = output[0] if isinstance(output, tuple) else output
        return float((value.double() - mine.double()).abs().max())

    grid = [i / 4 for i in range(-24, 17)]  # s from e^-6 to e^4
    best = min(grid, key=error)
    low, high = best - 0.25, best + 0.25
    for _ in range(40):  # golden-section search on the bracket
        a, b = low + 0.382 * (high - low), low + 0.618 * (high - low)
        low, high = (low, b) if error(a) < error(b) else (a, high)
    s = math.exp((low + high) / 2)
    if math.isclose(s, right, rel_tol=1e-3) or not same(output, run(s), check_dtype=False):
        return None
    return s


def name_scale(s: float, widths: dict[str, int]) -> str:
    """Say what ``s`` is: "1/√Dv", "1/D", "1 (no scale)", or the number."""
    if math.isclose(s, 1.0, rel_tol=1e-3):
        return "1 (no scale at all)"
    for name, width in widths.items():
        for text, value in ((f"1/√{name}", 1 / math.sqrt(width)), (f"1/{name}", 1 / width)):
            if math.isclose(s, value, rel_tol=1e-3):
                return text
        if math.isclose(s, math.sqrt(width), rel_tol=1e-3):
            return f"√{name} (multiplied, not divided)"
    return f"{s:.4g}"
