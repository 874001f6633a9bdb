"""Sinusoidal positional encoding (lesson 10)."""

import math

import torch


def sinusoidal_positional_encoding(
    seq_len: int, d_model: int, base: float = 10000.0
) -> torch.Tensor:
    """The fixed encoding of "Attention Is All You Need": (seq_len, d_model), float32 (lesson 10).

    Even columns hold sin(pos / base^(2i/D)), odd columns cos of the same angle.
    ``d_model`` must be even.
    """
    if d_model % 2 != 0:
        raise ValueError(f"d_model must be even, got {d_model}")
    position = torch.arange(seq_len, dtype=torch.float32).unsqueeze(1)  # (T, 1)
    inv_freq = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(base) / d_model)
    )  # (D/2,)
    angles = position * inv_freq  # (T, D/2)
    encoding = torch.stack((angles.sin(), angles.cos()), dim=-1)  # (T, D/2, 2)
    return encoding.flatten(-2)  # (T, D)
