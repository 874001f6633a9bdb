import pytest
import torch

from attn_course.measure import (
    held_memory_bytes,
    load_average,
    measure_attention,
    memory_events,
    peak_memory_bytes,
    time_call,
)


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


def test_measure_attention_reports_every_version():
    cost = measure_attention(128, head_dim=16, block_size=32, repeats=1)
    assert cost.seq_len == 128
    assert set(cost.seconds) == set(cost.peak_bytes) == {"naive", "tiled", "F.sdpa"}
    assert all(seconds > 0 for seconds in cost.seconds.values())
    assert cost.peak_bytes["naive"] >= 2 * 128 * 128 * 4  # scores and weights, float32
    assert cost.peak_bytes["tiled"] < 128 * 128 * 4  # less than one (T, S) matrix
    assert cost.load_average is None or cost.load_average >= 0  # the load goes with the times


def test_held_memory_counts_what_outlives_the_call_not_what_it_drops():
    kept = []

    def keep_one_drop_one():
        torch.ones(1000, 1000)  # released at once
        kept.append(torch.ones(500, 1000))  # still held after the call
        return torch.ones(2000, 1000)  # the result is dropped inside the measurement

    assert held_memory_bytes(keep_one_drop_one) == 500 * 1000 * 4
    assert held_memory_bytes(lambda: torch.ones(1000, 1000)) == 0


def test_load_average_is_the_systems_one_minute_figure(monkeypatch):
    monkeypatch.setattr("os.getloadavg", lambda: (3.14159, 2.0, 1.0))
    assert load_average() == 3.14

    def no_load_average():
        raise OSError("not on this system")

    monkeypatch.setattr("os.getloadavg", no_load_average)
    assert load_average() is None


def test_memory_events_says_plainly_when_torch_keeps_them_elsewhere():
    class ProfileWithoutKinetoResults:
        profiler = object()

    with pytest.raises(RuntimeError, match=r"per-allocation events, and torch .* does not keep"):
        memory_events(ProfileWithoutKinetoResults())
