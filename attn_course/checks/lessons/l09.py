"""Lesson 09's tasks: the padding mask of a batch of source sentences, and the uniform weights
of the skeptic's control that breaks the alignment."""

from __future__ import annotations

import torch

from attn_course import reference
from attn_course.checks.core import Case
from attn_course.checks.exercise import Exercise, Mistake, Probe, Trial

LESSON = "09_cross_attention"


def _mask_cases(g: torch.Generator) -> list[Case]:
    random_lengths = torch.randint(1, 7, (4,), generator=g)
    return [
        Case("lengths [3, 5], max_len 5", (torch.tensor([3, 5]), 5)),
        Case("random lengths, max_len 6", (random_lengths, 6)),
        Case("lengths [1, 2, 4], max_len 4", (torch.tensor([1, 2, 4]), 4)),
        Case("one sentence, length 2, max_len 3", (torch.tensor([2]), 3)),
    ]


def key_mask(case: Case) -> torch.Tensor:
    """The right answer: (B, 1, S), True at the real source words."""
    lengths, max_len = case.args
    return reference.padding_mask(lengths, max_len)[:, None, :]  # (B, 1, S)


def _mask_shape(trial: Trial) -> str | None:
    """The right values without the query axis."""
    case, output = trial.case, trial.output
    if not isinstance(output, torch.Tensor) or output.dtype != torch.bool:
        return None
    lengths, max_len = case.args
    if output.shape == (len(lengths), max_len) and torch.equal(output, key_mask(case)[:, 0]):
        return (
            "shape (B, S): the query axis is missing. Cross-attention's weights are (B, T, S); "
            "a mask of shape (B, S) would line its batch up with T. Add the axis: (B, 1, S)."
        )
    return None


cross_attention_mask = Exercise(
    name="cross_attention_mask",
    arg_names=("lengths", "max_len"),
    assignment=LESSON,
    points=0,
    cases=_mask_cases,
    expected=key_mask,
    probes=(Probe("no-query-axis", _mask_shape),),
    mistakes=(
        Mistake(
            "inverted: True must mark the real source words (may attend), False the padding.",
            lambda case: ~key_mask(case),
        ),
        Mistake(
            "off by one: a sentence of length L has its words at positions 0 … L-1, so the "
            "first padding position is let through (compare with <, not <=).",
            lambda case: (torch.arange(case.args[1]) <= case.args[0][:, None])[:, None, :],
        ),
        Mistake(
            "the mask runs along the queries (B, S, 1) instead of the keys: padding hides "
            "source words, the KEYS, from every target position, so its axis goes last.",
            lambda case: key_mask(case).transpose(1, 2),
        ),
    ),
)


def _weights_cases(g: torch.Generator) -> list[Case]:
    random_lengths = torch.randint(1, 7, (3,), generator=g)
    mask = reference.padding_mask(random_lengths, 6)[:, None, :]  # (B, 1, S)
    return [
        Case("lengths [2, 4], S 4, T 3", (key_mask(Case("", (torch.tensor([2, 4]), 4))), 3)),
        Case("random lengths, S 6, T 5", (mask, 5)),
        Case("lengths [5], S 5, T 2", (key_mask(Case("", (torch.tensor([5]), 5))), 2)),
    ]


def uniform(case: Case, over_all_keys: bool = False, normalise: bool = True) -> torch.Tensor:
    """Uniform weights over the real source words (or over every key), (B, T, S)."""
    mask, num_queries = case.args
    allowed = torch.ones_like(mask) if over_all_keys else mask  # (B, 1, S)
    weights = allowed.float().expand(-1, num_queries, -1)  # (B, T, S)
    return weights / weights.sum(dim=-1, keepdim=True) if normalise else weights


def _weights_shape(trial: Trial) -> str | None:
    """One row for all queries."""
    case, output = trial.case, trial.output
    if not isinstance(output, torch.Tensor):
        return None
    right = uniform(case)  # (B, T, S)
    if output.shape == (right.size(0), 1, right.size(2)) and torch.allclose(
        output, right[:, :1], atol=1e-6
    ):
        return (
            "shape (B, 1, S): one row for all target positions. The weights have one row per "
            "query: expand to (B, T, S)."
        )
    return None


uniform_cross_attention_weights = Exercise(
    name="uniform_cross_attention_weights",
    arg_names=("mask", "num_queries"),
    assignment=LESSON,
    points=0,
    cases=_weights_cases,
    expected=uniform,
    probes=(Probe("one-row-for-all-queries", _weights_shape),),
    mistakes=(
        Mistake(
            "the padding gets weight too: every key gets 1/S. Spread the weight over the real "
            "source words only, 1/length each, and give padding 0.",
            lambda case: uniform(case, over_all_keys=True),
        ),
        Mistake(
            "not normalised: each row must sum to 1 (a weighted mean), so divide by the number "
            "of real source words.",
            lambda case: uniform(case, normalise=False),
        ),
        Mistake(
            "normalised over the queries: each ROW (one target position) must sum to 1 over "
            "the source words; here each column sums to 1.",
            lambda case: uniform(case, normalise=False) / case.args[1],
        ),
    ),
)

TASKS = (cross_attention_mask, uniform_cross_attention_weights)
