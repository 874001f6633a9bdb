"""Lesson 09's translator and the skeptic's panel of models without cross-attention.

The task is ``attn_course.data.toy_translation_task``: translate a padded source sentence
(B, S) into a target sentence (B, T), T = S + 1, in a language that says each word once.
Every model maps source ids (and, for the translator, the target words so far) to scores over
the target vocabulary, (B, T, V) with V = ``STOP + 1`` (the words and the full stop).

Glossary: B batch · T target positions (queries) · S source positions (keys) · D model width ·
V target vocabulary.
"""

import json
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from attn_course.data import PAD, SOURCE_WORDS, STOP, ToyTranslation, toy_translation_task
from attn_course.reference import MultiHeadAttention, TransformerEncoderBlock, causal_mask

BOS = PAD + 1  # the decoder's "begin of sentence" input id
NUM_OUTPUTS = STOP + 1  # target words and the full stop: what every model scores
LEARNING_RATES = (1e-3, 3e-3, 1e-2, 3e-2)
BEST_LEARNING_RATES_FILE = Path(__file__).with_name("translation_learning_rates.json")


def source_mask(source: torch.Tensor) -> torch.Tensor:
    """Boolean (B, 1, S), True at the real source words: a key-padding mask for every query
    (lesson 09)."""
    return (source != PAD).unsqueeze(1)  # (B, 1, S)


def shift_right(target: torch.Tensor) -> torch.Tensor:
    """Teacher forcing's decoder input (lesson 09): (B, T) -> (B, T), BOS then target[:, :-1]."""
    bos = torch.full((target.size(0), 1), BOS)  # (B, 1)
    return torch.cat((bos, target[:, :-1]), dim=1)  # (B, T)


class Translator(nn.Module):
    """An encoder-decoder with one cross-attention layer (lesson 09).

    source (B, S), target_in (B, T) -> scores (B, T, V) and the cross-attention weights
    (B, T, S). ``uniform_cross_attention=True`` is the skeptic's control: every target position
    reads the mean of the memory over the real source words, so the model has everything but
    an alignment.
    """

    def __init__(
        self, d_model: int = 32, max_len: int = 17, uniform_cross_attention: bool = False
    ) -> None:
        super().__init__()
        self.uniform_cross_attention = uniform_cross_attention
        self.source_embedding = nn.Embedding(PAD + 1, d_model)
        self.target_embedding = nn.Embedding(BOS + 1, d_model)
        self.source_position = nn.Parameter(0.1 * torch.randn(max_len, d_model))  # (S, D)
        self.target_position = nn.Parameter(0.1 * torch.randn(max_len, d_model))  # (T, D)
        self.encoder = TransformerEncoderBlock(d_model, num_heads=2, d_ff=4 * d_model)
        self.decoder = TransformerEncoderBlock(d_model, num_heads=2, d_ff=4 * d_model)
        self.norm = nn.LayerNorm(d_model)
        self.cross_attention = MultiHeadAttention(d_model, num_heads=1)
        self.to_words = nn.Linear(d_model, NUM_OUTPUTS)

    def forward(
        self, source: torch.Tensor, target_in: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        S, T = source.size(1), target_in.size(1)
        mask = source_mask(source)  # (B, 1, S): no query reads padding
        x = self.source_embedding(source) + self.source_position[:S]  # (B, S, D)
        memory = self.encoder(x, mask)  # (B, S, D)
        x = self.target_embedding(target_in) + self.target_position[:T]  # (B, T, D)
        x = self.decoder(x, causal_mask(T))  # (B, T, D): each word sees only earlier words
        if self.uniform_cross_attention:
            weights = mask.float().expand(-1, T, -1)  # (B, T, S)
            weights = weights / weights.sum(dim=-1, keepdim=True)  # (B, T, S): 1 / length
            values = self.cross_attention.w_v(memory)  # (B, S, D)
            context = self.cross_attention.w_o(weights @ values)  # (B, T, D)
        else:
            context, weights = self.cross_attention(
                self.norm(x), memory, memory, mask, need_weights=True
            )  # (B, T, D), (B, 1, T, S)
            weights = weights[:, 0]  # (B, T, S): the one head
        return self.to_words(x + context), weights  # (B, T, V), (B, T, S)


@torch.no_grad()
def translate(model: Translator, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy decoding (lesson 09): source (B, S) -> predicted target (B, S + 1) and the last
    step's cross-attention weights (B, S + 1, S)."""
    decoded = torch.full((source.size(0), 1), BOS)  # (B, 1)
    for _ in range(source.size(1) + 1):
        scores, weights = model(source, decoded)  # (B, t, V), (B, t, S)
        next_word = scores[:, -1].argmax(dim=-1, keepdim=True)  # (B, 1)
        decoded = torch.cat((decoded, next_word), dim=1)  # (B, t + 1)
    return decoded[:, 1:], weights


# --- the skeptic's panel: each reads the whole source at once and scores all T positions ---


class OutputHead(nn.Module):
    """An MLP from one sentence vector to scores for every target position: (B, F) ->
    (B, T, V) (lesson 09)."""

    def __init__(self, in_features: int, target_len: int, hidden: int = 256) -> None:
        super().__init__()
        self.target_len = target_len
        self.mlp = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, target_len * NUM_OUTPUTS),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(features).view(-1, self.target_len, NUM_OUTPUTS)  # (B, T, V)


class BagOfWords(nn.Module):
    """How often each source word occurs -> MLP -> every target position (lesson 09)."""

    def __init__(self, max_len: int = 16) -> None:
        super().__init__()
        self.head = OutputHead(len(SOURCE_WORDS), max_len + 1)

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        counts = F.one_hot(source, PAD + 1)[..., : len(SOURCE_WORDS)].sum(dim=1)  # (B, V_src)
        return self.head(counts.float())  # (B, T, V)


class PooledSource(nn.Module):
    """Word and position embeddings, an MLP per word, then the mean or the max over the real
    source words -> MLP -> every target position (lesson 09)."""

    def __init__(self, pool: str, d_model: int = 32, max_len: int = 16) -> None:
        super().__init__()
        if pool not in ("mean", "max"):
            raise ValueError(f"pool must be 'mean' or 'max', got {pool!r}")
        self.pool = pool
        self.embedding = nn.Embedding(PAD + 1, d_model)
        self.position = nn.Parameter(0.1 * torch.randn(max_len, d_model))  # (S, D)
        self.per_word = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.ReLU(), nn.Linear(4 * d_model, d_model)
        )
        self.head = OutputHead(d_model, max_len + 1)

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        real = (source != PAD).unsqueeze(-1)  # (B, S, 1)
        x = self.per_word(self.embedding(source) + self.position[: source.size(1)])  # (B, S, D)
        if self.pool == "mean":
            pooled = (x * real).sum(dim=1) / real.sum(dim=1)  # (B, D)
        else:
            pooled = x.masked_fill(~real, float("-inf")).amax(dim=1)  # (B, D)
        return self.head(pooled)  # (B, T, V)


