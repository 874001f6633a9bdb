"""What a KV cache costs during generation: its size in bytes and the time of one decoding step
(lesson 14).

Used to compare multi-head (G = H), grouped-query (1 < G < H) and multi-query (G = 1) attention
in a ``TinyLanguageModel``-like model: ``model(tokens (B, T), caches) -> logits (B, T, V)`` with
an attribute ``num_layers``.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from attn_course.measure import time_call
from attn_course.reference import KVCache


def kv_cache_bytes(caches: Sequence[KVCache]) -> int:
    """Bytes held by the keys and values of every cache in ``caches`` (one per layer; lesson 14,
    grouped-query attention and the KV cache)."""
    return sum(c.key.nbytes + c.value.nbytes for c in caches if c.key is not None)


@dataclass(frozen=True)
class DecodingCost:
    """One model's KV cache after the prompt (bytes) and its fastest decoding step (seconds);
    lesson 14, grouped-query attention and the KV cache."""

    cache_bytes: int
    step_seconds: float


@torch.no_grad()
def measure_decoding(model: nn.Module, prompt: torch.Tensor, repeats: int = 5) -> DecodingCost:
    """Feed ``prompt`` (B, T) through ``model`` with fresh caches, then time one decoding step:
    one new token per sequence attending to the T cached ones (lesson 14).

    Each timed step starts from the same caches (they are reset to the prompt's keys and values
    before every run, which costs no copy), so every run does the same work; the fastest of
    ``repeats`` runs after one warm-up is kept, as ``attn_course.measure.time_call`` does.
    """
    caches = [KVCache() for _ in range(model.num_layers)]
    model(prompt, caches)  # fills the caches: (B, G, T, Dh) keys and values per layer
    after_prompt = [(c.key, c.value) for c in caches]
    next_token = prompt[:, -1:]  # (B, 1): any token will do for timing

    def step() -> None:
        for cache, (key, value) in zip(caches, after_prompt, strict=True):
            cache.key, cache.value = key, value  # back to the prompt only
        model(next_token, caches)

    cache_bytes = kv_cache_bytes(caches)  # after the prompt, before any timed step
    return DecodingCost(cache_bytes, time_call(step, repeats=repeats))
