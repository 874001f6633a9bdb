"""The corpus of learner mistakes that once slipped through or were not named: code that
modifies its inputs, edge cases left to chance, dropout, strict weight loading, and mistakes
whose message named nothing. Each is written as a learner would write it; each test asserts
the verdict and the cause it names. At the end: verdicts never depend on luck (50 seeds)."""

import math

import pytest
import torch
import torch.nn.functional as F
from test_a06 import greedy_decoder, grouped_query_attention, rotary
from torch import nn

from attn_course import reference
from attn_course.checks import ASSIGNMENTS, advice, check, rebuild_case, run_check
from attn_course.reference import merge_heads

SEEDS = [0, 1]


def assert_named(name, obj, status, words, seed):
    verdict = run_check(name, obj, seed=seed)
    assert verdict.status == status, verdict
    assert words in verdict.message, verdict.message


# --- functions that modify their inputs in place -----------------------------------------------


def softmax_in_place(scores, dim=-1):
    scores -= scores.amax(dim=dim, keepdim=True)
    scores.exp_()
    return scores / scores.sum(dim=dim, keepdim=True)


def tiled_scaling_the_query_in_place(query, key, value, mask=None, *, block_size, is_causal=False):
    query /= math.sqrt(query.size(-1))
    return reference.tiled_attention(
        query * math.sqrt(query.size(-1)), key, value, mask, block_size=block_size,
        is_causal=is_causal,
    )  # fmt: skip


class BlockAddingInPlace(reference.TransformerEncoderBlock):
    def forward(self, x, mask=None):
        h = self.norm1(x)
        x += self.attn(h, h, h, mask)
        return x + self.ffn(self.norm2(x))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "name, obj, words",
    [
        ("softmax", softmax_in_place, "modifies its input `scores` in place"),
        ("tiled_attention", tiled_scaling_the_query_in_place, "modifies its input `query`"),
        ("TransformerEncoderBlock", BlockAddingInPlace, "modifies its input `x` in place"),
    ],
)
def test_modifying_an_input_in_place_is_named(name, obj, words, seed):
    assert_named(name, obj, "failed", words, seed)


class BlockBreakingBackward(reference.TransformerEncoderBlock):
    """Right values under no_grad, but the in-place += overwrites what norm2 saved."""

    def forward(self, x, mask=None):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, mask)
        x += self.ffn(self.norm2(x))
        return x


@pytest.mark.parametrize("seed", SEEDS)
def test_a_module_that_fails_backward_in_training_is_named(seed):
    verdict = run_check("TransformerEncoderBlock", BlockBreakingBackward, seed=seed)
    assert verdict.status == "failed"
    assert verdict.message.startswith("right values, but fails in training")
    assert "in-place operation" in verdict.message


# --- edge cases that are fixed cases, not luck --------------------------------------------------


def context_bare_squeeze(weights, values):
    return (weights.unsqueeze(-2) @ values).squeeze()


def online_softmax_max_from_zero(scores, block_size):
    row_max = torch.zeros(*scores.shape[:-1], 1)
    row_sum = torch.zeros(*scores.shape[:-1], 1, dtype=scores.dtype)
    for start in range(0, scores.size(-1), block_size):
        block = scores[..., start : start + block_size]
        new_max = torch.maximum(row_max, block.amax(-1, keepdim=True))
        row_sum = row_sum * torch.exp(row_max - new_max) + torch.exp(block - new_max).sum(-1, True)
        row_max = new_max
    return torch.exp(scores - row_max) / row_sum


class FeedForwardTanhGelu(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.up = nn.Linear(d_model, d_ff)
        self.down = nn.Linear(d_ff, d_model)

    def forward(self, x):
        return self.down(F.gelu(self.up(x), approximate="tanh"))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "name, obj, words",
    [
        ("context_vector", context_bare_squeeze, "a bare `.squeeze()`"),
        ("online_softmax", online_softmax_max_from_zero, "starts at 0 instead of -inf"),
        ("FeedForward", FeedForwardTanhGelu, "the tanh approximation of GELU"),
    ],
)
def test_mistakes_that_passed_by_luck_fail_on_a_fixed_case(name, obj, words, seed):
    assert_named(name, obj, "failed", words, seed)


# --- dropout ----------------------------------------------------------------------------------


class FeedForwardDropoutAlwaysOn(FeedForwardTanhGelu):
    def forward(self, x):
        return F.dropout(self.down(F.gelu(self.up(x))), p=0.1, training=True)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_learner_multi_head_attention_the_mistakes_start_from_passes(seed):
    assert run_check("MultiHeadAttention", LearnerMultiHeadAttention, seed=seed).passed


@pytest.mark.parametrize("seed", SEEDS)
def test_dropout_that_eval_cannot_turn_off_is_named(seed):
    assert_named("FeedForward", FeedForwardDropoutAlwaysOn, "failed", "(dropout left on", seed)


