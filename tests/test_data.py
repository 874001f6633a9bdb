import pytest
import torch

from attn_course.data import signal_token_task


def test_signal_token_task_shapes_and_dtypes():
    data = signal_token_task(50, seq_len=9, vocab_size=15, num_classes=3,
                             generator=torch.Generator().manual_seed(0))
    assert data.tokens.shape == (50, 9) and data.tokens.dtype == torch.int64
    assert data.labels.shape == (50,) and data.labels.dtype == torch.int64
    assert data.signal_position.shape == (50,)
    assert data.is_signal.shape == (50, 9) and data.is_signal.dtype == torch.bool
    assert data.tokens.min() >= 0 and data.tokens.max() < 15


def test_each_sequence_holds_exactly_one_signal_token_naming_its_label():
    data = signal_token_task(200, generator=torch.Generator().manual_seed(1))
    is_signal_token = data.tokens < 4  # the default num_classes signal ids
    assert torch.equal(is_signal_token, data.is_signal)
    rows = torch.arange(200)
    assert torch.equal(data.tokens[rows, data.signal_position], data.labels)


def test_labels_and_positions_cover_their_ranges():
    data = signal_token_task(2000, generator=torch.Generator().manual_seed(2))
    assert set(data.labels.tolist()) == {0, 1, 2, 3}
    assert set(data.signal_position.tolist()) == set(range(64))


def test_same_generator_seed_gives_the_same_data_and_another_seed_does_not():
    def make(seed):
        return signal_token_task(30, generator=torch.Generator().manual_seed(seed))

    first, again, other = make(3), make(3), make(4)
    assert torch.equal(first.tokens, again.tokens)
    assert torch.equal(first.labels, again.labels)
    assert not torch.equal(first.tokens, other.tokens)


def test_num_classes_must_leave_room_for_noise():
    with pytest.raises(ValueError, match="num_classes"):
        signal_token_task(5, vocab_size=4, num_classes=4, generator=torch.Generator())
