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
