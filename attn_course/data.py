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
    seq_len: int = 64,
    vocab_size: int = 20,
    num_classes: int = 4,
    *,
    generator: torch.Generator,
) -> SignalTokens:
    """A classification task whose one informative token hides among many noise tokens (lesson 08).

    Each sequence is ``seq_len`` noise tokens drawn uniformly from ``num_classes .. vocab_size - 1``
    with one signal token (an id below ``num_classes``) placed at a uniformly random position;
    the label is the signal token's id. In an average over the sequence the signal token is one
    part in ``seq_len``: at 64 tokens a mean-pooling model trained as briefly as lesson 08's
    attention model stays far behind it (at 16 tokens both are perfect).
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
STOP = len(TARGET_WORDS)  # target id of the full stop "." that ends every translation
PAD = STOP + 1  # the id that fills source and target sentences up to the batch's length


@dataclass(frozen=True)
class ToyTranslation:
    """Sentence pairs of a made-up language that never says a word twice (lesson 09).

    ``source`` (N, S) int64 word ids into ``SOURCE_WORDS``, padded with ``PAD`` after
    ``source_lengths`` (N,) real words; ``target`` (N, S + 1) int64 ids into ``TARGET_WORDS``
    (word i of one language translates word i of the other), then ``STOP``, then ``PAD``.
    """

    source: torch.Tensor
    target: torch.Tensor
    source_lengths: torch.Tensor

    @property
    def alignment(self) -> torch.Tensor:
        """(N, S + 1) int64: the source position that target position t translates (the
        first occurrence of its word), -1 at the full stop and at padding."""
        same_word = self.target.unsqueeze(-1) == self.source.unsqueeze(-2)  # (N, T, S)
        is_word = self.target < STOP  # (N, T)
        first = same_word.int().argmax(dim=-1)  # (N, T): argmax returns the first match
        return torch.where(is_word, first, -1)  # (N, T)


def toy_translation_task(
    num_pairs: int, min_len: int = 8, max_len: int = 16, *, generator: torch.Generator
) -> ToyTranslation:
    """A translation whose alignment needs both the words and their positions (lesson 09).

    Source sentences hold ``min_len .. max_len`` words drawn from ``SOURCE_WORDS`` with
    repeats. The target language says each word once: it translates the source words in
    order, skips every word already said, and ends with ``STOP``. Which source position
    target word t comes from depends on which words stand before it (content) and where the
    first unsaid word stands (position); the set of source words fixes only which words
    appear, not their order.
    """
    if not 1 <= min_len <= max_len:
        raise ValueError(f"need 1 <= min_len <= max_len, got {min_len}, {max_len}")
    N, S = num_pairs, max_len
    lengths = torch.randint(min_len, max_len + 1, (N,), generator=generator)  # (N,)
    words = torch.randint(len(SOURCE_WORDS), (N, S), generator=generator)  # (N, S)
    is_real = torch.arange(S) < lengths.unsqueeze(-1)  # (N, S)
    source = words.masked_fill(~is_real, PAD)  # (N, S)
    same_word = source.unsqueeze(-1) == source.unsqueeze(-2)  # (N, S, S)
    earlier = torch.ones(S, S, dtype=torch.bool).tril(diagonal=-1)  # (S, S): key before query
    is_first = is_real & ~(same_word & earlier).any(dim=-1)  # (N, S): first occurrences
    order = (~is_first).int().argsort(dim=-1, stable=True)  # (N, S): first occurrences first
    kept = source.gather(1, order).masked_fill(~is_first.gather(1, order), PAD)  # (N, S)
    target = torch.cat((kept, torch.full((N, 1), PAD)), dim=1)  # (N, S + 1)
    stop_at = is_first.sum(dim=-1, keepdim=True)  # (N, 1): the number of words said
    target = target.scatter(1, stop_at, STOP)  # (N, S + 1)
    return ToyTranslation(source, target, lengths)


@dataclass(frozen=True)
class ShapeImages:
    """Noisy grey images with one bright glyph and dimmer decoy glyphs on a grid of patches
    (lesson 11).

    ``images`` (N, H, W) float32 in [0, 1], ``labels`` (N,) int64 indices into ``GLYPHS``: the
    bright glyph, ``patch_index`` (N,) int64: which patch (row-major on the (H/P, W/P) grid)
    holds it, ``decoy_patches`` (N, K) int64: the patches of the K decoys.
    """

    images: torch.Tensor
    labels: torch.Tensor
    patch_index: torch.Tensor
    decoy_patches: torch.Tensor


GLYPHS = {
    "plus": torch.tensor([[0, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 0]]),
    "ring": torch.tensor([[1, 1, 1, 1], [1, 0, 0, 1], [1, 0, 0, 1], [1, 1, 1, 1]]),
    "cross": torch.tensor([[1, 0, 0, 1], [0, 1, 1, 0], [0, 1, 1, 0], [1, 0, 0, 1]]),
}


def shape_image_task(
    num_images: int,
    grid: int = 4,
    noise: float = 0.25,
    num_decoys: int = 3,
    decoy_brightness: float = 0.6,
    *,
    generator: torch.Generator,
) -> ShapeImages:
    """Images of ``grid`` x ``grid`` patches of 4 x 4 pixels holding 1 + ``num_decoys`` glyphs
    (lesson 11).

    The background is uniform noise in [0, ``noise``]. One patch gets a glyph at brightness 1:
    the label names it. ``num_decoys`` other patches get glyphs of the other shapes at
    ``decoy_brightness``. All patches are distinct and chosen uniformly, so a classifier must
    find the brightest glyph, wherever it is, and ignore the decoys.
    """
    if not 0 <= num_decoys < grid * grid:
        raise ValueError(f"need 0 <= num_decoys < {grid * grid}, got {num_decoys}")
    glyphs = torch.stack(list(GLYPHS.values())).float()  # (C, 4, 4)
    num_glyphs, size, rows = len(glyphs), 4 * grid, torch.arange(num_images)
    noise_images = noise * torch.rand(num_images, size, size, generator=generator)  # (N, H, W)
    labels = torch.randint(num_glyphs, (num_images,), generator=generator)  # (N,)
    order = torch.rand(num_images, grid * grid, generator=generator).argsort(dim=-1)
    patch_index, decoy_patches = order[:, 0], order[:, 1 : 1 + num_decoys]  # (N,), (N, K)
    shift = torch.randint(1, num_glyphs, (num_images, num_decoys), generator=generator)
    decoys = (labels.unsqueeze(-1) + shift) % num_glyphs  # (N, K): never the label's shape
    patches = torch.zeros(num_images, grid * grid, 4, 4)  # (N, P, 4, 4), P = grid * grid
    patches[rows, patch_index] = glyphs[labels]
    patches[rows.unsqueeze(-1), decoy_patches] = decoy_brightness * glyphs[decoys]
    glyph_images = patches.view(num_images, grid, grid, 4, 4).transpose(2, 3)  # (N, g, 4, g, 4)
    images = torch.maximum(noise_images, glyph_images.reshape(num_images, size, size))  # (N, H, W)
    return ShapeImages(images, labels, patch_index, decoy_patches)


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

    @property
    def tokens(self) -> torch.Tensor:
        """(N, 1 + K) int64: the story as one token sequence, the question first.

        Fact (person p, place l) is token ``p * len(PLACES) + l``, one id per pair; the question
        about person p is token ``len(PEOPLE) * len(PLACES) + p``. Every model of lesson 11's
        panel reads this sequence (ids below ``FACT_VOCAB``).
        """
        fact_tokens = self.facts[..., 0] * len(PLACES) + self.facts[..., 1]  # (N, K)
        question = len(PEOPLE) * len(PLACES) + self.question  # (N,)
        return torch.cat((question.unsqueeze(-1), fact_tokens), dim=-1)  # (N, 1 + K)


PEOPLE = ("Ana", "Ben", "Cai", "Dee", "Eli", "Fay", "Gus", "Hal",
          "Ida", "Jon", "Kim", "Lou", "Max", "Ned", "Oma", "Pia")
PLACES = ("kitchen", "garden", "office", "hall", "attic", "garage", "cellar", "porch")
FACT_VOCAB = len(PEOPLE) * len(PLACES) + len(PEOPLE)  # fact tokens, then question tokens


def fact_lookup_task(
    num_stories: int, num_facts: int = 6, *, generator: torch.Generator
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


def _tone(
    frequency: torch.Tensor, start: torch.Tensor, length: torch.Tensor, total: int,
    detune: float, generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit sines (N, total) at ``frequency`` (N,) detuned by up to ``detune`` (a fraction),
    with random phases, sounding from ``start`` (N,) for ``length`` (N,) samples; and the
    boolean mask (N, total) of the samples where each one sounds.
    """
    num_clips = frequency.size(0)
    factor = 1 + detune * (2 * torch.rand(num_clips, generator=generator) - 1)  # (N,)
    phase = 2 * torch.pi * torch.rand(num_clips, 1, generator=generator)  # (N, 1)
    samples = torch.arange(total)  # (L,)
    sounding = (samples >= start.unsqueeze(-1)) & (samples < (start + length).unsqueeze(-1))
    wave = torch.sin(2 * torch.pi * (frequency * factor).unsqueeze(-1) * samples + phase)  # (N, L)
    return sounding * wave, sounding


