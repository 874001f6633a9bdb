import pytest
import torch

from attn_course.reference import (
    MultiHeadAttention,
    causal_mask,
    merge_heads,
    split_heads,
    to_torch_multihead_attention,
)


@pytest.mark.parametrize("num_heads", [1, 2, 4, 8])
def test_self_attention_equals_nn_multihead_attention(num_heads):
    torch.manual_seed(num_heads)
    ours = MultiHeadAttention(16, num_heads)
    theirs = to_torch_multihead_attention(ours, num_heads)
    x = torch.randn(3, 5, 16)
    expected, _ = theirs(x, x, x, need_weights=False)
    torch.testing.assert_close(ours(x, x, x), expected)


def test_cross_attention_equals_nn_multihead_attention():
    torch.manual_seed(0)
    ours = MultiHeadAttention(12, 3)
    theirs = to_torch_multihead_attention(ours, 3)
    query, memory = torch.randn(2, 4, 12), torch.randn(2, 7, 12)
    expected, _ = theirs(query, memory, memory, need_weights=False)
    torch.testing.assert_close(ours(query, memory, memory), expected)


def test_masks_match_nn_multihead_attention():
    torch.manual_seed(1)
    ours = MultiHeadAttention(8, 2)
    theirs = to_torch_multihead_attention(ours, 2)
    x = torch.randn(2, 6, 8)
    causal = causal_mask(6)
    expected, _ = theirs(x, x, x, attn_mask=~causal, need_weights=False)  # torch: True = blocked
    torch.testing.assert_close(ours(x, x, x, causal), expected)

    lengths = torch.tensor([6, 3])
    keep = torch.arange(6) < lengths[:, None]  # (B, S)
    expected, _ = theirs(x, x, x, key_padding_mask=~keep, need_weights=False)
    torch.testing.assert_close(ours(x, x, x, keep[:, None, :]), expected)


def test_need_weights_returns_per_head_weights_whose_mean_torch_reports():
    torch.manual_seed(2)
    ours = MultiHeadAttention(8, 4)
    theirs = to_torch_multihead_attention(ours, 4)
    x = torch.randn(2, 5, 8)
    output, weights = ours(x, x, x, need_weights=True)
    assert weights.shape == (2, 4, 5, 5)
    expected_out, expected_mean = theirs(x, x, x, need_weights=True)
    torch.testing.assert_close(output, expected_out)
    torch.testing.assert_close(weights.mean(dim=1), expected_mean)


def test_split_and_merge_heads_are_inverse_and_keep_tokens_apart():
    x = torch.arange(2 * 3 * 8.0).view(2, 3, 8)
    heads = split_heads(x, 4)
    assert heads.shape == (2, 4, 3, 2)
    torch.testing.assert_close(heads[1, 2, 0], x[1, 0, 4:6])  # head 2 of token 0 = its dims 4:6
    torch.testing.assert_close(merge_heads(heads), x)


def test_d_model_must_divide_into_heads():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, dropout=0.5)
    x = torch.randn(1, 4, 8)
    mha.eval()
    torch.testing.assert_close(mha(x, x, x), mha(x, x, x))
    mha.train()
    assert not torch.allclose(mha(x, x, x), mha(x, x, x))
