"""Measuring the time and the peak memory of one call on the CPU (lesson 12, benchmarks/).

Peak memory is read from PyTorch's own profiler: with ``profile_memory=True`` it records every
allocation and release made by PyTorch's CPU allocator, with its size and time. Replaying
those events in time order gives the bytes held at each moment; the peak of that running
total is the extra memory the call needed (tensors that existed before the call, like its
inputs, are not counted). Python's ``tracemalloc`` cannot do this: it does not see
PyTorch's allocations.
"""

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from torch.profiler import ProfilerActivity, profile


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


def peak_memory_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated by PyTorch on the CPU while ``fn()`` runs, above what was held before.

    Runs ``fn`` once under ``torch.profiler`` with ``profile_memory=True``; see the module
    docstring for the method. The result of ``fn`` is dropped after the measurement.
    """
    with (
        _silenced_stderr_fd(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    held = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        held += event.nbytes()  # positive when allocated, negative when released
        peak = max(peak, held)
    return peak


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