# === Lesson 11: tasks whose question sits inside the input (issue 21) ========================

SHAPES = {  # lesson 11's question images: GLYPHS and three more 4 x 4 shapes
    **GLYPHS,
    "bars": torch.tensor([[1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]]),
    "stripes": torch.tensor([[1, 0, 1, 0], [1, 0, 1, 0], [1, 0, 1, 0], [1, 0, 1, 0]]),
    "corner": torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]]),
}
BRIGHTNESS_LEVELS = (0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class ShapeQuestions:
    """Images whose top-left patch asks about a shape drawn elsewhere in them (lesson 11).

    ``images`` (N, H, W) float32 in [0, 1]; ``asked`` (N,) int64 index into ``SHAPES``: the
    shape in the top-left patch (the question); ``labels`` (N,) int64 index into
    ``BRIGHTNESS_LEVELS``: how bright the one other glyph of that shape is (the answer);
    ``patch_index`` (N,) int64: the patch (row-major) that holds it; ``glyph_patches`` (N, K):
    the patches of all K glyphs below the question, the answer's first.
    """

    images: torch.Tensor
    asked: torch.Tensor
    labels: torch.Tensor
    patch_index: torch.Tensor
    glyph_patches: torch.Tensor


def shape_question_task(
    num_images: int,
    num_glyphs: int = 5,
    grid: int = 4,
    noise: float = 0.25,
    *,
    generator: torch.Generator,
) -> ShapeQuestions:
    """"How bright is the glyph shaped like the one in the corner?" (lesson 11).

    Images of ``grid`` x ``grid`` patches of 4 x 4 pixels over uniform noise in [0, ``noise``].
    The top-left patch holds the question: one of the ``SHAPES`` at brightness 1. The other
    patches hold ``num_glyphs`` glyphs in distinct patches chosen uniformly: one of the asked
    shape and ``num_glyphs - 1`` of other shapes (drawn with repeats), each at a brightness
    from ``BRIGHTNESS_LEVELS`` drawn uniformly. The label is the level of the asked shape's
    glyph: which glyph matters depends on the question, and the other glyphs show every
    brightness too.
    """
    if not 0 < num_glyphs < grid * grid:
        raise ValueError(f"need 0 < num_glyphs < {grid * grid}, got {num_glyphs}")
    shapes = torch.stack(list(SHAPES.values())).float()  # (C, 4, 4)
    num_shapes, size, rows = len(shapes), 4 * grid, torch.arange(num_images)
    noise_images = noise * torch.rand(num_images, size, size, generator=generator)  # (N, H, W)
    asked = torch.randint(num_shapes, (num_images,), generator=generator)  # (N,)
    shift = torch.randint(1, num_shapes, (num_images, num_glyphs - 1), generator=generator)
    others = (asked.unsqueeze(-1) + shift) % num_shapes  # (N, K - 1): never the asked shape
    drawn = torch.cat((asked.unsqueeze(-1), others), dim=-1)  # (N, K): the answer's glyph first
    levels = torch.randint(len(BRIGHTNESS_LEVELS), (num_images, num_glyphs), generator=generator)
    brightness = torch.tensor(BRIGHTNESS_LEVELS)[levels]  # (N, K)
    order = torch.rand(num_images, grid * grid - 1, generator=generator).argsort(dim=-1)
    glyph_patches = 1 + order[:, :num_glyphs]  # (N, K): any patch but the top-left one
    patches = torch.zeros(num_images, grid * grid, 4, 4)  # (N, P, 4, 4), P = grid * grid
    patches[rows, 0] = shapes[asked]
    patches[rows.unsqueeze(-1), glyph_patches] = brightness[..., None, None] * shapes[drawn]
    glyph_images = patches.view(num_images, grid, grid, 4, 4).transpose(2, 3)  # (N, g, 4, g, 4)
    images = torch.maximum(noise_images, glyph_images.reshape(num_images, size, size))  # (N, H, W)
    return ShapeQuestions(images, asked, levels[:, 0], glyph_patches[:, 0], glyph_patches)


LOW_NOTES = tuple(k / 32 for k in range(2, 8))  # cycles per sample: 2 .. 7 cycles per 32 samples
HIGH_NOTES = tuple(k / 32 for k in range(9, 15))  # 9 .. 14 cycles per 32 samples


@dataclass(frozen=True)
class ChordClips:
    """Noisy clips that start with a cue note and then play chords of a low and a high note
    (lesson 11).

    ``signals`` (N, L) float32 samples; ``asked`` (N,) int64 index into ``LOW_NOTES``: the cue,
    the note of the first frame; ``labels`` (N,) int64 index into ``HIGH_NOTES``: the high note
    of the one chord whose low note is the cue; ``chord_frames`` (N, F) bool: True at that
    chord's frames.
    """

    signals: torch.Tensor
    asked: torch.Tensor
    labels: torch.Tensor
    chord_frames: torch.Tensor


def chord_clip_task(
    num_clips: int,
    num_chords: int = 5,
    chord_frames: int = 3,
    frame_size: int = 32,
    noise: float = 0.5,
    detune: float = 0.02,
    *,
    generator: torch.Generator,
) -> ChordClips:
    """"Which high note sounds with the low note you hear first?" (lesson 11).

    A clip is ``1 + num_chords * chord_frames`` frames of ``frame_size`` samples of Gaussian
    noise (standard deviation ``noise``). The first frame holds the cue, one of ``LOW_NOTES``;
    then ``num_chords`` chords of ``chord_frames`` frames each follow in a random order, each a
    low note plus one of ``HIGH_NOTES`` at amplitude 1. One chord has the cue's low note, the
    others other low notes (drawn with repeats); every high note is drawn uniformly. The label
    is the high note of the cue's chord. Notes are detuned by up to ``detune`` (a fraction) and
    have random phases.
    """
    num_frames = 1 + num_chords * chord_frames
    length, frames = num_frames * frame_size, torch.arange(num_frames)
    lows, highs = torch.tensor(LOW_NOTES), torch.tensor(HIGH_NOTES)
    signals = noise * torch.randn(num_clips, length, generator=generator)  # (N, L)
    asked = torch.randint(len(lows), (num_clips,), generator=generator)  # (N,)
    at_start = torch.zeros(num_clips, dtype=torch.long)  # (N,)
    cue, _ = _tone(lows[asked], at_start, torch.full_like(at_start, frame_size), length, detune,
                   generator)
    shift = torch.randint(1, len(lows), (num_clips, num_chords - 1), generator=generator)
    low = torch.cat((asked.unsqueeze(-1), (asked.unsqueeze(-1) + shift) % len(lows)), dim=-1)
    high = torch.randint(len(highs), (num_clips, num_chords), generator=generator)  # (N, K)
    slot = torch.rand(num_clips, num_chords, generator=generator).argsort(dim=-1)  # (N, K)
    first_frame = 1 + chord_frames * slot  # (N, K): where each chord starts, in frames
    duration = torch.full_like(at_start, chord_frames * frame_size)  # (N,)
    signals = signals + cue  # (N, L)
    for k in range(num_chords):
        start = frame_size * first_frame[:, k]  # (N,)
        low_note, _ = _tone(lows[low[:, k]], start, duration, length, detune, generator)
        high_note, _ = _tone(highs[high[:, k]], start, duration, length, detune, generator)
        signals = signals + low_note + high_note  # (N, L)
    start = first_frame[:, :1]  # (N, 1): the cue's chord
    in_chord = (frames >= start) & (frames < start + chord_frames)  # (N, F)
    return ChordClips(signals, asked, high[:, 0], in_chord)


# --- lesson 08's question-dependent task (issue 21) -------------------------------------------
COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "grey")
TOKEN_SHAPES = ("circle", "square", "triangle", "star")


