"""Lesson 15's tasks: a head's previous-token score and its induction score, from its
attention weights."""

from __future__ import annotations

import torch

from attn_course.checks.core import Case
from attn_course.checks.exercise import Exercise, Mistake
from attn_course.reference import causal_mask

LESSON = "15_induction_heads"


def causal_weights(batch: int, size: int, g: torch.Generator) -> torch.Tensor:
    """Random causal attention weights of one head, (B, T, T): rows sum to 1."""
    scores = torch.randn(batch, size, size, generator=g)  # (B, T, T)
    return scores.masked_fill(~causal_mask(size), float("-inf")).softmax(dim=-1)  # (B, T, T)


def _previous_cases(g: torch.Generator) -> list[Case]:
    return [
        Case("B 2, T 6", (causal_weights(2, 6, g),)),
        Case("B 3, T 9", (causal_weights(3, 9, g),)),
        Case("B 1, T 4", (causal_weights(1, 4, g),)),
    ]


def on_diagonal(weights: torch.Tensor, offset: int, skip: int = 0) -> torch.Tensor:
    """Mean of the weights from query t to key t + offset, leaving out the first ``skip``
    queries that have such a key."""
    return weights.diagonal(offset=offset, dim1=-2, dim2=-1)[..., skip:].mean()


previous_token_score = Exercise(
    name="previous_token_score",
    arg_names=("attn_weights",),
    assignment=LESSON,
    points=0,
    cases=_previous_cases,
    expected=lambda case: on_diagonal(case.args[0], -1),
    mistakes=(
        Mistake(
            "the main diagonal: this is how much each query attends to ITSELF. The previous "
            "token is key t - 1: the diagonal one below (offset -1).",
            lambda case: on_diagonal(case.args[0], 0),
        ),
        Mistake(
            "the diagonal above the main one: key t + 1 is the NEXT token, which a causal head "
            "never sees (all zeros). The previous token is one below: offset -1.",
            lambda case: on_diagonal(case.args[0], 1),
        ),
        Mistake(
            "divided by T: query 0 has no previous token, so the mean runs over the T - 1 "
            "queries t = 1 … T-1, not over all T.",
            lambda case: on_diagonal(case.args[0], -1) * (1 - 1 / case.args[0].size(-1)),
        ),
    ),
)


def _induction_cases(g: torch.Generator) -> list[Case]:
    return [
        Case("B 2, T 8, period 4", (causal_weights(2, 8, g), 4)),
        Case("B 3, T 12, period 5", (causal_weights(3, 12, g), 5)),
        Case("B 1, T 9, period 3", (causal_weights(1, 9, g), 3)),
    ]


induction_score = Exercise(
    name="induction_score",
    arg_names=("attn_weights", "period"),
    assignment=LESSON,
    points=0,
    cases=_induction_cases,
    expected=lambda case: on_diagonal(case.args[0], 1 - case.args[1], skip=1),
    mistakes=(
        Mistake(
            "key t - period: that is the earlier copy of the current token A itself. An "
            "induction head looks at the token AFTER it, B, at key t - period + 1.",
            lambda case: on_diagonal(case.args[0], -case.args[1]),
        ),
        Mistake(
            "query period - 1 is counted: it is the last token of the FIRST copy, where there "
            "is nothing to repeat yet. Average over the queries t >= period only.",
            lambda case: on_diagonal(case.args[0], 1 - case.args[1]),
        ),
        Mistake(
            "key t - period + 2: one too far, the token after B. The induction head's key is "
            "B itself, at t - period + 1.",
            lambda case: on_diagonal(case.args[0], 2 - case.args[1], skip=2),
        ),
    ),
)

TASKS = (previous_token_score, induction_score)
