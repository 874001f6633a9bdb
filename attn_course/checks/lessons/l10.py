"""Lesson 10's task: one pre-norm residual step, x + f(LayerNorm(x))."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attn_course.checks.a01 import randn
from attn_course.checks.core import Case
from attn_course.checks.exercise import Exercise, Mistake

LESSON = "10_position_and_transformer_block"


def _cases(g: torch.Generator) -> list[Case]:
    def inputs(B: int, T: int, D: int, shift: float = 0.0, size: float = 1.0) -> tuple:
        return randn(g, B, T, D) * size + shift, randn(g, D, D) / D**0.5

    return [
        Case("B=1, T=3, D=4", inputs(1, 3, 4)),
        Case("B=2, T=4, D=8, tokens with mean 3 and size 5", inputs(2, 4, 8, shift=3.0, size=5.0)),
        Case("B=2, T=5, D=6", inputs(2, 5, 6)),
        Case("B=3, T=2, D=5, small tokens (size 0.1)", inputs(3, 2, 5, size=0.1)),
    ]


def _norm(x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:])  # (B, T, D): mean 0, variance 1 over D


def _unbiased_norm(x: torch.Tensor) -> torch.Tensor:
    centred = x - x.mean(dim=-1, keepdim=True)  # (B, T, D)
    return centred / (x.var(dim=-1, keepdim=True) + 1e-5).sqrt()  # (B, T, D)


def _norm_over_tokens(x: torch.Tensor) -> torch.Tensor:
    centred = x - x.mean(dim=1, keepdim=True)  # (B, T, D)
    return centred / (x.var(dim=1, keepdim=True, unbiased=False) + 1e-5).sqrt()  # (B, T, D)


def step(case: Case, norm=_norm, residual: str = "x", post: bool = False) -> torch.Tensor:
    """The step written out, with one knob per known mistake: the normalisation, what the
    residual adds to (the input x, the normalised h, or nothing), and post-norm."""
    x, weight = case.args
    if post:
        return norm(x + x @ weight.T)  # (B, T, D)
    h = norm(x)  # (B, T, D)
    update = h @ weight.T  # (B, T, D): the sublayer, a linear map D -> D
    return {"x": x + update, "h": h + update, "none": update}[residual]


pre_norm_residual = Exercise(
    name="pre_norm_residual",
    arg_names=("x", "weight"),
    assignment=LESSON,
    points=0,
    cases=_cases,
    expected=step,
    mistakes=(
        Mistake(
            "post-norm: the sum is normalised (norm(x + f(x))). In a pre-norm step only the "
            "sublayer's input is normalised, and the residual stream x is added back as it is.",
            lambda case: step(case, post=True),
        ),
        Mistake(
            "the residual adds the normalised h, not the input x: the stream must carry x "
            "itself, x + f(norm(x)), or every step would throw away the stream's size and "
            "mean.",
            lambda case: step(case, residual="h"),
        ),
        Mistake(
            "no residual: the step returns f(norm(x)) alone; add the input x back.",
            lambda case: step(case, residual="none"),
        ),
        Mistake(
            "no normalisation: the sublayer reads x itself. Normalise each token over its D "
            "features first (mean 0, variance 1).",
            lambda case: step(case, norm=lambda x: x),
        ),
        Mistake(
            "normalised with the unbiased variance (dividing by D - 1): LayerNorm divides by "
            "D, as torch.var(..., unbiased=False) or F.layer_norm do.",
            lambda case: step(case, norm=_unbiased_norm),
        ),
        Mistake(
            "normalised over the tokens (dim 1) instead of over each token's D features "
            "(the last dim): LayerNorm works on one token vector at a time.",
            lambda case: step(case, norm=_norm_over_tokens),
        ),
    ),
)

TASKS = (pre_norm_residual,)
