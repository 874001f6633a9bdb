"""Correct code in the styles of well-known public attention code passes the checks: fused
q/k/v weights with a conversion hook (nanoGPT), nn.ModuleList sublayer wrappers (the Annotated
Transformer), causal-mask buffers and dropout layers (nanoGPT, LLMs from scratch), masking with
-1e9 or finfo.min, einsum, and plain loops. Each is written here in that style."""

import math

import pytest
import torch
import torch.nn.functional as F
from test_a06 import greedy_decoder
from torch import nn

from attn_course.checks import run_check

SEEDS = [0, 1, 2]
CONTEXT_LENGTH = 16  # the size of the causal-mask buffers; the checks pass their own masks


# --- multi-head attention ---------------------------------------------------------------------


class FusedQKVAttention(nn.Module):
    """nanoGPT's layout: one c_attn for q, k and v, c_proj out, a causal buffer, dropout; a
    load_state_dict pre-hook converts the course's w_q/w_k/w_v/w_o into it."""

    def __init__(self, d_model, num_heads, dropout=0.1):
        super().__init__()
        self.n_head = num_heads
        self.c_attn = nn.Linear(d_model, 3 * d_model)
        self.c_proj = nn.Linear(d_model, d_model)
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(dropout)
        causal = torch.tril(torch.ones(CONTEXT_LENGTH, CONTEXT_LENGTH))
        self.register_buffer("bias", causal.view(1, 1, CONTEXT_LENGTH, CONTEXT_LENGTH))
        self._register_load_state_dict_pre_hook(self._from_separate_projections)

    @staticmethod
    def _from_separate_projections(state_dict, prefix, *args):
        if prefix + "w_q.weight" not in state_dict:
            return
        for kind in ("weight", "bias"):
            parts = [state_dict.pop(f"{prefix}w_{name}.{kind}") for name in "qkv"]
            state_dict[f"{prefix}c_attn.{kind}"] = torch.cat(parts, dim=0)
            state_dict[f"{prefix}c_proj.{kind}"] = state_dict.pop(f"{prefix}w_o.{kind}")

    def forward(self, query, key, value, mask=None):
        B, T, C = query.size()
        S = key.size(1)
        w_q, w_k, w_v = self.c_attn.weight.split(C, dim=0)
        b_q, b_k, b_v = self.c_attn.bias.split(C, dim=0)
        q = F.linear(query, w_q, b_q).view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = F.linear(key, w_k, b_k).view(B, S, self.n_head, C // self.n_head).transpose(1, 2)
        v = F.linear(value, w_v, b_v).view(B, S, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        if mask is not None:
            att = att.masked_fill(~(mask.unsqueeze(1) if mask.dim() == 3 else mask), float("-inf"))
        att = self.attn_dropout(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class AnnotatedAttention(nn.Module):
    """The Annotated Transformer's style: masked_fill with -1e9, dropout on the weights."""

    def __init__(self, d_model, num_heads, dropout=0.1):
        super().__init__()
        self.d_k = d_model // num_heads
        self.h = num_heads
        self.w_q, self.w_k = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.w_v, self.w_o = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, query, key, value, mask=None):
        if mask is not None:
            mask = mask.unsqueeze(1) if mask.dim() == 3 else mask
        nbatches = query.size(0)
        query, key, value = [
            lin(x).view(nbatches, -1, self.h, self.d_k).transpose(1, 2)
            for lin, x in zip((self.w_q, self.w_k, self.w_v), (query, key, value), strict=True)
        ]
        scores = torch.matmul(query, key.transpose(-2, -1)) / math.sqrt(self.d_k)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, -1e9)
        p_attn = self.dropout(scores.softmax(dim=-1))
        x = torch.matmul(p_attn, value).transpose(1, 2).contiguous()
        return self.w_o(x.view(nbatches, -1, self.h * self.d_k))


class EinsumBufferAttention(nn.Module):
    """LLMs-from-scratch's style: a causal-mask buffer (unused here), einsum, finfo.min."""

    def __init__(self, d_model, num_heads, dropout=0.1):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, d_model // num_heads
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)
        self.w_o = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        future = torch.triu(torch.ones(CONTEXT_LENGTH, CONTEXT_LENGTH), diagonal=1)
        self.register_buffer("mask", future)

    def forward(self, query, key, value, mask=None):
        def heads(x):
            return x.unflatten(-1, (self.num_heads, self.head_dim))  # (B, T, H, Dh)

        q, k, v = heads(self.w_q(query)), heads(self.w_k(key)), heads(self.w_v(value))
        attn_scores = torch.einsum("bthd,bshd->bhts", q, k) / self.head_dim**0.5
        if mask is not None:
            mask = mask.unsqueeze(-3) if mask.dim() == 3 else mask
            attn_scores = attn_scores.masked_fill(~mask, torch.finfo(attn_scores.dtype).min)
        attn_weights = self.dropout(torch.softmax(attn_scores, dim=-1))
        context = torch.einsum("bhts,bshd->bthd", attn_weights, v).flatten(-2)
        return self.w_o(context)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("cls", [FusedQKVAttention, AnnotatedAttention, EinsumBufferAttention])
