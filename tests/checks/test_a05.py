"""Assignment 05 checks: known mistakes are named, other correct code
passes, and code that reads whole rows or holds the (T, S) matrix fails although its values
are right. Each implementation below is written as a learner would write it."""

import math

import pytest
import torch
import torch.nn.functional as F

from attn_course import reference
from attn_course.checks import run_check
from attn_course.checks.core import Case, record_sizes, run_case

SEEDS = [0, 1, 2]


# --- online_softmax ---------------------------------------------------------------------------


def online_softmax_with(rescale=True, shift=True, skip_partial=False, per_block=False):
    """A learner's online softmax with one deliberate slip (the defaults: a correct one)."""

    def online_softmax(scores, block_size):
        S = scores.size(-1)
        row_max = torch.full(scores.shape[:-1], float("-inf"), dtype=scores.dtype)
        row_sum = torch.zeros(scores.shape[:-1], dtype=scores.dtype)
        stop = S - S % block_size if skip_partial else S
        pieces = []
        for start in range(0, stop, block_size):
            block = scores[..., start : start + block_size]
            if per_block:
                exp = torch.exp(block - block.max(dim=-1, keepdim=True).values)
                pieces.append(exp / exp.sum(dim=-1, keepdim=True))
                continue
            new_max = torch.maximum(row_max, block.max(dim=-1).values)
            if not shift:
                new_max = torch.zeros_like(row_max)
            if rescale:
                row_sum = row_sum * torch.exp(row_max - new_max)
            row_sum = row_sum + torch.exp(block - new_max[..., None]).sum(dim=-1)
            row_max = new_max
        if per_block:
            return torch.cat(pieces, dim=-1)
        return torch.exp(scores - row_max[..., None]) / row_sum[..., None]

    return online_softmax


def online_softmax_with_logsumexp(scores, block_size):
    """Correct: a running log-sum-exp, merged block by block with logaddexp."""
    lse = torch.full((*scores.shape[:-1], 1), float("-inf"), dtype=scores.dtype)
    for block in scores.split(block_size, dim=-1):
        lse = torch.logaddexp(lse, torch.logsumexp(block, dim=-1, keepdim=True))
    return torch.exp(scores - lse)


def online_softmax_stacked_maxima(scores, block_size):
    """Correct: the maxima of all blocks first, then the sums, without a built-in softmax."""
    blocks = scores.split(block_size, dim=-1)
    row_max = torch.stack([b.amax(dim=-1) for b in blocks]).amax(dim=0, keepdim=True)[0]
    row_sum = sum(torch.exp(b - row_max[..., None]).sum(dim=-1) for b in blocks)
    return torch.exp(scores - row_max[..., None]) / row_sum[..., None]


def softmax_of_whole_rows(scores, block_size):
    """Right values, but not online: it reads each row in one go."""
    exp = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
    return exp / exp.sum(dim=-1, keepdim=True)


def online_max_then_whole_row_sum(scores, block_size):
    """Right values; the max is online but the sum is taken over the whole row afterwards."""
    row_max = torch.full((*scores.shape[:-1], 1), float("-inf"), dtype=scores.dtype)
    for block in scores.split(block_size, dim=-1):
        row_max = torch.maximum(row_max, block.amax(dim=-1, keepdim=True))
    exp = torch.exp(scores - row_max)
    return exp / exp.sum(dim=-1, keepdim=True)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "fn",
    [online_softmax_with(), online_softmax_with_logsumexp, online_softmax_stacked_maxima],
    ids=["running max and sum", "logsumexp", "stacked maxima"],
)
def test_online_softmax_other_correct_solutions_pass(fn, seed):
    verdict = run_check("online_softmax", fn, seed=seed)
    assert verdict.passed, verdict


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "fn, words",
    [
        (online_softmax_with(rescale=False), "running sum is not rescaled"),
        (online_softmax_with(shift=False), "no max shift"),
        (online_softmax_with(per_block=True), "each block is normalised on its own"),
        (online_softmax_with(skip_partial=True), "the last, shorter block is left out"),
    ],
)
def test_online_softmax_mistakes_are_named(fn, words, seed):
    verdict = run_check("online_softmax", fn, seed=seed)
    assert verdict.status == "failed", verdict
    assert words in verdict.message
    assert "expected:" in verdict.detail and "got:" in verdict.detail


