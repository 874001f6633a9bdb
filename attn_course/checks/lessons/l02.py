"""Lesson 02's task: softmax with a temperature, sharp for small τ and flat for large τ."""

from __future__ import annotations

import torch

from attn_course import reference
from attn_course.checks.core import Case
from attn_course.checks.exercise import Exercise, Mistake

LESSON = "02_softmax"


def _randn(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=g)


def _cases(g: torch.Generator) -> list[Case]:
    return [
        Case("the lesson's scores, tau=0.5", (
            torch.tensor([-1.0, 2.0, 0.5, -1.0, -0.6, -0.1]), 0.5,
        )),
        Case("T=3 rows of S=4 scores, tau=2.0", (_randn(g, 3, 4), 2.0)),
        Case("T=2 rows of S=5 scores, tau=1.0", (_randn(g, 2, 5), 1.0)),
        Case("scores up to ±10, tau=0.01", (_randn(g, 2, 4) * 10, 0.01)),
    ]  # fmt: skip


def _weights(case: Case) -> torch.Tensor:
    scores, tau = case.args
    return reference.softmax(scores / tau, dim=-1)  # (..., S)


def _naive(case: Case) -> torch.Tensor:
    scores, tau = case.args
    exp = (scores / tau).exp()
    return exp / exp.sum(dim=-1, keepdim=True)


temperature_softmax = Exercise(
    name="temperature_softmax",
    assignment=LESSON,
    points=0,
    arg_names=("scores", "tau"),
    cases=_cases,
    expected=_weights,
    mistakes=(
        Mistake(
            "multiplies the scores by τ instead of dividing: a small τ then flattens the "
            "weights, where it should sharpen them towards the best key",
            lambda case: reference.softmax(case.args[0] * case.args[1], dim=-1),
        ),
        Mistake(
            "divides the weights by τ after the softmax: the order of scores and weights is "
            "right, but the weights no longer sum to 1. τ divides the scores, before the "
            "softmax",
            lambda case: reference.softmax(case.args[0], dim=-1) / case.args[1],
        ),
        Mistake(
            "no max shift: a small τ makes scores / τ large (10 / 0.01 = 1000), exp overflows "
            "to inf and the weights become NaN. Subtract the maximum of scores / τ along the "
            "keys first, or call a softmax that does",
            _naive,
        ),
        Mistake(
            "softmax over the wrong dim: with (T, S) scores the keys are the last dim, so "
            "each row (one query) must sum to 1, not each column",
            lambda case: reference.softmax(case.args[0] / case.args[1], dim=0),
        ),
    ),
)

TASKS = (temperature_softmax,)
