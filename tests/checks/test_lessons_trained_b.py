"""The tasks of lessons 09 and 15 (``attn_course.checks.lessons``): the worked answer passes,
other correct code passes, and each registered mistake, written as a learner would write it,
is named. A lesson's check prints its verdict and never raises."""

import pytest
import torch

from attn_course.checks import check, run_check

SEEDS = [0, 1]


# --- 09: cross_attention_mask(lengths, max_len) ---------------------------------------------


def mask_fn(compare="<", axis="keys", invert=False):
    def cross_attention_mask(lengths, max_len):
        positions = torch.arange(max_len)  # (S,)
        real = positions < lengths[:, None] if compare == "<" else positions <= lengths[:, None]
        real = ~real if invert else real  # (B, S)
        return {"keys": real[:, None, :], "queries": real[:, :, None], "none": real}[axis]

    return cross_attention_mask


@pytest.mark.parametrize("seed", SEEDS)
def test_cross_attention_mask_answer_passes(seed):
    assert run_check("cross_attention_mask", mask_fn(), seed=seed).passed

    def cross_attention_mask(lengths, max_len):  # another right answer
        return (torch.arange(max_len).expand(len(lengths), -1) < lengths.unsqueeze(1)).unsqueeze(1)

    assert run_check("cross_attention_mask", cross_attention_mask, seed=seed).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("fn", "words"),
    [
        (mask_fn(invert=True), "inverted"),
        (mask_fn(compare="<="), "off by one"),
        (mask_fn(axis="queries"), "along the queries"),
        (mask_fn(axis="none"), "the query axis is missing"),
    ],
)
def test_cross_attention_mask_mistakes_are_named(fn, words, seed, named):
    named("cross_attention_mask", fn, words, seed)


# --- 09: uniform_cross_attention_weights(mask, num_queries) ---------------------------------


def uniform_fn(keys="real", normalise="rows", expand=True):
    def uniform_cross_attention_weights(mask, num_queries):
        allowed = mask if keys == "real" else torch.ones_like(mask)  # (B, 1, S)
        weights = allowed.float()
        if normalise == "rows":
            weights = weights / weights.sum(dim=-1, keepdim=True)
        elif normalise == "queries":
            weights = weights / num_queries
        return weights.expand(-1, num_queries, -1) if expand else weights

    return uniform_cross_attention_weights


@pytest.mark.parametrize("seed", SEEDS)
def test_uniform_cross_attention_weights_answer_passes(seed):
    assert run_check("uniform_cross_attention_weights", uniform_fn(), seed=seed).passed

    def uniform_cross_attention_weights(mask, num_queries):  # a masked softmax of zeros
        scores = torch.zeros(mask.size(0), num_queries, mask.size(-1))  # (B, T, S)
        return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)

    assert run_check("uniform_cross_attention_weights", uniform_cross_attention_weights,
                     seed=seed).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("fn", "words"),
    [
        (uniform_fn(keys="all"), "the padding gets weight too"),
        (uniform_fn(normalise="none"), "not normalised"),
        (uniform_fn(normalise="queries"), "normalised over the queries"),
        (uniform_fn(expand=False), "one row for all target positions"),
    ],
)
def test_uniform_cross_attention_weights_mistakes_are_named(fn, words, seed, named):
    named("uniform_cross_attention_weights", fn, words, seed)


# --- 15: previous_token_score(attn_weights) -------------------------------------------------


def previous_fn(offset=-1, divide_by_t=False):
    def previous_token_score(attn_weights):
        line = attn_weights.diagonal(offset=offset, dim1=-2, dim2=-1)  # (B, T - 1)
        if divide_by_t:
            return line.sum(dim=-1).mean() / attn_weights.size(-1)
        return line.mean()

    return previous_token_score


@pytest.mark.parametrize("seed", SEEDS)
def test_previous_token_score_answer_passes(seed):
    assert run_check("previous_token_score", previous_fn(), seed=seed).passed

    def previous_token_score(attn_weights):  # with indices instead of diagonal
        t = torch.arange(1, attn_weights.size(-1))
        return attn_weights[:, t, t - 1].mean()

    assert run_check("previous_token_score", previous_token_score, seed=seed).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("fn", "words"),
    [
        (previous_fn(offset=0), "the main diagonal"),
        (previous_fn(offset=1), "the NEXT token"),
        (previous_fn(divide_by_t=True), "divided by T"),
    ],
)
def test_previous_token_score_mistakes_are_named(fn, words, seed, named):
    named("previous_token_score", fn, words, seed)


# --- 15: induction_score(attn_weights, period) ----------------------------------------------


def induction_fn(key_shift=1, first_query="period"):
    def induction_score(attn_weights, period):
        T = attn_weights.size(-1)
        start = period if first_query == "period" else period - 1
        rows = torch.arange(start, T)  # the queries in the second copy
        return attn_weights[:, rows, rows - period + key_shift].mean()

    return induction_score


@pytest.mark.parametrize("seed", SEEDS)
def test_induction_score_answer_passes(seed):
    assert run_check("induction_score", induction_fn(), seed=seed).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("fn", "words"),
    [
        (induction_fn(key_shift=0), "key t - period:"),
        (induction_fn(first_query="period - 1"), "query period - 1 is counted"),
        (induction_fn(key_shift=2), "one too far"),
    ],
)
def test_induction_score_mistakes_are_named(fn, words, seed, named):
    named("induction_score", fn, words, seed)


def test_a_lesson_task_that_is_not_written_yet_prints_and_does_not_raise(capsys):
    def induction_score(attn_weights, period):
        raise NotImplementedError("your code here")

    check(induction_score)
    assert "induction_score" in capsys.readouterr().out