@pytest.mark.parametrize("fn", [softmax_of_whole_rows, online_max_then_whole_row_sum])
def test_online_softmax_that_reads_whole_rows_fails_with_right_values(fn):
    verdict = run_check("online_softmax", fn, seed=0)
    assert verdict.status == "failed", verdict
    assert "reads whole rows at once" in verdict.message
    assert "block_size = 4" in verdict.detail or "block_size = 8" in verdict.detail


def test_online_softmax_may_not_use_a_builtin_softmax():
    def online_softmax(scores, block_size):
        return torch.cat([F.softmax(b, dim=-1) for b in scores.split(block_size, -1)], -1)

    verdict = run_check("online_softmax", online_softmax, seed=0)
    assert verdict.status == "forbidden"
    assert "built-in softmax" in verdict.message


# --- tiled_attention --------------------------------------------------------------------------


def tiled_with(
    causal="global",
    use_mask=True,
    scale=True,
    rescale_sum=True,
    rescale_output=True,
    shift=True,
    skip_partial=False,
    per_block="",
    full_causal_mask=False,
    expand_mask=False,
):
    """A learner's tiled attention with one deliberate slip (the defaults: a correct one)."""

    def tiled_attention(query, key, value, mask=None, *, block_size=256, is_causal=False):
        T, S, D = query.size(-2), key.size(-2), query.size(-1)
        lead = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
        row_max = torch.full((*lead, T, 1), float("-inf"), dtype=query.dtype)
        row_sum = torch.zeros((*lead, T, 1), dtype=query.dtype)
        acc = torch.zeros((*lead, T, value.size(-1)), dtype=query.dtype)
        if full_causal_mask and is_causal:
            causal_mask = torch.ones(T, S, dtype=torch.bool).tril()
        if expand_mask and mask is not None:
            mask = mask.expand(*lead, T, S).contiguous()
        rows = torch.arange(T)[:, None]
        stop = S - S % block_size if skip_partial else S
        outputs = []
        for start in range(0, stop, block_size):
            k_block = key[..., start : start + block_size, :]
            v_block = value[..., start : start + block_size, :]
            scores = torch.einsum("...td,...sd->...ts", query, k_block)
            if scale:
                scores = scores / math.sqrt(D)
            if mask is not None and use_mask:
                scores = scores.masked_fill(~mask[..., start : start + block_size], float("-inf"))
            if is_causal and causal != "ignored":
                if full_causal_mask:
                    allowed = causal_mask[:, start : start + block_size]
                else:
                    cols = torch.arange(start, min(start + block_size, S))
                    cols = cols - start if causal == "local" else cols
                    allowed = cols < rows if causal == "strict" else cols <= rows
                scores = scores.masked_fill(~allowed, float("-inf"))
            if per_block:
                weights = torch.exp(scores - scores.amax(-1, keepdim=True))
                outputs.append(weights / weights.sum(-1, keepdim=True) @ v_block)
                continue
            new_max = torch.maximum(row_max, scores.amax(-1, keepdim=True))
            if not shift:
                new_max = torch.zeros_like(new_max)
            correction = torch.exp(row_max - new_max)
            p = torch.exp(scores - new_max)
            row_sum = (row_sum * correction if rescale_sum else row_sum) + p.sum(-1, keepdim=True)
            acc = (acc * correction if rescale_output else acc) + p @ v_block
            row_max = new_max
        if per_block == "sum":
            return sum(outputs)
        if per_block == "mean":
            return sum(outputs) / len(outputs)
        return acc / row_sum

    return tiled_attention


def tiled_attention_over_query_blocks(
    query, key, value, mask=None, *, block_size=256, is_causal=False
):
    """Correct: tiles the queries as well, keeps the running output normalised at every step,
    and masks with a large negative number instead of -inf."""
    T, S = query.size(-2), key.size(-2)
    query = query / math.sqrt(query.size(-1))
    parts = []
    for q_start in range(0, T, block_size):
        q = query[..., q_start : q_start + block_size, :]
        rows = torch.arange(q_start, q_start + q.size(-2))[:, None]
        m = torch.full((*q.shape[:-1], 1), -1e30, dtype=q.dtype)
        total = torch.zeros_like(m)
        out = torch.zeros((*q.shape[:-1], value.size(-1)), dtype=q.dtype)
        for start in range(0, S, block_size):
            scores = q @ key[..., start : start + block_size, :].mT
            if mask is not None:
                block_mask = mask[..., q_start : q_start + block_size, start : start + block_size]
                if mask.size(-2) == 1:
                    block_mask = mask[..., start : start + block_size]
                scores = torch.where(block_mask, scores, -1e30)
            if is_causal:
                cols = torch.arange(start, start + scores.size(-1))
                scores = torch.where(cols <= rows, scores, -1e30)
            m_new = torch.maximum(m, scores.amax(-1, keepdim=True))
            p = torch.exp(scores - m_new)
            new_total = total * torch.exp(m - m_new) + p.sum(-1, keepdim=True)
            out = out * total * torch.exp(m - m_new) + p @ value[..., start : start + block_size, :]
            out = out / new_total
            m, total = m_new, new_total
        parts.append(out)
    return torch.cat(parts, dim=-2)


