"""Assignment 03 checks: known mistakes are named, other correct code
passes. Each wrong implementation below is written as a learner would write it."""

import math

import pytest
import torch
from torch import nn

from attn_course import reference
from attn_course.checks import run_check

SEEDS = [0, 1, 2]


# --- split_heads and merge_heads --------------------------------------------------------------


def split_heads_unflatten(x, num_heads):
    return x.unflatten(-1, (num_heads, -1)).permute(0, 2, 1, 3)


def split_heads_stack(x, num_heads):
    return torch.stack(x.chunk(num_heads, dim=-1), dim=1)


def split_heads_view_only(x, num_heads):
    B, T, D = x.shape
    return x.view(B, num_heads, T, D // num_heads)


def split_heads_no_transpose(x, num_heads):
    B, T, D = x.shape
    return x.view(B, T, num_heads, D // num_heads)


def split_heads_interleaved(x, num_heads):
    B, T, D = x.shape
    return x.view(B, T, D // num_heads, num_heads).permute(0, 3, 1, 2)


@pytest.mark.parametrize("fn", [split_heads_unflatten, split_heads_stack])
def test_split_heads_other_correct_solutions_pass(fn):
    assert run_check("split_heads", fn, seed=0).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "fn, words",
    [
        (split_heads_view_only, "`view` without `transpose`"),
        (split_heads_no_transpose, "missing `transpose`"),
        (split_heads_interleaved, "interleaved columns"),
    ],
)
def test_split_heads_mistakes_are_named(fn, words, seed):
    verdict = run_check("split_heads", fn, seed=seed)
    assert verdict.status == "failed", verdict
    assert words in verdict.message


def merge_heads_cat(x):
    return torch.cat(x.unbind(dim=1), dim=-1)


def merge_heads_view_only(x):
    B, H, T, Dh = x.shape
    return x.view(B, T, H * Dh)


def merge_heads_view_after_transpose(x):
    B, H, T, Dh = x.shape
    return x.transpose(1, 2).view(B, T, H * Dh)


def test_merge_heads_written_with_cat_passes():
    assert run_check("merge_heads", merge_heads_cat, seed=0).passed


@pytest.mark.parametrize("seed", SEEDS)
def test_merge_heads_view_without_transpose_is_named(seed):
    verdict = run_check("merge_heads", merge_heads_view_only, seed=seed)
    assert verdict.status == "failed"
    assert "`view` without `transpose`" in verdict.message


def test_merge_heads_view_of_a_transposed_tensor_gets_a_hint():
    verdict = run_check("merge_heads", merge_heads_view_after_transpose, seed=0)
    assert verdict.status == "error"
    assert "not contiguous" in verdict.message


# --- MultiHeadAttention -----------------------------------------------------------------------


def multi_head_attention(
    split=split_heads_unflatten,
    merge=merge_heads_cat,
    scale_by="head",
    mask_mode="before",
    head_axis=True,
    project_out=True,
):
    """A learner's MultiHeadAttention with one deliberate slip (defaults: a correct one)."""

    class MultiHeadAttention(nn.Module):
        def __init__(self, d_model, num_heads):
            super().__init__()
            self.num_heads = num_heads
            self.w_q = nn.Linear(d_model, d_model)
            self.w_k = nn.Linear(d_model, d_model)
            self.w_v = nn.Linear(d_model, d_model)
            self.w_o = nn.Linear(d_model, d_model)

        def forward(self, query, key, value, mask=None):
            q = split(self.w_q(query), self.num_heads)
            k = split(self.w_k(key), self.num_heads)
            v = split(self.w_v(value), self.num_heads)
            width = q.size(-1) if scale_by == "head" else query.size(-1)
            scores = torch.einsum("bhtd,bhsd->bhts", q, k)
            if scale_by != "none":
                scores = scores / math.sqrt(width)
            if mask is not None and mask_mode != "ignored":
                if head_axis:
                    mask = mask.unsqueeze(-3)
                allowed = ~mask if mask_mode == "inverted" else mask
                scores = scores.masked_fill(~allowed, -1e9)
            context = merge(torch.softmax(scores, dim=-1) @ v)
            return self.w_o(context) if project_out else context

    return MultiHeadAttention


class MultiHeadAttentionOverNN(nn.Module):
    """Wraps torch's own nn.MultiheadAttention: forbidden, whatever its numbers."""

    def __init__(self, d_model, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)
        self.w_o = nn.Linear(d_model, d_model)

    def forward(self, query, key, value, mask=None):
        mha = reference.to_torch_multihead_attention(self, self.num_heads)
        attn_mask = None
        if mask is not None:
            attn_mask = ~mask.expand(query.size(0), query.size(1), key.size(1))
            attn_mask = attn_mask.repeat_interleave(self.num_heads, dim=0)
        return mha(query, key, value, attn_mask=attn_mask, need_weights=False)[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_multi_head_attention_written_differently_passes(seed):
    verdict = run_check("MultiHeadAttention", multi_head_attention(), seed=seed)
    assert verdict.passed, verdict


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "module, words",
    [
        (multi_head_attention(split=split_heads_view_only), "when splitting the heads"),
        (multi_head_attention(merge=merge_heads_view_only), "when merging the heads"),
        (
            multi_head_attention(split=split_heads_view_only, merge=merge_heads_view_only),
            "when splitting and when merging",
        ),
        (multi_head_attention(scale_by="model"), "divided by √D (the model width)"),
        (multi_head_attention(scale_by="none"), "missing 1/√Dh"),
        (multi_head_attention(head_axis=False), "the mask has no head axis"),
        (multi_head_attention(mask_mode="inverted"), "inverted mask"),
        (multi_head_attention(mask_mode="ignored"), "the mask is ignored"),
        (multi_head_attention(project_out=False), "output projection w_o is missing"),
    ],
)
def test_multi_head_attention_mistakes_are_named(module, words, seed):
    verdict = run_check("MultiHeadAttention", module, seed=seed)
    assert verdict.status == "failed", verdict
    assert words in verdict.message


def test_multi_head_attention_over_torchs_own_module_is_forbidden():
    verdict = run_check("MultiHeadAttention", MultiHeadAttentionOverNN, seed=0)
    assert verdict.status == "forbidden"
    assert "nn.MultiheadAttention" in verdict.message
