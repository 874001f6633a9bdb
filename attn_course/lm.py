"""Tiny next-token language modelling: repeated-segment data, a training loop, per-token losses
(lessons 14 and 15).

A model here maps tokens (B, T) int64 to logits (B, T, V): row t holds the scores for the token
at position t + 1. Everything is seeded through a ``torch.Generator``.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def repeated_segments(
    num_sequences: int,
    seq_len: int,
    vocab_size: int,
    *,
    min_period: int,
    max_period: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Sequences made of one random segment repeated until ``seq_len`` tokens (lessons 14, 15).

    Each sequence draws its own period L uniformly from ``min_period .. max_period`` and L
    tokens uniformly from ``0 .. vocab_size - 1``; token t is then segment[t % L]. A token is
    unpredictable on its segment's first appearance and predictable from the context on every
    repeat, but only by finding the earlier copy: the period differs from sequence to
    sequence, so no fixed offset works. Returns tokens (N, T) int64.
    """
    if not 1 <= min_period <= max_period <= seq_len:
        raise ValueError(
            f"need 1 <= min_period <= max_period <= seq_len, got {min_period}, {max_period},"
            f" {seq_len}"
        )
    periods = torch.randint(
        min_period, max_period + 1, (num_sequences, 1), generator=generator
    )  # (N, 1)
    segments = torch.randint(vocab_size, (num_sequences, max_period), generator=generator)  # (N, P)
    positions = torch.arange(seq_len) % periods  # (N, T): where in its segment token t sits
    return segments.gather(1, positions)  # (N, T)


def next_token_losses(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of predicting each next token: tokens (B, T) -> losses (B, T - 1) (lesson 15).

    Entry [b, t] is the loss at position t for the token at position t + 1, in nats; a model
    that guesses uniformly over V tokens scores ln V.
    """
    logits = model(tokens)[:, :-1]  # (B, T - 1, V): the last position has no next token
    return F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none")  # (B, T - 1)


def train_next_token(
    model: nn.Module,
    tokens: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    generator: torch.Generator,
    after_step: Callable[[int], None] | None = None,
) -> list[float]:
    """Train ``model`` to predict every next token of ``tokens`` (N, T) with AdamW (lessons 14, 15).

    Each step draws ``batch_size`` sequences with ``generator``, so the same initial weights
    and generator give the same run. ``after_step(step)``, when given, is called after every
    optimizer step, e.g. to measure the model as it trains (lesson 15); it must not train the
    model itself. Returns the mean loss of every step; leaves the model in eval mode.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        batch = tokens[torch.randint(len(tokens), (batch_size,), generator=generator)]  # (B, T)
        loss = next_token_losses(model, batch).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if after_step is not None:
            after_step(len(losses) - 1)
    model.eval()
    return losses
