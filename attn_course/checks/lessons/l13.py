"""Lesson 13's task: move the features of a head from the halves layout to the interleaved one.

The course's RoPE pairs feature j with feature j + Dh/2 (halves); Meta's original Llama code
paired neighbours 2j and 2j + 1 (interleaved). ``halves_to_interleaved(x)`` reorders the last
dim, a0 a1 … b0 b1 … -> a0 b0 a1 b1 …, so that interleaved RoPE of the result equals the same
reordering of halves RoPE.
"""

from __future__ import annotations

import torch

from attn_course.checks.a01 import randn
from attn_course.checks.core import Case
from attn_course.checks.exercise import Exercise, Mistake

LESSON = "13_rotary_position_embeddings"


def _cases(g: torch.Generator) -> list[Case]:
    return [
        Case("Dh = 8, features numbered 0..7", (torch.arange(8.0),)),
        Case("(T, Dh) = (3, 8)", (randn(g, 3, 8),)),
        Case("(B, H, T, Dh) = (2, 2, 4, 12)", (randn(g, 2, 2, 4, 12),)),
        Case("(T, Dh) = (16, 16): as many positions as features", (randn(g, 16, 16),)),
    ]


def reorder(case: Case, order: str = "halves->interleaved", dim: int = -1) -> torch.Tensor:
    """x reordered along ``dim``: "halves->interleaved" (right), "interleaved->halves" (the
    inverse), "b first" (b0 a0 b1 a1 …: the two members of each pair swapped)."""
    (x,) = case.args
    half = x.size(dim) // 2
    first, second = x.narrow(dim, 0, half), x.narrow(dim, half, half)  # a's, b's
    if order == "interleaved->halves":
        index = torch.cat([torch.arange(0, x.size(dim), 2), torch.arange(1, x.size(dim), 2)])
        return x.index_select(dim, index)
    pair = (second, first) if order == "b first" else (first, second)
    stacked = torch.stack(pair, dim=dim % x.dim() + 1)  # (..., Dh/2, 2, ...)
    return stacked.flatten(dim % x.dim(), dim % x.dim() + 1)  # (..., Dh, ...)


halves_to_interleaved = Exercise(
    name="halves_to_interleaved",
    arg_names=("x",),
    assignment=LESSON,
    points=0,
    cases=_cases,
    expected=reorder,
    mistakes=(
        Mistake(
            "this is the opposite conversion, interleaved to halves (features 0, 2, 4, … then "
            "1, 3, 5, …). Going the other way, feature j and feature j + Dh/2 must end up "
            "side by side: a0 b0 a1 b1 …",
            lambda case: reorder(case, "interleaved->halves"),
        ),
        Mistake(
            "each pair comes out as (b, a), not (a, b): the first half's feature must come "
            "first. Swapping them turns every pair the other way round",
            lambda case: reorder(case, "b first"),
        ),
        Mistake(
            "the positions are reordered, not the features: work on the last dim (Dh)",
            lambda case: reorder(case, dim=-2),
        ),
    ),
)

TASKS = (halves_to_interleaved,)