def test_multi_head_attention_in_public_styles_passes(cls, seed):
    verdict = run_check("MultiHeadAttention", cls, seed=seed)
    assert verdict.passed, verdict


# --- feed-forward network and encoder block ---------------------------------------------------


class FeedForwardWithDropout(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.1):
        super().__init__()
        self.up = nn.Linear(d_model, d_ff)
        self.act = nn.GELU()
        self.down = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.down(self.dropout(self.act(self.up(x)))))


class SublayerConnection(nn.Module):
    """The Annotated Transformer's residual wrapper: x + dropout(sublayer(norm(x)))."""

    def __init__(self, norm, dropout):
        super().__init__()
        self.norm = norm
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, sublayer):
        return x + self.dropout(sublayer(self.norm(x)))


class AnnotatedBlock(nn.Module):
    """norm1/norm2 are also held by the nn.ModuleList of sublayer wrappers (extra keys)."""

    def __init__(self, d_model, num_heads, d_ff, dropout=0.1):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = AnnotatedAttention(d_model, num_heads, dropout)
        self.ffn = FeedForwardWithDropout(d_model, d_ff, dropout)
        self.sublayer = nn.ModuleList(
            [SublayerConnection(self.norm1, dropout), SublayerConnection(self.norm2, dropout)]
        )

    def forward(self, x, mask=None):
        x = self.sublayer[0](x, lambda h: self.attn(h, h, h, mask))
        return self.sublayer[1](x, self.ffn)


class NanoGPTBlock(nn.Module):
    """nanoGPT's Block: x = x + attn(ln(x)); x = x + mlp(ln(x)), with a fused attention."""

    def __init__(self, d_model, num_heads, d_ff, dropout=0.1):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = FusedQKVAttention(d_model, num_heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = FeedForwardWithDropout(d_model, d_ff, dropout)

    def forward(self, x, mask=None):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, mask)
        return x + self.ffn(self.norm2(x))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "name, cls",
    [
        ("FeedForward", FeedForwardWithDropout),
        ("TransformerEncoderBlock", AnnotatedBlock),
        ("TransformerEncoderBlock", NanoGPTBlock),
    ],
)
def test_blocks_in_public_styles_pass(name, cls, seed):
    verdict = run_check(name, cls, seed=seed)
    assert verdict.passed, verdict


# --- functions: masking constants, einsum, loops ----------------------------------------------


def attention_finfo_min(query, key, value, mask=None):
    scores = torch.einsum("...td,...sd->...ts", query, key) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=-1)
    return torch.einsum("...ts,...sv->...tv", weights, value), weights


def attention_minus_1e9(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -1e9)
    weights = F.softmax(scores, dim=-1)
    return weights @ value, weights


def split_heads_loop(x, num_heads):
    head_width = x.size(-1) // num_heads
    heads = [x[..., h * head_width : (h + 1) * head_width] for h in range(num_heads)]
    return torch.stack(heads, dim=1)


def merge_heads_loop(x):
    return torch.cat([x[:, h] for h in range(x.size(1))], dim=-1)


def context_einsum(weights, values):
    return torch.einsum("...s,...sv->...v", weights, values)


