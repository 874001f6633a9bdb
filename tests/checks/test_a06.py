"""Assignment 06 checks: known mistakes are named, other correct code passes. Each wrong
implementation below is written as a learner would write it."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attn_course import reference
from attn_course.checks import EXERCISES, a06, check, run_case, run_check

SEEDS = [0, 1, 2]


# --- apply_rotary ------------------------------------------------------------------------------


def rotary(pairing="halves", sign=1.0, exponent="2j", ignore_positions=False, float32=False):
    """A learner's apply_rotary with one deliberate slip (the defaults are a correct solution,
    written with the `rotate_half` trick of Hugging Face's Llama)."""

    def apply_rotary(x, positions):
        Dh = x.size(-1)
        dtype = torch.float32 if float32 else torch.float64
        j = torch.arange(0, Dh // 2, dtype=dtype)
        power = {"2j": -2 * j / Dh, "j": -j / Dh, "+2j": 2 * j / Dh}[exponent]
        theta = 10000.0**power
        if ignore_positions:
            positions = torch.arange(x.size(-2))
        angles = sign * positions.to(dtype)[:, None] * theta  # (T, Dh/2)
        if pairing == "interleaved":
            cos, sin = angles.cos().repeat_interleave(2, -1), angles.sin().repeat_interleave(2, -1)
            rotated = torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).flatten(-2)
        else:
            cos, sin = angles.cos().repeat(1, 2), angles.sin().repeat(1, 2)
            rotated = torch.cat((-x[..., Dh // 2 :], x[..., : Dh // 2]), dim=-1)
        return (x * cos.to(x.dtype) + rotated * sin.to(x.dtype)).to(x.dtype)

    return apply_rotary


def apply_rotary_complex(x, positions):
    """Correct, with complex numbers: pair j is x[j] + i x[j + Dh/2]."""
    half = x.size(-1) // 2
    theta = 1.0 / 10000.0 ** (torch.arange(half, dtype=torch.float64) * 2 / x.size(-1))
    turns = torch.polar(torch.ones(len(positions), half, dtype=torch.float64),
                        positions[:, None].double() * theta)  # fmt: skip
    z = torch.complex(x[..., :half].double(), x[..., half:].double()) * turns
    return torch.cat((z.real, z.imag), dim=-1).to(x.dtype)


def apply_rotary_loops(x, positions):
    """Correct, one pair at a time."""
    out = torch.empty_like(x)
    half = x.size(-1) // 2
    for j in range(half):
        angle = positions.double() * 10000.0 ** (-2 * j / x.size(-1))  # (T,)
        cos, sin = angle.cos().to(x.dtype)[:, None], angle.sin().to(x.dtype)[:, None]
        a, b = x[..., j : j + 1], x[..., half + j : half + j + 1]
        out[..., j : j + 1] = a * cos - b * sin
        out[..., half + j : half + j + 1] = a * sin + b * cos
    return out


@pytest.mark.parametrize("fn", [rotary(), apply_rotary_complex, apply_rotary_loops])
def test_apply_rotary_other_correct_solutions_pass(fn):
    verdict = run_check("apply_rotary", fn, seed=0)
    assert verdict.passed, verdict


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "fn, words",
    [
        (rotary(pairing="interleaved"), "interleaved pairing: features 2j and 2j+1"),
        (rotary(sign=-1.0), "rotated the wrong way"),
        (rotary(pairing="interleaved", sign=-1.0), "turned the wrong way as well"),
        (rotary(ignore_positions=True), "positions are ignored"),
        (rotary(exponent="j"), "uses the pair index j where it needs 2j"),
        (rotary(exponent="+2j"), "the frequencies grow with j"),
        (rotary(float32=True), "the angles of a float64 x are computed in float32"),
    ],
)
def test_apply_rotary_mistakes_are_named(fn, words, seed):
    verdict = run_check("apply_rotary", fn, seed=seed)
    assert verdict.status == "failed", verdict
    assert words in verdict.message


# --- GroupedQueryAttention ---------------------------------------------------------------------


class KVCache:
    """The notebook's given cache: appends along the sequence axis -2."""

    def __init__(self):
        self.key = self.value = None

    def __len__(self):
        return 0 if self.key is None else self.key.size(-2)

    def append(self, key, value):
        if self.key is None:
            self.key, self.value = key, value
        else:
            self.key = torch.cat((self.key, key), dim=-2)
            self.value = torch.cat((self.value, value), dim=-2)
        return self.key, self.value


def grouped_query_attention(
    rotated="qk",
    rotate=reference.apply_rotary,
    tile=False,
    causal=True,
    scale_by_d_model=False,
    positions="continue",
    rotate_after_caching=False,
    heads_after_caching=False,
    grouped_einsum=False,
    diagonal_slip=0,
    chunk_unmasked=False,
):
    """A learner's GroupedQueryAttention with one deliberate slip (defaults: correct).

    ``positions``: "continue" (right), "restart" (0 .. T-1 at every call), "query restarts";
    ``heads_after_caching``: caches the keys in (B, T, G, Dh) layout, before moving the heads
    in front (the cache then grows along the heads); ``grouped_einsum``: a correct solution
    that views the queries as (B, G, r, T, Dh) instead of repeating the keys;
    ``diagonal_slip``: the mask is ``tril(S - T + slip)``; ``chunk_unmasked``: a chunk of
    several tokens given with a cache is not masked.
    """

    class GroupedQueryAttention(nn.Module):
        def __init__(self, d_model, num_heads, num_kv_heads):
            super().__init__()
            self.h, self.g, self.dh = num_heads, num_kv_heads, d_model // num_heads
            self.w_q = nn.Linear(d_model, d_model)
            self.w_k = nn.Linear(d_model, num_kv_heads * self.dh)
            self.w_v = nn.Linear(d_model, num_kv_heads * self.dh)
            self.w_o = nn.Linear(d_model, d_model)

        def forward(self, x, cache=None):
            B, T, D = x.shape
            past = 0 if cache is None else len(cache)
            q = self.w_q(x).view(B, T, self.h, self.dh).transpose(1, 2)
            k = self.w_k(x).view(B, T, self.g, self.dh)
            v = self.w_v(x).view(B, T, self.g, self.dh)
            if heads_after_caching and cache is not None:
                k, v = cache.append(k, v)
            k, v = k.transpose(1, 2), v.transpose(1, 2)
            pos = torch.arange(past, past + T)
            q_pos = torch.arange(T) if positions != "continue" else pos
            k_pos = torch.arange(T) if positions == "restart" else pos
            if "q" in rotated:
                q = rotate(q, q_pos)
            if "v" in rotated:
                v = rotate(v, k_pos)
            if "k" in rotated and not rotate_after_caching:
                k = rotate(k, k_pos)
            if cache is not None and not heads_after_caching:
                k, v = cache.append(k, v)
            if "k" in rotated and rotate_after_caching:
                k = rotate(k, k_pos)
            S = k.size(-2)
            r = self.h // self.g
            allowed = torch.ones(T, S, dtype=torch.bool).tril(S - T + diagonal_slip)
            if chunk_unmasked and cache is not None and T > 1:
                allowed = torch.ones(T, S, dtype=torch.bool)
            width = D if scale_by_d_model else self.dh
            if grouped_einsum:
                qg = q.view(B, self.g, r, T, self.dh)
                scores = torch.einsum("bgrtd,bgsd->bgrts", qg, k) / math.sqrt(width)
                weights = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
                context = torch.einsum("bgrts,bgsd->bgrtd", weights, v).reshape(B, self.h, T, -1)
            else:
                if tile:
                    k, v = k.repeat(1, r, 1, 1), v.repeat(1, r, 1, 1)
                else:
                    k, v = k.repeat_interleave(r, dim=1), v.repeat_interleave(r, dim=1)
                scores = q @ k.transpose(-2, -1) / math.sqrt(width)
                if causal:
                    scores = scores.masked_fill(~allowed, float("-inf"))
                context = scores.softmax(dim=-1) @ v
            return self.w_o(context.transpose(1, 2).reshape(B, T, D))

    return GroupedQueryAttention


class GroupedQueryAttentionOverSDPA(nn.Module):
    def __init__(self, d_model, num_heads, num_kv_heads):
        super().__init__()
        self.h, self.g = num_heads, num_kv_heads
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model // num_heads * num_kv_heads)
        self.w_v = nn.Linear(d_model, d_model // num_heads * num_kv_heads)
        self.w_o = nn.Linear(d_model, d_model)

    def forward(self, x, cache=None):
        positions = torch.arange(x.size(1))
        q = reference.split_heads(self.w_q(x), self.h)
        k = reference.split_heads(self.w_k(x), self.g)
        v = reference.split_heads(self.w_v(x), self.g)
        q, k = reference.apply_rotary(q, positions), reference.apply_rotary(k, positions)
        context = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return self.w_o(reference.merge_heads(context))


@pytest.mark.parametrize(
    "module",
    [grouped_query_attention(), grouped_query_attention(grouped_einsum=True)],
    ids=["repeat_interleave", "grouped einsum"],
)
def test_gqa_other_correct_solutions_pass(module):
    verdict = run_check("GroupedQueryAttention", module, seed=0)
    assert verdict.passed, verdict


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "module, words",
    [
        (grouped_query_attention(rotated="q"), "the keys are not rotated"),
        (grouped_query_attention(rotated="k"), "the queries are not rotated"),
        (grouped_query_attention(rotated=""), "no rotation at all"),
        (grouped_query_attention(rotated="qkv"), "the values are rotated too"),
        (grouped_query_attention(tile=True), "repeated in the wrong order"),
        (grouped_query_attention(rotate=rotary("interleaved")), "interleaved pairing inside"),
        (grouped_query_attention(causal=False), "not causal"),
        (grouped_query_attention(scale_by_d_model=True), "divided by √D"),
    ],
)
def test_gqa_mistakes_are_named(module, words, seed):
    verdict = run_check("GroupedQueryAttention", module, seed=seed)
    assert verdict.status == "failed", verdict
    assert words in verdict.message


def test_gqa_over_torchs_fused_attention_is_forbidden():
    verdict = run_check("GroupedQueryAttention", GroupedQueryAttentionOverSDPA, seed=0)
    assert verdict.status == "forbidden"


# --- GreedyDecoder -----------------------------------------------------------------------------


def greedy_decoder(
    attention=None,
    caches="one per layer",
    feed="newest token",
    pick=-1,
):
    """A learner's GreedyDecoder over the notebook's TinyLanguageModel, whose layers are
    ``attention``, with one deliberate slip in the loop (defaults: correct).

    ``caches``: "one per layer" (right), "shared" (``[KVCache()] * L``), "none", "fresh"
    (new caches at every step); ``feed``: "newest token" (right), "whole sequence";
    ``attention`` None: a correct one.
    """

    attention = attention or grouped_query_attention()

    class TinyLanguageModel(nn.Module):
        def __init__(self, vocab_size, d_model, num_heads, num_kv_heads, num_layers):
            super().__init__()
            self.num_layers = num_layers
            self.embedding = nn.Embedding(vocab_size, d_model)
            self.layers = nn.ModuleList(
                attention(d_model, num_heads, num_kv_heads) for _ in range(num_layers)
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
            L = self.model.num_layers
            kv = [KVCache()] * L if caches == "shared" else [KVCache() for _ in range(L)]
            tokens, model_input = prompt, prompt
            for _ in range(max_new_tokens):
                if caches == "fresh":
                    kv = [KVCache() for _ in range(L)]
                logits = self.model(model_input, None if caches == "none" else kv)
                next_token = logits[:, pick].argmax(dim=-1, keepdim=True)
                tokens = torch.cat([tokens, next_token], dim=1)
                model_input = tokens if feed == "whole sequence" else next_token
            return tokens

    return GreedyDecoder


class GreedyDecoderWithoutCache(nn.Module):
    """Right tokens, but the whole sequence is re-read at every step (no caches)."""

    def __init__(self, vocab_size, d_model, num_heads, num_kv_heads, num_layers):
        super().__init__()
        self.model = reference.TinyLanguageModel(
            vocab_size, d_model, num_heads, num_kv_heads, num_layers
        )

    def forward(self, prompt, max_new_tokens):
        return reference.generate(self.model, prompt, max_new_tokens, use_cache=False)


def test_greedy_decoder_written_differently_passes():
    verdict = run_check("GreedyDecoder", greedy_decoder(grouped_query_attention(
        grouped_einsum=True, rotate=apply_rotary_complex)), seed=0)  # fmt: skip
    assert verdict.passed, verdict


@pytest.mark.parametrize("seed", SEEDS[:2])  # each run generates ~100 tokens per mistake
@pytest.mark.parametrize(
    "module, words",
    [
        (greedy_decoder(caches="shared"), "one cache shared by all the layers"),
        (greedy_decoder(caches="none"), "no caches are handed to the model"),
        (greedy_decoder(caches="fresh"), "new, empty ones at every step"),
        (greedy_decoder(feed="whole sequence"), "they are appended again"),
        (greedy_decoder(pick=0), "logits of the first position"),
        (
            greedy_decoder(grouped_query_attention(positions="restart")),
            "positions restart at 0 for each new token",
        ),
        (
            greedy_decoder(grouped_query_attention(positions="query restarts")),
            "the query takes the wrong position",
        ),
        (
            greedy_decoder(grouped_query_attention(rotate_after_caching=True)),
            "appended to the cache before they are rotated",
        ),
    ],
)
def test_greedy_decoder_mistakes_are_named(module, words, seed):
    verdict = run_check("GreedyDecoder", module, seed=seed)
    assert verdict.status == "failed", verdict
    assert words in verdict.message


def test_a_cache_growing_along_the_heads_gets_a_hint():
    module = greedy_decoder(grouped_query_attention(heads_after_caching=True))
    verdict = run_check("GreedyDecoder", module, seed=0)
    assert verdict.status == "error", verdict
    assert "the cache must grow along the sequence axis" in verdict.message


def test_greedy_decoding_without_the_cache_fails_on_memory():
    verdict = run_check("GreedyDecoder", GreedyDecoderWithoutCache, seed=0)
    assert verdict.status == "failed", verdict
    assert "the caches are not used" in verdict.message


class GreedyDecoderCachesMadeOnce(nn.Module):
    """Right tokens on the first call, but the caches are made in __init__ and kept: a second
    call on the same prompt continues after the first one's tokens."""

    def __init__(self, vocab_size, d_model, num_heads, num_kv_heads, num_layers):
        super().__init__()
        self.model = reference.TinyLanguageModel(
            vocab_size, d_model, num_heads, num_kv_heads, num_layers
        )
        self.caches = [reference.KVCache() for _ in range(num_layers)]

    def forward(self, prompt, max_new_tokens):
        tokens, model_input = prompt, prompt
        for _ in range(max_new_tokens):
            next_token = self.model(model_input, self.caches)[:, -1].argmax(-1, keepdim=True)
            tokens = torch.cat((tokens, next_token), dim=1)
            model_input = next_token
        return tokens


def test_a_decoder_keeping_its_caches_between_calls_fails():
    verdict = run_check("GreedyDecoder", GreedyDecoderCachesMadeOnce, seed=0)
    assert verdict.status == "failed", verdict
    assert "a second call with the same input gave a different output" in verdict.message
    assert "state such as a cache kept between calls" in verdict.message


@pytest.mark.parametrize("allocated", ["many", None, True, 1.5])
def test_a_memory_size_that_is_not_a_count_is_not_measured(allocated):
    exercise = EXERCISES["GreedyDecoder"]
    cases = exercise.make_cases(torch.Generator().manual_seed(0))
    outcomes = [run_case(reference.GreedyDecoder, case) for case in cases]
    for outcome in outcomes:
        outcome.allocated = allocated
    verdict = exercise.judge(cases, outcomes)
    assert verdict.status == "failed", verdict
    assert "could not be measured" in verdict.message


@pytest.mark.parametrize("seed", range(5))
def test_every_decoder_token_wins_its_argmax_by_a_margin(seed):
    for case in EXERCISES["GreedyDecoder"].make_cases(torch.Generator().manual_seed(seed)):
        assert a06.smallest_token_margin(case) >= 1e-2, case.label


def apply_rotary_in_the_precision_of_x(x, positions):
    """Correct, as the reference: float32 angles for a float32 x, float64 for a float64 x."""
    dtype = torch.promote_types(x.dtype, torch.float32)
    half = x.size(-1) // 2
    theta = 10000.0 ** (-2 * torch.arange(half, dtype=dtype) / x.size(-1))
    angles = positions.to(dtype)[:, None] * theta
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


def test_float32_angles_for_float32_inputs_pass_and_the_message_says_so():
    assert run_check("apply_rotary", apply_rotary_in_the_precision_of_x, seed=0).passed
    verdict = run_check("apply_rotary", rotary(float32=True), seed=0)
    assert "angles of a float64 x are computed in float32" in verdict.message
    assert "float32 is enough for a float32 x" in verdict.message


def test_a_failing_gqa_shows_named_constructor_arguments():
    verdict = run_check("GroupedQueryAttention", grouped_query_attention(causal=False), seed=0)
    assert "GroupedQueryAttention(d_model=" in verdict.detail
    assert "num_kv_heads=" in verdict.detail


def apply_rotary(x, positions):  # the learner's own apply_rotary: turned the wrong way
    return rotary(sign=-1.0)(x, positions)


class GroupedQueryAttention(grouped_query_attention()):
    """Right in itself, but it calls the learner's wrong apply_rotary above."""

    def forward(self, x, cache=None):
        T = x.size(1)
        positions = torch.arange(T)
        q = apply_rotary(reference.split_heads(self.w_q(x), self.h), positions)
        k = apply_rotary(reference.split_heads(self.w_k(x), self.g), positions)
        v = reference.split_heads(self.w_v(x), self.g)
        r = self.h // self.g
        k, v = k.repeat_interleave(r, dim=1), v.repeat_interleave(r, dim=1)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.dh)
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        return self.w_o(reference.merge_heads(scores.softmax(-1) @ v))


def test_check_blames_the_learners_own_apply_rotary(capsys):
    with pytest.raises(AssertionError):
        check(GroupedQueryAttention)
    assert "fails because your `apply_rotary` is wrong" in capsys.readouterr().out
