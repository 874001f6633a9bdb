"""Lesson 05's task: one mask for a padded batch that a causal model reads."""

from __future__ import annotations

import torch

from attn_course import reference
from attn_course.checks.core import Case
from attn_course.checks.exercise import Exercise, Mistake, Probe, Trial

LESSON = "05_masks"


def _cases(g: torch.Generator) -> list[Case]:
    random_lengths = torch.randint(1, 6, (3,), generator=g)
    return [
        Case("lengths [3, 5], size 5", (torch.tensor([3, 5]), 5)),
        Case("random lengths, size 5", (random_lengths, 5)),
        Case("lengths [1, 2, 4], size 4", (torch.tensor([1, 2, 4]), 4)),
        Case("one sequence, length 2, size 3", (torch.tensor([2]), 3)),
    ]


def combined(case: Case, causal: torch.Tensor | None = None, keys: torch.Tensor | None = None):
    """The (B, T, S) mask from a causal part (T, S) and a padding part over the keys (B, 1, S)
    (the right ones when not given)."""
    lengths, size = case.args
    causal = reference.causal_mask(size) if causal is None else causal  # (T, S)
    keys = reference.padding_mask(lengths, size)[:, None, :] if keys is None else keys  # (B, 1, S)
    return keys & causal  # (B, T, S)


def _ones(case: Case) -> torch.Tensor:
    size = case.args[1]
    return torch.ones(size, size, dtype=torch.bool)  # (T, S)


def _shape_diagnosis(trial: Trial) -> str | None:
    """A mask of the padding part or the causal part alone, not broadcast to (B, T, S)."""
    case, output = trial.case, trial.output
    if not isinstance(output, torch.Tensor) or output.dtype != torch.bool:
        return None
    lengths, size = case.args
    padding = reference.padding_mask(lengths, size)  # (B, S)
    if output.shape in (padding.shape, (len(lengths), 1, size)) and torch.equal(
        output.reshape(padding.shape), padding
    ):
        return (
            "returns the padding mask alone: the causal part is missing. Combine it with the "
            "causal mask (a key must be allowed by both); broadcasting gives (B, T, S)."
        )
    if output.shape == (size, size) and torch.equal(output, reference.causal_mask(size)):
        return (
            "returns the causal mask alone: the padding part is missing, so queries still "
            "read the padding keys. Combine it with the padding mask over the keys."
        )
    return None


causal_padding_mask = Exercise(
    name="causal_padding_mask",
    arg_names=("lengths", "size"),
    assignment=LESSON,
    points=0,
    cases=_cases,
    expected=combined,
    probes=(Probe("mask-not-broadcast", _shape_diagnosis),),
    mistakes=(
        Mistake(
            "inverted: True must mean 'may attend' (a real key at or before the query), "
            "False the keys to hide.",
            lambda case: ~combined(case),
        ),
        Mistake(
            "off by one in the lengths: a sequence of length L has its real tokens at "
            "positions 0 … L-1, so the first padding key is allowed here.",
            lambda case: combined(
                case, keys=(torch.arange(case.args[1]) <= case.args[0][:, None])[:, None, :]
            ),
        ),
        Mistake(
            "upper triangle instead of lower: each query may see itself and the keys BEFORE "
            "it, so True on and below the diagonal.",
            lambda case: combined(case, causal=_ones(case).triu()),
        ),
        Mistake(
            "the diagonal is dropped: a query may see itself, so the first query has no key "
            "at all here. Keep the diagonal in the causal part.",
            lambda case: combined(case, causal=_ones(case).tril(-1)),
        ),
        Mistake(
            "the two masks are joined with 'or': a key must be allowed by BOTH the causal and "
            "the padding mask, so combine them with 'and'.",
            lambda case: reference.causal_mask(case.args[1])
            | reference.padding_mask(*case.args)[:, None, :],
        ),
        Mistake(
            "the padding mask is laid along the queries (rows) instead of the keys (columns): "
            "padding hides KEYS from every query, so its axis goes last, shape (B, 1, S).",
            lambda case: combined(case, keys=reference.padding_mask(*case.args)[:, :, None]),
        ),
        Mistake(
            "the causal part is missing: every query reads the real keys after it too. "
            "Combine the padding mask with the causal mask (True on and below the diagonal).",
            lambda case: reference.padding_mask(*case.args)[:, None, :].expand(
                -1, case.args[1], -1
            ),
        ),
        Mistake(
            "the padding part is missing: queries still read the padding keys. Combine the "
            "causal mask with the padding mask over the keys.",
            lambda case: reference.causal_mask(case.args[1]).expand(len(case.args[0]), -1, -1),
        ),
    ),
)

TASKS = (causal_padding_mask,)