def tiled_einsum(query, key, value, mask=None, *, block_size, is_causal=False):
    T, S = query.size(-2), key.size(-2)
    scale = 1.0 / math.sqrt(query.size(-1))
    lead = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    running_max = query.new_full((*lead, T, 1), float("-inf"))
    running_sum = query.new_zeros((*lead, T, 1))
    acc = query.new_zeros((*lead, T, value.size(-1)))
    rows = torch.arange(T).unsqueeze(-1)
    for start in range(0, S, block_size):
        stop = min(start + block_size, S)
        s = torch.einsum("...td,...sd->...ts", query, key[..., start:stop, :]) * scale
        if mask is not None:
            s = s.masked_fill(~mask[..., start:stop], float("-inf"))
        if is_causal:
            s = s.masked_fill(torch.arange(start, stop) > rows, float("-inf"))
        new_max = torch.maximum(running_max, s.amax(-1, keepdim=True))
        alpha = torch.exp(running_max - new_max).nan_to_num(0.0)
        p = torch.exp(s - new_max).nan_to_num(0.0)
        running_sum = running_sum * alpha + p.sum(-1, keepdim=True)
        acc = acc * alpha + torch.einsum("...ts,...sv->...tv", p, value[..., start:stop, :])
        running_max = new_max
    return acc / running_sum


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "name, fn",
    [
        ("scaled_dot_product_attention", attention_finfo_min),
        ("scaled_dot_product_attention", attention_minus_1e9),
        ("split_heads", split_heads_loop),
        ("merge_heads", merge_heads_loop),
        ("context_vector", context_einsum),
        ("tiled_attention", tiled_einsum),
    ],
)
def test_functions_in_public_styles_pass(name, fn, seed):
    verdict = run_check(name, fn, seed=seed)
    assert verdict.passed, verdict


# --- grouped-query attention and greedy decoding -----------------------------------------------


class LlamaStyleAttention(nn.Module):
    """Llama's and nanoGPT's habits: a RoPE cos/sin table precomputed for max_positions in
    __init__, and a causal buffer tril(ones(n, n)) sliced at every call (both far larger than
    any tensor one call makes)."""

    def __init__(self, d_model, num_heads, num_kv_heads, max_positions=512):
        super().__init__()
        self.h, self.g, self.dh = num_heads, num_kv_heads, d_model // num_heads
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, num_kv_heads * self.dh)
        self.w_v = nn.Linear(d_model, num_kv_heads * self.dh)
        self.w_o = nn.Linear(d_model, d_model)
        half = self.dh // 2
        inv_freq = 1.0 / 10000.0 ** (torch.arange(half, dtype=torch.float64) * 2 / self.dh)
        angles = torch.arange(max_positions, dtype=torch.float64)[:, None] * inv_freq
        self.register_buffer("cos_cached", angles.cos().float(), persistent=False)
        self.register_buffer("sin_cached", angles.sin().float(), persistent=False)
        causal = torch.tril(torch.ones(max_positions, max_positions, dtype=torch.bool))
        self.register_buffer("bias", causal, persistent=False)

    def rotate(self, x, start):
        cos = self.cos_cached[start : start + x.size(-2)]
        sin = self.sin_cached[start : start + x.size(-2)]
        x1, x2 = x[..., : self.dh // 2], x[..., self.dh // 2 :]
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)

    def forward(self, x, cache=None):
        B, T, D = x.shape
        past = 0 if cache is None else len(cache)
        q = self.w_q(x).view(B, T, self.h, self.dh).transpose(1, 2)
        k = self.w_k(x).view(B, T, self.g, self.dh).transpose(1, 2)
        v = self.w_v(x).view(B, T, self.g, self.dh).transpose(1, 2)
        q, k = self.rotate(q, past), self.rotate(k, past)
        if cache is not None:
            k, v = cache.append(k, v)
        r = self.h // self.g
        k, v = k.repeat_interleave(r, dim=1), v.repeat_interleave(r, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.dh)
        att = att.masked_fill(~self.bias[past : past + T, : k.size(-2)], float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        return self.w_o(y.transpose(1, 2).reshape(B, T, D))


# Assignment 06's model and decoding loop as a learner writes them (test_a06), with the attention
# above in its layers.
LlamaStyleGreedyDecoder = greedy_decoder(attention=LlamaStyleAttention)


@pytest.mark.parametrize("seed", SEEDS[:2])
@pytest.mark.parametrize(
    "name, cls",
    [
        ("GroupedQueryAttention", LlamaStyleAttention),
        ("GreedyDecoder", LlamaStyleGreedyDecoder),
    ],
)
def test_modules_with_large_tables_made_in_init_pass(name, cls, seed):
    verdict = run_check(name, cls, seed=seed)
    assert verdict.passed, verdict
