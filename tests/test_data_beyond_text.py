"""The synthetic tasks of lessons 09 and 11: shapes, ranges, and the promised structure
(lesson 09's translation task itself: tests/test_translation.py)."""

import pytest
import torch

from attn_course.data import (
    BRIGHTNESS_LEVELS,
    FACT_VOCAB,
    GLYPHS,
    HIGH_NOTES,
    LOW_NOTES,
    PEOPLE,
    PLACES,
    SHAPES,
    chord_clip_task,
    fact_lookup_task,
    shape_image_task,
    shape_question_task,
    toy_translation_task,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_tasks_are_reproducible_from_the_generator():
    a, b = toy_translation_task(20, generator=gen(3)), toy_translation_task(20, generator=gen(3))
    assert torch.equal(a.source, b.source)
    x, y = chord_clip_task(4, generator=gen(3)), chord_clip_task(4, generator=gen(3))
    assert torch.equal(x.signals, y.signals)


def test_shape_images_hold_one_bright_glyph_and_dimmer_decoys_of_other_shapes():
    data = shape_image_task(40, grid=3, noise=0.25, num_decoys=2, decoy_brightness=0.6,
                            generator=gen())
    assert data.images.shape == (40, 12, 12) and data.images.dtype == torch.float32
    assert data.images.min() >= 0 and data.images.max() <= 1
    assert data.decoy_patches.shape == (40, 2)
    glyphs = list(GLYPHS.values())
    for image, label, index, decoys in zip(
        data.images, data.labels, data.patch_index, data.decoy_patches, strict=True
    ):
        def patch(i, image=image):
            row, col = 4 * (i // 3), 4 * (i % 3)
            return image[row : row + 4, col : col + 4]

        assert torch.equal(patch(index) > 0.8, glyphs[label].bool())  # the bright glyph
        assert (image > 0.8).sum() == glyphs[label].sum()  # nothing else that bright
        assert len({int(index), *decoys.tolist()}) == 3  # three distinct patches
        for decoy in decoys:
            lit = (patch(decoy) > 0.5) & (patch(decoy) < 0.8)  # decoy pixels are 0.6
            assert not torch.equal(lit, glyphs[label].bool())  # another shape
            assert any(torch.equal(lit, g.bool()) for g in glyphs)
        assert ((image > 0.5) & (image < 0.8)).sum() == sum(
            ((patch(d) > 0.5) & (patch(d) < 0.8)).sum() for d in decoys
        )


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


def test_fact_stories_as_tokens_put_the_question_first_and_one_id_per_fact():

    stories = fact_lookup_task(20, num_facts=3, generator=gen())
    tokens = stories.tokens
    assert tokens.shape == (20, 4) and int(tokens.max()) < FACT_VOCAB
    assert torch.equal(tokens[:, 0] - len(PEOPLE) * len(PLACES), stories.question)
    assert torch.equal(tokens[:, 1:] // len(PLACES), stories.facts[..., 0])
    assert torch.equal(tokens[:, 1:] % len(PLACES), stories.facts[..., 1])


# --- lesson 11: the question images and the chord clips (issue 21) ---------------------------


def test_shape_questions_ask_in_the_corner_about_one_glyph_of_that_shape():

    data = shape_question_task(30, num_glyphs=5, noise=0.25, generator=gen())
    again = shape_question_task(30, num_glyphs=5, noise=0.25, generator=gen())
    assert torch.equal(data.images, again.images)
    assert data.images.shape == (30, 16, 16) and data.images.min() >= 0
    assert data.images.max() <= 1
    shapes = torch.stack(list(SHAPES.values())).bool()  # (C, 4, 4)
    for n in range(30):
        patches = data.images[n].view(4, 4, 4, 4).transpose(1, 2).reshape(16, 4, 4)
        assert torch.equal(patches[0] == 1, shapes[data.asked[n]])  # the question
        assert data.glyph_patches[n, 0] == data.patch_index[n] and 0 not in data.glyph_patches[n]
        drawn = [next(c for c in range(len(shapes))
                      if torch.equal(patches[p] > 0.3, shapes[c])) for p in data.glyph_patches[n]]
        assert drawn[0] == data.asked[n] and data.asked[n] not in drawn[1:]
        answer = patches[data.patch_index[n]].max()
        assert answer == BRIGHTNESS_LEVELS[data.labels[n]]


def test_chord_clips_start_with_the_cue_and_label_the_high_note_of_its_chord():

    clips = chord_clip_task(20, noise=0.0, detune=0.0, generator=gen())
    assert clips.signals.shape == (20, 512) and clips.chord_frames.shape == (20, 16)
    assert torch.equal(clips.signals, chord_clip_task(20, noise=0.0, detune=0.0,
                                                       generator=gen()).signals)
    spectra = torch.fft.rfft(clips.signals.unflatten(-1, (-1, 32))).abs()  # (N, 16, 17)
    for n in range(20):
        low, high = round(32 * LOW_NOTES[clips.asked[n]]), round(32 * HIGH_NOTES[clips.labels[n]])
        assert spectra[n, 0].argmax() == low  # the cue: one low note alone
        frames = clips.chord_frames[n].nonzero().squeeze(-1)
        assert len(frames) == 3 and not clips.chord_frames[n, 0]
        for f in frames:
            assert set(spectra[n, f].topk(2).indices.tolist()) == {low, high}
