import math

import pytest
import torch

from attn_course.reference import (
    TransformerEncoderBlock,
    sinusoidal_positional_encoding,
    to_torch_encoder_layer,
)


def test_sinusoidal_encoding_follows_the_formula():
    pe = sinusoidal_positional_encoding(50, 16)
    assert pe.shape == (50, 16) and pe.dtype == torch.float32
    for pos, i in [(0, 0), (7, 3), (49, 7)]:
        angle = pos / 10000 ** (2 * i / 16)
        assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
        assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)


def test_sinusoidal_encoding_needs_even_width():
    with pytest.raises(ValueError, match="even"):
        sinusoidal_positional_encoding(4, 7)


def test_encoder_block_equals_torch_pre_norm_layer_with_copied_weights():
    torch.manual_seed(0)
    d_model, heads, d_ff = 16, 4, 32
    ours = TransformerEncoderBlock(d_model, heads, d_ff).eval()
    theirs = to_torch_encoder_layer(ours, heads).eval()
    x = torch.randn(2, 7, d_model)
    causal = torch.ones(7, 7, dtype=torch.bool).tril()
    torch.testing.assert_close(ours(x), theirs(x))
    torch.testing.assert_close(ours(x, causal), theirs(x, src_mask=~causal))
