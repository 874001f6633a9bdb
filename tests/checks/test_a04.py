"""Assignment 04 checks: known mistakes are named, other correct code
passes. Each wrong implementation below is written as a learner would write it."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attn_course import reference
from attn_course.checks import run_check

SEEDS = [0, 1, 2]


# --- sinusoidal_positional_encoding -----------------------------------------------------------


def positional_encoding(
    first=0, exponent="2i/D", swap=False, halves=False, dtype=torch.float32, loops=False
):
    """A learner's encoding with one deliberate slip (the defaults are a correct solution)."""

    def sinusoidal_positional_encoding(seq_len, d_model):
        pe = torch.zeros(seq_len, d_model, dtype=dtype)
        if loops:
            for pos in range(seq_len):
                for i in range(0, d_model, 2):
                    angle = pos / 10000 ** (i / d_model)
                    pe[pos, i], pe[pos, i + 1] = math.sin(angle), math.cos(angle)
            return pe
        position = torch.arange(first, first + seq_len, dtype=dtype).unsqueeze(1)
        columns = torch.arange(d_model, dtype=dtype)
        even = torch.arange(0, d_model, 2, dtype=dtype)
        power = {
            "2i/D": even / d_model,
            "i/D": (even / 2) / d_model,
            "2i": even,
            "column/D": columns[1::2] / d_model,
        }[exponent]
        odd_angles = position / 10000**power
        even_angles = position / 10000 ** (even / d_model if exponent == "column/D" else power)
        first_fn, second_fn = (torch.cos, torch.sin) if swap else (torch.sin, torch.cos)
        if halves:
            half = d_model // 2
            pe[:, :half], pe[:, half:] = first_fn(even_angles), second_fn(odd_angles)
        else:
            pe[:, 0::2], pe[:, 1::2] = first_fn(even_angles), second_fn(odd_angles)
        return pe

    return sinusoidal_positional_encoding


def positional_encoding_with_exp_log(seq_len, d_model):
    position = torch.arange(seq_len).float()[:, None]
    div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
    pe = torch.empty(seq_len, d_model)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe


@pytest.mark.parametrize(
    "fn",
    [positional_encoding(), positional_encoding(loops=True), positional_encoding_with_exp_log],
    ids=["power", "loops", "exp-log"],
)
def test_positional_encoding_other_correct_solutions_pass(fn):
    verdict = run_check("sinusoidal_positional_encoding", fn, seed=0)
    assert verdict.passed, verdict


@pytest.mark.parametrize(
    "fn, words",
    [
        (positional_encoding(swap=True), "sin and cos are swapped"),
        (positional_encoding(halves=True), "two halves"),
        (positional_encoding(exponent="i/D"), "pair index i instead of 2i"),
        (positional_encoding(exponent="2i"), "not divided by d_model"),
        (positional_encoding(exponent="column/D"), "odd columns"),
        (positional_encoding(first=1), "positions start at 1"),
        (positional_encoding(dtype=torch.float64), "wrong dtype"),
    ],
)
def test_positional_encoding_mistakes_are_named(fn, words):
    verdict = run_check("sinusoidal_positional_encoding", fn, seed=0)
    assert verdict.status == "failed", verdict
    assert words in verdict.message
    assert "expected:" in verdict.detail and "got:" in verdict.detail


# --- FeedForward ------------------------------------------------------------------------------


def feed_forward(activation=nn.GELU, after_down=False):
    """A learner's FFN with one deliberate slip (the default is a correct solution)."""

    class FeedForward(nn.Module):
        def __init__(self, d_model, d_ff):
            super().__init__()
            self.up = nn.Linear(d_model, d_ff)
            self.down = nn.Linear(d_ff, d_model)
            self.activation = activation()

        def forward(self, x):
            output = self.down(self.activation(self.up(x)))
            return self.activation(output) if after_down else output

    return FeedForward


class FeedForwardRenamed(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)

    def forward(self, x):
        return self.linear2(F.gelu(self.linear1(x)))


def test_feed_forward_with_nn_gelu_passes():
    assert run_check("FeedForward", feed_forward(), seed=0).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "module, words",
    [
        (feed_forward(nn.ReLU), "ReLU instead of GELU"),
        (feed_forward(lambda: nn.GELU(approximate="tanh")), "tanh approximation"),
        (feed_forward(nn.Identity), "no activation"),
        (feed_forward(after_down=True), "after `down` too"),
    ],
)
def test_feed_forward_mistakes_are_named(module, words, seed):
    verdict = run_check("FeedForward", module, seed=seed)
    assert verdict.status == "failed", verdict
    assert words in verdict.message


def test_feed_forward_with_other_attribute_names_gets_a_hint():
    verdict = run_check("FeedForward", FeedForwardRenamed, seed=0)
    assert verdict.status == "error"
    assert "self.up = nn.Linear(d_model, d_ff)" in verdict.message


# --- TransformerEncoderBlock ------------------------------------------------------------------


