import torch

from attn_course.measure import peak_memory_bytes, time_call


def test_peak_memory_sees_a_torch_allocation():
    nbytes = 1000 * 1000 * 4
    assert nbytes <= peak_memory_bytes(lambda: torch.ones(1000, 1000)) < 1.1 * nbytes


def test_peak_memory_counts_what_is_held_at_once_not_the_total():
    def one_after_another():
        for _ in range(5):
            torch.ones(1000, 1000)  # released before the next one is made

    def all_at_once():
        return [torch.ones(1000, 1000) for _ in range(5)]

    one = peak_memory_bytes(one_after_another)
    five = peak_memory_bytes(all_at_once)
    assert one < 1.1 * 4e6 and 5 * 4e6 <= five < 5.5 * 4e6


def test_peak_memory_does_not_count_tensors_made_before():
    existing = torch.ones(1000, 1000)
    assert peak_memory_bytes(lambda: existing.sum()) < 4e4


def test_time_call_returns_the_fastest_run():
    calls = []
    seconds = time_call(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6 and 0 <= seconds < 0.1