class FlatMLP(nn.Module):
    """The whole padded source as one vector of one-hot words -> MLP -> every target position
    (lesson 09): it sees every word at every position, with no attention."""

    def __init__(self, max_len: int = 16) -> None:
        super().__init__()
        self.head = OutputHead(max_len * (PAD + 1), max_len + 1)

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(source, PAD + 1).float()  # (B, S, PAD + 1)
        return self.head(one_hot.flatten(1))  # (B, T, V)


class ConvEncoder(nn.Module):
    """Two 1D convolutions of width 3 over the embedded source, a global max over positions
    -> MLP -> every target position (lesson 09)."""

    def __init__(self, d_model: int = 32, channels: int = 128, max_len: int = 16) -> None:
        super().__init__()
        self.embedding = nn.Embedding(PAD + 1, d_model)
        self.conv1 = nn.Conv1d(d_model, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size=3, padding=1)
        self.head = OutputHead(channels, max_len + 1)

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        x = self.embedding(source).transpose(1, 2)  # (B, D, S): channels first for Conv1d
        x = F.relu(self.conv2(F.relu(self.conv1(x))))  # (B, C, S)
        return self.head(x.amax(dim=-1))  # (B, C) -> (B, T, V)


PANEL: dict[str, Callable[[], nn.Module]] = {
    "uniform cross-attention": lambda: Translator(uniform_cross_attention=True),
    "bag of words -> MLP": BagOfWords,
    "mean pooling -> MLP": lambda: PooledSource("mean"),
    "max pooling -> MLP": lambda: PooledSource("max"),
    "flat MLP": FlatMLP,
    "1D CNN + global max": ConvEncoder,
}
"""The skeptic's models, by name: each makes a fresh model."""


def predict(model: nn.Module, source: torch.Tensor) -> torch.Tensor:
    """(B, S) -> predicted target ids (B, S + 1): greedy decoding for a ``Translator``, every
    position at once for the others (lesson 09)."""
    model.eval()
    if isinstance(model, Translator):
        return translate(model, source)[0]
    with torch.no_grad():
        return model(source).argmax(dim=-1)  # (B, T)


