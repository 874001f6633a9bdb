"""Verdicts never depend on luck: every check, run with 50 different seeds on a known-right and
a known-wrong implementation of its exercise, gives the same verdict (status and message)
every time. Every edge case a known mistake needs is a fixed case, not a random draw."""

import math

import pytest
import torch
import torch.nn.functional as F

from attn_course import reference
from attn_course.checks import EXERCISES, run_check

SEEDS = range(50)


def scores_scaled(query, keys):
    return (keys @ query.unsqueeze(-1)).squeeze(-1) / math.sqrt(query.size(-1))


def softmax_without_shift(scores, dim=-1):
    exp = scores.exp()
    return exp / exp.sum(dim=dim, keepdim=True)


def context_bare_squeeze(weights, values):
    return (weights.unsqueeze(-2) @ values).squeeze()


class SimpleAttentionLastDim(reference.SimpleAttention):
    def forward(self, x):
        weights = torch.softmax(self.attention(x), dim=-1)
        return (weights * x).sum(dim=1), weights


def attention_mask_after_softmax(query, key, value, mask=None):
    weights = torch.softmax(query @ key.transpose(-2, -1) / math.sqrt(query.size(-1)), dim=-1)
    if mask is not None:
        weights = weights * mask
    return weights @ value, weights


def causal_additive(size):
    return torch.full((size, size), float("-inf")).triu(diagonal=1)


def padding_one_too_many(lengths, max_len):
    return torch.arange(max_len) <= lengths.unsqueeze(-1)


def split_without_transpose(x, num_heads):
    B, T, D = x.shape
    return x.reshape(B, num_heads, T, D // num_heads)


def merge_interleaved(x):
    return x.permute(0, 2, 3, 1).flatten(2)


class MultiHeadAttentionValuesThroughWk(reference.MultiHeadAttention):
    def forward(self, query, key, value, mask=None):
        H = self.num_heads
        q = reference.split_heads(self.w_q(query), H)
        k = reference.split_heads(self.w_k(key), H)
        v = reference.split_heads(self.w_k(value), H)
        mask = mask.unsqueeze(1) if mask is not None and mask.dim() == 3 else mask
        context, _ = reference.scaled_dot_product_attention(q, k, v, mask)
        return self.w_o(reference.merge_heads(context))


def encoding_base_1000(seq_len, d_model):
    angle = torch.arange(seq_len)[:, None] / 1000.0 ** (torch.arange(0, d_model, 2) / d_model)
    return torch.stack((angle.sin(), angle.cos()), dim=-1).flatten(-2)


class FeedForwardTanhGelu(reference.FeedForward):
    def forward(self, x):
        return self.down(F.gelu(self.up(x), approximate="tanh"))


class PostNormBlock(reference.TransformerEncoderBlock):
    def forward(self, x, mask=None):
        x = self.norm1(x + self.attn(x, x, x, mask))
        return self.norm2(x + self.ffn(x))


def online_softmax_max_from_zero(scores, block_size):
    row_max = torch.zeros(*scores.shape[:-1], 1, dtype=scores.dtype)
    row_sum = torch.zeros_like(row_max)
    for start in range(0, scores.size(-1), block_size):
        block = scores[..., start : start + block_size]
        new_max = torch.maximum(row_max, block.amax(-1, keepdim=True))
        row_sum = row_sum * torch.exp(row_max - new_max) + torch.exp(block - new_max).sum(-1, True)
        row_max = new_max
    return torch.exp(scores - row_max) / row_sum


def tiled_causal_bottom_right(query, key, value, mask=None, *, block_size, is_causal=False):
    T, S = query.size(-2), key.size(-2)
    if is_causal:
        bottom_right = torch.ones(T, S, dtype=torch.bool).tril(diagonal=S - T)
        mask = bottom_right if mask is None else mask & bottom_right
    return reference.tiled_attention(query, key, value, mask, block_size=block_size)


WRONG = {
    "attention_scores": scores_scaled,
    "softmax": softmax_without_shift,
    "context_vector": context_bare_squeeze,
    "SimpleAttention": SimpleAttentionLastDim,
    "scaled_dot_product_attention": attention_mask_after_softmax,
    "causal_mask": causal_additive,
    "padding_mask": padding_one_too_many,
    "split_heads": split_without_transpose,
    "merge_heads": merge_interleaved,
    "MultiHeadAttention": MultiHeadAttentionValuesThroughWk,
    "sinusoidal_positional_encoding": encoding_base_1000,
    "FeedForward": FeedForwardTanhGelu,
    "TransformerEncoderBlock": PostNormBlock,
    "online_softmax": online_softmax_max_from_zero,
    "tiled_attention": tiled_causal_bottom_right,
}


def verdicts(name, obj):
    return {(v.status, v.message) for v in (run_check(name, obj, seed=s) for s in SEEDS)}


@pytest.mark.parametrize("name", [name for name in EXERCISES if name in WRONG])
def test_a_known_wrong_implementation_gets_the_same_verdict_with_every_seed(name):
    seen = verdicts(name, WRONG[name])
    assert len(seen) == 1, seen
    [(status, _)] = seen
    assert status == "failed"


@pytest.mark.parametrize("name", [name for name in EXERCISES if name in WRONG])
def test_the_reference_passes_with_every_seed(name):
    seen = verdicts(name, getattr(reference, name))
    assert {status for status, _ in seen} == {"passed"}


def test_every_exercise_has_a_known_wrong_implementation_here():
    assert set(WRONG) >= {
        name for name, exercise in EXERCISES.items() if exercise.assignment[:2] <= "05"
    }