class GivenMultiHeadAttention(nn.Module):
    """The attention the notebook gives the learner: projections around torch's fused kernel."""

    def __init__(self, d_model, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)
        self.w_o = nn.Linear(d_model, d_model)

    def forward(self, query, key, value, mask=None):
        B, T, D = query.shape
        q = self.w_q(query).view(B, T, self.num_heads, -1).transpose(1, 2)
        k = self.w_k(key).view(B, key.size(1), self.num_heads, -1).transpose(1, 2)
        v = self.w_v(value).view(B, value.size(1), self.num_heads, -1).transpose(1, 2)
        if mask is not None:
            mask = mask.unsqueeze(-3)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.w_o(context.transpose(1, 2).reshape(B, T, D))


def encoder_block(
    order="pre",
    residual_attn=True,
    residual_ffn=True,
    norms=("norm1", "norm2"),
    mask_mode="used",
    ffn_first=False,
    attention=GivenMultiHeadAttention,
    ffn=reference.FeedForward,
):
    """A learner's encoder block with one deliberate slip (the defaults: a correct one)."""

    class TransformerEncoderBlock(nn.Module):
        def __init__(self, d_model, num_heads, d_ff):
            super().__init__()
            self.norm1 = nn.LayerNorm(d_model)
            self.attn = attention(d_model, num_heads)
            self.norm2 = nn.LayerNorm(d_model)
            self.ffn = ffn(d_model, d_ff)

        def forward(self, x, mask=None):
            if mask is not None and mask_mode == "inverted":
                mask = ~mask
            if mask_mode == "ignored":
                mask = None

            def attend(h):
                return self.attn(h, h, h, mask)

            steps = [(attend, norms[0], residual_attn), (self.ffn, norms[1], residual_ffn)]
            for sublayer, norm_name, residual in reversed(steps) if ffn_first else steps:
                norm = getattr(self, norm_name) if norm_name else nn.Identity()
                if order == "post":
                    x = norm(x + sublayer(x))
                elif order == "normalised stream":
                    x = norm(x)
                    x = x + sublayer(x) if residual else sublayer(x)
                else:
                    out = sublayer(norm(x))
                    x = x + out if residual else out
            return x

    return TransformerEncoderBlock


class BlockOverTorchLayer(nn.Module):
    """Correct, written over nn.TransformerEncoderLayer with the expected parameter names."""

    def __init__(self, d_model, num_heads, d_ff):
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = GivenMultiHeadAttention(d_model, num_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = reference.FeedForward(d_model, d_ff)

    def forward(self, x, mask=None):
        layer = reference.to_torch_encoder_layer(self, self.num_heads)
        if mask is None:
            return layer.eval()(x)
        blocked = ~mask.expand(x.size(0), x.size(1), x.size(1))
        return layer.eval()(x, src_mask=blocked.repeat_interleave(self.num_heads, dim=0))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "module",
    [
        encoder_block(),
        encoder_block(attention=reference.MultiHeadAttention),
        BlockOverTorchLayer,
    ],
    ids=["given attention", "course attention", "nn.TransformerEncoderLayer"],
)
def test_encoder_block_other_correct_solutions_pass(module, seed):
    verdict = run_check("TransformerEncoderBlock", module, seed=seed)
    assert verdict.passed, verdict


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "module, words",
    [
        (encoder_block(order="post"), "post-norm"),
        (encoder_block(order="normalised stream"), "residual stream itself is normalised"),
        (encoder_block(residual_attn=False), "no residual connection around the attention"),
        (encoder_block(residual_ffn=False), "no residual connection around the FFN"),
        (encoder_block(residual_attn=False, residual_ffn=False), "no residual connections"),
        (encoder_block(norms=("norm1", "norm1")), "norm1 is used before the FFN too"),
        (encoder_block(norms=("norm2", "norm1")), "the norms are swapped"),
        (encoder_block(norms=("", "norm2")), "no layer norm before the attention"),
        (encoder_block(norms=("norm1", "")), "no layer norm before the FFN"),
        (encoder_block(ffn_first=True), "the FFN comes first"),
        (encoder_block(mask_mode="ignored"), "the mask is ignored"),
        (encoder_block(mask_mode="inverted"), "inverted mask"),
        (encoder_block(ffn=feed_forward(nn.ReLU)), "fix FeedForward first"),
        (encoder_block(ffn=feed_forward(nn.Identity)), "fix FeedForward first"),
    ],
)
def test_encoder_block_mistakes_are_named(module, words, seed):
    verdict = run_check("TransformerEncoderBlock", module, seed=seed)
    assert verdict.status == "failed", verdict
    assert words in verdict.message
    assert "expected:" in verdict.detail and "got:" in verdict.detail


def test_encoder_block_with_other_attribute_names_gets_a_hint():
    class TransformerEncoderBlock(encoder_block()):
        def __init__(self, d_model, num_heads, d_ff):
            super().__init__(d_model, num_heads, d_ff)
            self.ln_1 = self.norm1
            del self.norm1

    verdict = run_check("TransformerEncoderBlock", TransformerEncoderBlock, seed=0)
    assert verdict.status == "error"
    assert "keep the attribute names" in verdict.message