def accuracy(model: nn.Module, pairs: ToyTranslation) -> tuple[float, float]:
    """(word accuracy, sentence accuracy) on ``pairs`` (lesson 09): words are the target
    positions up to and with the full stop; a sentence counts when all of them are right."""
    predicted = predict(model, pairs.source)  # (N, T)
    is_real = pairs.target != PAD  # (N, T)
    right = (predicted == pairs.target) & is_real  # (N, T)
    words = right.sum().item() / is_real.sum().item()
    sentences = (right | ~is_real).all(dim=1).float().mean().item()
    return words, sentences


def train(
    model: nn.Module,
    pairs: ToyTranslation,
    *,
    steps: int,
    lr: float,
    generator: torch.Generator,
    batch_size: int = 64,
) -> list[float]:
    """Adam on cross-entropy at every real target position (lesson 09); returns the losses.

    A ``Translator`` is trained with teacher forcing; the others read the source alone. The
    batches come from ``generator``; the model is left in eval mode.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        batch = torch.randint(len(pairs.source), (batch_size,), generator=generator)  # (b,)
        source, target = pairs.source[batch], pairs.target[batch]  # (b, S), (b, T)
        if isinstance(model, Translator):
            scores, _ = model(source, shift_right(target))  # (b, T, V)
        else:
            scores = model(source)  # (b, T, V)
        loss = F.cross_entropy(scores.flatten(0, 1), target.flatten(), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses


def train_and_score(
    make_model: Callable[[], nn.Module],
    train_pairs: ToyTranslation,
    test_pairs: ToyTranslation,
    *,
    steps: int,
    lr: float,
    seed: int,
) -> tuple[float, float]:
    """A fresh model (initialised with ``seed``) trained on ``train_pairs``, scored on
    ``test_pairs``: (word accuracy, sentence accuracy) (lesson 09)."""
    torch.manual_seed(seed)
    model = make_model()
    train(model, train_pairs, steps=steps, lr=lr, generator=torch.Generator().manual_seed(seed))
    return accuracy(model, test_pairs)


def lesson_data(seed: int = 0) -> tuple[ToyTranslation, ToyTranslation]:
    """Lesson 09's 4,000 training and 500 test pairs, drawn with ``seed`` (lesson 09)."""
    generator = torch.Generator().manual_seed(seed)
    return toy_translation_task(4000, generator=generator), toy_translation_task(
        500, generator=generator
    )


def sweep_learning_rates(
    steps: int = 400, seed: int = 0, learning_rates: tuple[float, ...] = LEARNING_RATES
) -> dict[str, dict[str, float]]:
    """Word accuracy of every panel model and of the translator at each learning rate, on
    ``lesson_data(seed)`` after ``steps`` steps (lesson 09). Minutes on a CPU: the lesson reads
    the stored result (``best_learning_rates``); ``python -m attn_course.translation`` redoes it.
    """
    train_pairs, test_pairs = lesson_data(seed)
    models = {"cross-attention": Translator, **PANEL}
    return {
        name: {
            f"{lr:g}": train_and_score(
                make_model, train_pairs, test_pairs, steps=steps, lr=lr, seed=seed
            )[0]
            for lr in learning_rates
        }
        for name, make_model in models.items()
    }


def best_learning_rates(path: Path = BEST_LEARNING_RATES_FILE) -> dict[str, float]:
    """Each model's learning rate with the best word accuracy in the stored sweep (lesson 09)."""
    sweep = json.loads(path.read_text())["word_accuracy"]
    return {name: float(max(by_lr, key=by_lr.get)) for name, by_lr in sweep.items()}


def skeptic_panel(
    train_pairs: ToyTranslation,
    test_pairs: ToyTranslation,
    *,
    steps: int,
    learning_rates: dict[str, float],
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """(word accuracy, sentence accuracy) of cross-attention and of every panel model, each
    trained ``steps`` steps at its own learning rate (lesson 09)."""
    models = {"cross-attention": Translator, **PANEL}
    return {
        name: train_and_score(
            make_model, train_pairs, test_pairs, steps=steps, lr=learning_rates[name], seed=seed
        )
        for name, make_model in models.items()
    }


def main(steps: int = 400, seeds: tuple[int, ...] = (0, 1, 2)) -> None:
    """Redo the learning-rate sweep (on the first seed), then the panel at the best rates on
    every seed, and store both beside this module (lesson 09)."""
    torch.set_num_threads(1)
    record = {"steps": steps, "seed": seeds[0], "word_accuracy": sweep_learning_rates(steps)}
    BEST_LEARNING_RATES_FILE.write_text(json.dumps(record, indent=1) + "\n")
    rates = best_learning_rates()
    record["panel"] = {
        str(seed): skeptic_panel(*lesson_data(seed), steps=steps, learning_rates=rates, seed=seed)
        for seed in seeds
    }
    BEST_LEARNING_RATES_FILE.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
