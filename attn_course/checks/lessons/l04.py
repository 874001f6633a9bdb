"""Lesson 04's task: the scale that keeps the scores' variance at 1 when q and k are not unit."""

from __future__ import annotations

import math

import torch

from attn_course import reference
from attn_course.checks.a01 import randn
from attn_course.checks.core import Case
from attn_course.checks.exercise import Exercise, Mistake

LESSON = "04_scaled_dot_product_attention"


def _cases(g: torch.Generator) -> list[Case]:
    def pair(*lead: int, T: int, S: int, D: int, std: float) -> tuple:
        return randn(g, *lead, T, D) * std, randn(g, *lead, S, D) * std, std

    return [
        Case("T=3, S=4, D=8, std 2.0", pair(T=3, S=4, D=8, std=2.0)),
        Case("batch B=2, T=4, S=5, D=16, std 0.5", pair(2, T=4, S=5, D=16, std=0.5)),
        Case("leading dims (2, 3), T=2, S=3, D=4, std 3.0", pair(2, 3, T=2, S=3, D=4, std=3.0)),
        Case("std 1.0 (as in the lesson), D=9", pair(2, T=3, S=3, D=9, std=1.0)),
    ]


def scores_divided_by(case: Case, divisor: float) -> torch.Tensor:
    query, key, _ = case.args
    return query @ key.transpose(-2, -1) / divisor  # (..., T, S)


def _sizes(case: Case) -> tuple[int, float]:
    query, _, std = case.args
    return query.size(-1), std


def _expected(case: Case) -> torch.Tensor:
    d, std = _sizes(case)
    return scores_divided_by(case, math.sqrt(d) * std**2)


unit_variance_scores = Exercise(
    name="unit_variance_scores",
    arg_names=("query", "key", "std"),
    assignment=LESSON,
    points=0,
    cases=_cases,
    expected=_expected,
    mistakes=(
        Mistake(
            "divided by √D only: that is right when the entries have standard deviation 1. "
            "Here each product qᵢkᵢ has variance std² · std² = std⁴, so D of them add up to "
            "D · std⁴: divide by the square root of that.",
            lambda case: scores_divided_by(case, math.sqrt(_sizes(case)[0])),
        ),
        Mistake(
            "std counted once: the divisor has √D · std, but both the query and the key carry "
            "a factor std, so the product carries std² (variance std⁴).",
            lambda case: scores_divided_by(case, math.sqrt(_sizes(case)[0]) * _sizes(case)[1]),
        ),
        Mistake(
            "divided by D instead of √D: the variance of the scores is D · std⁴, so the "
            "standard deviation, the number to divide by, is √D · std².",
            lambda case: scores_divided_by(case, _sizes(case)[0] * _sizes(case)[1] ** 2),
        ),
        Mistake(
            "divided by the variance D · std⁴ instead of the standard deviation: dividing by c "
            "divides the variance by c², so divide by √(D · std⁴).",
            lambda case: scores_divided_by(case, _sizes(case)[0] * _sizes(case)[1] ** 4),
        ),
        Mistake(
            "returns attention weights: the task asks for the scaled scores, before the "
            "softmax.",
            lambda case: reference.softmax(_expected(case)),
        ),
    ),
)

TASKS = (unit_variance_scores,)
