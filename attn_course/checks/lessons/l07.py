"""Lesson 07's task: the scores of every head at once, from (B, T, D) queries and keys."""

from __future__ import annotations

import math

import torch

from attn_course import reference
from attn_course.checks.a01 import randn
from attn_course.checks.core import Case
from attn_course.checks.exercise import Exercise, Mistake

LESSON = "07_multi_head_attention"


def _cases(g: torch.Generator) -> list[Case]:
    return [
        Case("B=1, T=3, S=3, D=4, H=2", (randn(g, 1, 3, 4), randn(g, 1, 3, 4), 2)),
        Case("B=2, T=4, S=5, D=6, H=3", (randn(g, 2, 4, 6), randn(g, 2, 5, 6), 3)),
        Case("B=2, T=5, S=3, D=8, H=4", (randn(g, 2, 5, 8), randn(g, 2, 3, 8), 4)),
        Case("one head, H=1, T=3, S=4, D=4", (randn(g, 2, 3, 4), randn(g, 2, 4, 4), 1)),
    ]


def _split(x: torch.Tensor, num_heads: int, how: str) -> torch.Tensor:
    B, T, D = x.shape
    if how == "view only":  # right shape, tokens scrambled across heads
        return x.reshape(B, num_heads, T, D // num_heads)  # (B, H, T, Dh)
    if how == "interleaved":  # head h gets columns h, h + H, h + 2H, ...
        return x.reshape(B, T, D // num_heads, num_heads).permute(0, 3, 1, 2)  # (B, H, T, Dh)
    return reference.split_heads(x, num_heads)  # (B, H, T, Dh)


def head_scores(case: Case, split: str = "right", scale: str = "Dh") -> torch.Tensor:
    """The per-head scores written out, with one knob per known mistake."""
    query, key, num_heads = case.args
    q, k = _split(query, num_heads, split), _split(key, num_heads, split)  # (B, H, T|S, Dh)
    width = {"Dh": q.size(-1), "D": query.size(-1), "none": 1}[scale]
    return q @ k.transpose(-2, -1) / math.sqrt(width)  # (B, H, T, S)


per_head_scores = Exercise(
    name="per_head_scores",
    arg_names=("query", "key", "num_heads"),
    assignment=LESSON,
    points=0,
    cases=_cases,
    expected=head_scores,
    mistakes=(
        Mistake(
            "the heads are cut with view alone, without transpose: viewing (B, T, D) directly "
            "as (B, H, T, Dh) gives the right shape, but head 0 holds the first tokens' "
            "features and head 1 the later tokens'. View as (B, T, H, Dh), then swap the "
            "token and head axes.",
            lambda case: head_scores(case, split="view only"),
        ),
        Mistake(
            "the heads take interleaved features (viewed as (B, T, Dh, H)): head h must own "
            "the contiguous features h·Dh … (h+1)·Dh - 1, as in the lesson and "
            "nn.MultiheadAttention.",
            lambda case: head_scores(case, split="interleaved"),
        ),
        Mistake(
            "scaled by √D: each head compares vectors of width Dh = D / H, so divide by √Dh.",
            lambda case: head_scores(case, scale="D"),
        ),
        Mistake(
            "not scaled: divide each head's dot products by √Dh, the width of the head.",
            lambda case: head_scores(case, scale="none"),
        ),
    ),
)

TASKS = (per_head_scores,)
