"""Tiny synthetic data sets made on the fly for the lessons (no downloads, seeded).

Every function takes a ``torch.Generator`` (or a seed) so lessons and tests are reproducible.
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SignalTokens:
    """Sequences of noise tokens with one class-naming signal token hidden in each (lesson 08).

    ``tokens`` (N, T) int64, ``labels`` (N,) int64, ``signal_position`` (N,) int64: where the
    signal token sits. Token ids ``0 .. num_classes - 1`` are the signal tokens (token c names
    class c); the others are noise.
    """

    tokens: torch.Tensor
    labels: torch.Tensor
    signal_position: torch.Tensor

    @property
    def is_signal(self) -> torch.Tensor:
        """Boolean (N, T), True at the one informative position of each sequence."""
        positions = torch.arange(self.tokens.size(1))  # (T,)
        return positions == self.signal_position.unsqueeze(-1)  # (N, T)


def signal_token_task(
    num_sequences: int,
    seq_len: int = 16,
    vocab_size: int = 20,
    num_classes: int = 4,
    *,
    generator: torch.Generator,
) -> SignalTokens:
    """A classification task that only attention to one token can solve well (lesson 08).

    Each sequence is ``seq_len`` noise tokens drawn uniformly from ``num_classes .. vocab_size - 1``
    with one signal token (an id below ``num_classes``) placed at a uniformly random position;
    the label is the signal token's id. Everything else in the sequence is noise.
    """
    if not 0 < num_classes < vocab_size:
        raise ValueError(f"need 0 < num_classes < vocab_size, got {num_classes}, {vocab_size}")
    shape = (num_sequences, seq_len)
    tokens = torch.randint(num_classes, vocab_size, shape, generator=generator)  # (N, T)
    labels = torch.randint(num_classes, (num_sequences,), generator=generator)  # (N,)
    signal_position = torch.randint(seq_len, (num_sequences,), generator=generator)  # (N,)
    tokens[torch.arange(num_sequences), signal_position] = labels
    return SignalTokens(tokens, labels, signal_position)


SOURCE_WORDS = ("red", "blue", "green", "big", "small", "cat", "dog", "bird", "sees", "eats")
TARGET_WORDS = ("ro", "bla", "ver", "gro", "pic", "mio", "wuf", "pip", "vi", "ma")


@dataclass(frozen=True)
class ToyTranslation:
    """Sentence pairs of a made-up language that reads backwards (lesson 09).

    ``source`` (N, S) and ``target`` (N, S) int64 word ids into ``SOURCE_WORDS`` and
    ``TARGET_WORDS``. Target word t translates source word S-1-t: the true alignment of target
    position t is source position S-1-t.
    """

    source: torch.Tensor
    target: torch.Tensor


def toy_translation_task(
    num_pairs: int, seq_len: int = 6, *, generator: torch.Generator
) -> ToyTranslation:
    """A translation-like task that needs cross-attention to the right source word (lesson 09).

    Source sentences are ``seq_len`` words drawn uniformly from ``SOURCE_WORDS``; the
    translation replaces word i by ``TARGET_WORDS[i]`` (a fixed dictionary) and reverses the
    order, so every target word has exactly one source word it must look at.
    """
    source = torch.randint(len(SOURCE_WORDS), (num_pairs, seq_len), generator=generator)  # (N, S)
    return ToyTranslation(source, source.flip(-1))  # dictionary: word i -> target word i


@dataclass(frozen=True)
class ShapeImages:
    """Noisy grey images with one glyph on a grid of patches (lesson 11).

    ``images`` (N, H, W) float32 in [0, 1], ``labels`` (N,) int64 indices into ``GLYPHS``,
    ``patch_index`` (N,) int64: which patch (row-major on the (H/P, W/P) grid) holds the glyph.
    """

    images: torch.Tensor
    labels: torch.Tensor
    patch_index: torch.Tensor


GLYPHS = {
    "plus": torch.tensor([[0, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 0]]),
    "ring": torch.tensor([[1, 1, 1, 1], [1, 0, 0, 1], [1, 0, 0, 1], [1, 1, 1, 1]]),
    "cross": torch.tensor([[1, 0, 0, 1], [0, 1, 1, 0], [0, 1, 1, 0], [1, 0, 0, 1]]),
}


def shape_image_task(
    num_images: int, grid: int = 4, noise: float = 0.25, *, generator: torch.Generator
) -> ShapeImages:
    """Images made of ``grid`` x ``grid`` patches of 4 x 4 pixels, one holding a glyph (lesson 11).

    The background is uniform noise in [0, ``noise``]; one patch, chosen uniformly, gets one
    of the ``GLYPHS`` (its pixels set to 1). The label names the glyph, so a classifier must
    find the patch that holds it.
    """
    glyphs = torch.stack(list(GLYPHS.values())).float()  # (C, 4, 4)
    size = 4 * grid
    noise_images = noise * torch.rand(num_images, size, size, generator=generator)  # (N, H, W)
    labels = torch.randint(len(glyphs), (num_images,), generator=generator)  # (N,)
    patch_index = torch.randint(grid * grid, (num_images,), generator=generator)  # (N,)
    patches = torch.zeros(num_images, grid * grid, 4, 4)  # (N, P, 4, 4), P = grid * grid
    patches[torch.arange(num_images), patch_index] = glyphs[labels]
    glyph_images = patches.view(num_images, grid, grid, 4, 4).transpose(2, 3)  # (N, g, 4, g, 4)
    images = torch.maximum(noise_images, glyph_images.reshape(num_images, size, size))  # (N, H, W)
    return ShapeImages(images, labels, patch_index)


@dataclass(frozen=True)
class FactStories:
    """Short stories of "person is in place" facts, and a question about one person (lesson 11).

    ``facts`` (N, K, 2) int64: (person id, place id) per fact; ``question`` (N,) the person
    asked about; ``answer`` (N,) their place; ``relevant`` (N,) the index of the fact that
    answers the question. Every person appears at most once per story.
    """

    facts: torch.Tensor
    question: torch.Tensor
    answer: torch.Tensor
    relevant: torch.Tensor


PEOPLE = ("Ana", "Ben", "Cai", "Dee", "Eli", "Fay", "Gus", "Hal")
PLACES = ("kitchen", "garden", "office", "hall", "attic", "garage")


def fact_lookup_task(
    num_stories: int, num_facts: int = 5, *, generator: torch.Generator
) -> FactStories:
    """Questions "where is P?" over ``num_facts`` facts, ``num_facts`` distinct people (lesson 11).

    People come from ``PEOPLE`` (no repeats within a story), places from ``PLACES`` (repeats
    allowed); the question asks about one of the story's people, chosen uniformly.
    """
    if not 0 < num_facts <= len(PEOPLE):
        raise ValueError(f"need 0 < num_facts <= {len(PEOPLE)}, got {num_facts}")
    order = torch.rand(num_stories, len(PEOPLE), generator=generator).argsort(dim=-1)
    people = order[:, :num_facts]  # (N, K) distinct people per story
    places = torch.randint(len(PLACES), (num_stories, num_facts), generator=generator)  # (N, K)
    relevant = torch.randint(num_facts, (num_stories,), generator=generator)  # (N,)
    rows = torch.arange(num_stories)
    facts = torch.stack((people, places), dim=-1)  # (N, K, 2)
    return FactStories(facts, people[rows, relevant], places[rows, relevant], relevant)


@dataclass(frozen=True)
class ToneClips:
    """Noisy sound clips with one short tone in each (lesson 11).

    ``signals`` (N, L) float32 samples, ``labels`` (N,) int64 indices into ``TONE_FREQUENCIES``,
    ``tone_frames`` (N, F) bool: True at the frames of ``frame_size`` samples that the tone
    overlaps.
    """

    signals: torch.Tensor
    labels: torch.Tensor
    tone_frames: torch.Tensor


TONE_FREQUENCIES = (0.0625, 0.125, 0.25)  # cycles per sample: 4, 8 and 16 cycles per 64 samples


def tone_clip_task(
    num_clips: int,
    num_frames: int = 16,
    frame_size: int = 32,
    tone_frames: int = 2,
    noise: float = 0.5,
    *,
    generator: torch.Generator,
) -> ToneClips:
    """Clips of ``num_frames * frame_size`` samples of Gaussian noise with one tone (lesson 11).

    The tone is a sine of one of ``TONE_FREQUENCIES`` (the label), ``tone_frames * frame_size``
    samples long, starting at a frame boundary chosen uniformly, with a random phase. The
    noise has standard deviation ``noise``; the tone has amplitude 1.
    """
    length = num_frames * frame_size
    signals = noise * torch.randn(num_clips, length, generator=generator)  # (N, L)
    labels = torch.randint(len(TONE_FREQUENCIES), (num_clips,), generator=generator)  # (N,)
    start = torch.randint(num_frames - tone_frames + 1, (num_clips,), generator=generator)  # (N,)
    phase = 2 * torch.pi * torch.rand(num_clips, 1, generator=generator)  # (N, 1)
    frequency = torch.tensor(TONE_FREQUENCIES)[labels].unsqueeze(-1)  # (N, 1)
    frames = torch.arange(num_frames)  # (F,)
    tone_mask = (frames >= start.unsqueeze(-1)) & (frames < (start + tone_frames).unsqueeze(-1))
    samples = torch.arange(length)  # (L,)
    in_tone = tone_mask[:, samples // frame_size]  # (N, L): the frame of each sample
    signals = signals + in_tone * torch.sin(2 * torch.pi * frequency * samples + phase)  # (N, L)
    return ToneClips(signals, labels, tone_mask)
