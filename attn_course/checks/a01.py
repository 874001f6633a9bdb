"""Assignment 01 (lessons 01-03): attention scores, softmax, context vectors, SimpleAttention."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from attn_course import reference
from attn_course.checks.core import Case
from attn_course.checks.exercise import (
    Derivation,
    Exercise,
    Mistake,
    Probe,
    Trial,
    catalogue,
    reference_output,
    same,
)
from attn_course.checks.probes import finite, normalised_axes

ASSIGNMENT = "01_scores_softmax_context"


def randn(generator: torch.Generator, *shape: int, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=generator, dtype=dtype)


# --- attention_scores(query, keys) ------------------------------------------------------------


def _scores_cases(g: torch.Generator) -> list[Case]:
    return [
        Case("one query, S=4 keys, D=3", (randn(g, 3), randn(g, 4, 3))),
        Case("batch B=2, S=5, D=3", (randn(g, 2, 3), randn(g, 2, 5, 3))),
        Case("batch B=3, S=2, D=4", (randn(g, 3, 4), randn(g, 3, 2, 4))),
        Case("leading dims (2, 3), S=4, D=2", (randn(g, 2, 3, 2), randn(g, 2, 3, 4, 2))),
        Case("a single key, S=1", (randn(g, 2, 5), randn(g, 2, 1, 5))),
        Case(
            "float64", (randn(g, 2, 3, dtype=torch.float64), randn(g, 2, 4, 3, dtype=torch.float64))
        ),
    ]


def _scores(case: Case) -> torch.Tensor:
    return reference.attention_scores(*case.args)


attention_scores = Exercise(
    name="attention_scores",
    arg_names=("query", "keys"),
    assignment=ASSIGNMENT,
    points=2,
    cases=_scores_cases,
    expected=_scores,
    mistakes=catalogue(
        "attention_scores",
        "batch-matmul scaled",
        Mistake(
            "batch broadcasting by @: `query @ keys^T` treats the batch of queries as the rows "
            "of one matrix, so every query is scored against the keys of every batch element "
            "(an extra batch axis appears). Give each query its own axis first (unsqueeze), "
            "or multiply elementwise and sum over D.",
            lambda case: case.args[0] @ case.args[1].transpose(-2, -1),
        ),
        Mistake(
            "the scores are divided by √D: this exercise asks for the plain dot product "
            "(scaling comes with scaled dot-product attention, assignment 02)",
            lambda case: _scores(case) / math.sqrt(case.args[0].size(-1)),
        ),
    ),
)


# --- softmax(scores, dim=-1) --------------------------------------------------------------------


def _softmax_cases(g: torch.Generator) -> list[Case]:
    return [
        Case("one row of 4 scores", (randn(g, 4),)),
        Case("3 rows of 5 scores", (randn(g, 3, 5),)),
        Case("square 4×4, dim=-1", (randn(g, 4, 4),), {"dim": -1}),
        Case("dim=0 on (4, 3)", (randn(g, 4, 3),), {"dim": 0}),
        Case("dim=1 on (2, 3, 4)", (randn(g, 2, 3, 4),), {"dim": 1}),
        Case("leading dims (2, 3), 4 scores", (randn(g, 2, 3, 4),)),
        Case("scores up to ±1e4", (randn(g, 3, 4) * 1e4,)),
        Case(
            "rows far apart (±1e4)",
            (torch.tensor([[1e4, 1e4 - 1.0, 0.0], [-1e4, -1e4 + 2.0, -1e4 - 1.0]]),),
        ),
        Case("equal scores", (torch.full((2, 5), 7.0),)),
        Case(
            ONE_FAR_ABOVE,
            (torch.tensor([[0.0, 1.0, 0.0, 2.0, 200.0], [198.0, 199.0, 200.0, 197.0, 201.0]]),),
        ),
        Case("float64", (randn(g, 3, 4, dtype=torch.float64) * 100,)),
    ]


SMALL = "3 rows of 5 scores"
FAR_APART = "rows far apart (±1e4)"
ONE_FAR_ABOVE = "one score far above the rest of its row (200), rows close together"
SHIFT = 1000.0  # added to every score of the derived case "+1000": softmax must not change


def _shifted(case: Case) -> Case | None:
    if case.label != SMALL:
        return None
    return Case("", (case.args[0] + SHIFT,), case.kwargs)


def softmax_variant(case: Case, shift: str = "max", dim: int | None = None) -> torch.Tensor:
    """Softmax written out, with knobs: ``shift`` "max" (right: the row's maximum), "none",
    "mean" (the row's mean), "global" (the whole tensor's maximum); ``dim`` another axis."""
    scores = case.args[0]
    dim = _dim(case) if dim is None else dim
    subtract = {
        "max": lambda: scores.amax(dim=dim, keepdim=True),
        "none": lambda: torch.zeros(()),
        "mean": lambda: scores.mean(dim=dim, keepdim=True),
        "global": lambda: scores.max(),
    }[shift]()
    exp = (scores - subtract).exp()
    return exp / exp.sum(dim=dim, keepdim=True)


def _shift_probe(t: Trial) -> str | None:
    """Reads the shift off the behaviour: a softmax is unchanged when a constant is added to
    every score (``+1000``); only a shift by each row's maximum keeps every exp finite on
    rows far apart and on a row with one score far above the rest."""
    base, shifted = t.runs.get(SMALL), t.runs.get(f"{SMALL} [+1000]")
    far, one = t.runs.get(FAR_APART), t.runs.get(ONE_FAR_ABOVE)
    if base is None or shifted is None or not same(base[1].output, _softmax(base[0])):
        return None
    if shifted[1].error is None and not finite(shifted[1].output):
        return (
            f"no max shift: adding {SHIFT:g} to every score (softmax is unchanged by that) "
            "makes your output inf or NaN, so exp is taken of the raw scores. Subtract each "
            "row's maximum along `dim` (keepdim=True) before exp."
        )
    if shifted[1].error is None and not same(shifted[1].output, base[1].output):
        return (
            f"not shift-invariant: adding {SHIFT:g} to every score changes your output, "
            "where softmax(x + c) = softmax(x). Subtract the maximum of each row along `dim`, "
            "and nothing else."
        )
    far_nan = far is not None and far[1].error is None and not finite(far[1].output)
    if far_nan and (one is None or finite(one[1].output)):
        return ("softmax.global-max-shift", _GLOBAL_MESSAGE)
    if one is not None and one[1].error is None and not finite(one[1].output):
        return (
            "no max shift: the scores are shifted, but not by the row's maximum (by the mean "
            "or the minimum, say): a row with one score far above the rest then overflows "
            "in exp. Subtract each row's maximum along `dim` (keepdim=True): then every exp "
            "is at most 1."
        )
    return None


def _axis_probe(t: Trial) -> str | None:
    """Which axis sums to 1: the weights must sum to 1 along `dim`."""
    output, scores = t.output, t.case.args[0]
    if not isinstance(output, torch.Tensor) or output.shape != scores.shape:
        return None
    axes = normalised_axes(output)
    dim = _dim(t.case) % scores.dim() - scores.dim()
    if axes and dim not in axes:
        return (
            f"softmax over the wrong dim: your weights sum to 1 along dim {axes[0]}, but "
            f"along `dim` = {dim} they do not. Use the `dim` argument for the max and the sum."
        )
    return None


_GLOBAL_MESSAGE = (
    "the max shift uses the maximum of the whole tensor instead of the maximum along "
    "`dim`: a row far below the overall maximum underflows to 0/0 = NaN"
)


def _dim(case: Case) -> int:
    return case.kwargs.get("dim", -1)


def _softmax(case: Case) -> torch.Tensor:
    return reference.softmax(case.args[0], dim=_dim(case))


def _other_dim_softmax(case: Case) -> torch.Tensor:
    scores, dim = case.args[0], _dim(case)
    other = -1 if dim % scores.dim() != scores.dim() - 1 else 0
    return reference.softmax(scores, dim=other)


def _naive_softmax(case: Case) -> torch.Tensor:
    exp = case.args[0].exp()
    return exp / exp.sum(dim=_dim(case), keepdim=True)


def _no_keepdim_softmax(case: Case) -> torch.Tensor:
    scores, dim = case.args[0], _dim(case)
    exp = (scores - scores.amax(dim=dim, keepdim=True)).exp()
    return exp / exp.sum(dim=dim)


softmax = Exercise(
    name="softmax",
    arg_names=("scores",),
    assignment=ASSIGNMENT,
    points=3,
    cases=_softmax_cases,
    expected=_softmax,
    forbidden=("softmax",),
    derived=(Derivation("+1000", _shifted),),
    probes=(
        Probe("wrong-dim", _axis_probe),
        Probe("no-max-shift", _shift_probe),
    ),
    forbidden_message=(
        "uses a built-in softmax (torch.softmax, F.softmax, Tensor.softmax, nn.Softmax or "
        "log_softmax): build it yourself from exp, a max and a sum (torch.logsumexp is "
        "allowed)"
    ),
    mistakes=catalogue(
        "softmax",
        "wrong-dim no-max-shift global-max-shift no-keepdim",
        Mistake(
            "softmax over the wrong dim: the weights sum to 1 along another dim than `dim`. "
            "Use the `dim` argument for the max and the sum.",
            _other_dim_softmax,
        ),
        Mistake(
            "no max shift: exp overflows for large scores (1e4) and the result is inf or NaN. "
            "Subtract the maximum along `dim` (keepdim=True) before exp; softmax is unchanged "
            "by a shift.",
            _naive_softmax,
        ),
        Mistake(_GLOBAL_MESSAGE, lambda case: softmax_variant(case, shift="global")),
        Mistake(
            "the sum is taken without keepdim=True, so dividing broadcasts it along the wrong "
            "axis (each row is divided by another row's total)",
            _no_keepdim_softmax,
        ),
    ),
)


# --- context_vector(weights, values) ----------------------------------------------------------


def _weights(g: torch.Generator, *shape: int, dtype=torch.float32) -> torch.Tensor:
    return reference.softmax(randn(g, *shape, dtype=dtype))


def _context_cases(g: torch.Generator) -> list[Case]:
    return [
        Case("S=4 values of width Dv=3", (_weights(g, 4), randn(g, 4, 3))),
        Case("batch B=2, S=5, Dv=3", (_weights(g, 2, 5), randn(g, 2, 5, 3))),
        Case("batch B=3, S=3, Dv=2", (_weights(g, 3, 3), randn(g, 3, 3, 2))),
        Case("leading dims (2, 3), S=4, Dv=5", (_weights(g, 2, 3, 4), randn(g, 2, 3, 4, 5))),
        Case("a single value, S=1", (_weights(g, 2, 1), randn(g, 2, 1, 4))),
        Case("one batch element, B=1, S=3, Dv=2", (_weights(g, 1, 3), randn(g, 1, 3, 2))),
        Case("values of width Dv=1, B=2, S=4", (_weights(g, 2, 4), randn(g, 2, 4, 1))),
        Case(
            "float64",
            (_weights(g, 2, 4, dtype=torch.float64), randn(g, 2, 4, 3, dtype=torch.float64)),
        ),
    ]


def _context(case: Case) -> torch.Tensor:
    return reference.context_vector(*case.args)


context_vector = Exercise(
    name="context_vector",
    arg_names=("weights", "values"),
    assignment=ASSIGNMENT,
    points=2,
    cases=_context_cases,
    expected=_context,
    mistakes=catalogue(
        "context_vector",
        "batch-matmul wrong-axis averaged bare-squeeze",
        Mistake(
            "batch broadcasting by @: `weights @ values` treats a batch of weight rows as one "
            "matrix, so each context mixes the values of every batch element (and it fails with "
            "more leading dims). Each batch element's weights must meet only its own values: "
            "give the weights a row axis of their own, or weight and sum without @.",
            lambda case: case.args[0] @ case.args[1],
        ),
        Mistake(
            "summed over the wrong axis: the weighted sum runs over the S values (dim -2), "
            "not over the Dv features",
            lambda case: (case.args[0].unsqueeze(-1) * case.args[1]).sum(-1),
        ),
        Mistake(
            "the values are averaged, not weighted: every value counts 1/S. The context is the "
            "weighted sum Σ_s weights[s] · values[s], so a value with a larger weight counts more.",
            lambda case: case.args[1].mean(dim=-2),
        ),
        Mistake(
            "a bare `.squeeze()` removes every axis of size 1, also the batch axis when B = 1 "
            "and the value axis when Dv = 1: squeeze only the axis you added (squeeze(-2))",
            lambda case: (case.args[0].unsqueeze(-2) @ case.args[1]).squeeze(),
        ),
    ),
)


# --- SimpleAttention(input_dim) ---------------------------------------------------------------


def _simple_state(g: torch.Generator, input_dim: int) -> dict[str, torch.Tensor]:
    return {"attention.weight": randn(g, 1, input_dim), "attention.bias": randn(g, 1)}


def _simple_cases(g: torch.Generator) -> list[Case]:
    example_x = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]]])
    example_state = {
        "attention.weight": torch.tensor([[1.0, 0.0, 0.0]]),
        "attention.bias": torch.zeros(1),
    }
    example = "the SimpleAttention example, 1×4×3"
    cases = [Case(example, (example_x,), init_args=(3,), state_dict=example_state)]
    for label, (B, T, D) in {
        "B=2, T=5, input_dim=3": (2, 5, 3),
        "B=3, T=2, input_dim=4": (3, 2, 4),
        "a single token, T=1": (2, 1, 3),
    }.items():
        cases.append(
            Case(label, (randn(g, B, T, D),), init_args=(D,), state_dict=_simple_state(g, D))
        )
    return cases


def _pool(case: Case, dim: int, squeeze: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """SimpleAttention written out, with the softmax over ``dim``."""
    x, state = case.args[0], case.state_dict
    attn_scores = F.linear(x, state["attention.weight"], state["attention.bias"])  # (B, T, 1)
    attn_weights = reference.softmax(attn_scores, dim=dim)  # (B, T, 1)
    context = (attn_weights * x).sum(dim=1)  # (B, input_dim)
    return context, attn_weights.squeeze(-1) if squeeze else attn_weights


simple_attention = Exercise(
    name="SimpleAttention",
    arg_names=("x",),
    init_names=("input_dim",),
    uses=("softmax",),
    assignment=ASSIGNMENT,
    points=3,
    cases=_simple_cases,
    expected=lambda case: reference_output(reference.SimpleAttention, case),
    mistakes=catalogue(
        "SimpleAttention",
        "softmax-last-dim softmax-batch-dim weights-squeezed",
        Mistake(
            "softmax over the wrong dim: the scores have shape (B, T, 1), so dim=-1 normalises "
            "over the size-1 axis and every weight is 1. The sequence is dim=1.",
            lambda case: _pool(case, dim=-1),
        ),
        Mistake(
            "softmax over the batch (dim=0): each token competes with the same position of "
            "other sequences. The sequence is dim=1.",
            lambda case: _pool(case, dim=0),
        ),
        Mistake(
            "the weights lost their trailing axis: return them as (B, T, 1), as the scorer "
            "nn.Linear(input_dim, 1) gives them",
            lambda case: _pool(case, dim=1, squeeze=True),
        ),
    ),
)

EXERCISES = (attention_scores, softmax, context_vector, simple_attention)
