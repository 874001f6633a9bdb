import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from attn_course.reference import causal_mask, padding_mask, scaled_dot_product_attention


def _inputs(lead, t, s, d, dv, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(*lead, t, d, generator=g, dtype=dtype),
        torch.randn(*lead, s, d, generator=g, dtype=dtype),
        torch.randn(*lead, s, dv, generator=g, dtype=dtype),
    )


@settings(max_examples=60, deadline=None)
@given(
    lead=st.lists(st.integers(1, 3), max_size=3),
    t=st.integers(1, 6),
    s=st.integers(1, 6),
    d=st.integers(1, 8),
    dv=st.integers(1, 8),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**31 - 1),
)
def test_matches_torch_on_random_shapes(lead, t, s, d, dv, dtype, seed):
    q, k, v = _inputs(lead, t, s, d, dv, dtype, seed)
    out, weights = scaled_dot_product_attention(q, k, v)
    assert out.shape == (*lead, t, dv) and weights.shape == (*lead, t, s)
    assert out.dtype == dtype
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))


@settings(max_examples=40, deadline=None)
@given(
    lead=st.lists(st.integers(1, 3), max_size=2),
    t=st.integers(1, 6),
    s=st.integers(1, 6),
    seed=st.integers(0, 2**31 - 1),
)
def test_matches_torch_with_a_boolean_mask(lead, t, s, seed):
    q, k, v = _inputs(lead, t, s, 4, 3, seed=seed)
    mask = torch.rand(*lead, t, s, generator=torch.Generator().manual_seed(seed)) > 0.5
    mask[..., 0] = True  # torch returns NaN for fully masked rows; ours gives zeros (tested below)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert (weights[~mask] == 0).all()


def test_matches_torch_causal_on_square_and_rectangular_inputs():
    for t, s in [(5, 5), (3, 7), (7, 3)]:
        q, k, v = _inputs([2, 3], t, s, 8, 5)
        mask = torch.ones(t, s, dtype=torch.bool).tril()  # torch's is_causal: top-left aligned
        out, _ = scaled_dot_product_attention(q, k, v, mask)
        torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    q, k, v = _inputs([2], 6, 6, 4, 4)
    torch.testing.assert_close(
        scaled_dot_product_attention(q, k, v, causal_mask(6))[0],
        F.scaled_dot_product_attention(q, k, v, is_causal=True),
    )


def test_padding_mask_broadcasts_over_queries():
    q, k, v = _inputs([3], 4, 6, 8, 2)
    keep = padding_mask(torch.tensor([6, 2, 1]), 6)[:, None, :]  # (B, 1, S)
    out, weights = scaled_dot_product_attention(q, k, v, keep)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=keep))
    assert torch.equal(weights[2, :, 1:], torch.zeros(4, 5))


def test_fully_masked_query_gets_zero_output_not_nan():
    q, k, v = _inputs([1], 2, 3, 4, 4)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.isfinite(out).all()
    assert torch.equal(out[0, 1], torch.zeros(4)) and torch.equal(weights[0, 1], torch.zeros(3))


def test_large_scores_give_no_inf_or_nan():
    q, k, v = _inputs([2], 4, 5, 8, 3)
    out, weights = scaled_dot_product_attention(q * 1e4, k * 1e4, v)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()


def test_gradcheck_in_float64():
    q, k, v = (x.requires_grad_() for x in _inputs([2], 3, 4, 5, 2, dtype=torch.float64))
    mask = torch.rand(2, 3, 4) > 0.3
    mask[..., 0] = True
    assert torch.autograd.gradcheck(
        lambda q, k, v: scaled_dot_product_attention(q, k, v, mask)[0], (q, k, v)
    )


def test_dropout_matches_torch_with_the_same_seed_and_does_not_mutate():
    q, k, v = _inputs([2], 4, 6, 8, 3)
    before = [x.clone() for x in (q, k, v)]
    torch.manual_seed(3)
    ours, weights = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    torch.manual_seed(3)
    keep = F.dropout(torch.ones(2, 4, 6), p=0.5)
    assert torch.equal(weights == 0, keep == 0)
    assert ours.shape == (2, 4, 3)
    assert all(torch.equal(a, b) for a, b in zip(before, (q, k, v), strict=True))