# --- weights loaded by the contract's names ---------------------------------------------------


class MultiHeadAttentionFusedNoConversion(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.c_attn = nn.Linear(d_model, 3 * d_model)
        self.c_proj = nn.Linear(d_model, d_model)

    def forward(self, query, key, value, mask=None):
        raise AssertionError("never reached: the weights cannot be loaded")


class MultiHeadAttentionMaskNamedAttnMask(reference.MultiHeadAttention):
    def forward(self, query, key, value, attn_mask=None):
        return super().forward(query, key, value, attn_mask)


class FeedForwardExtraLayer(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.up = nn.Linear(d_model, d_ff)
        self.down = nn.Linear(d_ff, d_model)
        self.gate = nn.Linear(d_model, d_ff)  # a layer of its own, never given weights

    def forward(self, x):
        return self.down(F.gelu(self.up(x)) * torch.sigmoid(self.gate(x)))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "name, obj, status, words",
    [
        (
            "MultiHeadAttention",
            MultiHeadAttentionFusedNoConversion,
            "error",
            "no parameter called `w_q.weight`",
        ),
        (
            "MultiHeadAttention",
            MultiHeadAttentionMaskNamedAttnMask,
            "error",
            "keep the parameter's name `mask`",
        ),
        ("FeedForward", FeedForwardExtraLayer, "failed", "did not set your module's parameters"),
    ],
)
def test_layouts_the_check_cannot_load_are_named_in_words(name, obj, status, words, seed):
    assert_named(name, obj, status, words, seed)


def test_the_fused_layout_message_names_the_modules_own_parameters():
    verdict = run_check("MultiHeadAttention", MultiHeadAttentionFusedNoConversion, seed=0)
    assert "`c_attn.weight`" in verdict.message
    assert "load_state_dict pre-hook" in verdict.message


# --- mistakes whose message named nothing ------------------------------------------------------


def context_averaged(weights, values):
    return values.mean(dim=-2)


def merge_interleaved(x):
    B, H, T, Dh = x.shape
    return x.permute(0, 2, 3, 1).reshape(B, T, Dh * H)


class LearnerMultiHeadAttention(nn.Module):
    """A learner's multi-head attention, right as it stands; the subclasses below each change
    one step as a learner might get it wrong."""

    def __init__(self, d_model, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.w_q, self.w_k = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.w_v, self.w_o = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)

    def heads(self, x):
        B, T, D = x.shape
        return x.view(B, T, self.num_heads, D // self.num_heads).transpose(1, 2)

    def project_values(self, value):
        return self.w_v(value)

    def head_axis(self, mask):
        return mask.unsqueeze(1) if mask.dim() == 3 else mask

    def forward(self, query, key, value, mask=None):
        q, k = self.heads(self.w_q(query)), self.heads(self.w_k(key))
        v = self.heads(self.project_values(value))
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        if mask is not None:
            scores = scores.masked_fill(~self.head_axis(mask), float("-inf"))
        return self.w_o(merge_heads(scores.softmax(dim=-1) @ v))


class MultiHeadAttentionValuesThroughWk(LearnerMultiHeadAttention):
    def project_values(self, value):
        return self.w_k(value)


class MultiHeadAttentionMaskAfterT(LearnerMultiHeadAttention):
    def head_axis(self, mask):
        return mask.unsqueeze(2)


class BlockResidualAddsNormalised(reference.TransformerEncoderBlock):
    def forward(self, x, mask=None):
        h = self.norm1(x)
        x = h + self.attn(h, h, h, mask)
        return x + self.ffn(self.norm2(x))


def online_softmax_inverse_factor(scores, block_size):
    row_max = scores[..., :block_size].amax(-1, keepdim=True)  # the first block's maximum
    row_sum = torch.zeros_like(row_max)
    for start in range(0, scores.size(-1), block_size):
        block = scores[..., start : start + block_size]
        new_max = torch.maximum(row_max, block.amax(-1, keepdim=True))
        row_sum = row_sum * torch.exp(new_max - row_max) + torch.exp(block - new_max).sum(-1, True)
        row_max = new_max
    return torch.exp(scores - row_max) / row_sum


def online_softmax_all_nan(scores, block_size):
    return torch.full_like(scores, float("nan"))


@pytest.mark.parametrize("seed", SEEDS)
def test_an_output_of_nan_everywhere_is_not_named_the_inverse_factor(seed):
    verdict = run_check("online_softmax", online_softmax_all_nan, seed=seed)
    assert verdict.status == "failed", verdict
    assert "inverse factor" not in verdict.message


def online_softmax_one_max_per_block(scores, block_size):
    row_max = torch.full((*scores.shape[:-1], 1), float("-inf"), dtype=scores.dtype)
    row_sum = torch.zeros_like(row_max)
    for start in range(0, scores.size(-1), block_size):
        block = scores[..., start : start + block_size]
        new_max = torch.maximum(row_max, block.max())
        row_sum = row_sum * torch.exp(row_max - new_max) + torch.exp(block - new_max).sum(-1, True)
        row_max = new_max
    return torch.exp(scores - row_max) / row_sum


def tiled_causal_bottom_right(query, key, value, mask=None, *, block_size, is_causal=False):
    T, S = query.size(-2), key.size(-2)
    if is_causal:
        bottom_right = torch.ones(T, S, dtype=torch.bool).tril(diagonal=S - T)
        mask = bottom_right if mask is None else mask & bottom_right
    return reference.tiled_attention(query, key, value, mask, block_size=block_size)


def encoding_base_1000(seq_len, d_model):
    position = torch.arange(seq_len).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, d_model, 2) * (-math.log(1000.0) / d_model))
    encoding = torch.zeros(seq_len, d_model)
    encoding[:, 0::2] = torch.sin(position * frequency)
    encoding[:, 1::2] = torch.cos(position * frequency)
    return encoding