def naive_attention(query, key, value, mask=None, *, block_size=256, is_causal=False):
    """Right values, but it builds the whole (..., T, S) matrix."""
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    if is_causal:
        T, S = scores.shape[-2:]
        scores = scores.masked_fill(~torch.ones(T, S, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(scores, dim=-1) @ value


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "fn",
    [tiled_with(), tiled_attention_over_query_blocks],
    ids=["running output", "query blocks, normalised at each step"],
)
def test_tiled_attention_other_correct_solutions_pass(fn, seed):
    verdict = run_check("tiled_attention", fn, seed=seed)
    assert verdict.passed, verdict


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "fn, words",
    [
        (tiled_with(rescale_sum=False, rescale_output=False), "running sum and the output are"),
        (tiled_with(rescale_output=False), "unnormalised output is not rescaled"),
        (tiled_with(rescale_sum=False), "running sum is not rescaled"),
        (tiled_with(shift=False), "no max shift"),
        (tiled_with(per_block="sum"), "outputs are added up"),
        (tiled_with(per_block="mean"), "outputs are averaged"),
        (tiled_with(skip_partial=True), "the last, shorter block is left out"),
        (tiled_with(scale=False), "missing 1/√D"),
        (tiled_with(causal="strict"), "causal slip"),
        (tiled_with(causal="local"), "positions inside the block"),
        (tiled_with(causal="ignored"), "is_causal is ignored"),
        (tiled_with(use_mask=False), "the mask is ignored"),
    ],
)
def test_tiled_attention_mistakes_are_named(fn, words, seed):
    verdict = run_check("tiled_attention", fn, seed=seed)
    assert verdict.status == "failed", verdict
    assert words in verdict.message
    assert "expected:" in verdict.detail and "got:" in verdict.detail


@pytest.mark.parametrize(
    "fn, case",
    [
        (naive_attention, "long: T=256, S=2048"),
        (tiled_with(full_causal_mask=True), "long, is_causal"),
        (tiled_with(expand_mask=True), "long, (B, 1, S) padding mask"),
    ],
    ids=["naive", "full causal mask", "mask expanded to (B, T, S)"],
)
def test_tiled_attention_that_holds_a_t_by_s_tensor_fails_with_right_values(fn, case):
    verdict = run_check("tiled_attention", fn, seed=0)
    assert verdict.status == "failed", verdict
    assert "holds the whole score matrix" in verdict.message
    assert f"case '{case}" in verdict.detail


def test_tiled_attention_may_not_call_torchs_attention():
    def tiled_attention(query, key, value, mask=None, *, block_size=256, is_causal=False):
        return F.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, is_causal=is_causal
        )

    verdict = run_check("tiled_attention", tiled_attention, seed=0)
    assert verdict.status == "forbidden"


# --- the size recording these checks rely on --------------------------------------------------


def test_sizes_count_new_tensors_and_not_views_or_inputs():
    big = torch.randn(64, 64)
    with record_sizes() as sizes:
        big[:8].transpose(0, 1).expand(2, 64, 8)  # views only
        (big[:4] * 2).amax(dim=-1)  # a (4, 64) tensor, reduced 64 at a time
    assert sizes == {"largest": 4 * 64, "widest_reduction": 64}
    with record_sizes() as sizes:
        big.expand(3, 64, 64).contiguous()
    assert sizes["largest"] == 3 * 64 * 64


def test_run_case_reports_the_sizes_of_a_naive_and_a_tiled_attention():
    q, k, v = torch.randn(1, 256, 8), torch.randn(1, 1024, 8), torch.randn(1, 1024, 8)
    case = Case("c", (q, k, v), {"block_size": 64})
    naive, tiled = run_case(naive_attention, case), run_case(reference.tiled_attention, case)
    assert naive.largest == 256 * 1024
    assert tiled.largest < 256 * 1024 // 4
    assert tiled.widest_reduction == 64
