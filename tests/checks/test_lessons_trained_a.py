"""Lessons 08 and 11's tasks: the worked answers pass, each registered mistake is named."""

import pytest
import torch

from attn_course.checks import run_check

SEEDS = [0, 1, 2]


def max_pool_answer(x):
    return x.max(dim=1).values


def max_pool_amax(x):
    return torch.amax(x, dim=-2)


def hit_rate_answer(weights, signal_position):
    return (weights.argmax(dim=-1) == signal_position).float().mean()


def pool_answer(x, scores, temperature):
    weights = torch.softmax(scores / temperature, dim=-1)
    return torch.einsum("bs,bsd->bd", weights, x)


def spectrogram_answer(signals, frame_size):
    return torch.fft.rfft(signals.unflatten(-1, (-1, frame_size))).abs()


ANSWERS = [
    ("max_pool_context", max_pool_answer),
    ("max_pool_context", max_pool_amax),
    ("signal_hit_rate", hit_rate_answer),
    ("pool_with_temperature", pool_answer),
    ("frame_spectrogram", spectrogram_answer),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("name", "fn"), ANSWERS, ids=lambda v: getattr(v, "__name__", v))
def test_worked_answers_pass(name, fn, seed):
    assert run_check(name, fn, seed=seed).passed


def stub(*args):
    raise NotImplementedError


def test_a_stub_is_not_implemented_yet():
    verdict = run_check("max_pool_context", stub, seed=0)
    assert not verdict.passed and "not implemented yet" in verdict.message


MISTAKES = [
    ("max_pool_context", lambda x: x.max(dim=-1).values, "over the vectors' D features"),
    ("max_pool_context", lambda x: x.mean(dim=1), "averaged"),
    ("max_pool_context", lambda x: x.sum(dim=1), "added up"),
    ("max_pool_context", lambda x: x.max(dim=1).indices, "`.values`"),
    ("signal_hit_rate", lambda w, p: (w.argmax(dim=-1) == p).float().sum(), "counts the hits"),
    ("signal_hit_rate", lambda w, p: w.gather(-1, p.unsqueeze(-1)).mean(), "mean weight"),
    ("pool_with_temperature",
     lambda x, s, t: pool_answer(x, s, 1 / t), "multiplied by the temperature"),
    ("pool_with_temperature", lambda x, s, t: pool_answer(x, s, 1.0), "not used"),
    ("pool_with_temperature",
     lambda x, s, t: (torch.softmax(s / t, dim=0).unsqueeze(-1) * x).sum(1), "over the batch"),
    ("pool_with_temperature",
     lambda x, s, t: (torch.softmax(s / t, dim=-1).unsqueeze(-1) * x).mean(1), "averaged"),
    ("frame_spectrogram",
     lambda sig, f: torch.fft.rfft(sig.unflatten(-1, (f, -1)).transpose(-1, -2)).abs(),
     "interleave"),
    ("frame_spectrogram", lambda sig, f: torch.fft.rfft(sig.unflatten(-1, (-1, f))), "magnitude"),
    ("frame_spectrogram",
     lambda sig, f: torch.fft.fft(sig.unflatten(-1, (-1, f))).abs(), "mirrored"),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("name", "fn", "words"), MISTAKES, ids=[f"{name}-{words}" for name, _, words in MISTAKES]
)
def test_mistakes_are_named(name, fn, words, seed):
    verdict = run_check(name, fn, seed=seed)
    assert verdict.status == "failed", verdict
    assert words in verdict.message


# --- lesson 08's Task 3: question_scores (issue 21) ---
def question_scores_answer(x, query):
    return (x * query.unsqueeze(1)).sum(dim=-1) / x.size(-1) ** 0.5


def question_scores_einsum(x, query):
    return torch.einsum("btd,bd->bt", x, query) / x.size(-1) ** 0.5


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fn", [question_scores_answer, question_scores_einsum],
                         ids=lambda fn: fn.__name__)
def test_question_scores_answers_pass(fn, seed):
    assert run_check("question_scores", fn, seed=seed).passed


QUESTION_SCORE_MISTAKES = [
    (lambda x, q: (x * q.unsqueeze(1)).sum(dim=-1), "not scaled"),
    (lambda x, q: (x * q.unsqueeze(1)).sum(dim=-1) / x.size(-1), "divided by D"),
    (lambda x, q: torch.softmax(question_scores_answer(x, q), dim=-1), "already the weights"),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("fn", "phrase"), QUESTION_SCORE_MISTAKES,
                         ids=[phrase for _, phrase in QUESTION_SCORE_MISTAKES])
def test_question_scores_mistakes_are_named(fn, phrase, seed):
    verdict = run_check("question_scores", fn, seed=seed)
    assert not verdict.passed and phrase in verdict.message
# --- end of lesson 08's Task 3 ---
