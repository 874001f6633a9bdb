"""Lesson 12's task: one step of the online softmax, the update of (m, l) for a new block."""

from __future__ import annotations

import torch

from attn_course.checks.a01 import randn
from attn_course.checks.core import Case
from attn_course.checks.exercise import Exercise, Mistake

LESSON = "12_efficient_attention"


def _cases(g: torch.Generator) -> list[Case]:
    first = torch.full((3,), float("-inf")), torch.zeros(3)  # nothing seen yet: m = -inf, l = 0
    rows = randn(g, 2, 3).amax(dim=-1), torch.rand(2, generator=g) * 3 + 1  # (R,) each
    return [
        Case("the first block of 3 rows (m = -inf, l = 0)", (*first, randn(g, 3, 4) * 3)),
        Case("a block that raises every maximum", (rows[0], rows[1], randn(g, 2, 4) + 6)),
        Case("a block below every maximum", (rows[0] + 6, rows[1], randn(g, 2, 4))),
        Case(
            "one row (m and l of shape ()), a block of 5",
            (torch.tensor(0.5), torch.tensor(2.0), randn(g, 5) * 2),
        ),
        Case(
            "leading dims (2, 3), scores near 500",
            (randn(g, 2, 3) + 500, torch.rand(2, 3, generator=g) + 1, randn(g, 2, 3, 4) + 501),
        ),
    ]


def update(case: Case, rescale: str = "old", shift: str = "new", max_of: str = "both"):
    """(m_new, l_new) for the running maximum m (...), sum l (...) and a block (..., Bk).

    ``rescale``: how the old sum is brought to the new maximum ("old": by exp(m - m_new), right;
    "none"; "inverted": by exp(m_new - m)). ``shift``: the maximum the block's terms are taken
    against ("new", right; "block": its own; "none": no shift). ``max_of``: "both" (right) or
    "block" (the new maximum forgets the old one).
    """
    row_max, row_sum, block = case.args
    block_max = block.amax(dim=-1)  # (...)
    new_max = torch.maximum(row_max, block_max) if max_of == "both" else block_max  # (...)
    factor = {
        "old": torch.exp(row_max - new_max),
        "none": torch.ones_like(row_sum),
        "inverted": torch.exp(new_max - row_max),
    }[rescale]  # (...)
    reference_max = {"new": new_max, "block": block_max, "none": torch.zeros_like(new_max)}[shift]
    terms = torch.exp(block - reference_max.unsqueeze(-1)).sum(dim=-1)  # (...)
    return new_max, row_sum * factor + terms


online_softmax_step = Exercise(
    name="online_softmax_step",
    arg_names=("row_max", "row_sum", "block"),
    assignment=LESSON,
    points=0,
    cases=_cases,
    expected=update,
    mistakes=(
        Mistake(
            "the old sum is not rescaled: it was computed relative to the old maximum m, so "
            "multiply it by exp(m − m_new) before adding the block's terms",
            lambda case: update(case, rescale="none"),
        ),
        Mistake(
            "the old sum is rescaled the wrong way, by exp(m_new − m): a higher new maximum "
            "must make the old terms smaller, so the factor is exp(m − m_new) (at most 1)",
            lambda case: update(case, rescale="inverted"),
        ),
        Mistake(
            "the block's terms are taken against the block's own maximum: the sum must hold "
            "every term relative to the same maximum, so use exp(score − m_new)",
            lambda case: update(case, shift="block"),
        ),
        Mistake(
            "the new maximum forgets the old one: m_new = max(m, the block's maximum), so a "
            "block below the running maximum leaves it where it was",
            lambda case: update(case, max_of="block"),
        ),
        Mistake(
            "the exponentials are not shifted at all: exp(score) overflows for large scores "
            "(500 here) and the sum stops being relative to m. Take exp(score − m_new)",
            lambda case: update(case, shift="none", rescale="none"),
        ),
    ),
)

TASKS = (online_softmax_step,)
