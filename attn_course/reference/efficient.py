"""Attention without the T x S matrix: online softmax, tiled attention, a KV cache (lesson 12).

The naive ``scaled_dot_product_attention`` builds the (..., T, S) scores and weights, so its
memory grows as T * S (T^2 for self-attention). The functions here read the keys in blocks of
``block_size`` and keep, for every query, only a running maximum, a running sum of
exponentials and a running weighted sum of values: extra memory O(T * (block_size + D + Dv)).
This is the idea of FlashAttention, written in plain PyTorch.
"""

import math

import torch

from attn_course.reference.attention import scaled_dot_product_attention


def online_softmax(scores: torch.Tensor, block_size: int) -> torch.Tensor:
    """Softmax over the last dim, reading ``scores`` in blocks of ``block_size`` (lesson 12).

    scores (..., S) -> weights (..., S), equal to ``softmax(scores, dim=-1)``.

    First pass: one sweep over the blocks keeps a running maximum ``m`` and a running sum
    ``l`` of exp(score - m); when a block raises the maximum from m to m', the sum so far is
    rescaled by exp(m - m'). Second pass: weights = exp(scores - m) / l. The last block may be
    shorter than ``block_size``. Entries equal to -inf get weight 0; a row that is all -inf
    gets all-zero weights (as ``masked_softmax`` does for a fully masked row).
    """
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}")
    row_max = scores.new_full((*scores.shape[:-1], 1), float("-inf"))  # (..., 1)
    row_sum = scores.new_zeros((*scores.shape[:-1], 1))  # (..., 1)
    for start in range(0, scores.size(-1), block_size):
        block = scores[..., start : start + block_size]  # (..., Bk)
        new_max = torch.maximum(row_max, block.amax(dim=-1, keepdim=True))  # (..., 1)
        safe_max = new_max.masked_fill(torch.isinf(new_max), 0.0)  # all -inf so far: shift by 0
        row_sum = row_sum * torch.exp(row_max - safe_max) + torch.exp(block - safe_max).sum(
            dim=-1, keepdim=True
        )  # (..., 1)
        row_max = new_max
    safe_max = row_max.masked_fill(torch.isinf(row_max), 0.0)  # (..., 1)
    return torch.exp(scores - safe_max) / row_sum.clamp_min(torch.finfo(scores.dtype).tiny)


