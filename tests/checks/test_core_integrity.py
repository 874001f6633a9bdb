"""What ``run_case`` hands to ``judge`` cannot be forged by the learner's code: outputs are
private plain copies made inside the recorded window, every call is recorded (the second,
eval-mode call and the training-mode call too), results written into a buffer made earlier
count as memory, and any op that folds a whole row counts as reading it, listed or not.

Each test is an attack that earned points before these rules (or a fact they rest on)."""

import torch
from torch import nn

from attn_course import reference
from attn_course.checks import EXERCISES, run_check
from attn_course.checks.core import Case, plain, run_case


class LazyTensor(torch.Tensor):
    """A tensor subclass that does its work when it is read: after the call, when the
    grader turns the output into plain values."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        scores = args[0].as_subclass(torch.Tensor)
        return torch.softmax(scores, dim=-1)  # the forbidden built-in, outside the window


def lazy_softmax(scores, dim=-1):
    return scores.clone().as_subclass(LazyTensor)


def test_a_tensor_subclass_is_not_judged_as_a_tensor():
    verdict = run_check("softmax", lazy_softmax, seed=0)
    assert verdict.status != "passed"
    outcome = run_case(lazy_softmax, Case("c", (torch.randn(2, 3),)), ("softmax",))
    assert outcome.output == "<LazyTensor>"


def test_plain_keeps_exact_types_only_and_copies_tensors():
    class Number(int):
        pass

    tensor = torch.ones(3)
    copied = plain((tensor, [1, 2.5, "x", None, True]))
    assert copied == (copied[0], [1, 2.5, "x", None, True]) and type(copied) is tuple
    tensor.zero_()  # the learner keeps its tensor and changes it later
    assert torch.equal(copied[0], torch.ones(3))
    assert plain(Number(3)) == "<Number>"
    assert plain(torch.ones(2).to_sparse()) == "<torch.sparse_coo tensor>"


class FillsItsOutputWhenTrained(nn.Module):
    """Returns a tensor it keeps, and writes the right answer into it only in training mode,
    after the eval-mode output was taken."""

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.attention = nn.Linear(input_dim, 1)
        self.kept = None

    def forward(self, x):
        if self.training and self.kept is not None:
            with torch.no_grad():
                right = reference.SimpleAttention.forward(self, x)
                for kept, value in zip(self.kept, right, strict=True):
                    kept.copy_(value)
            return x.sum()
        if self.kept is None or self.kept[1].shape[:-1] != x.shape[:-1]:
            self.kept = torch.zeros(x.shape[0], x.shape[-1]), torch.zeros(*x.shape[:-1], 1)
        return self.kept


def test_the_training_call_cannot_fill_the_output_judged():
    verdict = run_check("SimpleAttention", FillsItsOutputWhenTrained, seed=0)
    assert verdict.status == "failed"


class SoftmaxOnSecondCall(nn.Module):
    """Honest values; the forbidden built-in only on the second (stability) call."""

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.attention = nn.Linear(input_dim, 1)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        scores = self.attention(x).squeeze(-1)
        if self.calls == 2:
            weights = torch.softmax(scores, dim=-1)
        else:
            weights = reference.softmax(scores, dim=-1)
        return (weights.unsqueeze(-1) * x).sum(-2), weights


def test_the_second_call_is_recorded():
    case = EXERCISES["SimpleAttention"].make_cases(torch.Generator().manual_seed(0))[0]
    outcome = run_case(SoftmaxOnSecondCall, case, ("softmax",))
    assert outcome.forbidden


BUFFER = torch.empty(1 << 20)  # made before the check, as a scratch cell would


def naive_attention_into_a_buffer(query, key, value, mask=None, block_size=64):
    T, S = query.size(-2), key.size(-2)
    lead = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2])
    scores = BUFFER[: int(torch.Size(lead).numel()) * T * S].view(*lead, T, S)
    torch.matmul(query, key.transpose(-2, -1), out=scores)  # no new memory: written
    scores.div_(query.size(-1) ** 0.5)
    if mask is not None:
        scores.masked_fill_(~mask, float("-inf"))
    scores.sub_(scores.amax(dim=-1, keepdim=True)).exp_()  # the softmax, in place
    scores.div_(scores.sum(dim=-1, keepdim=True))
    return scores @ value  # (..., T, Dv)


def test_a_result_written_into_an_earlier_buffer_counts_as_memory():
    q, k, v = torch.randn(1, 256, 8), torch.randn(1, 1024, 8), torch.randn(1, 1024, 8)
    outcome = run_case(naive_attention_into_a_buffer, Case("c", (q, k, v), {"block_size": 64}))
    assert outcome.error is None
    assert outcome.largest >= 256 * 1024


def row_max_by_sorting(scores, block_size):
    """The online softmax's values, with the row's maximum and sum read in one go through
    ops outside the usual list of reductions."""
    row_max = scores.sort(dim=-1).values[..., -1:]  # (..., 1)
    exp_scores = torch.exp(scores - row_max)  # (..., S)
    row_sum = exp_scores.cumsum(dim=-1)[..., -1:]  # (..., 1)
    return exp_scores / row_sum


def row_sum_by_matmul(scores, block_size):
    row_max = scores.topk(1, dim=-1).values  # (..., 1)
    exp_scores = torch.exp(scores - row_max)  # (..., S)
    ones = torch.ones(scores.size(-1), 1, dtype=scores.dtype)
    return exp_scores / (exp_scores @ ones)  # (..., S)


def test_reading_a_whole_row_is_seen_through_any_op():
    for attempt in (row_max_by_sorting, row_sum_by_matmul):
        verdict = run_check("online_softmax", attempt, seed=0)
        assert verdict.status == "failed", attempt.__name__
        assert "reads whole rows" in verdict.message


def test_masks_and_pointwise_ops_over_a_whole_row_are_not_reading_it():
    def guarded(scores, block_size):
        if bool(torch.isneginf(scores).all(dim=-1).any()):  # a reduction over booleans
            raise ValueError("a fully masked row")
        return reference.online_softmax(scores, block_size)

    assert run_check("online_softmax", guarded, seed=0).passed


def test_a_mode_left_active_by_the_learner_is_refused():
    class Spy(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    with Spy():
        outcome = run_case(reference.softmax, Case("c", (torch.randn(2, 3),)))
    assert outcome.error is not None and "Spy" in outcome.error
    with torch.device("cpu"):  # torch's own default-device mode is no learner's code
        assert run_case(reference.softmax, Case("c", (torch.randn(2, 3),))).error is None


def online_softmax_in_numpy(scores, block_size):
    """The rows read whole in numpy, where no recorder sees the max and the sum."""
    import numpy as np

    rows = np.asarray(scores)
    exp_rows = np.exp(rows - rows.max(axis=-1, keepdims=True))
    return torch.from_numpy(exp_rows / exp_rows.sum(axis=-1, keepdims=True))


def tiled_attention_in_numpy(query, key, value, mask=None, block_size=64, is_causal=False):
    """The whole score matrix, made in numpy."""
    import numpy as np

    scores = query.numpy() @ np.swapaxes(key.numpy(), -1, -2) / np.sqrt(query.size(-1))
    T, S = scores.shape[-2:]
    if is_causal:
        scores = np.where(np.tril(np.ones((T, S), dtype=bool)), scores, -np.inf)
    if mask is not None:
        scores = np.where(mask.numpy(), scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return torch.from_numpy(weights @ value.numpy()).to(value.dtype)


def test_work_moved_out_of_torch_fails_the_rules_that_measure_how():
    for name, attempt in [
        ("online_softmax", online_softmax_in_numpy),
        ("tiled_attention", tiled_attention_in_numpy),
    ]:
        verdict = run_check(name, attempt, seed=0)
        assert verdict.status == "failed", name
        assert "out of torch" in verdict.message, verdict.message


def test_numpy_for_a_scale_or_a_constant_is_fine():
    import numpy as np

    def tiled_with_numpy_scale(query, key, value, **options):
        scale = 1 / np.sqrt(query.size(-1))  # a number, not a tensor, leaves torch
        unscaled = query * float(scale) * query.size(-1) ** 0.5
        return reference.tiled_attention(unscaled, key, value, **options)

    assert run_check("tiled_attention", tiled_with_numpy_scale, seed=0).passed


class HidesItsInstability(nn.Module):
    """Gives another output on the second call, and reassigns ``Tensor.all`` so that a
    comparison made with torch's Python-level methods would call the two equal."""

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.attention = nn.Linear(input_dim, 1)
        self.calls = 0
        torch.Tensor.all = lambda self, *args, **kwargs: torch.ones((), dtype=torch.bool)

    def forward(self, x):
        self.calls += 1
        context, weights = reference.SimpleAttention.forward(self, x)
        return context + (self.calls - 1), weights


def test_instability_is_found_whatever_the_learner_reassigns(monkeypatch):
    monkeypatch.setattr(torch.Tensor, "all", torch.Tensor.all)  # put back after the test
    case = EXERCISES["SimpleAttention"].make_cases(torch.Generator().manual_seed(0))[0]
    assert run_case(HidesItsInstability, case).unstable