def causal_additive(size):
    return torch.full((size, size), float("-inf")).triu(diagonal=1)


def causal_additive_large_negative(size):
    return torch.zeros(size, size).masked_fill(torch.ones(size, size).triu(1).bool(), -1e9)


def causal_additive_finfo_min(size):
    future = torch.ones(size, size, dtype=torch.bool).triu(1)
    return torch.zeros(size, size).masked_fill(future, torch.finfo(torch.float32).min)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "name, obj, words",
    [
        ("context_vector", context_averaged, "the values are averaged, not weighted"),
        ("merge_heads", merge_interleaved, "merged interleaved"),
        ("MultiHeadAttention", MultiHeadAttentionValuesThroughWk, "projected with w_k"),
        ("MultiHeadAttention", MultiHeadAttentionMaskAfterT, "head axis is in the wrong place"),
        (
            "TransformerEncoderBlock",
            BlockResidualAddsNormalised,
            "residual around the attention adds the normalised input",
        ),
        ("online_softmax", online_softmax_inverse_factor, "by the inverse factor"),
        ("online_softmax", online_softmax_one_max_per_block, "one maximum over the whole block"),
        ("tiled_attention", tiled_causal_bottom_right, "aligned bottom-right"),
        ("sinusoidal_positional_encoding", encoding_base_1000, "the frequencies are off"),
        ("causal_mask", causal_additive, "returns a float mask"),
        ("causal_mask", causal_additive_large_negative, "returns a float mask"),
        ("causal_mask", causal_additive_finfo_min, "returns a float mask"),
    ],
)
def test_mistakes_that_were_only_wrong_values_are_named(name, obj, words, seed):
    assert_named(name, obj, "failed", words, seed)


# --- what the learner sees ---------------------------------------------------------------------