@dataclass(frozen=True)
class ColourQuestions:
    """Sequences of coloured shapes and a question about one colour (lesson 08).

    ``colours`` (N, T) and ``shapes`` (N, T) int64: each token's colour and shape; ``asked``
    (N,) int64: the colour the question names; ``labels`` (N,) int64: the shape that most
    tokens of that colour have (a strict majority among them); ``group_colours`` (N, G) and
    ``group_majorities`` (N, G) int64: the colours a question may name, and the answer for
    each. Ids index ``COLOURS`` and ``TOKEN_SHAPES`` with the defaults.
    """

    colours: torch.Tensor
    shapes: torch.Tensor
    asked: torch.Tensor
    labels: torch.Tensor
    group_colours: torch.Tensor
    group_majorities: torch.Tensor
    num_colours: int
    num_shapes: int

    @property
    def tokens(self) -> torch.Tensor:
        """(N, 1 + T) int64: the question first, then the sequence.

        The token of colour c and shape s is ``c * num_shapes + s``, one id per pair; the
        question about colour c is ``num_colours * num_shapes + c``.
        """
        items = self.colours * self.num_shapes + self.shapes  # (N, T)
        question = self.num_colours * self.num_shapes + self.asked  # (N,)
        return torch.cat((question.unsqueeze(-1), items), dim=-1)  # (N, 1 + T)

    @property
    def is_asked(self) -> torch.Tensor:
        """Boolean (N, T), True at the tokens of the colour the question names."""
        return self.colours == self.asked.unsqueeze(-1)  # (N, T)


