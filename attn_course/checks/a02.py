"""Assignment 02 (lessons 04-05): scaled dot-product attention, causal and padding masks."""

from __future__ import annotations

import math

import torch

from attn_course import reference
from attn_course.checks.a01 import randn
from attn_course.checks.core import Case
from attn_course.checks.exercise import Exercise, Mistake, Probe, Trial, catalogue, hint
from attn_course.checks.probes import finite, fitted_scale, name_scale, normalised_axes

ASSIGNMENT = "02_scaled_dot_product_attention"


# --- scaled_dot_product_attention(query, key, value, mask=None) --------------------------------


def random_mask(g: torch.Generator, *shape: int, keep: float = 0.5) -> torch.Tensor:
    """A boolean mask in which every row (last dim, at least 2 long) has a True and a False,
    so neither the mask nor its inverse hides every key of a query."""
    mask = torch.rand(shape, generator=g) < keep
    first, last = torch.zeros(shape[-1], dtype=torch.bool), torch.zeros(shape[-1], dtype=torch.bool)
    first[0], last[-1] = True, True
    all_false, all_true = ~mask.any(-1, keepdim=True), mask.all(-1, keepdim=True)
    return (mask | (all_false & first)) & ~(all_true & last)


def one_key_mask(g: torch.Generator, *shape: int) -> torch.Tensor:
    """A mask that hides all keys but one (at a random place) from every query."""
    allowed = torch.randint(shape[-1], shape[:-1], generator=g)  # (..., T)
    return torch.nn.functional.one_hot(allowed, shape[-1]).bool()  # (..., T, S)


def _qkv(g: torch.Generator, *lead: int, T: int, S: int, D: int, Dv: int, scale: float = 1.0):
    return randn(g, *lead, T, D) * scale, randn(g, *lead, S, D) * scale, randn(g, *lead, S, Dv)


def _attention_cases(g: torch.Generator) -> list[Case]:
    small = _qkv(g, T=3, S=5, D=4, Dv=2)
    batch = _qkv(g, 2, T=4, S=6, D=9, Dv=3)
    cases = [
        Case("T=3 queries, S=5 keys, D=4, Dv=2", small),
        Case("batch B=2, T=4, S=6, D=9, Dv=3", batch),
        Case("leading dims (2, 3), T=2, S=3, D=4, Dv=5", _qkv(g, 2, 3, T=2, S=3, D=4, Dv=5)),
        Case("large scores (inputs ×30)", _qkv(g, 2, T=3, S=4, D=4, Dv=2, scale=30.0)),
        Case("a single key, S=1", _qkv(g, 2, T=3, S=1, D=4, Dv=2)),
        Case("(T, S) mask shared by the batch", batch, {"mask": random_mask(g, 4, 6)}),
        Case("(B, 1, S) mask over keys", batch, {"mask": random_mask(g, 2, 1, 6, keep=0.7)}),
        Case("(B, T, S) mask hiding all keys but one", batch, {"mask": one_key_mask(g, 2, 4, 6)}),
        Case(
            "causal mask, T=S=4",
            _qkv(g, 2, T=4, S=4, D=4, Dv=3),
            {"mask": reference.causal_mask(4)},
        ),
        Case("(T, S) mask, no batch", small, {"mask": random_mask(g, 3, 5)}),
    ]
    q, k, v = (t.double() for t in _qkv(g, 2, T=3, S=4, D=5, Dv=2))
    cases.append(Case("float64", (q, k, v), {"mask": random_mask(g, 3, 4)}))
    return cases


