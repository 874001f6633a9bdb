"""Assignment 02 checks: known mistakes are named, other correct code
passes. Each wrong implementation below is written as a learner would write it."""

import math

import pytest
import torch

from attn_course.checks import run_check

SEEDS = [0, 1, 2]


# --- scaled_dot_product_attention -------------------------------------------------------------


def attention(
    scale="sqrt_d", mask_mode="before", fill=float("-inf"), dim=-1, swap=False, einsum=False
):
    """A learner's attention with one deliberate slip (the defaults are a correct solution)."""

    def scaled_dot_product_attention(query, key, value, mask=None):
        d = query.size(-1)
        if einsum:
            scores = torch.einsum("...td,...sd->...ts", query, key)
        else:
            scores = query @ key.transpose(-2, -1)
        scores = (
            scores
            * {
                "sqrt_d": 1 / math.sqrt(d),
                "none": 1.0,
                "d": 1 / d,
                "times_sqrt_d": math.sqrt(d),
                "sqrt_dv": 1 / math.sqrt(value.size(-1)),
                "sqrt_s": 1 / math.sqrt(key.size(-2)),
                "sqrt_t": 1 / math.sqrt(query.size(-2)),
            }[scale]
        )
        if mask is not None and mask_mode == "before":
            scores = scores.masked_fill(~mask, fill)
        if mask is not None and mask_mode == "inverted":
            scores = scores.masked_fill(mask, fill)
        if mask is not None and mask_mode == "multiplied":
            scores = scores * mask
        weights = torch.softmax(scores, dim=dim)
        if mask is not None and mask_mode == "after":
            weights = weights.masked_fill(~mask, 0.0)
        output = weights @ value
        return (weights, output) if swap else (output, weights)

    return scaled_dot_product_attention


def attention_with_loops(query, key, value, mask=None):
    """Correct, one query at a time."""
    *lead, T, D = query.shape
    outputs, all_weights = [], []
    for t in range(T):
        scores = (key * query[..., t : t + 1, :]).sum(-1) / D**0.5  # (..., S)
        if mask is not None:
            row = mask.expand(*lead, T, key.size(-2))[..., t, :] if mask.dim() > 1 else mask
            scores = scores.masked_fill(~row, -1e9)
        weights = torch.softmax(scores, dim=-1)
        all_weights.append(weights)
        outputs.append((weights.unsqueeze(-1) * value).sum(-2))
    return torch.stack(outputs, -2), torch.stack(all_weights, -2)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "fn",
    [attention(einsum=True), attention(fill=-1e9), attention(fill=-1e4), attention_with_loops],
    ids=["einsum", "fill -1e9", "fill -1e4", "loops"],
)
def test_attention_other_correct_solutions_pass(fn, seed):
    verdict = run_check("scaled_dot_product_attention", fn, seed=seed)
    assert verdict.passed, verdict


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "fn, words",
    [
        (attention(scale="none"), "missing 1/√D"),
        (attention(scale="d"), "divided by D instead of √D"),
        (attention(scale="times_sqrt_d"), "multiplied by √D"),
        (attention(scale="sqrt_dv"), "value width Dv"),
        (attention(scale="sqrt_s"), "number of keys S"),
        (attention(scale="sqrt_t"), "number of queries T"),
        (attention(dim=-2), "softmax over the wrong dim"),
        (attention(mask_mode="after"), "mask applied after the softmax"),
        (attention(mask_mode="after", fill=-1e9), "mask applied after the softmax"),
        (attention(mask_mode="inverted"), "inverted mask"),
        (attention(mask_mode="inverted", fill=-1e9), "inverted mask"),
        (attention(mask_mode="multiplied"), "multiplied into the scores"),
        (attention(mask_mode="ignored"), "the mask is ignored"),
        (attention(swap=True), "swapped"),
    ],
)
def test_attention_mistakes_are_named(fn, words, seed):
    verdict = run_check("scaled_dot_product_attention", fn, seed=seed)
    assert verdict.status == "failed", verdict
    assert words in verdict.message
    assert "expected:" in verdict.detail and "got:" in verdict.detail


def test_attention_that_only_works_on_3d_inputs_is_an_error_with_a_hint():
    def scaled_dot_product_attention(query, key, value, mask=None):
        scores = torch.bmm(query, key.transpose(1, 2)) / math.sqrt(query.size(-1))
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return weights @ value, weights

    verdict = run_check("scaled_dot_product_attention", scaled_dot_product_attention, seed=0)
    assert verdict.status == "error"
    assert "works on some cases" in verdict.message


# --- causal_mask ------------------------------------------------------------------------------


def causal_mask_loops(size):
    mask = torch.zeros(size, size, dtype=torch.bool)
    for i in range(size):
        for j in range(i + 1):
            mask[i, j] = True
    return mask


def causal_mask_compare(size):
    positions = torch.arange(size)
    return positions[:, None] >= positions[None, :]


@pytest.mark.parametrize("fn", [causal_mask_loops, causal_mask_compare])
def test_causal_mask_other_correct_solutions_pass(fn):
    assert run_check("causal_mask", fn, seed=0).passed


@pytest.mark.parametrize(
    "fn, words",
    [
        (lambda n: torch.ones(n, n, dtype=torch.bool).triu(), "triu instead of tril"),
        (lambda n: torch.ones(n, n).tril() == 0, "marks the future"),
        (lambda n: torch.ones(n, n, dtype=torch.bool).tril(-1), "a token cannot attend to itself"),
        (lambda n: torch.ones(n, n, dtype=torch.bool).tril(1), "sees the next one"),
        (lambda n: torch.ones(n, n).tril(), "returns a float mask"),
        (lambda n: torch.ones(n, n, dtype=torch.bool).tril()[:, : n - 1], "wrong shape"),
    ],
)
def test_causal_mask_mistakes_are_named(fn, words):
    verdict = run_check("causal_mask", fn, seed=0)
    assert verdict.status == "failed", verdict
    assert words in verdict.message


# --- padding_mask -----------------------------------------------------------------------------


def padding_mask_loops(lengths, max_len):
    mask = torch.zeros(len(lengths), max_len, dtype=torch.bool)
    for b, length in enumerate(lengths.tolist()):
        mask[b, :length] = True
    return mask


def test_padding_mask_written_with_loops_passes():
    assert run_check("padding_mask", padding_mask_loops, seed=0).passed


def padding(compare, finish=lambda mask: mask):
    """A learner's padding mask comparing positions with lengths by ``compare``."""

    def padding_mask(lengths, max_len):
        positions = torch.arange(max_len)
        return finish(compare(positions[None, :], lengths[:, None]))

    return padding_mask


@pytest.mark.parametrize(
    "fn, words",
    [
        (padding(torch.ge), "inverted"),
        (padding(torch.le), "one padding position too many"),
        (padding(lambda position, length: position < length - 1), "last real token"),
        (padding(torch.lt, lambda mask: mask.T), "transposed"),
        (padding(torch.lt, lambda mask: mask.long()), "wrong dtype"),
    ],
)
def test_padding_mask_mistakes_are_named(fn, words):
    verdict = run_check("padding_mask", fn, seed=0)
    assert verdict.status == "failed", verdict
    assert words in verdict.message