def colour_question_task(
    num_sequences: int,
    seq_len: int = 24,
    num_colours: int = len(COLOURS),
    num_shapes: int = len(TOKEN_SHAPES),
    num_groups: int = 4,
    *,
    generator: torch.Generator,
) -> ColourQuestions:
    """"Which shape do most tokens of colour c have?" over ``seq_len`` coloured shapes (lesson 08).

    Each sequence holds ``num_groups`` groups of 3 to 6 tokens, each group of its own colour
    and with its own majority shape (the groups' majorities all differ, so
    ``num_groups <= num_shapes``): a group of m tokens has m // 2 + 1 of its majority shape
    and any other shapes for the rest. The remaining tokens have the other colours and
    uniformly random shapes. Positions are shuffled, and the question asks about one group's
    colour, chosen uniformly. Without the question every group's majority is as likely an
    answer as the others.
    """
    C, S, G, T, N = num_colours, num_shapes, num_groups, seq_len, num_sequences
    if not (G <= S and G < C and 6 * G <= T):
        raise ValueError(f"need groups <= shapes, groups < colours, 6 * groups <= seq_len: "
                         f"{G}, {S}, {C}, {T}")
    colour_order = torch.rand(N, C, generator=generator).argsort(dim=-1)  # (N, C)
    majority = torch.rand(N, S, generator=generator).argsort(dim=-1)[:, :G]  # (N, G)
    sizes = torch.randint(3, 7, (N, G), generator=generator)  # (N, G)
    ends = sizes.cumsum(dim=-1)  # (N, G)
    position = torch.arange(T)  # (T,)
    group = (position.view(1, T, 1) >= ends.unsqueeze(1)).sum(dim=-1)  # (N, T): G = no group
    in_group = group < G  # (N, T)
    group = group.clamp(max=G - 1)  # (N, T)
    rank = position - (ends - sizes).gather(1, group)  # (N, T): place within the group
    group_majority = majority.gather(1, group)  # (N, T)
    other = (group_majority + torch.randint(1, S, (N, T), generator=generator)) % S  # (N, T)
    is_majority = rank < (sizes // 2 + 1).gather(1, group)  # (N, T)
    filler = torch.randint(S, (N, T), generator=generator)  # (N, T)
    shapes = torch.where(in_group, torch.where(is_majority, group_majority, other), filler)
    filler_colour = G + torch.randint(C - G, (N, T), generator=generator)  # (N, T)
    colours = colour_order.gather(1, torch.where(in_group, group, filler_colour))  # (N, T)
    order = torch.rand(N, T, generator=generator).argsort(dim=-1)  # (N, T) a shuffle
    chosen = torch.randint(G, (N,), generator=generator)  # (N,)
    rows = torch.arange(N)
    return ColourQuestions(colours.gather(1, order), shapes.gather(1, order),
                           colour_order[rows, chosen], majority[rows, chosen],
                           colour_order[:, :G], majority, C, S)
