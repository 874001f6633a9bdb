"""Lesson 08's tasks: the max-pooling baseline's pooling, where the largest weight lands, and
the scores of a question-dependent attention."""

from __future__ import annotations

import torch

from attn_course.checks.core import Case
from attn_course.checks.exercise import Exercise, Mistake

LESSON = "08_attention_in_a_model"


def _pool_cases(g: torch.Generator) -> list[Case]:
    return [
        Case("B=2, T=5, D=3", (torch.randn(2, 5, 3, generator=g),)),
        Case("B=3, T=4, D=6", (torch.randn(3, 4, 6, generator=g),)),
        Case("B=1, T=7, D=2", (torch.randn(1, 7, 2, generator=g),)),
    ]


def _max_pool(case: Case) -> torch.Tensor:
    return case.args[0].max(dim=1).values  # (B, T, D) -> (B, D)


max_pool_context = Exercise(
    name="max_pool_context",
    assignment=LESSON,
    points=0,
    cases=_pool_cases,
    expected=_max_pool,
    arg_names=("x",),
    mistakes=(
        Mistake(
            "the maximum is taken over the vectors' D features, not over the T tokens: each "
            "token keeps its place and loses its features. Pool over dim 1, the sequence.",
            lambda case: case.args[0].max(dim=-1).values,
        ),
        Mistake(
            "the tokens are averaged: that is mean pooling, the baseline of section 5; max "
            "pooling keeps, for each feature, the largest value over the sequence",
            lambda case: case.args[0].mean(dim=1),
        ),
        Mistake(
            "the tokens are added up: that is sum pooling; max pooling keeps, for each "
            "feature, the largest value over the sequence",
            lambda case: case.args[0].sum(dim=1),
        ),
        Mistake(
            "this is the positions of the maxima (`.indices`), not their values: "
            "`x.max(dim=1)` returns both, take `.values`",
            lambda case: case.args[0].max(dim=1).indices,
        ),
    ),
)


def _hit_cases(g: torch.Generator) -> list[Case]:
    cases = []
    for label, (n, t) in (("N=6, T=5", (6, 5)), ("N=10, T=8", (10, 8)), ("N=4, T=3", (4, 3))):
        weights = torch.softmax(3 * torch.randn(n, t, generator=g), dim=-1)  # (N, T)
        position = torch.randint(t, (n,), generator=g)  # (N,)
        position[0] = weights[0].argmax()  # at least one hit
        cases.append(Case(label, (weights, position)))
    return cases


def _hit_rate(case: Case) -> torch.Tensor:
    weights, position = case.args
    return (weights.argmax(dim=-1) == position).float().mean()


signal_hit_rate = Exercise(
    name="signal_hit_rate",
    assignment=LESSON,
    points=0,
    cases=_hit_cases,
    expected=_hit_rate,
    arg_names=("weights", "signal_position"),
    mistakes=(
        Mistake(
            "the largest weight is looked for over the N sequences (dim 0), not over each "
            "sequence's T positions: take the argmax over dim -1",
            lambda case: (case.args[0].argmax(dim=0)[: case.args[1].numel()]
                          == case.args[1][: case.args[0].size(-1)]).float().mean(),
        ),
        Mistake(
            "this counts the hits instead of giving their fraction: divide by the number of "
            "sequences (or take the mean of the matches as floats)",
            lambda case: (case.args[0].argmax(dim=-1) == case.args[1]).float().sum(),
        ),
        Mistake(
            "this is the mean weight on the signal token, not how often it gets the largest "
            "weight: compare each sequence's argmax with its signal position",
            lambda case: case.args[0].gather(-1, case.args[1].unsqueeze(-1)).mean(),
        ),
    ),
)



# --- Task 3: the question-dependent scores of section 7 (issue 21) ---
def _score_cases(g: torch.Generator) -> list[Case]:
    return [
        Case("B=2, T=5, D=4", (torch.randn(2, 5, 4, generator=g), torch.randn(2, 4, generator=g))),
        Case("B=3, T=6, D=9", (torch.randn(3, 6, 9, generator=g), torch.randn(3, 9, generator=g))),
        Case("B=1, T=3, D=16",
             (torch.randn(1, 3, 16, generator=g), torch.randn(1, 16, generator=g))),
    ]


def _question_scores(case: Case) -> torch.Tensor:
    x, query = case.args
    return (x * query.unsqueeze(1)).sum(dim=-1) / x.size(-1) ** 0.5  # (B, T)


question_scores = Exercise(
    name="question_scores",
    assignment=LESSON,
    points=0,
    cases=_score_cases,
    expected=_question_scores,
    arg_names=("x", "query"),
    mistakes=(
        Mistake(
            "the dot products are not scaled: divide them by sqrt(D), the square root of the "
            "vectors' dimension (lesson 04), so that the scores do not grow with D",
            lambda case: (case.args[0] * case.args[1].unsqueeze(1)).sum(dim=-1),
        ),
        Mistake(
            "the dot products are divided by D; the scaling of lesson 04 divides by sqrt(D)",
            lambda case: (case.args[0] * case.args[1].unsqueeze(1)).sum(dim=-1)
            / case.args[0].size(-1),
        ),
        Mistake(
            "these are already the weights (a softmax over the tokens): return the scores, "
            "the model takes the softmax after",
            lambda case: torch.softmax(_question_scores(case), dim=-1),
        ),
    ),
)
# --- end of Task 3 ---

TASKS = (max_pool_context, signal_hit_rate, question_scores)
