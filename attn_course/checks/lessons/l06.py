"""Lesson 06's task: self-attention scores through two projections, W_q and W_k."""

from __future__ import annotations

import math

import torch

from attn_course.checks.a01 import randn
from attn_course.checks.core import Case
from attn_course.checks.exercise import Exercise, Mistake, hint

LESSON = "06_self_attention"


def _cases(g: torch.Generator) -> list[Case]:
    def inputs(B: int, T: int, D: int, Dh: int) -> tuple:
        return randn(g, B, T, D), randn(g, Dh, D), randn(g, Dh, D)

    return [
        Case("B=1, T=4, D=6, Dh=3", inputs(1, 4, 6, 3)),
        Case("B=2, T=5, D=8, Dh=4", inputs(2, 5, 8, 4)),
        Case("B=2, T=3, D=4, Dh=4 (square weights)", inputs(2, 3, 4, 4)),
        Case("B=1, T=6, D=3, Dh=5 (Dh wider than D)", inputs(1, 6, 3, 5)),
    ]


def scores(
    case: Case, q_weight: int = 1, k_weight: int = 2, transpose_weights: bool = True,
    scale: str = "Dh", swap: bool = False,
) -> torch.Tensor:
    """The scores written out, with one knob per known mistake: which argument projects the
    queries and which the keys, whether the weights are transposed, the scale, and whether the
    result is read keys-by-queries."""
    x = case.args[0]
    w_q, w_k = case.args[q_weight], case.args[k_weight]
    if transpose_weights:
        w_q, w_k = w_q.T, w_k.T  # (D, Dh) each
    q, k = x @ w_q, x @ w_k  # (B, T, Dh), (B, S, Dh)
    width = {"Dh": q.size(-1), "D": x.size(-1), "none": 1}[scale]
    attn_scores = q @ k.transpose(-2, -1) / math.sqrt(width)  # (B, T, S)
    return attn_scores.transpose(-2, -1) if swap else attn_scores


projected_scores = Exercise(
    name="projected_scores",
    arg_names=("x", "w_q", "w_k"),
    assignment=LESSON,
    points=0,
    cases=_cases,
    expected=scores,
    mistakes=(
        Mistake(
            "the same projection for queries and keys: with W_q used for both (or W_k for "
            "both) the scores are symmetric again, as with raw vectors. Queries come from "
            "W_q, keys from W_k.",
            lambda case: scores(case, k_weight=1),
        ),
        Mistake(
            "the same projection for queries and keys (W_k for both): queries come from W_q, "
            "keys from W_k.",
            lambda case: scores(case, q_weight=2),
        ),
        Mistake(
            "the relation is turned around: the result is the right scores transposed, keys "
            "down and queries across. Either W_q and W_k are swapped, or the keys are multiplied "
            "by the queries instead of the queries by the keys. Row t must hold query t "
            "(made with W_q) against every key (made with W_k): the direction matters now that "
            "W_q ≠ W_k.",
            lambda case: scores(case, swap=True),
        ),
        Mistake(
            "the weights are not transposed: a weight of shape (Dh, D), as nn.Linear stores "
            "it, maps a token x (D,) to x Wᵀ (Dh,).",
            lambda case: scores(case, transpose_weights=False),
        ),
        Mistake(
            "scaled by √D, the width of the tokens: the dot products are between queries and "
            "keys of width Dh, so divide by √Dh.",
            lambda case: scores(case, scale="D"),
        ),
        Mistake(
            "not scaled: divide the dot products by √Dh, the width of the queries and keys.",
            lambda case: scores(case, scale="none"),
        ),
    ),
    probes=(
        hint(
            "cannot be multiplied",
            "the weights have shape (Dh, D), as nn.Linear stores them: a token x (D,) becomes "
            "x Wᵀ",
        ),
    ),
)

TASKS = (projected_scores,)
