"""Assignment 01 checks: known mistakes are named, other correct code
passes. Each wrong implementation below is written as a learner would write it."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attn_course.checks import run_check

SEEDS = [0, 1, 2]


# --- attention_scores -------------------------------------------------------------------------


def scores_einsum(query, keys):
    return torch.einsum("...d,...sd->...s", query, keys)


def scores_broadcast(query, keys):
    return (query.unsqueeze(-2) * keys).sum(-1)


def scores_batch_matmul_mistake(query, keys):
    return query @ keys.transpose(-2, -1)


def scores_scaled_mistake(query, keys):
    return (keys @ query.unsqueeze(-1)).squeeze(-1) / math.sqrt(query.size(-1))


def scores_float32_mistake(query, keys):
    return torch.einsum("...d,...sd->...s", query.float(), keys.float())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fn", [scores_einsum, scores_broadcast])
def test_attention_scores_other_correct_solutions_pass(fn, seed):
    assert run_check("attention_scores", fn, seed=seed).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "fn, words",
    [
        (scores_batch_matmul_mistake, "batch broadcasting by @"),
        (scores_scaled_mistake, "divided by √D"),
        (scores_float32_mistake, "wrong dtype"),
    ],
)
def test_attention_scores_mistakes_are_named(fn, words, seed):
    verdict = run_check("attention_scores", fn, seed=seed)
    assert verdict.status == "failed"
    assert words in verdict.message
    assert "expected:" in verdict.detail and "got:" in verdict.detail


# --- softmax ----------------------------------------------------------------------------------


def softmax_logsumexp(scores, dim=-1):
    return torch.exp(scores - torch.logsumexp(scores, dim=dim, keepdim=True))


def softmax_loop_over_rows(scores, dim=-1):
    moved = scores.movedim(dim, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    out = torch.empty_like(rows)
    for i, row in enumerate(rows):
        e = torch.exp(row - row.max())
        out[i] = e / e.sum()
    return out.reshape(moved.shape).movedim(-1, dim)


def softmax_wrong_dim(scores, dim=-1):
    e = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
    return e / e.sum(dim=-1, keepdim=True)


def softmax_no_max_shift(scores, dim=-1):
    e = torch.exp(scores)
    return e / e.sum(dim=dim, keepdim=True)


def softmax_global_max(scores, dim=-1):
    e = torch.exp(scores - scores.max())
    return e / e.sum(dim=dim, keepdim=True)


def softmax_sum_without_keepdim(scores, dim=-1):
    e = torch.exp(scores - scores.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim)


def softmax_builtin(scores, dim=-1):
    return torch.softmax(scores, dim=dim)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fn", [softmax_logsumexp, softmax_loop_over_rows])
def test_softmax_other_correct_solutions_pass(fn, seed):
    assert run_check("softmax", fn, seed=seed).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "fn, words",
    [
        (softmax_wrong_dim, "softmax over the wrong dim"),
        (softmax_no_max_shift, "no max shift"),
        (softmax_global_max, "maximum of the whole tensor"),
        (softmax_sum_without_keepdim, "without keepdim=True"),
    ],
)
def test_softmax_mistakes_are_named(fn, words, seed):
    verdict = run_check("softmax", fn, seed=seed)
    assert verdict.status == "failed"
    assert words in verdict.message


def test_softmax_builtin_is_forbidden():
    verdict = run_check("softmax", softmax_builtin, seed=0)
    assert verdict.status == "forbidden"
    assert "built-in softmax" in verdict.message


# --- context_vector ---------------------------------------------------------------------------


def context_einsum(weights, values):
    return torch.einsum("...s,...sd->...d", weights, values)


def context_broadcast(weights, values):
    return (weights.unsqueeze(-1) * values).sum(dim=-2)


def context_batch_matmul_mistake(weights, values):
    return weights @ values


def context_wrong_axis_mistake(weights, values):
    return (weights.unsqueeze(-1) * values).sum(dim=-1)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fn", [context_einsum, context_broadcast])
def test_context_vector_other_correct_solutions_pass(fn, seed):
    assert run_check("context_vector", fn, seed=seed).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "fn, words",
    [
        (context_batch_matmul_mistake, "batch broadcasting by @"),
        (context_wrong_axis_mistake, "summed over the wrong axis"),
    ],
)
def test_context_vector_mistakes_are_named(fn, words, seed):
    verdict = run_check("context_vector", fn, seed=seed)
    assert verdict.status == "failed"
    assert words in verdict.message


# --- SimpleAttention --------------------------------------------------------------------------


def simple_attention(softmax_dim=1, squeeze=False):
    class SimpleAttention(nn.Module):
        def __init__(self, input_dim):
            super().__init__()
            self.attention = nn.Linear(input_dim, 1)

        def forward(self, x):
            weights = F.softmax(self.attention(x), dim=softmax_dim)
            context = torch.einsum("btd,bt->bd", x, weights.squeeze(-1))
            return context, weights.squeeze(-1) if squeeze else weights

    return SimpleAttention


def test_simple_attention_written_with_einsum_passes():
    assert run_check("SimpleAttention", simple_attention(), seed=0).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "module, words",
    [
        (simple_attention(softmax_dim=-1), "every weight is 1"),
        (simple_attention(softmax_dim=0), "softmax over the batch"),
        (simple_attention(squeeze=True), "lost their trailing axis"),
    ],
)
def test_simple_attention_mistakes_are_named(module, words, seed):
    verdict = run_check("SimpleAttention", module, seed=seed)
    assert verdict.status == "failed"
    assert words in verdict.message


def test_simple_attention_without_the_required_layer_is_an_error():
    class SimpleAttention(nn.Module):
        def __init__(self, input_dim):
            super().__init__()
            self.scorer = nn.Linear(input_dim, 1)

        def forward(self, x):
            weights = torch.softmax(self.scorer(x), dim=1)
            return (weights * x).sum(1), weights

    verdict = run_check("SimpleAttention", SimpleAttention, seed=0)
    assert verdict.status == "error"
    assert "attention.weight" in verdict.message
