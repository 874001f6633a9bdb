import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from attn_course.reference import causal_mask, masked_softmax, padding_mask, softmax

shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4)


@settings(max_examples=50, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([1.0, 10.0, 1e4]))
def test_softmax_matches_torch_on_random_shapes(shape, seed, scale):
    scores = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale
    for dim in range(-len(shape), len(shape)):
        torch.testing.assert_close(softmax(scores, dim=dim), F.softmax(scores, dim=dim))


def test_softmax_of_huge_scores_is_finite_and_exact():
    scores = torch.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]])
    weights = softmax(scores)
    assert torch.isfinite(weights).all()
    torch.testing.assert_close(weights, F.softmax(scores, dim=-1))
    torch.testing.assert_close(weights[2], torch.tensor([0.5, 0.5, 0.0]))


def test_softmax_does_not_mutate_its_input():
    scores = torch.randn(3, 4)
    before = scores.clone()
    softmax(scores)
    masked_softmax(scores, torch.rand(3, 4) > 0.5)
    assert torch.equal(scores, before)


def test_masked_softmax_matches_torch_where_a_row_has_any_allowed_key():
    scores = torch.randn(2, 3, 4, 6, dtype=torch.float64)
    mask = torch.rand(2, 1, 4, 6) > 0.4
    mask[..., 0] = True
    expected = F.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    torch.testing.assert_close(masked_softmax(scores, mask), expected)


def test_fully_masked_rows_give_zero_weights_not_nan():
    scores = torch.randn(3, 5, requires_grad=True)
    mask = torch.tensor([[True] * 5, [False] * 5, [True, False, True, False, False]])
    weights = masked_softmax(scores, mask)
    assert torch.equal(weights[1], torch.zeros(5))
    torch.testing.assert_close(weights.sum(-1), torch.tensor([1.0, 0.0, 1.0]))
    weights.sum().backward()
    assert torch.isfinite(scores.grad).all()


def test_softmax_and_masked_softmax_pass_gradcheck():
    scores = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(3, 5) > 0.3
    mask[:, 0] = True
    assert torch.autograd.gradcheck(lambda s: softmax(s, dim=0), (scores,))
    assert torch.autograd.gradcheck(lambda s: masked_softmax(s, mask), (scores,))


def test_causal_mask_is_true_on_and_below_the_diagonal():
    assert torch.equal(
        causal_mask(3),
        torch.tensor([[True, False, False], [True, True, False], [True, True, True]]),
    )
    assert causal_mask(1).dtype == torch.bool


def test_padding_mask_marks_real_tokens():
    mask = padding_mask(torch.tensor([2, 0, 4]), max_len=4)
    expected = torch.tensor(
        [[True, True, False, False], [False, False, False, False], [True, True, True, True]]
    )
    assert torch.equal(mask, expected)
