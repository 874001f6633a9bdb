"""Attention scores: how well each key matches a query (lessons 01 and 04).

Dimension glossary used throughout the course:
B batch · T queries · S keys/values · D model width · H heads · Dh head width.
"""

import math

import torch
from torch import nn


def attention_scores(query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Dot-product score of one query against each of S keys (lesson 01).

    query (..., D), keys (..., S, D) -> scores (..., S).
    """
    return (keys @ query.unsqueeze(-1)).squeeze(-1)  # (..., S)


def scaled_dot_product_scores(query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """Scores of T queries against S keys, divided by sqrt(D) (lesson 04).

    query (..., T, D), key (..., S, D) -> scores (..., T, S).
    """
    d_k = query.size(-1)
    return query @ key.transpose(-2, -1) / math.sqrt(d_k)  # (..., T, S)


class AdditiveScore(nn.Module):
    """Additive (Bahdanau) score v^T tanh(W_q q + W_k k) (lesson 01).

    query (..., T, Dq), key (..., S, Dk) -> scores (..., T, S).
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.w_q = nn.Linear(query_dim, hidden_dim, bias=False)
        self.w_k = nn.Linear(key_dim, hidden_dim, bias=False)
        self.v = nn.Linear(hidden_dim, 1, bias=False)

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        q = self.w_q(query).unsqueeze(-2)  # (..., T, 1, hidden)
        k = self.w_k(key).unsqueeze(-3)  # (..., 1, S, hidden)
        return self.v(torch.tanh(q + k)).squeeze(-1)  # (..., T, S)


class BilinearScore(nn.Module):
    """Bilinear ("general", Luong) score q^T W k (lesson 01).

    query (..., T, Dq), key (..., S, Dk) -> scores (..., T, S).
    """

    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__()
        self.w = nn.Linear(key_dim, query_dim, bias=False)

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        return query @ self.w(key).transpose(-2, -1)  # (..., T, S)
