"""Measuring the time and the peak memory of one call on the CPU (lesson 12, benchmarks/).

``benchmark_record`` loads the figures ``benchmarks/efficient_attention.py --json`` last
recorded: ``attn_course/efficient_attention.json``, package data, so lesson 12 can print them
wherever the course was installed or laid out.

``measure_attention`` compares three ways to compute attention at one sequence length: the
naive reference (which builds the (T, S) weights), the tiled version of lesson 12, and
PyTorch's fused ``F.scaled_dot_product_attention``.

Peak memory is read from PyTorch's own profiler: with ``profile_memory=True`` it records every
allocation and release made by PyTorch's CPU allocator, with its size and time. Replaying
those events in time order gives the bytes held at each moment; the peak of that running
total is the extra memory the call needed (tensors that existed before the call, like its
inputs, are not counted). Python's ``tracemalloc`` cannot do this: it does not see
PyTorch's allocations. The events are not part of the profiler's documented interface (its
public tables sum memory per operator and lose the peak): ``memory_events`` reads them where
PyTorch keeps them (torch 2.13 and 2.14 were tested) and says so plainly where it does not.
"""

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from attn_course.reference import scaled_dot_product_attention, tiled_attention

RECORD = "efficient_attention.json"  # package data: the efficient-attention benchmark's figures


def benchmark_record() -> dict[str, Any]:
    """The figures of the last full efficient-attention benchmark (``RECORD`` in the package):
    date, machine load, and per sequence length the times (ms) and peak memory (MiB)."""
    return json.loads(resources.files("attn_course").joinpath(RECORD).read_text("utf-8"))


@contextmanager
def _silenced_stderr_fd() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for a moment.

    The profiler's C++ side writes a "profiler_start"/"profiler_stop" line straight to the
    process's stderr, which a notebook would show; Python's own ``sys.stderr`` is left alone.
    """
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


def memory_events(prof: profile) -> list[Any]:
    """The ``[memory]`` events of a finished ``profile(profile_memory=True)`` run: one per
    allocation or release, with ``start_ns()`` and ``nbytes()`` (negative for a release)."""
    try:
        events = prof.profiler.kineto_results.events()
    except AttributeError as error:
        raise RuntimeError(
            f"peak memory needs torch.profiler's per-allocation events, and torch "
            f"{torch.__version__} does not keep them where torch 2.13 and 2.14 do ({error}); "
            "install the torch version the course names"
        ) from error
    return [event for event in events if event.name() == "[memory]"]


def _allocations(fn: Callable[[], Any]) -> list[int]:
    """The bytes PyTorch's CPU allocator took (+) and gave back (-) while ``fn()`` ran, in time
    order (``fn``'s result is dropped inside the measurement)."""
    with (
        _silenced_stderr_fd(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        fn()
    return [event.nbytes() for event in sorted(memory_events(prof), key=lambda e: e.start_ns())]


def peak_memory_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated by PyTorch on the CPU while ``fn()`` runs, above what was held before.

    Runs ``fn`` once under ``torch.profiler`` with ``profile_memory=True``; see the module
    docstring for the method. The result of ``fn`` is dropped after the measurement.
    """
    held = peak = 0
    for nbytes in _allocations(fn):
        held += nbytes  # positive when allocated, negative when released
        peak = max(peak, held)
    return peak


def held_memory_bytes(fn: Callable[[], Any]) -> int:
    """Bytes that PyTorch allocated on the CPU during ``fn()`` and still holds after it: what
    ``fn`` stored somewhere that outlives the call, such as a cache it filled (lesson 14).

    The same replay as ``peak_memory_bytes``, read at the end instead of at the peak; ``fn``'s
    own result is dropped inside the measurement, so it is not counted.
    """
    return sum(_allocations(fn))


def load_average() -> float | None:
    """The machine's 1-minute load average (None where the system has none, as on Windows):
    how many programs wanted a core, on average, over the last minute. Recorded with every
    timing, because on a shared machine it says how far the times can be trusted."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def time_call(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Fastest wall-clock seconds of ``fn()`` over ``repeats`` runs, after ``warmup`` runs.

    The minimum, as ``timeit`` recommends: slower runs measure other processes' interference
    (on a shared machine), not the code.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


@dataclass(frozen=True)
class AttentionCost:
    """Time (fastest of the repeats, seconds) and peak extra memory (bytes) of each attention
    version at one sequence length, keyed by the version's name."""

    seq_len: int
    seconds: dict[str, float]
    peak_bytes: dict[str, int]
    load_average: float | None = None  # the machine's 1-minute load, read after the timing


def attention_versions(block_size: int = 256) -> dict[str, Callable[..., Any]]:
    """The versions compared in lesson 12: name -> function(query, key, value)."""
    return {
        "naive": scaled_dot_product_attention,  # returns (output, weights), as the course's
        "tiled": lambda q, k, v: tiled_attention(q, k, v, block_size=block_size),
        "F.sdpa": F.scaled_dot_product_attention,
    }


def measure_attention(
    seq_len: int, head_dim: int = 64, *, block_size: int = 256, repeats: int = 3, seed: int = 0
) -> AttentionCost:
    """Time and peak memory of every ``attention_versions`` entry on self-attention inputs of
    shape (B, H, T, Dh) = (1, 1, seq_len, head_dim), float32 (lesson 12).

    After one warm-up call each, the versions are timed in turns, ``repeats`` rounds of one call
    per version, and each keeps its fastest time: a burst of load from other programs then
    slows all versions alike instead of one. Peak memory is measured in one more call each,
    with ``peak_memory_bytes`` (the profiler slows a call down, so it never runs while timing).
    The machine's load average, read right after the timing, goes with the numbers.
    """
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(1, 1, seq_len, head_dim, generator=g) for _ in range(3))  # (B, H, T, Dh)
    calls = {
        name: (lambda attend=attend: attend(q, k, v))
        for name, attend in attention_versions(block_size).items()
    }
    for call in calls.values():
        call()  # warm-up
    seconds = dict.fromkeys(calls, float("inf"))
    for _ in range(repeats):
        for name, call in calls.items():
            seconds[name] = min(seconds[name], time_call(call, repeats=1, warmup=0))
    load = load_average()
    peak_bytes = {name: peak_memory_bytes(call) for name, call in calls.items()}
    return AttentionCost(seq_len, seconds, peak_bytes, load)
