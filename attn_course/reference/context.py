"""Context vectors: weighted sums of values (lesson 03)."""

import torch
from torch import nn


def context_vector(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Weighted sum of S values (lesson 03).

    weights (..., S), values (..., S, Dv) -> context (..., Dv).
    """
    return (weights.unsqueeze(-2) @ values).squeeze(-2)  # (..., Dv)


class SimpleAttention(nn.Module):
    """Attention pooling with a learned scorer ``nn.Linear(input_dim, 1)`` (lesson 03).

    The module of the ``SimpleAttention`` example: x (B, T, input_dim) -> (context
    (B, input_dim), weights (B, T, 1)), with the softmax taken over the sequence (dim 1).
    """

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.attention = nn.Linear(input_dim, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attn_scores = self.attention(x)  # (B, T, 1)
        attn_weights = torch.softmax(attn_scores, dim=1)  # (B, T, 1)
        context = (attn_weights * x).sum(dim=1)  # (B, input_dim)
        return context, attn_weights
