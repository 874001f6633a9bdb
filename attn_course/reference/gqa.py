"""Grouped-query attention with rotary embeddings and a KV cache, and greedy generation
(lesson 14; the rotation is lesson 13's).

H query heads share G key/value heads (H divisible by G): query head h reads key/value head
h // (H / G). G = H is multi-head attention, G = 1 multi-query attention. While decoding, the
cache holds G heads instead of H, so it takes H / G times less memory.
"""

import torch
from torch import nn

from attn_course.reference.attention import scaled_dot_product_attention
from attn_course.reference.efficient import KVCache
from attn_course.reference.multihead import merge_heads, split_heads
from attn_course.reference.rotary import apply_rotary


def repeat_kv(x: torch.Tensor, num_repeats: int) -> torch.Tensor:
    """(B, G, S, Dh) -> (B, G*r, S, Dh), each head repeated r = ``num_repeats`` times in place:
    heads g, g, ..., g, g+1, ... so head h of the result is head h // r of x (lesson 14).

    This is ``repeat_interleave`` along the head dim, the grouping of
    ``F.scaled_dot_product_attention(..., enable_gqa=True)``; ``x.repeat(1, r, 1, 1)`` would
    give head h % G instead.
    """
    B, G, S, Dh = x.shape
    expanded = x.unsqueeze(2).expand(B, G, num_repeats, S, Dh)  # (B, G, r, S, Dh), a view
    return expanded.reshape(B, G * num_repeats, S, Dh)  # (B, G*r, S, Dh)


class GroupedQueryAttention(nn.Module):
    """Causal self-attention with H query heads, G key/value heads and RoPE (lessons 13, 14).

    ``w_q`` and ``w_o`` map D -> D; ``w_k`` and ``w_v`` map D -> G*Dh, Dh = D / H. Queries
    and keys are rotated by their positions (``apply_rotary``) before the scores, so the keys
    in a ``KVCache`` are stored already rotated.
    """

    def __init__(
        self, d_model: int, num_heads: int, num_kv_heads: int, rope_base: float = 10000.0
    ) -> None:
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        if num_heads % num_kv_heads != 0:
            raise ValueError(
                f"num_heads={num_heads} is not divisible by num_kv_heads={num_kv_heads}"
            )
        head_dim = d_model // num_heads
        if head_dim % 2 != 0:
            raise ValueError(f"the head width d_model / num_heads = {head_dim} must be even")
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.rope_base = rope_base
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, num_kv_heads * head_dim)
        self.w_v = nn.Linear(d_model, num_kv_heads * head_dim)
        self.w_o = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """x (B, T, D) -> output (B, T, D), causal.

        Without a cache the T tokens sit at positions 0 .. T-1. With one, they continue the
        L = len(cache) tokens before them: positions L .. L+T-1, their rotated keys and values
        are appended to ``cache`` as (B, G, T, Dh), and new token i attends to keys 0 .. L+i.
        """
        T = x.size(1)
        past = 0 if cache is None else len(cache)
        positions = torch.arange(past, past + T, device=x.device)  # (T,)
        q = split_heads(self.w_q(x), self.num_heads)  # (B, H, T, Dh)
        k = split_heads(self.w_k(x), self.num_kv_heads)  # (B, G, T, Dh)
        v = split_heads(self.w_v(x), self.num_kv_heads)  # (B, G, T, Dh)
        q = apply_rotary(q, positions, self.rope_base)  # (B, H, T, Dh)
        k = apply_rotary(k, positions, self.rope_base)  # (B, G, T, Dh)
        if cache is not None:
            k, v = cache.append(k, v)  # (B, G, S, Dh), S = L + T
        S = k.size(-2)
        mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(past)  # (T, S)
        group_size = self.num_heads // self.num_kv_heads
        k, v = repeat_kv(k, group_size), repeat_kv(v, group_size)  # (B, H, S, Dh)
        context, _ = scaled_dot_product_attention(q, k, v, mask)  # (B, H, T, Dh)
        return self.w_o(merge_heads(context))  # (B, T, D)


@torch.no_grad()
def generate(
    model: nn.Module, prompt: torch.Tensor, max_new_tokens: int, use_cache: bool = True
) -> torch.Tensor:
    """Greedy decoding: append the most likely next token, ``max_new_tokens`` times (lesson 14).

    ``model(tokens (B, T) long, caches=None) -> logits (B, T, V)`` with an attribute
    ``num_layers``; ``caches`` is a list of one ``KVCache`` per layer. prompt (B, T0) long ->
    tokens (B, T0 + max_new_tokens), the prompt first. With ``use_cache`` the prompt is fed once
    and then only the newest token per step (the caches hold the rest); without it the whole
    sequence is fed again at every step. Both give the same tokens. Put the model in eval mode
    first if it has dropout.
    """
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    caches = [KVCache() for _ in range(model.num_layers)] if use_cache else None
    tokens = prompt.clone()  # (B, T0)
    model_input = prompt  # (B, T0): the prompt, fed once
    for _ in range(max_new_tokens):
        logits = model(model_input, caches)  # (B, T, V)
        next_token = logits[:, -1].argmax(dim=-1, keepdim=True)  # (B, 1)
        tokens = torch.cat((tokens, next_token), dim=1)  # (B, T + 1)
        model_input = next_token if use_cache else tokens  # (B, 1) or the whole (B, T + 1)
    return tokens


class TinyLanguageModel(nn.Module):
    """An attention-only decoder: token embedding, ``num_layers`` residual
    ``GroupedQueryAttention`` layers, a linear head (lesson 14; assignment 06 gives it).

    ``forward(tokens (B, T) long, caches=None) -> logits (B, T, V)``; ``caches`` is None or a
    list of one ``KVCache`` per layer, which the layers read and extend. No norms and no
    feed-forward network: the smallest model ``generate`` can drive.
    """

    def __init__(
        self, vocab_size: int, d_model: int, num_heads: int, num_kv_heads: int, num_layers: int
    ) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList(
            GroupedQueryAttention(d_model, num_heads, num_kv_heads) for _ in range(num_layers)
        )
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, tokens: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        x = self.embedding(tokens)  # (B, T, D)
        for i, layer in enumerate(self.layers):
            x = x + layer(x, None if caches is None else caches[i])  # (B, T, D)
        return self.head(x)  # (B, T, V)


class GreedyDecoder(nn.Module):
    """A ``TinyLanguageModel`` whose forward is ``generate`` with the KV cache (lesson 14,
    grouped-query attention and the KV cache; assignment 06).

    ``forward(prompt (B, T0) long, max_new_tokens) -> tokens (B, T0 + max_new_tokens)``.
    A module, so that a check can build it with given weights and run its generation.
    """

    def __init__(
        self, vocab_size: int, d_model: int, num_heads: int, num_kv_heads: int, num_layers: int
    ) -> None:
        super().__init__()
        self.model = TinyLanguageModel(vocab_size, d_model, num_heads, num_kv_heads, num_layers)

    def forward(self, prompt: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        return generate(self.model, prompt, max_new_tokens)  # (B, T0 + max_new_tokens)
