"""Softmax and masks: from scores to attention weights (lessons 02 and 05).

Mask convention for the whole course: a boolean tensor, True = may attend,
as in ``torch.nn.functional.scaled_dot_product_attention``.
"""

import torch


def masked_softmax(
    scores: torch.Tensor, mask: torch.Tensor | None = None, dim: int = -1
) -> torch.Tensor:
    """Numerically stable softmax of ``scores`` over ``dim``, ignoring masked entries (lesson 02).

    ``mask`` is boolean and broadcastable to ``scores``; True = may attend. Masked entries get
    weight exactly 0. A slice in which every entry is masked (a fully masked row) gets all-zero
    weights, not NaN: nothing may be attended to, so nothing contributes.
    The maximum is subtracted before ``exp`` so that scores up to about +-1e30 do not overflow.
    """
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    row_max = scores.amax(dim=dim, keepdim=True)
    row_max = row_max.masked_fill(torch.isinf(row_max), 0.0)  # all -inf row: shift by 0
    exp = torch.exp(scores - row_max)
    total = exp.sum(dim=dim, keepdim=True)
    return exp / total.clamp_min(torch.finfo(exp.dtype).tiny)  # 0 / tiny = 0 in masked rows


def softmax(scores: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax over ``dim`` with the max-shift trick, without a built-in softmax (lesson 02).

    Stable for scores up to +-1e4 and beyond; same shape as ``scores``.
    """
    return masked_softmax(scores, None, dim=dim)


def causal_mask(size: int, device: torch.device | None = None) -> torch.Tensor:
    """Boolean (size, size) mask, True on and below the diagonal: no peeking ahead (lesson 05)."""
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()  # (T, T)


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Boolean (B, max_len) mask, True at the first ``lengths[b]`` (real) tokens (lesson 05)."""
    positions = torch.arange(max_len, device=lengths.device)  # (S,)
    return positions < lengths.unsqueeze(-1)  # (B, S)
