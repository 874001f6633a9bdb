"""The tasks of lessons 04, 05, 06, 07 and 10 (``attn_course.checks.lessons``): the worked
answer passes, other correct code passes, and each registered mistake, written as a learner
would write it, is named. A lesson's check prints its verdict and never raises."""

import math

import pytest
import torch
import torch.nn.functional as F

from attn_course.checks import check, run_check
from attn_course.checks.lessons import TASKS

SEEDS = [0, 1]


# --- 04: unit_variance_scores(query, key, std) ---------------------------------------------


def variance_scores(divisor):
    def unit_variance_scores(query, key, std):
        d = query.size(-1)
        return query @ key.transpose(-2, -1) / divisor(d, std)

    return unit_variance_scores


@pytest.mark.parametrize("seed", SEEDS)
def test_unit_variance_scores_answer_passes(seed):
    answer = variance_scores(lambda d, std: math.sqrt(d) * std**2)
    assert run_check("unit_variance_scores", answer, seed=seed).passed
    einsum = variance_scores(lambda d, std: (d * std**4) ** 0.5)
    assert run_check("unit_variance_scores", einsum, seed=seed).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("divisor", "words"),
    [
        (lambda d, std: math.sqrt(d), "divided by √D only"),
        (lambda d, std: math.sqrt(d) * std, "std counted once"),
        (lambda d, std: d * std**2, "divided by D instead of √D"),
        (lambda d, std: d * std**4, "divided by the variance"),
    ],
)
def test_unit_variance_scores_mistakes_are_named(divisor, words, seed, named):
    named("unit_variance_scores", variance_scores(divisor), words, seed)


def test_unit_variance_scores_returning_weights_is_named(named):
    def unit_variance_scores(query, key, std):
        scores = query @ key.transpose(-2, -1) / (math.sqrt(query.size(-1)) * std**2)
        return scores.softmax(dim=-1)

    named("unit_variance_scores", unit_variance_scores, "returns attention weights", 0)


# --- 05: causal_padding_mask(lengths, size) -------------------------------------------------


def mask_fn(
    compare="<", tri="tril", diagonal=0, join="and", axis="keys", parts="both", invert=False
):
    def causal_padding_mask(lengths, size):
        positions = torch.arange(size)
        real = positions < lengths[:, None] if compare == "<" else positions <= lengths[:, None]
        real = real[:, None, :] if axis == "keys" else real[:, :, None]  # (B, 1, S) or (B, T, 1)
        ones = torch.ones(size, size, dtype=torch.bool)
        causal = ones.tril(diagonal) if tri == "tril" else ones.triu(diagonal)
        if parts == "padding":
            return real
        if parts == "causal":
            return causal
        mask = real & causal if join == "and" else real | causal
        return ~mask if invert else mask

    return causal_padding_mask


def test_causal_padding_mask_answers_pass():
    assert run_check("causal_padding_mask", mask_fn(), seed=0).passed

    def with_loops(lengths, size):
        mask = torch.zeros(len(lengths), size, size, dtype=torch.bool)
        for b, length in enumerate(lengths.tolist()):
            for t in range(size):
                mask[b, t, : min(t + 1, length)] = True
        return mask

    assert run_check("causal_padding_mask", with_loops, seed=1).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("fn", "words"),
    [
        (mask_fn(invert=True), "inverted"),
        (mask_fn(compare="<="), "off by one"),
        (mask_fn(tri="triu"), "upper triangle"),
        (mask_fn(diagonal=-1), "diagonal is dropped"),
        (mask_fn(join="or"), "joined with 'or'"),
        (mask_fn(axis="queries"), "laid along the queries"),
        (mask_fn(parts="padding"), "returns the padding mask alone"),
        (mask_fn(parts="causal"), "returns the causal mask alone"),
    ],
)
def test_causal_padding_mask_mistakes_are_named(fn, words, seed, named):
    named("causal_padding_mask", fn, words, seed)


def test_causal_padding_mask_broadcast_parts_alone_are_named(named):
    def padding_only(lengths, size):
        return (torch.arange(size) < lengths[:, None])[:, None, :].expand(-1, size, -1)

    def causal_only(lengths, size):
        return torch.ones(size, size, dtype=torch.bool).tril().expand(len(lengths), -1, -1)

    named("causal_padding_mask", padding_only, "the causal part is missing", 0)
    named("causal_padding_mask", causal_only, "the padding part is missing", 0)


# --- 06: projected_scores(x, w_q, w_k) ------------------------------------------------------


def projected(q_from="w_q", k_from="w_k", transpose=True, scale="Dh", keys_first=False):
    def projected_scores(x, w_q, w_k):
        weights = {"w_q": w_q, "w_k": w_k}
        a, b = weights[q_from], weights[k_from]
        q = x @ a.T if transpose else x @ a
        k = x @ b.T if transpose else x @ b
        width = {"Dh": q.size(-1), "D": x.size(-1), "none": 1}[scale]
        scores = (k @ q.transpose(-2, -1)) if keys_first else (q @ k.transpose(-2, -1))
        return scores / math.sqrt(width)

    return projected_scores


