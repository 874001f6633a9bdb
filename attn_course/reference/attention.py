"""Scaled dot-product attention (lessons 04 and 05)."""

import torch
import torch.nn.functional as F

from attn_course.reference.scores import scaled_dot_product_scores
from attn_course.reference.softmax import masked_softmax


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T / sqrt(D)) V, written out (lesson 04; masks in lesson 05).

    query (..., T, D), key (..., S, D), value (..., S, Dv); ``mask`` boolean, broadcastable to
    (..., T, S), True = may attend. Returns (output (..., T, Dv), weights (..., T, S)).
    A query whose keys are all masked gets zero weights and a zero output (torch's own
    function returns NaN there). ``dropout_p`` > 0 drops attention weights, as torch does.
    """
    attn_scores = scaled_dot_product_scores(query, key)  # (..., T, S)
    attn_weights = masked_softmax(attn_scores, mask, dim=-1)  # (..., T, S)
    if dropout_p > 0.0:
        attn_weights = F.dropout(attn_weights, p=dropout_p)
    output = attn_weights @ value  # (..., T, Dv)
    return output, attn_weights
