"""What a KV cache costs and saves during generation: its size in bytes, the time of one
decoding step, and the time of a whole generation with and without it (lesson 14).

Used to compare multi-head (G = H), grouped-query (1 < G < H) and multi-query (G = 1) attention
in a ``TinyLanguageModel``-like model: ``model(tokens (B, T), caches) -> logits (B, T, V)`` with
an attribute ``num_layers``.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from attn_course.measure import load_average, time_call
from attn_course.reference import KVCache, generate


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
    load_average: float | None = None  # the machine's 1-minute load, read after the timing


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
    step_seconds = time_call(step, repeats=repeats)
    return DecodingCost(cache_bytes, step_seconds, load_average())


@dataclass(frozen=True)
class GenerationCost:
    """Greedy generation of ``new_tokens`` tokens after a prompt of ``prompt_len``, with and
    without a KV cache (lesson 14): the fastest time of each (seconds), the tokens the model
    was fed in all (the work it did), and the machine's 1-minute load average after timing."""

    prompt_len: int
    new_tokens: int
    seconds_with_cache: float
    seconds_without_cache: float
    tokens_fed_with_cache: int
    tokens_fed_without_cache: int
    load_average: float | None

    @property
    def speedup(self) -> float:
        """How many times faster generation was with the cache."""
        return self.seconds_without_cache / self.seconds_with_cache


@torch.no_grad()
def measure_generation(
    model: nn.Module, prompt: torch.Tensor, new_tokens: int, repeats: int = 3
) -> GenerationCost:
    """Time ``generate(model, prompt, new_tokens)`` with and without the cache (lesson 14).

    The two take turns, ``repeats`` rounds after one warm-up each, and each keeps its fastest
    time (a burst of load from other programs then slows both alike). With the cache the model
    is fed the prompt once and then one token per step; without it, the whole sequence so far
    at every step: T0 + (T0 + 1) + … + (T0 + n − 1) tokens for n new tokens.
    """
    runs = {
        use_cache: (lambda use_cache=use_cache: generate(model, prompt, new_tokens, use_cache))
        for use_cache in (True, False)
    }
    for run in runs.values():
        run()  # warm-up
    seconds = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for use_cache, run in runs.items():
            seconds[use_cache] = min(seconds[use_cache], time_call(run, repeats=1, warmup=0))
    prompt_len = prompt.size(1)
    fed_with = prompt_len + max(new_tokens - 1, 0)  # the prompt, then one token per later step
    fed_without = sum(prompt_len + step for step in range(new_tokens))
    return GenerationCost(
        prompt_len, new_tokens, seconds[True], seconds[False], fed_with, fed_without,
        load_average(),
    )
