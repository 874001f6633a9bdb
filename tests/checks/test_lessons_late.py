"""The tasks of lessons 12, 13 and 14: each worked answer passes, each registered mistake is named
when a learner's code makes it."""

import pytest
import torch

from attn_course.checks import check, run_check
from attn_course.checks.lessons import TASKS, l12, l13, l14
from attn_course.reference import apply_rotary, online_softmax

SEEDS = (0, 1, 2)


def messages(task) -> list[str]:
    return [mistake.message for mistake in task.mistakes]


# --- lesson 12: online_softmax_step(row_max, row_sum, block) -----------------------------------


def online_softmax_step(row_max, row_sum, block):
    new_max = torch.maximum(row_max, block.amax(dim=-1))
    new_sum = row_sum * torch.exp(row_max - new_max) + torch.exp(
        block - new_max.unsqueeze(-1)
    ).sum(dim=-1)
    return new_max, new_sum


def no_rescale(row_max, row_sum, block):
    new_max = torch.maximum(row_max, block.amax(dim=-1))
    return new_max, row_sum + torch.exp(block - new_max.unsqueeze(-1)).sum(dim=-1)


def inverted_rescale(row_max, row_sum, block):
    new_max = torch.maximum(row_max, block.amax(dim=-1))
    terms = torch.exp(block - new_max.unsqueeze(-1)).sum(dim=-1)
    return new_max, row_sum * torch.exp(new_max - row_max) + terms


def block_own_max(row_max, row_sum, block):
    block_max = block.amax(dim=-1)
    new_max = torch.maximum(row_max, block_max)
    terms = torch.exp(block - block_max.unsqueeze(-1)).sum(dim=-1)
    return new_max, row_sum * torch.exp(row_max - new_max) + terms


def forgets_old_max(row_max, row_sum, block):
    new_max = block.amax(dim=-1)
    terms = torch.exp(block - new_max.unsqueeze(-1)).sum(dim=-1)
    return new_max, row_sum * torch.exp(row_max - new_max) + terms


def unshifted(row_max, row_sum, block):
    return torch.maximum(row_max, block.amax(dim=-1)), row_sum + torch.exp(block).sum(dim=-1)


@pytest.mark.parametrize("seed", SEEDS)
def test_online_softmax_step_answer_passes(seed):
    assert run_check("online_softmax_step", online_softmax_step, seed=seed).passed


def test_online_softmax_step_agrees_with_the_reference_online_softmax():
    scores = torch.randn(3, 11) * 4  # (R, S)
    row_max, row_sum = torch.full((3,), float("-inf")), torch.zeros(3)
    for start in range(0, 11, 4):
        row_max, row_sum = online_softmax_step(row_max, row_sum, scores[:, start : start + 4])
    weights = torch.exp(scores - row_max[:, None]) / row_sum[:, None]
    assert torch.allclose(weights, online_softmax(scores, block_size=4), atol=1e-6)
    assert torch.allclose(row_max + row_sum.log(), torch.logsumexp(scores, dim=-1), atol=1e-5)


@pytest.mark.parametrize(
    ("wrong", "index"),
    [(no_rescale, 0), (inverted_rescale, 1), (block_own_max, 2), (forgets_old_max, 3),
     (unshifted, 4)],
)  # fmt: skip
def test_online_softmax_step_mistakes_are_named(wrong, index):
    verdict = run_check("online_softmax_step", wrong, seed=0)
    assert not verdict.passed
    assert verdict.message == messages(l12.online_softmax_step)[index]


# --- lesson 13: halves_to_interleaved(x) -------------------------------------------------------


def halves_to_interleaved(x):
    half = x.size(-1) // 2
    return torch.stack([x[..., :half], x[..., half:]], dim=-1).flatten(-2)


def to_halves_instead(x):
    Dh = x.size(-1)
    return x[..., torch.cat([torch.arange(0, Dh, 2), torch.arange(1, Dh, 2)])]


def b_first(x):
    half = x.size(-1) // 2
    return torch.stack([x[..., half:], x[..., :half]], dim=-1).flatten(-2)


def along_positions(x):
    half = x.size(-2) // 2
    return torch.stack([x[..., :half, :], x[..., half:, :]], dim=-2).flatten(-3, -2)


@pytest.mark.parametrize("seed", SEEDS)
def test_halves_to_interleaved_answer_passes(seed):
    assert run_check("halves_to_interleaved", halves_to_interleaved, seed=seed).passed


def test_halves_to_interleaved_turns_halves_rope_into_interleaved_rope():
    x, positions = torch.randn(2, 5, 8), torch.arange(5)  # (B, T, Dh)
    interleaved = halves_to_interleaved(x)  # the same vectors, interleaved layout
    pairs = torch.view_as_complex(interleaved.reshape(2, 5, 4, 2))  # pair j: 2j, 2j + 1
    theta = 10000.0 ** (-2 * torch.arange(4) / 8)
    turned = torch.view_as_real(pairs * torch.polar(torch.ones(5, 4), positions[:, None] * theta))
    assert torch.allclose(turned.flatten(-2), halves_to_interleaved(apply_rotary(x, positions)))


@pytest.mark.parametrize(("wrong", "index"), [(to_halves_instead, 0), (b_first, 1),
                                              (along_positions, 2)])  # fmt: skip
def test_halves_to_interleaved_mistakes_are_named(wrong, index):
    verdict = run_check("halves_to_interleaved", wrong, seed=0)
    assert not verdict.passed
    assert verdict.message == messages(l13.halves_to_interleaved)[index]


# --- lesson 14: repeat_kv_heads(x, num_repeats) ------------------------------------------------


def repeat_kv_heads(x, num_repeats):
    B, G, S, Dh = x.shape
    return x.unsqueeze(2).expand(B, G, num_repeats, S, Dh).reshape(B, G * num_repeats, S, Dh)


def tiled(x, num_repeats):
    return x.repeat(1, num_repeats, 1, 1)


def along_keys(x, num_repeats):
    return x.repeat_interleave(num_repeats, dim=2)


@pytest.mark.parametrize("seed", SEEDS)
def test_repeat_kv_heads_answer_passes(seed):
    assert run_check("repeat_kv_heads", repeat_kv_heads, seed=seed).passed


def test_repeat_kv_heads_answer_is_a_view_for_mha_and_mqa_and_a_copy_between():
    for G, r in ((4, 1), (1, 4), (2, 2)):
        x = torch.randn(2, G, 5, 3)  # (B, G, S, Dh)
        repeated = repeat_kv_heads(x, r)  # (B, G·r, S, Dh)
        shares = repeated.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
        assert shares == (G == 1 or r == 1)


@pytest.mark.parametrize(("wrong", "index"), [(tiled, 0), (along_keys, 1)])
def test_repeat_kv_heads_mistakes_are_named(wrong, index):
    verdict = run_check("repeat_kv_heads", wrong, seed=0)
    assert not verdict.passed
    assert verdict.message == messages(l14.repeat_kv_heads)[index]


# --- all three ---------------------------------------------------------------------------------


def test_the_late_lessons_tasks_are_registered_ungraded():
    for task in (l12.online_softmax_step, l13.halves_to_interleaved, l14.repeat_kv_heads):
        assert TASKS[task.name] is task and task.points == 0


def test_a_stub_is_reported_not_implemented_without_stopping_the_lesson(capsys):
    def halves_to_interleaved(x):
        raise NotImplementedError

    check(halves_to_interleaved)  # a lesson's task prints and does not raise
    printed = capsys.readouterr().out
    assert "not implemented yet" in printed
    assert "grader would refuse" not in printed  # lessons are not graded