def test_projected_scores_answers_pass():
    assert run_check("projected_scores", projected(), seed=0).passed

    def with_linear(x, w_q, w_k):
        q, k = F.linear(x, w_q), F.linear(x, w_k)
        return torch.einsum("btd,bsd->bts", q, k) / q.size(-1) ** 0.5

    assert run_check("projected_scores", with_linear, seed=1).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("fn", "words"),
    [
        (projected(k_from="w_q"), "the same projection for queries and keys"),
        (projected(q_from="w_k"), "the same projection for queries and keys"),
        (projected(keys_first=True), "the relation is turned around"),
        (projected(q_from="w_k", k_from="w_q"), "the relation is turned around"),
        (projected(scale="D"), "scaled by √D"),
        (projected(scale="none"), "not scaled"),
    ],
)
def test_projected_scores_mistakes_are_named(fn, words, seed, named):
    named("projected_scores", fn, words, seed)


def test_projected_scores_untransposed_weights_are_named():
    verdict = run_check("projected_scores", projected(transpose=False), seed=0)
    assert not verdict.passed
    assert "not transposed" in verdict.message or "(Dh, D)" in verdict.message, verdict


# --- 07: per_head_scores(query, key, num_heads) ---------------------------------------------


def heads(split="view+transpose", scale="Dh"):
    def per_head_scores(query, key, num_heads):
        def to_heads(x):
            B, T, D = x.shape
            if split == "view only":
                return x.reshape(B, num_heads, T, D // num_heads)
            if split == "interleaved":
                return x.reshape(B, T, D // num_heads, num_heads).permute(0, 3, 1, 2)
            return x.view(B, T, num_heads, D // num_heads).transpose(1, 2)

        q, k = to_heads(query), to_heads(key)
        width = {"Dh": q.size(-1), "D": query.size(-1), "none": 1}[scale]
        return q @ k.transpose(-2, -1) / math.sqrt(width)

    return per_head_scores


def test_per_head_scores_answers_pass():
    assert run_check("per_head_scores", heads(), seed=0).passed

    def with_loops(query, key, num_heads):
        dh = query.size(-1) // num_heads
        per_head = [
            query[..., h * dh : (h + 1) * dh] @ key[..., h * dh : (h + 1) * dh].mT / dh**0.5
            for h in range(num_heads)
        ]
        return torch.stack(per_head, dim=1)

    assert run_check("per_head_scores", with_loops, seed=1).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("fn", "words"),
    [
        (heads(split="view only"), "view alone, without transpose"),
        (heads(split="interleaved"), "interleaved features"),
        (heads(scale="D"), "scaled by √D"),
        (heads(scale="none"), "not scaled"),
    ],
)
def test_per_head_scores_mistakes_are_named(fn, words, seed, named):
    named("per_head_scores", fn, words, seed)


# --- 10: pre_norm_residual(x, weight) -------------------------------------------------------


def residual_step(norm="layer_norm", add="x", post=False):
    def pre_norm_residual(x, weight):
        def normalise(t):
            if norm == "none":
                return t
            if norm == "unbiased":
                return (t - t.mean(-1, keepdim=True)) / (t.var(-1, keepdim=True) + 1e-5).sqrt()
            if norm == "tokens":
                mean, var = t.mean(1, keepdim=True), t.var(1, keepdim=True, unbiased=False)
                return (t - mean) / (var + 1e-5).sqrt()
            return F.layer_norm(t, (t.size(-1),))

        if post:
            return normalise(x + x @ weight.T)
        h = normalise(x)
        update = h @ weight.T
        return {"x": x + update, "h": h + update, "none": update}[add]

    return pre_norm_residual


def test_pre_norm_residual_answers_pass():
    assert run_check("pre_norm_residual", residual_step(), seed=0).passed

    def by_hand(x, weight):
        mean = x.mean(dim=-1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
        return x + ((x - mean) / torch.sqrt(var + 1e-5)) @ weight.T

    assert run_check("pre_norm_residual", by_hand, seed=1).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("fn", "words"),
    [
        (residual_step(post=True), "post-norm"),
        (residual_step(add="h"), "adds the normalised h"),
        (residual_step(add="none"), "no residual"),
        (residual_step(norm="none"), "no normalisation"),
        (residual_step(norm="unbiased"), "unbiased variance"),
        (residual_step(norm="tokens"), "over the tokens"),
    ],
)
def test_pre_norm_residual_mistakes_are_named(fn, words, seed, named):
    named("pre_norm_residual", fn, words, seed)


# --- all five -------------------------------------------------------------------------------


LESSONS = {
    "unit_variance_scores": "04_scaled_dot_product_attention",
    "causal_padding_mask": "05_masks",
    "projected_scores": "06_self_attention",
    "per_head_scores": "07_multi_head_attention",
    "pre_norm_residual": "10_position_and_transformer_block",
}


@pytest.mark.parametrize(("task", "lesson"), LESSONS.items())
def test_each_task_belongs_to_its_lesson_and_an_unsolved_check_prints_without_raising(
    task, lesson, capsys
):
    assert TASKS[task].assignment == lesson

    def stub(*args):
        raise NotImplementedError

    stub.__name__ = task
    check(stub)  # a lesson runs top to bottom: no AssertionError
    assert "not implemented yet" in capsys.readouterr().out


def test_a_lesson_task_prints_no_grader_refusal(monkeypatch, capsys):
    """A lesson imports what an assignment may not (``attn_course.plots``); nothing grades a
    lesson, so its task's check does not warn that the grader would refuse the notebook."""
    from attn_course.checks import advice

    monkeypatch.setattr(advice, "refusal_warnings", lambda: ["⚠️ the grader would refuse"])
    check(variance_scores(lambda d, std: math.sqrt(d) * std**2))
    out = capsys.readouterr().out
    assert "✅ unit_variance_scores" in out
    assert "refuse" not in out
