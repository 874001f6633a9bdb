"""Lesson 01's task: score one query against the keys and name the key that matches best."""

from __future__ import annotations

import torch

from attn_course import reference
from attn_course.checks.core import Case
from attn_course.checks.exercise import Exercise, Mistake

LESSON = "01_attention_scores"


def _randn(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=g)


def _cases(g: torch.Generator) -> list[Case]:
    near_or_long = (  # the nearest key (0) is not the best-scoring one (1)
        torch.tensor([1.0, 0.0]),
        torch.tensor([[1.0, 0.0], [3.0, 1.0], [-1.0, 0.0]]),
    )
    return [
        Case("the lesson's sentence: S=6 keys, D=4", (
            torch.tensor([2.0, 0.0, 0.5, -1.0]),
            torch.tensor([
                [0.0, 0.0, 0.0, 1.0], [1.0, 0.2, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0],
                [0.0, 0.3, 0.0, 1.0], [0.2, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.1],
            ]),
        )),
        Case("a near key and a long key, S=3, D=2", near_or_long),
        Case("S=5 keys, D=3", (_randn(g, 3), _randn(g, 5, 3))),
        Case("S=7 keys, D=2", (_randn(g, 2), _randn(g, 7, 2) * 2)),
    ]  # fmt: skip


def _best(case: Case) -> torch.Tensor:
    query, keys = case.args
    return reference.attention_scores(query, keys).argmax()  # (): index of the best key


most_similar_key = Exercise(
    name="most_similar_key",
    assignment=LESSON,
    points=0,
    arg_names=("query", "keys"),
    cases=_cases,
    expected=_best,
    mistakes=(
        Mistake(
            "returns the key with the lowest score: the best match has the highest dot "
            "product (argmax, not argmin)",
            lambda case: reference.attention_scores(*case.args).argmin(),
        ),
        Mistake(
            "returns the key nearest to the query (the smallest distance), not the one with "
            "the highest dot product: a longer key that points the query's way scores higher "
            "than a nearer, shorter one",
            lambda case: (case.args[1] - case.args[0]).norm(dim=-1).argmin(),
        ),
        Mistake(
            "sums the products over the keys (dim 0) instead of over the D features (dim -1): "
            "the index it returns is a feature's, not a key's",
            lambda case: (case.args[1] * case.args[0]).sum(dim=0).argmax(),
        ),
    ),
)

TASKS = (most_similar_key,)
