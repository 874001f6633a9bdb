"""Lesson 09's translation task, its translator and the skeptic's panel (attn_course.translation).

Cheap checks of structure; the trained gap itself is held in tests/test_lessons.py (from the
lesson's stored outputs) and below from the stored three-seed panel."""

import json

import pytest
import torch
import torch.nn.functional as F

from attn_course.data import PAD, SOURCE_WORDS, STOP, TARGET_WORDS, toy_translation_task
from attn_course.translation import (
    BEST_LEARNING_RATES_FILE,
    LEARNING_RATES,
    NUM_OUTPUTS,
    PANEL,
    Translator,
    accuracy,
    best_learning_rates,
    shift_right,
    translate,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def said_once(words: list[int]) -> list[int]:
    """The target language, written plainly: each word at its first occurrence, then STOP."""
    kept = []
    for word in words:
        if word not in kept:
            kept.append(word)
    return [*kept, STOP]


def test_toy_translation_keeps_each_word_once_in_source_order_then_a_full_stop():
    pairs = toy_translation_task(200, min_len=3, max_len=9, generator=gen())
    assert pairs.source.shape == (200, 9) and pairs.target.shape == (200, 10)
    assert pairs.source.dtype == pairs.target.dtype == torch.int64
    assert len(SOURCE_WORDS) == len(TARGET_WORDS) == STOP < PAD
    assert pairs.source_lengths.min() >= 3 and pairs.source_lengths.max() <= 9
    for source, target, length in zip(pairs.source.tolist(), pairs.target.tolist(),
                                      pairs.source_lengths.tolist(), strict=True):
        words, padding = source[:length], source[length:]
        assert all(0 <= word < len(SOURCE_WORDS) for word in words) and set(padding) <= {PAD}
        expected = said_once(words)
        assert target == expected + [PAD] * (10 - len(expected))


def test_alignment_points_at_the_first_occurrence_of_each_target_word():
    pairs = toy_translation_task(100, generator=gen(1))
    for source, target, alignment in zip(pairs.source.tolist(), pairs.target.tolist(),
                                         pairs.alignment.tolist(), strict=True):
        for word, position in zip(target, alignment, strict=True):
            assert position == (source.index(word) if word < STOP else -1)


def test_the_set_of_source_words_does_not_fix_the_translation():
    pairs = toy_translation_task(2000, generator=gen(2))
    bags = F.one_hot(pairs.source, PAD + 1).sum(dim=1)  # (N, PAD + 1)
    targets_of_bag = {}
    for bag, target in zip(bags.tolist(), pairs.target.tolist(), strict=True):
        targets_of_bag.setdefault(tuple(bag), set()).add(tuple(target))
    assert max(len(targets) for targets in targets_of_bag.values()) > 1


def test_no_fixed_source_position_serves_a_late_target_position():
    pairs = toy_translation_task(600, generator=gen(3))
    for t in range(5, 8):
        column = pairs.alignment[:, t]
        counts = torch.bincount(column[column >= 0])
        assert counts.max() < 0.5 * (column >= 0).sum()


def test_toy_translation_is_reproducible_and_rejects_bad_lengths():
    a, b = toy_translation_task(20, generator=gen(4)), toy_translation_task(20, generator=gen(4))
    assert torch.equal(a.source, b.source) and torch.equal(a.target, b.target)
    with pytest.raises(ValueError, match="min_len"):
        toy_translation_task(3, min_len=5, max_len=4, generator=gen())


@pytest.mark.parametrize("uniform", [False, True])
def test_translator_weights_are_rows_of_one_that_skip_the_padding(uniform):
    torch.manual_seed(0)
    model = Translator(uniform_cross_attention=uniform).eval()
    pairs = toy_translation_task(4, min_len=3, max_len=8, generator=gen(5))
    with torch.no_grad():
        scores, weights = model(pairs.source, shift_right(pairs.target))
    assert scores.shape == (4, 9, NUM_OUTPUTS) and weights.shape == (4, 9, 8)
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(4, 9))
    assert weights.masked_select((pairs.source == PAD).unsqueeze(1).expand_as(weights)).eq(0).all()
    if uniform:
        expected = 1 / pairs.source_lengths.float()  # (B,)
        torch.testing.assert_close(weights.amax(dim=-1), expected[:, None].expand(-1, 9))


def test_more_padding_does_not_change_the_translation():
    torch.manual_seed(0)
    model = Translator().eval()
    pairs = toy_translation_task(6, min_len=3, max_len=6, generator=gen(6))
    longer = F.pad(pairs.source, (0, 3), value=PAD)  # (B, S + 3): three more padding columns
    target_in = shift_right(pairs.target)
    with torch.no_grad():
        short_scores, _ = model(pairs.source, target_in)
        long_scores, _ = model(longer, target_in)
    torch.testing.assert_close(short_scores, long_scores)


def test_shift_right_and_translate_shapes():
    target = torch.tensor([[3, 1, STOP, PAD]])
    assert shift_right(target).tolist() == [[PAD + 1, 3, 1, STOP]]
    torch.manual_seed(0)
    predicted, weights = translate(Translator(), torch.tensor([[1, 2, PAD]]))
    assert predicted.shape == (1, 4) and weights.shape == (1, 4, 3)


@pytest.mark.parametrize("name", list(PANEL))
def test_every_panel_model_scores_every_target_position(name):
    torch.manual_seed(0)
    model = PANEL[name]().eval()
    pairs = toy_translation_task(3, generator=gen(7))
    with torch.no_grad():
        out = model(pairs.source, shift_right(pairs.target)) if isinstance(
            model, Translator) else model(pairs.source)
    scores = out[0] if isinstance(out, tuple) else out
    assert scores.shape == (3, 17, NUM_OUTPUTS)


class Oracle(torch.nn.Module):
    """Knows the answers: scores the stored target of each source sentence (for ``accuracy``)."""

    def __init__(self, pairs, wrong_rows=()):
        super().__init__()
        target = pairs.target.clamp(max=STOP).clone()
        for row in wrong_rows:
            target[row, 0] = (target[row, 0] + 1) % STOP
        self.register_buffer("answer", F.one_hot(target, NUM_OUTPUTS).float())

    def forward(self, source):
        return self.answer


def test_accuracy_counts_real_words_and_whole_sentences():
    pairs = toy_translation_task(10, generator=gen(8))
    assert accuracy(Oracle(pairs), pairs) == (1.0, 1.0)
    words, sentences = accuracy(Oracle(pairs, wrong_rows=[0, 1]), pairs)
    real_words = (pairs.target != PAD).sum().item()
    assert words == pytest.approx(1 - 2 / real_words) and sentences == pytest.approx(0.8)


def test_the_stored_sweep_covers_every_model_at_every_learning_rate():
    sweep = json.loads(BEST_LEARNING_RATES_FILE.read_text())["word_accuracy"]
    assert set(sweep) == {"cross-attention", *PANEL}
    for by_lr in sweep.values():
        assert {float(lr) for lr in by_lr} == set(LEARNING_RATES)
    assert set(best_learning_rates().values()) <= set(LEARNING_RATES)


def test_the_stored_panel_keeps_cross_attention_ahead_on_three_seeds():
    panel = json.loads(BEST_LEARNING_RATES_FILE.read_text())["panel"]
    assert len(panel) >= 3
    for results in panel.values():
        attention = results.pop("cross-attention")[0]
        assert set(results) == set(PANEL)
        assert all(attention >= words + 0.2 for words, _ in results.values()), results