def attention(
    case: Case,
    scale: float | None = None,
    mask_mode: str = "before",
    dim: int = -1,
    after: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention written out, with one knob per known mistake.

    ``scale`` multiplies the scores (default 1/√D); ``mask_mode``: "before" (right), "after"
    (zeroed after the softmax), "inverted", "ignored", "multiplied" (scores * mask);
    ``dim``: the axis of the softmax; ``after`` multiplies the weights after the softmax.
    """
    query, key, value = case.args
    mask = case.kwargs.get("mask")
    scale = 1 / math.sqrt(query.size(-1)) if scale is None else scale
    attn_scores = query @ key.transpose(-2, -1) * scale  # (..., T, S)
    if mask is not None and mask_mode == "multiplied":
        attn_scores = attn_scores * mask
    if mask is not None and mask_mode == "inverted":
        mask = ~mask
    if mask is None or mask_mode in ("ignored", "multiplied", "after"):
        attn_weights = reference.softmax(attn_scores, dim=dim)  # (..., T, S)
    else:
        attn_weights = reference.masked_softmax(attn_scores, mask, dim=dim)  # (..., T, S)
    if mask is not None and mask_mode == "after":
        attn_weights = attn_weights * mask
    attn_weights = attn_weights * after  # (..., T, S)
    return attn_weights @ value, attn_weights  # (..., T, Dv), (..., T, S)


def _sizes(case: Case) -> dict[str, int]:
    query, key, value = case.args
    return {"T": query.size(-2), "S": key.size(-2), "D": query.size(-1), "Dv": value.size(-1)}


def _attention_expected(case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    return reference.scaled_dot_product_attention(*case.args, case.kwargs.get("mask"))


def _weights_probe(t: Trial) -> str | tuple[str, str] | None:
    """Reads the returned weights: which axis sums to 1, and by what the rows are scaled."""
    output = t.output
    if not (isinstance(output, tuple | list) and len(output) == 2):
        return None
    weights, expected = output[1], t.expected[1]
    if not isinstance(weights, torch.Tensor) or weights.shape != expected.shape:
        return None
    axes = normalised_axes(weights)
    if axes and -1 not in axes:
        what = {-2: "the queries", -3: "the heads or batch"}.get(axes[0], "another axis")
        return (
            "scaled_dot_product_attention.softmax-wrong-dim",
            f"softmax over the wrong dim: your weights sum to 1 along dim {axes[0]} "
            f"({what}); each query's weights must sum to 1 over the S keys (dim=-1)",
        )
    sums = weights.double().sum(-1)
    if finite(sums) and torch.allclose(sums, sums.flatten()[0].expand_as(sums), atol=1e-5):
        c, D = float(sums.flatten()[0]), _sizes(t.case)["D"]
        if abs(c - 1) > 1e-3 and math.isclose(c, 1 / math.sqrt(D), rel_tol=1e-3):
            return (
                "scaled_dot_product_attention.scale-after-softmax",
                "1/√D is applied after the softmax: your weights sum to 1/√D = "
                f"{c:.4f} instead of 1. Scale the scores Q Kᵀ by 1/√D before the softmax.",
            )
    return None


def _scale_probe(t: Trial) -> str | None:
    """Reads the scale off the output: the s for which softmax(s · Q Kᵀ) V gives it."""
    sizes = _sizes(t.case)
    right = 1 / math.sqrt(sizes["D"])
    tries = [1.0, 1 / sizes["D"], math.sqrt(sizes["D"])]
    tries += [1 / math.sqrt(sizes[n]) for n in ("Dv", "S", "T")]
    s = fitted_scale(t.output, lambda s: attention(t.case, scale=s), right, tries)
    if s is None:
        return None
    return (
        f"wrong scale: your scores are multiplied by {name_scale(s, sizes)}, where they must "
        f"be multiplied by 1/√D = {right:.4f} (D = query.size(-1), the width of the queries "
        "and keys)"
    )


def _swapped(case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    output, weights = _attention_expected(case)
    return weights, output


scaled_dot_product_attention = Exercise(
    name="scaled_dot_product_attention",
    arg_names=("query", "key", "value"),
    uses=("softmax",),
    assignment=ASSIGNMENT,
    points=5,
    cases=_attention_cases,
    expected=_attention_expected,
    forbidden=("scaled_dot_product",),
    forbidden_message=(
        "calls torch's F.scaled_dot_product_attention (under some name): write the "
        "scores, the softmax and the weighted sum yourself"
    ),
    mistakes=catalogue(
        "scaled_dot_product_attention",
        "no-scale scale-by-D scale-multiplied scale-by-Dv scale-by-S scale-by-T "
        "softmax-wrong-dim mask-after-softmax mask-inverted mask-multiplied mask-ignored "
        "swapped-results",
        Mistake(
            "missing 1/√D: the scores are not scaled, so the softmax saturates as D grows. "
            "Divide Q Kᵀ by √D, D the width of the queries and keys.",
            lambda case: attention(case, scale=1.0),
        ),
        Mistake(
            "wrong scale: the scores are divided by D instead of √D",
            lambda case: attention(case, scale=1 / _sizes(case)["D"]),
        ),
        Mistake(
            "wrong scale: the scores are multiplied by √D instead of divided by it",
            lambda case: attention(case, scale=math.sqrt(_sizes(case)["D"])),
        ),
        Mistake(
            "wrong scale: divided by the square root of the value width Dv; the scale is "
            "1/√D with D the width of the queries and keys (query.size(-1))",
            lambda case: attention(case, scale=1 / math.sqrt(_sizes(case)["Dv"])),
        ),
        Mistake(
            "wrong scale: divided by the square root of the number of keys S; the scale is "
            "1/√D with D the width of the queries and keys (query.size(-1))",
            lambda case: attention(case, scale=1 / math.sqrt(_sizes(case)["S"])),
        ),
        Mistake(
            "wrong scale: divided by the square root of the number of queries T; the scale is "
            "1/√D with D the width of the queries and keys (query.size(-1))",
            lambda case: attention(case, scale=1 / math.sqrt(_sizes(case)["T"])),
        ),
        Mistake(
            "softmax over the wrong dim: each query's weights must sum to 1 over the S keys "
            "(dim=-1), not over the queries",
            lambda case: attention(case, dim=-2),
        ),
        Mistake(
            "mask applied after the softmax: zeroing weights after normalising leaves rows "
            "that no longer sum to 1. Fill masked scores with -inf before the softmax.",
            lambda case: attention(case, mask_mode="after"),
        ),
        Mistake(
            "inverted mask: True means the query MAY attend to the key, so fill the scores "
            "where the mask is False (~mask)",
            lambda case: attention(case, mask_mode="inverted"),
        ),
        Mistake(
            "the mask is multiplied into the scores: a masked score becomes 0, which still "
            "gets weight. Fill masked scores with -inf (masked_fill) instead.",
            lambda case: attention(case, mask_mode="multiplied"),
        ),
        Mistake(
            "the mask is ignored: with a mask, keys where it is False must get weight 0",
            lambda case: attention(case, mask_mode="ignored"),
        ),
        Mistake(
            "the two results are swapped: return (output, weights)",
            _swapped,
        ),
    ),
    variant=attention,
    probes=(
        Probe("weights", _weights_probe),
        Probe("wrong-scale", _scale_probe),
        hint(
            "dimension out of range",
            "transpose the last two dims of the keys (transpose(-2, -1)), which works for "
            "any number of leading dims",
        ),
    ),
)


# --- causal_mask(size) ------------------------------------------------------------------------


def _sizes_cases(g: torch.Generator) -> list[Case]:
    return [Case(f"size {n}", (n,)) for n in (4, 1, 2, 7)]


def _ones(case: Case) -> torch.Tensor:
    return torch.ones(case.args[0], case.args[0], dtype=torch.bool)


def _float_mask(t: Trial) -> str | None:
    """A float mask of any values (0/-inf, 0/-1e9, 1/0): not this course's convention."""
    output = t.output
    if isinstance(output, torch.Tensor) and output.is_floating_point():
        return (
            f"returns a float mask ({output.dtype}): this course's masks are boolean, True = may "
            "attend (as F.scaled_dot_product_attention takes them), so True on and below the "
            "diagonal. An additive mask (0 where allowed, -inf or a large negative number where "
            "not) is another convention."
        )
    return None


causal_mask = Exercise(
    name="causal_mask",
    arg_names=("size",),
    assignment=ASSIGNMENT,
    points=2,
    cases=_sizes_cases,
    expected=lambda case: reference.causal_mask(*case.args),
    probes=(Probe("float-mask", _float_mask),),
    mistakes=catalogue(
        "causal_mask",
        "upper-triangle marks-future diagonal-masked sees-next",
        Mistake(
            "upper instead of lower triangle (triu instead of tril): True must be on and "
            "BELOW the diagonal, so each query sees itself and the past",
            lambda case: _ones(case).triu(),
        ),
        Mistake(
            "the mask marks the future, not what may be attended to: True = may attend, so "
            "True on and below the diagonal",
            lambda case: _ones(case).triu(diagonal=1),
        ),
        Mistake(
            "diagonal slip: the diagonal is False, so a token cannot attend to itself "
            "(the first row then has no key at all). Keep the diagonal (tril with diagonal=0).",
            lambda case: _ones(case).tril(diagonal=-1),
        ),
        Mistake(
            "diagonal slip: one step above the diagonal is True, so each token sees the next "
            "one (leakage from the future). Use tril with diagonal=0.",
            lambda case: _ones(case).tril(diagonal=1),
        ),
    ),
)


# --- padding_mask(lengths, max_len) -----------------------------------------------------------


def _padding_cases(g: torch.Generator) -> list[Case]:
    random_lengths = torch.randint(1, 7, (3,), generator=g)
    return [
        Case("lengths [3, 1, 4], max_len 5", (torch.tensor([3, 1, 4]), 5)),
        Case("random lengths, max_len 6", (random_lengths, 6)),
        Case("an empty and a full sequence", (torch.tensor([0, 4]), 4)),
        Case("one sequence", (torch.tensor([2]), 3)),
    ]


def _positions(case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    lengths, max_len = case.args
    return torch.arange(max_len), lengths.unsqueeze(-1)  # (S,), (B, 1)


padding_mask = Exercise(
    name="padding_mask",
    arg_names=("lengths", "max_len"),
    assignment=ASSIGNMENT,
    points=3,
    cases=_padding_cases,
    expected=lambda case: reference.padding_mask(*case.args),
    mistakes=catalogue(
        "padding_mask",
        "inverted off-by-one-long off-by-one-short transposed",
        Mistake(
            "inverted: True must mark the real tokens (may attend), False the padding",
            lambda case: ~reference.padding_mask(*case.args),
        ),
        Mistake(
            "off by one: a sequence of length L has real tokens at positions 0 … L-1, so one "
            "padding position too many is True (use position < length)",
            lambda case: (lambda p, n: p <= n)(*_positions(case)),
        ),
        Mistake(
            "off by one: the last real token of each sequence is marked as padding "
            "(positions 0 … L-1 are real)",
            lambda case: (lambda p, n: p < n - 1)(*_positions(case)),
        ),
        Mistake(
            "transposed: the mask has one row per sequence, shape (B, max_len)",
            lambda case: reference.padding_mask(*case.args).T,
        ),
    ),
)

EXERCISES = (scaled_dot_product_attention, causal_mask, padding_mask)
