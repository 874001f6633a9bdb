"""Multi-head attention: H attentions side by side on slices of width Dh = D / H (lesson 07)."""

import torch
from torch import nn

from attn_course.reference.attention import scaled_dot_product_attention


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, T, D) -> (B, H, T, Dh): view the last dim as H heads, then move heads before T."""
    B, T, D = x.shape
    return x.view(B, T, num_heads, D // num_heads).transpose(1, 2)  # (B, H, T, Dh)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, Dh) -> (B, T, H*Dh): the inverse of ``split_heads``."""
    B, H, T, Dh = x.shape
    return x.transpose(1, 2).reshape(B, T, H * Dh)  # (B, T, D)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with projections ``w_q``, ``w_k``, ``w_v``, ``w_o`` (lesson 07).

    Self-attention is ``mha(x, x, x)``; cross-attention (lesson 09) is ``mha(x, memory, memory)``.
    Equal to ``nn.MultiheadAttention(d_model, num_heads, batch_first=True)`` with the same weights
    (see ``tests/reference/test_multihead.py`` for how to copy them).
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.dropout = dropout
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)
        self.w_o = nn.Linear(d_model, d_model)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """query (B, T, D), key and value (B, S, D) -> output (B, T, D).

        ``mask`` is boolean, broadcastable to (B, T, S), True = may attend (a key-padding mask
        of shape (B, S) is passed as ``mask[:, None, :]``). With ``need_weights=True`` also
        returns the per-head weights (B, H, T, S).
        """
        q = split_heads(self.w_q(query), self.num_heads)  # (B, H, T, Dh)
        k = split_heads(self.w_k(key), self.num_heads)  # (B, H, S, Dh)
        v = split_heads(self.w_v(value), self.num_heads)  # (B, H, S, Dh)
        if mask is not None:
            mask = mask.unsqueeze(-3)  # (B, 1, T, S): the same mask for every head
        dropout_p = self.dropout if self.training else 0.0
        context, attn_weights = scaled_dot_product_attention(
            q, k, v, mask, dropout_p=dropout_p
        )  # (B, H, T, Dh), (B, H, T, S)
        output = self.w_o(merge_heads(context))  # (B, T, D)
        return (output, attn_weights) if need_weights else output