def tiled_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    block_size: int = 256,
    is_causal: bool = False,
) -> torch.Tensor:
    """softmax(Q K^T / sqrt(D)) V, one block of keys at a time (lesson 12).

    query (..., T, D), key (..., S, D), value (..., S, Dv) -> output (..., T, Dv), equal to the
    output of ``scaled_dot_product_attention(query, key, value, mask)`` (leading dims broadcast
    as with ``@``). No (..., T, S) tensor is ever made: each step scores the T queries against
    ``block_size`` keys (the last block may be shorter) and folds the result into a running
    maximum, a running sum of exponentials and an unnormalised output, all rescaled by
    exp(old max - new max) whenever a block raises the maximum; the output is divided by the
    running sum at the end. Extra memory: O(T * (block_size + D + Dv)) per leading index.

    ``mask``: boolean, broadcastable to (..., T, S) without adding leading dims, True = may
    attend (only its (..., T, block) slices are read). ``is_causal=True``: query i may attend
    key j only when j <= i, the ``causal_mask`` pattern (top-left aligned when T != S, as
    ``F.scaled_dot_product_attention`` does); it combines with ``mask``. A query with no key to
    attend gets a zero output, as in the reference. Forward pass only: it updates its own
    intermediate tensors in place, so autograd cannot differentiate through it (FlashAttention
    writes a separate backward).
    """
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}")
    T, S, Dv = query.size(-2), key.size(-2), value.size(-1)
    batch_shape = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    query = query / math.sqrt(query.size(-1))  # (..., T, D), scaled once instead of per block
    output = query.new_zeros((*batch_shape, T, Dv))  # (..., T, Dv), not yet normalised
    row_max = query.new_full((*batch_shape, T, 1), float("-inf"))  # (..., T, 1)
    row_sum = query.new_zeros((*batch_shape, T, 1))  # (..., T, 1)
    query_pos = torch.arange(T, device=query.device).unsqueeze(-1)  # (T, 1)
    for start in range(0, S, block_size):
        stop = min(start + block_size, S)
        # In-place ops (name_) below touch only tensors made in this loop: they save memory
        # traffic, and the inputs are never modified.
        attn_scores = query @ key[..., start:stop, :].transpose(-2, -1)  # (..., T, Bk)
        if mask is not None:
            block_mask = mask if mask.size(-1) == 1 else mask[..., start:stop]
            attn_scores.masked_fill_(~block_mask, float("-inf"))
        if is_causal:
            key_pos = torch.arange(start, stop, device=query.device)  # (Bk,)
            attn_scores.masked_fill_(key_pos > query_pos, float("-inf"))
        new_max = torch.maximum(row_max, attn_scores.amax(dim=-1, keepdim=True))  # (..., T, 1)
        safe_max = new_max.masked_fill(torch.isinf(new_max), 0.0)  # nothing allowed yet: 0
        correction = torch.exp(row_max - safe_max)  # (..., T, 1), 0 on the first block
        exp_scores = attn_scores.sub_(safe_max).exp_()  # (..., T, Bk)
        row_sum = row_sum * correction + exp_scores.sum(dim=-1, keepdim=True)  # (..., T, 1)
        output = output.mul_(correction).add_(exp_scores @ value[..., start:stop, :])
        row_max = new_max
    return output / row_sum.clamp_min(torch.finfo(output.dtype).tiny)  # (..., T, Dv)


class KVCache:
    """The keys and values of every token decoded so far, for step-by-step decoding (lesson 12).

    Generating token t+1 needs the keys and values of tokens 0..t. Recomputing them costs
    O(t) projections per step; the cache keeps them, so each step computes only the new
    token's key and value and appends it. ``append`` returns the whole cache after appending.
    The cache starts empty; ``len(cache)`` is the number of cached tokens.
    """

    def __init__(self) -> None:
        self.key: torch.Tensor | None = None  # (..., S, D)
        self.value: torch.Tensor | None = None  # (..., S, Dv)

    def __len__(self) -> int:
        return 0 if self.key is None else self.key.size(-2)

    def append(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """key (..., N, D), value (..., N, Dv) of N new tokens -> all keys (..., S, D) and all
        values (..., S, Dv) cached so far, S = len(self) after the call (new tokens last).

        Leading dims must match those of earlier calls. The inputs are copied, not kept.
        """
        if self.key is None:
            self.key, self.value = key.clone(), value.clone()
        else:
            self.key = torch.cat((self.key, key), dim=-2)  # (..., S, D)
            self.value = torch.cat((self.value, value), dim=-2)  # (..., S, Dv)
        return self.key, self.value


def cached_causal_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, cache: KVCache
) -> torch.Tensor:
    """Causal attention for N new tokens, using and extending a ``KVCache`` (lesson 12).

    query (..., N, D), key (..., N, D), value (..., N, Dv) belong to the tokens at positions
    L .. L+N-1, where L = len(cache) before the call. Their keys and values are appended to
    ``cache``; new token i then attends to the L cached tokens and to new tokens 0..i.
    Returns output (..., N, Dv). Feeding a sequence in successive chunks (one token at a
    time while decoding) gives the same outputs as causal attention over the whole sequence.
    """
    past = len(cache)
    all_keys, all_values = cache.append(key, value)  # (..., L+N, D), (..., L+N, Dv)
    N = query.size(-2)
    mask = torch.ones(N, past + N, dtype=torch.bool, device=query.device).tril(past)  # (N, L+N)
    output, _ = scaled_dot_product_attention(query, all_keys, all_values, mask)  # (..., N, Dv)
    return output
