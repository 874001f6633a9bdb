"""Lesson 03's task: kernel regression as attention, a weighted sum of the y's near a query."""

from __future__ import annotations

import torch

from attn_course import reference
from attn_course.checks.core import Case
from attn_course.checks.exercise import Exercise, Mistake

LESSON = "03_context_vectors"


def _data(g: torch.Generator, T: int, S: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    queries = torch.rand(T, generator=g) * 5  # (T,)
    x_train = torch.rand(S, generator=g) * 5  # (S,)
    y_train = torch.randn(S, generator=g)  # (S,)
    return queries, x_train, y_train


def _cases(g: torch.Generator) -> list[Case]:
    return [
        Case("T=3 queries, S=4 points, sigma=0.4", (
            torch.tensor([0.0, 1.0, 2.5]),
            torch.tensor([0.0, 1.0, 2.0, 3.0]),
            torch.tensor([1.0, -1.0, 2.0, 0.0]),
            0.4,
        )),
        Case("T=5, S=8, sigma=0.3", (*_data(g, 5, 8), 0.3)),
        Case("T=4, S=6, sigma=1.0", (*_data(g, 4, 6), 1.0)),
    ]  # fmt: skip


def _scores(case: Case, temperature: float | None = None) -> torch.Tensor:
    queries, x_train, _, sigma = case.args
    differences = queries[:, None] - x_train[None, :]  # (T, S)
    temperature = 2 * sigma**2 if temperature is None else temperature
    return -(differences**2) / temperature  # (T, S)


def _estimate(case: Case, temperature: float | None = None) -> torch.Tensor:
    weights = reference.softmax(_scores(case, temperature), dim=-1)  # (T, S)
    return reference.context_vector(weights, case.args[2][:, None])[:, 0]  # (T, 1) -> (T,)


kernel_estimate = Exercise(
    name="kernel_estimate",
    assignment=LESSON,
    points=0,
    arg_names=("queries", "x_train", "y_train", "sigma"),
    cases=_cases,
    expected=_estimate,
    mistakes=(
        Mistake(
            "the score has no minus sign: +(x − xₛ)² / 2σ² gives the *farthest* points the "
            "largest weights. The closer a point, the higher its score must be",
            lambda case: reference.softmax(-_scores(case), dim=-1) @ case.args[2],
        ),
        Mistake(
            "the kernel values are not normalised: Σ K(x − xₛ)·yₛ without dividing by "
            "Σ K(x − xⱼ). The weights of one query must sum to 1 (a softmax over the points)",
            lambda case: _scores(case).exp() @ case.args[2],
        ),
        Mistake(
            "the softmax runs over the queries (dim 0) instead of over the training points "
            "(dim -1): each query's weights must sum to 1 over the S points",
            lambda case: reference.softmax(_scores(case), dim=0) @ case.args[2],
        ),
        Mistake(
            "the temperature is off: the squared distance is divided by σ² or 2σ, but the "
            "Gaussian kernel exp(−(x − xₛ)² / 2σ²) divides it by 2σ²",
            lambda case: _estimate(case, temperature=case.args[3] ** 2),
        ),
        Mistake(
            "the temperature is off: the squared distance is divided by σ² or 2σ, but the "
            "Gaussian kernel exp(−(x − xₛ)² / 2σ²) divides it by 2σ²",
            lambda case: _estimate(case, temperature=2 * case.args[3]),
        ),
        Mistake(
            "returns the plain mean of the y's (average pooling): every point counts 1/S, "
            "wherever the query is. Weight each y by how close its x is to the query",
            lambda case: case.args[2].mean().expand(case.args[0].shape),
        ),
    ),
)

TASKS = (kernel_estimate,)
