"""Lesson 14's task: repeat the key/value heads with ``expand`` and ``reshape``.

``repeat_kv_heads(x, num_repeats)``: (B, G, S, Dh) -> (B, G·r, S, Dh), head h of the result is
head h // r of x. The check judges the values (the cases cover GQA, MQA with G = 1 and MHA with
r = 1); whether the result is a view the lesson shows next to the task, with the tensors'
storage: the check sees only a copy of the output.
"""

from __future__ import annotations

import torch

from attn_course import reference
from attn_course.checks.a01 import randn
from attn_course.checks.core import Case
from attn_course.checks.exercise import Exercise, Mistake

LESSON = "14_grouped_query_attention_and_kv_cache"


def _cases(g: torch.Generator) -> list[Case]:
    return [
        Case("B = 1, G = 2 heads of S = 3, Dh = 2, r = 2 (GQA)", (randn(g, 1, 2, 3, 2), 2)),
        Case("B = 2, G = 3, S = 4, Dh = 5, r = 2 (GQA)", (randn(g, 2, 3, 4, 5), 2)),
        Case("B = 2, G = 1, S = 6, Dh = 4, r = 4 (MQA)", (randn(g, 2, 1, 6, 4), 4)),
        Case("B = 2, G = 4, S = 5, Dh = 3, r = 1 (MHA)", (randn(g, 2, 4, 5, 3), 1)),
        Case("B = 1, G = 2, S = 2, Dh = 4, r = 3 (GQA)", (randn(g, 1, 2, 2, 4), 3)),
    ]


def _expected(case: Case) -> torch.Tensor:
    return reference.repeat_kv(*case.args)  # (B, G·r, S, Dh)


repeat_kv_heads = Exercise(
    name="repeat_kv_heads",
    arg_names=("x", "num_repeats"),
    assignment=LESSON,
    points=0,
    cases=_cases,
    expected=_expected,
    mistakes=(
        Mistake(
            "the heads are tiled, g0 g1 g0 g1, so query head h gets key/value head h % G: "
            "repeat each head in place, g0 g0 g1 g1 (insert the new axis after the head axis, "
            "not before it)",
            lambda case: case.args[0].repeat(1, case.args[1], 1, 1),
        ),
        Mistake(
            "the keys are repeated along the sequence axis S, not the head axis: the result "
            "must have G·r heads of S keys each",
            lambda case: case.args[0].repeat_interleave(case.args[1], dim=2),
        ),
    ),
)

TASKS = (repeat_kv_heads,)