def split_heads(x, num_heads):  # the learner's split_heads: view without transpose
    B, T, D = x.shape
    return x.reshape(B, num_heads, T, D // num_heads)


class MultiHeadAttention(reference.MultiHeadAttention):
    """Right in itself, but it calls the learner's wrong split_heads above."""

    def forward(self, query, key, value, mask=None):
        H = self.num_heads
        q, k, v = (split_heads(x, H) for x in (self.w_q(query), self.w_k(key), self.w_v(value)))
        if mask is not None and mask.dim() == 3:
            mask = mask.unsqueeze(1)
        context, _ = reference.scaled_dot_product_attention(q, k, v, mask)
        return self.w_o(merge_heads(context))


def test_check_says_when_a_module_fails_because_of_the_learners_own_helper(capsys):
    with pytest.raises(AssertionError):
        check(MultiHeadAttention)
    printed = capsys.readouterr().out
    assert "fails because your `split_heads` is wrong" in printed


def softmax(scores, dim=-1):  # the learner's own softmax, not written yet
    raise NotImplementedError


def test_a_module_calling_torchs_softmax_does_not_blame_the_learners_own(capsys):
    with pytest.raises(AssertionError):
        check("SimpleAttention", SimpleAttentionLastDim)  # torch.softmax: an attribute
    assert "your `softmax` is wrong" not in capsys.readouterr().out


def test_a_failing_module_case_shows_its_constructor_and_how_to_rebuild_it():
    verdict = run_check("FeedForward", FeedForwardTanhGelu, seed=5)
    assert "module: FeedForward(d_model=4, d_ff=16)" in verdict.detail
    assert f"rebuild_case('FeedForward', seed=5, label={verdict.case!r})" in verdict.detail
    case = rebuild_case("FeedForward", seed=5, label=verdict.case)
    module = FeedForwardTanhGelu(*case.init_args)
    module.load_state_dict(case.state_dict, strict=False)
    expected = reference.FeedForward(*case.init_args)
    expected.load_state_dict(case.state_dict)
    with torch.no_grad():
        assert not torch.allclose(module(*case.args), expected(*case.args), atol=1e-4)


def test_a_slow_pass_gets_a_note_on_its_speed(monkeypatch):
    monkeypatch.setattr(advice, "SLOW_SECONDS", 0.0)
    verdict = run_check("softmax", reference.softmax, seed=0)
    assert verdict.passed
    assert "correct, but slow" in verdict.detail


# --- the same verdict with every seed ---------------------------------------------------------
# Every check, run with 50 seeds on a known-wrong implementation (one of the corpus above, or
# one of these) and on the reference, gives the same verdict (status and message) every time.


def scores_scaled(query, keys):
    return (keys @ query.unsqueeze(-1)).squeeze(-1) / math.sqrt(query.size(-1))


def softmax_without_shift(scores, dim=-1):
    exp = scores.exp()
    return exp / exp.sum(dim=dim, keepdim=True)


class SimpleAttentionLastDim(reference.SimpleAttention):
    def forward(self, x):
        weights = torch.softmax(self.attention(x), dim=-1)
        return (weights * x).sum(dim=1), weights


def attention_mask_after_softmax(query, key, value, mask=None):
    weights = torch.softmax(query @ key.transpose(-2, -1) / math.sqrt(query.size(-1)), dim=-1)
    if mask is not None:
        weights = weights * mask
    return weights @ value, weights


def padding_one_too_many(lengths, max_len):
    return torch.arange(max_len) <= lengths.unsqueeze(-1)


class PostNormBlock(reference.TransformerEncoderBlock):
    def forward(self, x, mask=None):
        x = self.norm1(x + self.attn(x, x, x, mask))
        return self.norm2(x + self.ffn(x))


WRONG = {
    "attention_scores": scores_scaled,
    "softmax": softmax_without_shift,
    "context_vector": context_bare_squeeze,
    "SimpleAttention": SimpleAttentionLastDim,
    "scaled_dot_product_attention": attention_mask_after_softmax,
    "causal_mask": causal_additive,
    "padding_mask": padding_one_too_many,
    "split_heads": split_heads,
    "merge_heads": merge_interleaved,
    "MultiHeadAttention": MultiHeadAttentionValuesThroughWk,
    "sinusoidal_positional_encoding": encoding_base_1000,
    "FeedForward": FeedForwardTanhGelu,
    "TransformerEncoderBlock": PostNormBlock,
    "online_softmax": online_softmax_max_from_zero,
    "tiled_attention": tiled_causal_bottom_right,
    "apply_rotary": rotary(sign=-1.0),
    "GroupedQueryAttention": grouped_query_attention(tile=True),
    "GreedyDecoder": greedy_decoder(caches="shared"),  # pick=0 can pass by luck: not this
}
SEED_COUNT = {"GreedyDecoder": 20}  # ~0.2 s a check (~60 tokens generated); 50 elsewhere


def verdicts(name, obj):
    seeds = range(SEED_COUNT.get(name, 50))
    return {(v.status, v.message) for v in (run_check(name, obj, seed=s) for s in seeds)}


@pytest.mark.parametrize("name", WRONG)
def test_a_known_wrong_implementation_gets_the_same_verdict_with_every_seed(name):
    seen = verdicts(name, WRONG[name])
    assert len(seen) == 1, seen
    [(status, _)] = seen
    assert status == "failed"


# The causal mask's slips on the decoder's cache path show only through a second layer: each
# is named, as itself, with every seed.
@pytest.mark.parametrize(
    ("slip", "mistake"),
    [
        ({"chunk_unmasked": True}, "chunk-not-causal"),
        ({"diagonal_slip": 1}, "causal-offset"),
        ({"diagonal_slip": -1}, "causal-offset"),
    ],
    ids=["chunk", "diagonal+1", "diagonal-1"],
)
def test_a_cache_path_mask_slip_is_named_with_every_seed(slip, mistake):
    decoder = greedy_decoder(grouped_query_attention(**slip))
    seeds = range(SEED_COUNT["GreedyDecoder"])
    named = {run_check("GreedyDecoder", decoder, seed=s).mistake for s in seeds}
    assert named == {f"GreedyDecoder.{mistake}"}


@pytest.mark.parametrize("name", WRONG)
def test_the_reference_gets_the_same_pass_with_every_seed(name):
    seen = verdicts(name, getattr(reference, name))
    assert len(seen) == 1, seen
    [(status, _)] = seen
    assert status == "passed"


def test_every_exercise_has_a_known_wrong_implementation_here():
    assert set(WRONG) == {name for names in ASSIGNMENTS.values() for name in names}
