"""The synthetic tasks of lessons 09 and 11: shapes, ranges, and the promised structure."""

import pytest
import torch

from attn_course.data import (
    GLYPHS,
    PEOPLE,
    PLACES,
    SOURCE_WORDS,
    TARGET_WORDS,
    TONE_FREQUENCIES,
    fact_lookup_task,
    shape_image_task,
    tone_clip_task,
    toy_translation_task,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_toy_translation_reverses_the_source():
    pairs = toy_translation_task(50, seq_len=7, generator=gen())
    assert pairs.source.shape == pairs.target.shape == (50, 7)
    assert pairs.source.dtype == torch.int64
    assert pairs.source.min() >= 0 and pairs.source.max() < len(SOURCE_WORDS)
    assert len(SOURCE_WORDS) == len(TARGET_WORDS)
    for t in range(7):
        assert torch.equal(pairs.target[:, t], pairs.source[:, 6 - t])


def test_tasks_are_reproducible_from_the_generator():
    a, b = toy_translation_task(20, generator=gen(3)), toy_translation_task(20, generator=gen(3))
    assert torch.equal(a.source, b.source)
    x, y = tone_clip_task(4, generator=gen(3)), tone_clip_task(4, generator=gen(3))
    assert torch.equal(x.signals, y.signals)


def test_shape_images_hold_one_glyph_in_the_named_patch():
    data = shape_image_task(40, grid=3, noise=0.25, generator=gen())
    assert data.images.shape == (40, 12, 12) and data.images.dtype == torch.float32
    assert data.images.min() >= 0 and data.images.max() <= 1
    glyphs = list(GLYPHS.values())
    for image, label, index in zip(data.images, data.labels, data.patch_index, strict=True):
        row, col = 4 * (index // 3), 4 * (index % 3)
        bright = image > 0.5  # noise stays below 0.25, glyph pixels are 1
        assert torch.equal(bright[row : row + 4, col : col + 4], glyphs[label].bool())
        assert bright.sum() == glyphs[label].sum()  # nothing bright outside the glyph


def test_fact_stories_answer_from_the_relevant_fact():
    stories = fact_lookup_task(100, num_facts=4, generator=gen())
    assert stories.facts.shape == (100, 4, 2)
    people, places = stories.facts[..., 0], stories.facts[..., 1]
    assert people.max() < len(PEOPLE) and places.max() < len(PLACES)
    rows = torch.arange(100)
    assert torch.equal(people[rows, stories.relevant], stories.question)
    assert torch.equal(places[rows, stories.relevant], stories.answer)
    assert all(len(set(p.tolist())) == 4 for p in people)  # each person at most once


def test_fact_stories_need_enough_people():
    with pytest.raises(ValueError, match="num_facts"):
        fact_lookup_task(3, num_facts=len(PEOPLE) + 1, generator=gen())


def test_tone_clips_carry_the_labelled_frequency_in_the_marked_frames():
    clips = tone_clip_task(
        30, num_frames=8, frame_size=64, tone_frames=3, noise=0.0, generator=gen()
    )
    assert clips.signals.shape == (30, 512) and clips.tone_frames.shape == (30, 8)
    assert torch.equal(clips.tone_frames.sum(-1), torch.full((30,), 3))
    frames = clips.signals.view(30, 8, 64)  # (N, F, frame_size)
    energy = frames.pow(2).sum(-1)  # (N, F)
    assert torch.equal(energy > 1e-6, clips.tone_frames)  # silent outside the tone (noise=0)
    spectrum = torch.fft.rfft(frames).abs()  # (N, F, 33)
    peak_bin = spectrum.argmax(-1)[clips.tone_frames].view(30, 3)  # (N, 3)
    expected_bin = (torch.tensor(TONE_FREQUENCIES) * 64).long()[clips.labels]  # (N,)
    assert torch.equal(peak_bin, expected_bin.unsqueeze(-1).expand(30, 3))
