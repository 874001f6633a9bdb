"""Assignment 03 (lessons 06-07): split and merge heads, multi-head attention."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from attn_course import reference
from attn_course.checks.a01 import randn
from attn_course.checks.a02 import random_mask
from attn_course.checks.core import Case
from attn_course.checks.exercise import Exercise, Mistake, catalogue, hint, reference_output

ASSIGNMENT = "03_multi_head_attention"


# --- split_heads(x, num_heads) ----------------------------------------------------------------


def _split_cases(g: torch.Generator) -> list[Case]:
    return [
        Case("B=1, T=3, D=4, H=2", (randn(g, 1, 3, 4), 2)),
        Case("B=2, T=5, D=6, H=3", (randn(g, 2, 5, 6), 3)),
        Case("B=3, T=2, D=8, H=4", (randn(g, 3, 2, 8), 4)),
        Case("one head, H=1", (randn(g, 2, 3, 4), 1)),
        Case("head width Dh=1", (randn(g, 2, 3, 3), 3)),
    ]


def split_view_only(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """The `view`-without-`transpose` mistake: right shape, tokens scrambled across heads."""
    B, T, D = x.shape
    return x.reshape(B, num_heads, T, D // num_heads)  # (B, H, T, Dh), wrong values


def _split_interleaved(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    B, T, D = x.shape
    return x.reshape(B, T, D // num_heads, num_heads).permute(0, 3, 1, 2)  # (B, H, T, Dh)


split_heads = Exercise(
    name="split_heads",
    arg_names=("x", "num_heads"),
    assignment=ASSIGNMENT,
    points=3,
    cases=_split_cases,
    expected=lambda case: reference.split_heads(*case.args),
    mistakes=catalogue(
        "split_heads",
        "view-without-transpose no-transpose interleaved",
        Mistake(
            "`view` without `transpose`: viewing (B, T, D) directly as (B, H, T, Dh) has the "
            "right shape but cuts the flat memory in the wrong places, so each 'head' gets "
            "pieces of several tokens. View as (B, T, H, Dh) first, then transpose(1, 2).",
            lambda case: split_view_only(*case.args),
        ),
        Mistake(
            "missing `transpose`: the result is (B, T, H, Dh); heads must come before the "
            "tokens: transpose(1, 2) to get (B, H, T, Dh)",
            lambda case: (lambda x, h: x.reshape(*x.shape[:2], h, -1))(*case.args),
        ),
        Mistake(
            "heads taken as interleaved columns (view as (B, T, Dh, H)): head h must be the "
            "contiguous block of columns h·Dh … (h+1)·Dh - 1, as nn.MultiheadAttention does",
            lambda case: _split_interleaved(*case.args),
        ),
    ),
)


# --- merge_heads(x) ---------------------------------------------------------------------------


def _merge_cases(g: torch.Generator) -> list[Case]:
    return [
        Case("B=1, H=2, T=3, Dh=2", (randn(g, 1, 2, 3, 2),)),
        Case("B=2, H=3, T=4, Dh=2", (randn(g, 2, 3, 4, 2),)),
        Case("B=2, H=4, T=2, Dh=3", (randn(g, 2, 4, 2, 3),)),
        Case("one head, H=1", (randn(g, 2, 1, 3, 4),)),
    ]


def merge_view_only(x: torch.Tensor) -> torch.Tensor:
    """The `view`-without-`transpose` mistake: right shape, heads and tokens mixed up."""
    B, H, T, Dh = x.shape
    return x.reshape(B, T, H * Dh)  # (B, T, D), wrong values


merge_heads = Exercise(
    name="merge_heads",
    arg_names=("x",),
    assignment=ASSIGNMENT,
    points=2,
    cases=_merge_cases,
    expected=lambda case: reference.merge_heads(*case.args),
    mistakes=catalogue(
        "merge_heads",
        "view-without-transpose interleaved",
        Mistake(
            "`view` without `transpose`: viewing (B, H, T, Dh) directly as (B, T, H·Dh) has the "
            "right shape but mixes heads and tokens. transpose(1, 2) to (B, T, H, Dh) first, "
            "then reshape (or .contiguous().view).",
            lambda case: merge_view_only(*case.args),
        ),
        Mistake(
            "the heads are merged interleaved (as (B, T, Dh, H)): feature j of every head sits "
            "side by side. Head h must come back as the contiguous block of columns "
            "h·Dh … (h+1)·Dh - 1: transpose(1, 2) to (B, T, H, Dh), then reshape.",
            lambda case: (lambda x: x.permute(0, 2, 3, 1).flatten(2))(*case.args),
        ),
    ),
    probes=(
        hint(
            "view size is not compatible",
            "after transpose the tensor is not contiguous: use reshape, or .contiguous() "
            "before view",
        ),
    ),
)


# --- MultiHeadAttention(d_model, num_heads) ---------------------------------------------------


def _state(g: torch.Generator, d_model: int) -> dict[str, torch.Tensor]:
    state = {}
    for name in ("w_q", "w_k", "w_v", "w_o"):
        state[f"{name}.weight"] = randn(g, d_model, d_model) / math.sqrt(d_model)
        state[f"{name}.bias"] = randn(g, d_model) * 0.1
    return state


def _mha_case(g: torch.Generator, label: str, B: int, T: int, S: int, D: int, H: int, mask=None):
    query = randn(g, B, T, D)
    memory = query if S == T else randn(g, B, S, D)
    kwargs = {} if mask is None else {"mask": mask}
    return Case(label, (query, memory, memory), kwargs, init_args=(D, H), state_dict=_state(g, D))


def _mha_cases(g: torch.Generator) -> list[Case]:
    return [
        _mha_case(g, "self-attention B=2, T=3, D=4, H=2", 2, 3, 3, 4, 2),
        _mha_case(g, "cross-attention B=3, T=2, S=5, D=12, H=3", 3, 2, 5, 12, 3),
        _mha_case(g, "one head, H=1", 2, 4, 4, 6, 1),
        _mha_case(g, "causal (T, T) mask", 2, 4, 4, 8, 4, mask=reference.causal_mask(4)),
        _mha_case(g, "(B, 1, S) key mask, B=H=2", 2, 3, 5, 8, 2, mask=random_mask(g, 2, 1, 5)),
        _mha_case(g, "(B, T, S) mask, B=3, H=2", 3, 4, 5, 6, 2, mask=random_mask(g, 3, 4, 5)),
    ]


def multi_head(
    case: Case,
    split=reference.split_heads,
    merge=reference.merge_heads,
    scale_by: str = "Dh",
    mask_mode: str = "before",
    head_axis: int | None = 1,
    project_out: bool = True,
    value_projection: str = "w_v",
) -> torch.Tensor:
    """Multi-head attention written out from ``case``, with one knob per known mistake.

    ``head_axis``: where the mask gets its head axis (1: right; None: none; 2: after T, as
    ``mask.unsqueeze(2)``)."""
    (query, key, value), state = case.args, case.state_dict
    d_model, num_heads = case.init_args
    mask = case.kwargs.get("mask")

    def project(name: str, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, state[f"{name}.weight"], state[f"{name}.bias"])  # (B, *, D)

    q = split(project("w_q", query), num_heads)  # (B, H, T, Dh)
    k = split(project("w_k", key), num_heads)  # (B, H, S, Dh)
    v = split(project(value_projection, value), num_heads)  # (B, H, S, Dh)
    if mask is not None and head_axis is not None:
        mask = (
            mask.unsqueeze(head_axis) if mask.dim() == 3 or head_axis == 2 else mask
        )  # (B, 1, T, S), or (B, T, 1, S) / (T, 1, S) when head_axis == 2
    width = {"Dh": d_model // num_heads, "D": d_model, "none": 1}[scale_by]
    attn_scores = q @ k.transpose(-2, -1) / math.sqrt(width)  # (B, H, T, S)
    if mask is not None and mask_mode == "inverted":
        mask = ~mask
    if mask_mode == "ignored":
        mask = None
    if head_axis == 2 and mask is not None:  # as learners write it: rows with no key are NaN
        attn_scores = attn_scores.masked_fill(~mask, float("-inf"))  # (B, H, T, S)
        attn_weights = torch.softmax(attn_scores, dim=-1)  # (B, H, T, S), NaN rows kept
    else:
        attn_weights = reference.masked_softmax(attn_scores, mask)  # (B, H, T, S)
    context = merge(attn_weights @ v)  # (B, T, D)
    return project("w_o", context) if project_out else context


multi_head_attention = Exercise(
    name="MultiHeadAttention",
    arg_names=("query", "key", "value"),
    init_names=("d_model", "num_heads"),
    uses=("split_heads", "merge_heads"),
    assignment=ASSIGNMENT,
    points=5,
    cases=_mha_cases,
    expected=lambda case: reference_output(reference.MultiHeadAttention, case),
    forbidden=("multi_head_attention_forward",),
    forbidden_message=(
        "uses torch's nn.MultiheadAttention (F.multi_head_attention_forward): build it from "
        "the four projections, split_heads, attention and merge_heads"
    ),
    mistakes=catalogue(
        "MultiHeadAttention",
        "split-view-without-transpose merge-view-without-transpose view-without-transpose "
        "scale-by-D no-scale mask-no-head-axis mask-head-axis-misplaced values-with-w_k "
        "mask-inverted mask-ignored no-output-projection",
        Mistake(
            "`view` without `transpose` when splitting the heads: each head gets pieces of "
            "several tokens instead of a slice of every token's features",
            lambda case: multi_head(case, split=split_view_only),
        ),
        Mistake(
            "`view` without `transpose` when merging the heads: heads and tokens are mixed up "
            "before the output projection",
            lambda case: multi_head(case, merge=merge_view_only),
        ),
        Mistake(
            "`view` without `transpose` when splitting and when merging the heads",
            lambda case: multi_head(case, split=split_view_only, merge=merge_view_only),
        ),
        Mistake(
            "wrong scale: the scores are divided by √D (the model width); each head attends "
            "with its own width, so divide by √Dh = √(D / H)",
            lambda case: multi_head(case, scale_by="D"),
        ),
        Mistake(
            "missing 1/√Dh: the per-head scores are not scaled",
            lambda case: multi_head(case, scale_by="none"),
        ),
        Mistake(
            "the mask has no head axis: a (B, T, S) or (B, 1, S) mask must become "
            "(B, 1, T, S) (unsqueeze(1)) so that every head of a batch element uses that "
            "element's mask; without it the batch axis of the mask lines up with the heads",
            lambda case: multi_head(case, head_axis=None),
        ),
        Mistake(
            "the mask's head axis is in the wrong place: the scores are (B, H, T, S), so the "
            "mask must be (B, 1, T, S) (unsqueeze(1) of a (B, T, S) mask); with the new axis "
            "after T, the mask's query axis lines up with the heads",
            lambda case: multi_head(case, head_axis=2),
        ),
        Mistake(
            "the values are projected with w_k: use w_v for the values (w_k is for the keys)",
            lambda case: multi_head(case, value_projection="w_k"),
        ),
        Mistake(
            "inverted mask: True means the query MAY attend to the key",
            lambda case: multi_head(case, mask_mode="inverted"),
        ),
        Mistake(
            "the mask is ignored: with a mask, keys where it is False must get weight 0",
            lambda case: multi_head(case, mask_mode="ignored"),
        ),
        Mistake(
            "the output projection w_o is missing: apply it to the merged heads",
            lambda case: multi_head(case, project_out=False),
        ),
    ),
    probes=(
        hint(
            "must match the size of tensor",
            "two shapes do not line up: the scores are (B, H, T, S), so a (B, T, S) or "
            "(B, 1, S) mask needs a head axis, mask.unsqueeze(1)",
        ),
    ),
)

EXERCISES = (split_heads, merge_heads, multi_head_attention)
