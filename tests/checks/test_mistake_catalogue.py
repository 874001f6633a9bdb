"""Every registered mistake, fed to the check as the learner's code, is named as itself."""

from __future__ import annotations

import pytest
import torch

from attn_course import reference
from attn_course.checks import EXERCISES, run_check
from attn_course.checks.core import Case
from attn_course.checks.exercise import Exercise, Mistake


def as_learner_code(exercise: Exercise, known: Mistake):
    """The mistake's own variant, in the form the check calls: a function, or a module with
    the reference's parameters whose forward computes the variant from them."""
    if exercise.name not in {
        "SimpleAttention",
        "MultiHeadAttention",
        "FeedForward",
        "TransformerEncoderBlock",
        "GroupedQueryAttention",
        "GreedyDecoder",
    }:
        return lambda *args, **kwargs: exercise.mistake_output(known, Case("", args, kwargs))

    base = getattr(reference, exercise.name)

    class Variant(base):  # the reference's parameters, the mistake's forward
        def __init__(self, *init_args):
            super().__init__(*init_args)
            self.init_args = init_args

        def forward(self, *args, **kwargs):
            state = {k: v.detach() for k, v in self.state_dict().items()}
            case = Case("", args, kwargs, self.init_args, state)
            with torch.no_grad():
                return exercise.mistake_output(known, case)

    return Variant


MISTAKES = [
    pytest.param(exercise, known, id=exercise.mistake_id(known))
    for exercise in EXERCISES.values()
    for known in exercise.mistakes
]


@pytest.mark.parametrize(("exercise", "known"), MISTAKES)
def test_every_registered_mistake_is_diagnosed_as_itself(exercise: Exercise, known: Mistake):
    verdict = run_check(exercise.name, as_learner_code(exercise, known), seed=3)
    assert not verdict.passed
    assert verdict.mistake == exercise.mistake_id(known)  # by the catalogue or by a probe


def test_mistake_ids_are_unique_per_message():
    seen: dict[str, str] = {}
    for exercise in EXERCISES.values():
        for known in exercise.mistakes:
            ident = exercise.mistake_id(known)
            assert ident.startswith(f"{exercise.name}.")
            assert seen.setdefault(ident, known.message) == known.message
