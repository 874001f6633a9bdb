"""A pre-norm transformer encoder block (lesson 10)."""

import torch
from torch import nn

from attn_course.reference.multihead import MultiHeadAttention


class FeedForward(nn.Module):
    """Position-wise MLP: Linear -> GELU -> Linear, applied to every token alone (lesson 10)."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.up = nn.Linear(d_model, d_ff)
        self.down = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down(torch.nn.functional.gelu(self.up(x))))  # (B, T, D)


class TransformerEncoderBlock(nn.Module):
    """Pre-norm encoder block: x + attn(norm(x)), then x + ffn(norm(x)) (lesson 10).

    x (B, T, D), optional boolean ``mask`` broadcastable to (B, T, T) -> (B, T, D).
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_ff, dropout=dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm1(x)  # (B, T, D)
        x = x + self.dropout(self.attn(h, h, h, mask))  # (B, T, D)
        return x + self.ffn(self.norm2(x))  # (B, T, D)
