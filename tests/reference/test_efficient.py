import pytest
import torch
import torch.nn.functional as F

from attn_course.measure import peak_memory_bytes
from attn_course.reference import (
    KVCache,
    cached_causal_attention,
    causal_mask,
    online_softmax,
    scaled_dot_product_attention,
    tiled_attention,
)


def random_qkv(seed: int, dtype: torch.dtype):
    """Random shapes with T != S, Dv != D, 0-2 leading dims, and a block size dividing neither."""
    g = torch.Generator().manual_seed(seed)
    lead = tuple(torch.randint(1, 4, (seed % 3,), generator=g).tolist())
    T, S, D, Dv = torch.randint(1, 40, (4,), generator=g).tolist()
    q = torch.randn(*lead, T, D, generator=g, dtype=dtype)
    k = torch.randn(*lead, S, D, generator=g, dtype=dtype)
    v = torch.randn(*lead, S, Dv, generator=g, dtype=dtype)
    return q, k, v, g


@pytest.mark.parametrize("block_size", [1, 3, 7, 16, 64])
def test_online_softmax_equals_softmax(block_size):
    torch.manual_seed(block_size)
    scores = torch.randn(3, 5, 37) * 30
    scores[0, 0, 5] = 1e4  # a huge score in a late block rescales the earlier ones
    torch.testing.assert_close(online_softmax(scores, block_size), torch.softmax(scores, dim=-1))


def test_online_softmax_handles_minus_infinity_like_masked_softmax():
    scores = torch.tensor([[0.0, float("-inf"), 2.0, float("-inf")], [float("-inf")] * 4])
    weights = online_softmax(scores, 2)
    torch.testing.assert_close(weights[0], torch.softmax(scores[0], dim=-1))
    assert torch.equal(weights[1], torch.zeros(4))


def test_online_softmax_rejects_empty_blocks():
    with pytest.raises(ValueError, match="block_size"):
        online_softmax(torch.zeros(3), 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", range(8))
def test_tiled_attention_equals_the_reference_and_torch(seed, dtype):
    q, k, v, g = random_qkv(seed, dtype)
    block_size = int(torch.randint(1, 13, (1,), generator=g))
    expected, _ = scaled_dot_product_attention(q, k, v)
    actual = tiled_attention(q, k, v, block_size=block_size)
    assert actual.shape == expected.shape and actual.dtype == dtype
    torch.testing.assert_close(actual, expected)
    torch.testing.assert_close(actual, F.scaled_dot_product_attention(q, k, v))


@pytest.mark.parametrize("seed", range(6))
def test_tiled_attention_with_a_mask_equals_the_reference(seed):
    q, k, v, g = random_qkv(seed, torch.float64)
    T, S = q.size(-2), k.size(-2)
    mask = torch.rand(T, S, generator=g) < 0.6
    mask[0] = False  # a fully masked query: zero output, as in the reference
    expected, _ = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(tiled_attention(q, k, v, mask, block_size=5), expected)
    padding = torch.arange(S) < max(S // 2, 1)  # (S,) broadcast over queries
    expected, _ = scaled_dot_product_attention(q, k, v, padding)
    torch.testing.assert_close(tiled_attention(q, k, v, padding, block_size=4), expected)


@pytest.mark.parametrize(("T", "S"), [(9, 9), (5, 12), (12, 5)])
def test_tiled_attention_causal_equals_torch_is_causal(T, S):
    torch.manual_seed(T * S)
    q, k, v = torch.randn(2, T, 8), torch.randn(2, S, 8), torch.randn(2, S, 6)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(tiled_attention(q, k, v, block_size=4, is_causal=True), expected)
    if T == S:
        reference, _ = scaled_dot_product_attention(q, k, v, causal_mask(T))
        torch.testing.assert_close(tiled_attention(q, k, v, is_causal=True), reference)


def test_tiled_attention_broadcasts_leading_dims_and_leaves_inputs_alone():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 6, 4), torch.randn(1, 3, 10, 4), torch.randn(3, 10, 5)
    copies = [t.clone() for t in (q, k, v)]
    expected, _ = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(tiled_attention(q, k, v, block_size=3), expected)
    for original, copy in zip((q, k, v), copies, strict=True):
        assert torch.equal(original, copy)


def test_tiled_attention_survives_huge_scores():
    q = torch.tensor([[1e3, 0.0], [-1e3, 0.0]])
    k = torch.tensor([[1.0, 0.0], [5.0, 0.0], [-5.0, 0.0]])
    v = torch.randn(3, 4)
    expected, _ = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(tiled_attention(q, k, v, block_size=1), expected)


def test_tiled_attention_never_holds_a_t_by_s_matrix():
    torch.manual_seed(0)
    T = S = 1024
    q, k, v = torch.randn(1, T, 32), torch.randn(1, S, 32), torch.randn(1, S, 32)
    one_matrix = T * S * 4  # float32 bytes of a single (T, S) tensor
    naive = peak_memory_bytes(lambda: scaled_dot_product_attention(q, k, v))
    tiled = peak_memory_bytes(lambda: tiled_attention(q, k, v, block_size=64))
    assert naive >= 2 * one_matrix  # scores and weights at least: the measurement sees them
    assert tiled < one_matrix / 4
    assert tiled >= T * 64 * 4  # one (T, block) tile at least: the measurement is not blind


@pytest.mark.parametrize("chunks", [[1] * 11, [4, 1, 6], [11]])
def test_cached_causal_attention_equals_full_recomputation(chunks):
    torch.manual_seed(len(chunks))
    q, k, v = torch.randn(2, 3, 11, 8), torch.randn(2, 3, 11, 8), torch.randn(2, 3, 11, 5)
    expected, _ = scaled_dot_product_attention(q, k, v, causal_mask(11))
    cache, outputs, start = KVCache(), [], 0
    for n in chunks:
        new = slice(start, start + n)
        q_new, k_new, v_new = q[..., new, :], k[..., new, :], v[..., new, :]  # (2, 3, n, .)
        outputs.append(cached_causal_attention(q_new, k_new, v_new, cache))
        start += n
        assert len(cache) == start
    torch.testing.assert_close(torch.cat(outputs, dim=-2), expected)


def test_kv_cache_appends_copies_in_order():
    cache = KVCache()
    assert len(cache) == 0
    k1, v1 = torch.randn(2, 3, 4), torch.randn(2, 3, 6)
    keys, values = cache.append(k1, v1)
    k1.zero_()  # the cache holds its own copy
    k2, v2 = torch.randn(2, 1, 4), torch.randn(2, 1, 6)
    keys, values = cache.append(k2, v2)
    assert keys.shape == (2, 4, 4) and values.shape == (2, 4, 6) and len(cache) == 4
    assert torch.equal(keys[:, 3:], k2) and torch.equal(values[:, :3], v1)
    assert not torch.equal(keys[:, :3], k1)
