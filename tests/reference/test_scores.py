import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attn_course.reference import (
    AdditiveScore,
    BilinearScore,
    attention_scores,
    scaled_dot_product_scores,
)


@settings(max_examples=40, deadline=None)
@given(
    lead=st.lists(st.integers(1, 3), max_size=2),
    s=st.integers(1, 7),
    d=st.integers(1, 9),
    seed=st.integers(0, 2**31 - 1),
)
def test_attention_scores_are_dot_products(lead, s, d, seed):
    g = torch.Generator().manual_seed(seed)
    query, keys = torch.randn(*lead, d, generator=g), torch.randn(*lead, s, d, generator=g)
    scores = attention_scores(query, keys)
    assert scores.shape == (*lead, s)
    torch.testing.assert_close(scores, torch.einsum("...d,...sd->...s", query, keys))


def test_scaled_scores_divide_by_sqrt_of_width():
    query, key = torch.randn(2, 4, 16), torch.randn(2, 6, 16)
    expected = torch.einsum("btd,bsd->bts", query, key) / math.sqrt(16)
    torch.testing.assert_close(scaled_dot_product_scores(query, key), expected)


def test_additive_score_matches_the_formula():
    torch.manual_seed(0)
    score = AdditiveScore(query_dim=5, key_dim=3, hidden_dim=7)
    query, key = torch.randn(2, 4, 5), torch.randn(2, 6, 3)
    out = score(query, key)
    assert out.shape == (2, 4, 6)
    for b, t, s in [(0, 0, 0), (1, 3, 5), (1, 2, 1)]:
        hidden = torch.tanh(score.w_q.weight @ query[b, t] + score.w_k.weight @ key[b, s])
        torch.testing.assert_close(out[b, t, s], (score.v.weight @ hidden).squeeze())


def test_bilinear_score_matches_the_formula():
    torch.manual_seed(0)
    score = BilinearScore(query_dim=5, key_dim=3)
    query, key = torch.randn(4, 5), torch.randn(6, 3)
    expected = query @ score.w.weight @ key.T
    torch.testing.assert_close(score(query, key), expected)
