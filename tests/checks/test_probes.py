"""A bank of mistakes in forms the catalogue does not list, each named by a probe.

Every function here is written the way a learner or a public repository writes it, with the
mistake inside; none is one of the catalogue's variant functions.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attn_course.checks import check, run_check

SEEDS = (0, 7)


# --- assignment 01: softmax ---------------------------------------------------------------------


def softmax_centred_on_the_mean(scores, dim=-1):
    centred = scores - torch.mean(scores, dim=dim, keepdim=True)
    weights = torch.exp(centred)
    return weights / torch.sum(weights, dim=dim, keepdim=True)


def softmax_shifted_by_the_row_minimum(scores, dim=-1):
    low = scores.min(dim=dim, keepdim=True).values
    return (scores - low).exp() / (scores - low).exp().sum(dim=dim, keepdim=True)


def softmax_without_any_shift(scores, dim=-1):
    e = torch.exp(scores.double()).to(scores.dtype)  # in float64, and still no shift
    return e / e.sum(dim, keepdim=True)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "fn",
    [softmax_centred_on_the_mean, softmax_shifted_by_the_row_minimum, softmax_without_any_shift],
)
def test_a_shift_other_than_the_row_maximum_is_named_no_max_shift(fn, seed):
    assert run_check("softmax", fn, seed=seed).mistake == "softmax.no-max-shift"


# --- assignment 02: scaled dot-product attention ------------------------------------------------


def attention_scaled_after_the_softmax(query, key, value, mask=None):
    scores = torch.einsum("...td,...sd->...ts", query, key)
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), -math.inf)
    weights = scores.softmax(dim=-1) * query.shape[-1] ** -0.5
    return weights @ value, weights


def attention_softmax_across_heads(query, key, value, mask=None):
    scores = query @ key.mT / math.sqrt(query.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    axis = 1 if scores.dim() == 4 else -1  # (B, H, T, S): "normalise over the heads"
    weights = torch.softmax(scores, dim=axis)
    return weights @ value, weights


def attention_scaled_by_twice_the_width(query, key, value, mask=None):
    scores = query @ key.transpose(-1, -2) / math.sqrt(2 * query.size(-1))
    if mask is not None:
        scores = torch.where(mask, scores, torch.tensor(float("-inf")))
    weights = F.softmax(scores, dim=-1)
    return weights @ value, weights


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("fn", "mistake"),
    [
        (attention_scaled_after_the_softmax, "scale-after-softmax"),
        (attention_softmax_across_heads, "softmax-wrong-dim"),
        (attention_scaled_by_twice_the_width, "wrong-scale"),
    ],
)
def test_scale_and_axis_are_read_off_the_weights(fn, mistake, seed):
    verdict = run_check("scaled_dot_product_attention", fn, seed=seed)
    assert verdict.mistake == f"scaled_dot_product_attention.{mistake}"


# --- assignment 05: online softmax and tiled attention ------------------------------------------


def online_softmax_each_block_by_its_own_max(scores, block_size):
    total = torch.zeros((*scores.shape[:-1], 1), dtype=scores.dtype)
    running = torch.full_like(total, -math.inf)
    for start in range(0, scores.shape[-1], block_size):
        chunk = scores[..., start : start + block_size]
        chunk_max = chunk.amax(-1, keepdim=True)
        total = total + (chunk - chunk_max).exp().sum(-1, keepdim=True)  # never rescaled
        running = torch.maximum(running, chunk_max)
    return (scores - running).exp() / total


def test_an_online_softmax_shifting_each_block_by_its_own_max_is_not_called_no_max_shift():
    verdict = run_check("online_softmax", online_softmax_each_block_by_its_own_max, seed=1)
    assert verdict.mistake == "online_softmax.sum-not-rescaled"
    assert "no max shift" not in verdict.message


def tiled_attention_scaled_by_the_value_width(
    query, key, value, mask=None, *, block_size, is_causal=False
):
    T, S = query.shape[-2], key.shape[-2]
    scale = value.shape[-1] ** -0.5  # the value width, not the key width
    m = torch.full((*query.shape[:-1], 1), -math.inf, dtype=query.dtype)
    total = torch.zeros_like(m)
    acc = torch.zeros(*query.shape[:-1], value.shape[-1], dtype=query.dtype)
    rows = torch.arange(T).unsqueeze(-1)
    for j in range(0, S, block_size):
        s = (query @ key[..., j : j + block_size, :].transpose(-1, -2)) * scale
        cols = torch.arange(j, min(j + block_size, S))
        if mask is not None:
            s = s.masked_fill(~mask[..., j : j + block_size], -math.inf)
        if is_causal:
            s = s.masked_fill(cols > rows, -math.inf)
        m_new = torch.maximum(m, s.amax(-1, keepdim=True))
        alpha = torch.exp(m - m_new).nan_to_num(0.0)
        p = torch.exp(s - m_new)
        total = total * alpha + p.sum(-1, keepdim=True)
        acc = acc * alpha + p @ value[..., j : j + block_size, :]
        m = m_new
    return acc / total


def test_tiled_attention_scaled_by_the_value_width_is_named_a_wrong_scale():
    verdict = run_check("tiled_attention", tiled_attention_scaled_by_the_value_width, seed=2)
    assert verdict.mistake == "tiled_attention.wrong-scale"
    assert "Dv" in verdict.message


def rabe_staats_attention(query, key, value, mask=None, *, block_size, is_causal=False):
    """Memory-efficient attention as Rabe and Staats write it: one (max, sum, weighted values)
    summary per key chunk, combined at the end; never a (..., T, S) tensor."""
    T, S = query.shape[-2], key.shape[-2]
    query = query / math.sqrt(query.shape[-1])
    maxima, sums, values = [], [], []
    for j in range(0, S, block_size):
        s = query @ key[..., j : j + block_size, :].transpose(-1, -2)
        if mask is not None:
            s = s.masked_fill(~mask[..., j : j + block_size], -math.inf)
        if is_causal:
            cols = torch.arange(j, min(j + block_size, S))
            s = s.masked_fill(cols > torch.arange(T).unsqueeze(-1), -math.inf)
        chunk_max = s.amax(-1, keepdim=True)
        safe = torch.where(torch.isfinite(chunk_max), chunk_max, torch.zeros_like(chunk_max))
        p = torch.exp(s - safe)
        maxima.append(safe)
        sums.append(p.sum(-1, keepdim=True))
        values.append(p @ value[..., j : j + block_size, :])
    maxima = torch.stack(maxima)  # (n_chunks, ..., T, 1)
    global_max = maxima.amax(0)
    factors = torch.exp(maxima - global_max)
    total = (torch.stack(sums) * factors).sum(0)
    return (torch.stack(values) * factors).sum(0) / total


def test_rabe_staats_summaries_per_key_block_pass_the_memory_rule():
    assert run_check("tiled_attention", rabe_staats_attention, seed=4).passed


# --- assignment 06: RoPE, grouped-query attention, decoding -------------------------------------


def rope_that_returns_its_input(x, positions):
    return x.clone()


def rope_one_position_ahead(x, positions):
    half = x.shape[-1] // 2
    freq = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64) * 2 / x.shape[-1])
    ang = (positions.double() + 1)[:, None] * freq  # the query one step ahead
    c, s = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * c - b * s, b * c + a * s], -1)


def rope_with_float32_angles(x, positions):
    half = x.shape[-1] // 2
    inv_freq = 1.0 / (10000 ** (torch.arange(0, x.shape[-1], 2).float() / x.shape[-1]))
    freqs = torch.outer(positions.float(), inv_freq)  # float32, whatever x is
    c, s = freqs.cos().to(x.dtype), freqs.sin().to(x.dtype)
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * c - b * s, a * s + b * c], -1)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("fn", "mistake"),
    [
        (rope_that_returns_its_input, "identity"),
        (rope_one_position_ahead, "position-offset"),
        (rope_with_float32_angles, "float32-angles"),
    ],
)
def test_rope_mistakes_are_read_off_the_positions(fn, mistake, seed):
    assert run_check("apply_rotary", fn, seed=seed).mistake == f"apply_rotary.{mistake}"


def test_rope_returning_x_is_not_called_positions_ignored():
    verdict = run_check("apply_rotary", rope_that_returns_its_input, seed=5)
    assert "positions are ignored" not in verdict.message


def _rope(x, positions):
    half = x.shape[-1] // 2
    freq = 10000.0 ** (-torch.arange(half, dtype=torch.float64) / half)
    ang = positions.double()[:, None] * freq
    c, s = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * c - b * s, a * s + b * c], -1)


# The notebook's given KVCache, TinyLanguageModel and GreedyDecoder loop, defined here as in a
# learner's notebook, next to the learner's GroupedQueryAttention: blame follows the names of
# the learner's own namespace (``advice.blame``), so test_a06's factory, whose classes live
# in test_a06, cannot stand in for them.
class KVCache:
    def __init__(self):
        self.key = self.value = None

    def __len__(self):
        return 0 if self.key is None else self.key.shape[2]

    def append(self, k, v):
        self.key = k if self.key is None else torch.cat([self.key, k], 2)
        self.value = v if self.value is None else torch.cat([self.value, v], 2)
        return self.key, self.value


class GroupedQueryAttention(nn.Module):
    """A learner's grouped-query attention, with the slips the tests switch on as class
    attributes (all off: it is right)."""

    view_queries = False  # queries split with `view` and no transpose
    query_ahead = 0  # queries turned by positions this far ahead of their keys
    diagonal_slip = 0  # tril(past + slip)
    chunk_unmasked = False  # no mask on a chunk of several tokens when a cache is given
    head_by_head = False  # attention one head at a time (no cache path change)

    def __init__(self, d_model, num_heads, num_kv_heads):
        super().__init__()
        self.h, self.g, self.dh = num_heads, num_kv_heads, d_model // num_heads
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, num_kv_heads * self.dh)
        self.w_v = nn.Linear(d_model, num_kv_heads * self.dh)
        self.w_o = nn.Linear(d_model, d_model)

    def forward(self, x, cache=None):
        b, t, d = x.shape
        past = len(cache) if cache is not None else 0
        pos = torch.arange(past, past + t)
        if self.view_queries:
            q = self.w_q(x).view(b, self.h, t, self.dh)
        else:
            q = self.w_q(x).view(b, t, self.h, self.dh).permute(0, 2, 1, 3)
        k = self.w_k(x).view(b, t, self.g, self.dh).permute(0, 2, 1, 3)
        v = self.w_v(x).view(b, t, self.g, self.dh).permute(0, 2, 1, 3)
        q, k = _rope(q, pos + self.query_ahead), _rope(k, pos)
        if cache is not None:
            k, v = cache.append(k, v)
        s = k.shape[2]
        k = k.repeat_interleave(self.h // self.g, 1)
        v = v.repeat_interleave(self.h // self.g, 1)
        keep = torch.ones(t, s, dtype=torch.bool).tril(past + self.diagonal_slip)
        if cache is not None and t > 1 and self.chunk_unmasked:
            keep = torch.ones(t, s, dtype=torch.bool)
        if self.head_by_head:
            heads = []
            for i in range(self.h):
                sc = q[:, i] @ k[:, i].transpose(-1, -2) / self.dh**0.5
                heads.append(torch.softmax(sc.masked_fill(~keep, -1e9), -1) @ v[:, i])
            out = torch.stack(heads, 1)
        else:
            sc = q @ k.transpose(-1, -2) / math.sqrt(self.dh)
            out = torch.softmax(sc.masked_fill(~keep, -math.inf), -1) @ v
        return self.w_o(out.transpose(1, 2).reshape(b, t, d))


class TinyLanguageModel(nn.Module):
    def __init__(self, vocab_size, d_model, num_heads, num_kv_heads, num_layers):
        super().__init__()
        self.num_layers = num_layers
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList(
            GroupedQueryAttention(d_model, num_heads, num_kv_heads) for _ in range(num_layers)
        )
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, tokens, caches=None):
        x = self.embedding(tokens)
        for i, layer in enumerate(self.layers):
            x = x + layer(x, None if caches is None else caches[i])
        return self.head(x)


class GreedyDecoder(nn.Module):
    def __init__(self, vocab_size, d_model, num_heads, num_kv_heads, num_layers):
        super().__init__()
        self.model = TinyLanguageModel(vocab_size, d_model, num_heads, num_kv_heads, num_layers)

    def forward(self, prompt, max_new_tokens):
        caches = [KVCache() for _ in range(self.model.num_layers)]
        tokens, step_input = prompt, prompt
        for _ in range(max_new_tokens):
            nxt = self.model(step_input, caches)[:, -1].argmax(-1, keepdim=True)
            tokens = torch.cat([tokens, nxt], 1)
            step_input = nxt
        return tokens


class GreedyDecoderRereading(GreedyDecoder):
    """No cache: the whole sequence goes through the model at every step."""

    def forward(self, prompt, max_new_tokens):
        tokens = prompt
        for _ in range(max_new_tokens):
            nxt = self.model(tokens)[:, -1].argmax(-1, keepdim=True)
            tokens = torch.cat([tokens, nxt], 1)
        return tokens


@pytest.mark.parametrize(
    ("knob", "value", "mistake"),
    [
        ("view_queries", True, "heads-mixed"),
        ("query_ahead", 1, "query-position"),
    ],
)
def test_grouped_query_attention_slips_are_named(monkeypatch, knob, value, mistake):
    monkeypatch.setattr(GroupedQueryAttention, knob, value)
    verdict = run_check("GroupedQueryAttention", GroupedQueryAttention, seed=3)
    assert verdict.mistake == f"GroupedQueryAttention.{mistake}"


def test_the_right_learner_forms_pass():
    assert run_check("GroupedQueryAttention", GroupedQueryAttention, seed=3).passed
    assert run_check("GreedyDecoder", GreedyDecoder, seed=3).passed


@pytest.mark.parametrize("head_by_head", [False, True])
def test_a_decoder_that_rereads_the_whole_sequence_fails(monkeypatch, head_by_head):
    monkeypatch.setattr(GroupedQueryAttention, "head_by_head", head_by_head)
    verdict = run_check("GreedyDecoder", GreedyDecoderRereading, seed=3)
    assert verdict.mistake == "GreedyDecoder.no-cache"


@pytest.mark.parametrize(
    ("knob", "value", "mistake"),
    [("chunk_unmasked", True, "chunk-not-causal"), ("diagonal_slip", -1, "causal-offset")],
)
def test_cache_path_slips_fail_the_decoder(monkeypatch, knob, value, mistake):
    monkeypatch.setattr(GroupedQueryAttention, knob, value)
    for seed in SEEDS:
        assert run_check("GreedyDecoder", GreedyDecoder, seed=seed).mistake == (
            f"GreedyDecoder.{mistake}"
        )


def test_blame_follows_the_call_path_into_grouped_query_attention(monkeypatch, capsys):
    monkeypatch.setattr(GroupedQueryAttention, "diagonal_slip", 1)  # fails its own check too
    with pytest.raises(AssertionError):
        check(GreedyDecoder)
    assert "your `GroupedQueryAttention` is wrong" in capsys.readouterr().out
