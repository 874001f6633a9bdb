import math

import pytest
import torch
from torch import nn

from attn_course.lm import next_token_losses, repeated_segments, train_next_token


def make(seed=0, **kwargs):
    args = {"num_sequences": 50, "seq_len": 20, "vocab_size": 10, "min_period": 3,
            "max_period": 7} | kwargs
    return repeated_segments(**args, generator=torch.Generator().manual_seed(seed))


def test_repeated_segments_repeats_one_segment_per_row_with_a_period_in_range():
    tokens = make()
    assert tokens.shape == (50, 20) and tokens.dtype == torch.int64
    assert tokens.min() >= 0 and tokens.max() < 10
    for row in tokens:
        periods = [p for p in range(3, 8) if torch.equal(row[p:], row[:-p])]
        assert periods, f"no period between 3 and 7 in {row.tolist()}"
    assert torch.equal(make(seed=1), make(seed=1))
    assert not torch.equal(make(seed=1), make(seed=2))


def test_repeated_segments_with_one_period_writes_the_segment_twice():
    tokens = make(seq_len=16, min_period=8, max_period=8)
    assert torch.equal(tokens[:, :8], tokens[:, 8:])


@pytest.mark.parametrize(("min_period", "max_period"), [(0, 4), (5, 4), (3, 21)])
def test_repeated_segments_rejects_impossible_periods(min_period, max_period):
    with pytest.raises(ValueError, match="period"):
        make(min_period=min_period, max_period=max_period)


class Bigram(nn.Module):
    """Logits from the current token only: enough to test the loss and the training loop."""

    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, tokens):
        return self.table(tokens)  # (B, T, V)


def test_next_token_losses_score_position_t_against_token_t_plus_1():
    torch.manual_seed(0)
    model, tokens = Bigram(10), make()
    losses = next_token_losses(model, tokens)
    assert losses.shape == (50, 19)
    logits = model(tokens)
    expected = -torch.log_softmax(logits[0, 4], dim=-1)[tokens[0, 5]]
    assert losses[0, 4].item() == pytest.approx(expected.item(), rel=1e-6)
    with torch.no_grad():
        model.table.weight.zero_()  # uniform guesses
    assert torch.allclose(next_token_losses(model, tokens), torch.tensor(math.log(10)))


def test_train_next_token_learns_a_deterministic_successor_and_is_reproducible():
    tokens = (torch.arange(12) % 5).repeat(40, 1)  # 0 1 2 3 4 0 1 ...: next = (t + 1) % 5

    def run():
        torch.manual_seed(0)
        model = Bigram(5)
        losses = train_next_token(model, tokens, steps=60, batch_size=8, lr=0.1,
                                  generator=torch.Generator().manual_seed(0))
        return model, losses

    model, losses = run()
    assert len(losses) == 60
    assert losses[-1] < 0.05 < math.log(5) < losses[0] + 0.5
    assert not model.training
    assert run()[1] == losses


def test_train_next_token_calls_after_step_once_per_step_without_changing_the_run():
    tokens = (torch.arange(12) % 5).repeat(40, 1)
    seen = []

    def run(after_step=None):
        torch.manual_seed(0)
        model = Bigram(5)
        return train_next_token(model, tokens, steps=10, batch_size=8, lr=0.1,
                                generator=torch.Generator().manual_seed(0), after_step=after_step)

    assert run(seen.append) == run()
    assert seen == list(range(10))
