import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attn_course.reference import (
    GreedyDecoder,
    GroupedQueryAttention,
    KVCache,
    TinyLanguageModel,
    apply_rotary,
    generate,
    repeat_kv,
    split_heads,
)


def test_repeat_kv_gives_query_head_h_the_kv_head_h_over_r():
    x = torch.randn(2, 3, 5, 4)  # (B, G, S, Dh)
    out = repeat_kv(x, 4)  # (B, 12, S, Dh)
    assert out.shape == (2, 12, 5, 4)
    for h in range(12):
        assert torch.equal(out[:, h], x[:, h // 4])
    assert torch.equal(out, x.repeat_interleave(4, dim=1))
    assert torch.equal(repeat_kv(x, 1), x)


def rotated_projections(attn: GroupedQueryAttention, x: torch.Tensor):
    """q (B, H, T, Dh), k and v (B, G, T, Dh), q and k rotated by positions 0 .. T-1."""
    positions = torch.arange(x.size(1))
    q = apply_rotary(split_heads(attn.w_q(x), attn.num_heads), positions)
    k = apply_rotary(split_heads(attn.w_k(x), attn.num_kv_heads), positions)
    return q, k, split_heads(attn.w_v(x), attn.num_kv_heads)


@pytest.mark.parametrize(("num_heads", "num_kv_heads"), [(4, 4), (4, 2), (6, 3), (4, 1)])
def test_gqa_equals_torch_sdpa_with_enable_gqa_and_with_repeated_heads(num_heads, num_kv_heads):
    torch.manual_seed(num_heads * 10 + num_kv_heads)
    d_model = 8 * num_heads
    attn = GroupedQueryAttention(d_model, num_heads, num_kv_heads).eval()
    assert attn.w_k.weight.shape == (num_kv_heads * 8, d_model)
    x = torch.randn(3, 7, d_model)
    with torch.no_grad():
        q, k, v = rotated_projections(attn, x)
        r = num_heads // num_kv_heads
        grouped = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        repeated = F.scaled_dot_product_attention(
            q, k.repeat_interleave(r, 1), v.repeat_interleave(r, 1), is_causal=True
        )
        merge = lambda context: attn.w_o(context.transpose(1, 2).reshape(3, 7, d_model))  # noqa: E731
        actual = attn(x)
    torch.testing.assert_close(actual, merge(grouped))
    torch.testing.assert_close(actual, merge(repeated))


@pytest.mark.parametrize("chunks", [[1] * 9, [4, 1, 1, 3], [9], [2, 7]])
@pytest.mark.parametrize("num_kv_heads", [1, 2, 4])
def test_cached_attention_equals_attention_over_the_whole_sequence(chunks, num_kv_heads):
    torch.manual_seed(len(chunks) + num_kv_heads)
    attn = GroupedQueryAttention(16, 4, num_kv_heads).eval()
    x = torch.randn(2, 9, 16)
    cache, outputs, start = KVCache(), [], 0
    with torch.no_grad():
        expected = attn(x)
        for n in chunks:
            outputs.append(attn(x[:, start : start + n], cache))
            start += n
        _, rotated_keys, values = rotated_projections(attn, x)
    torch.testing.assert_close(torch.cat(outputs, dim=1), expected)
    assert len(cache) == 9
    assert cache.key.shape == cache.value.shape == (2, num_kv_heads, 9, 4)  # G heads, not H
    torch.testing.assert_close(cache.key, rotated_keys)  # stored already rotated
    torch.testing.assert_close(cache.value, values)


def test_gqa_checks_its_sizes():
    with pytest.raises(ValueError, match="num_kv_heads"):
        GroupedQueryAttention(16, 4, 3)
    with pytest.raises(ValueError, match="num_heads"):
        GroupedQueryAttention(18, 4, 2)
    with pytest.raises(ValueError, match="even"):
        GroupedQueryAttention(12, 4, 2)  # Dh = 3


class RecordingModel(nn.Module):
    """A ``TinyLanguageModel`` that notes the shape of the tokens of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.model = TinyLanguageModel(vocab_size=11, d_model=16, num_heads=4, num_kv_heads=2,
                                       num_layers=2)  # fmt: skip
        self.num_layers = self.model.num_layers
        self.inputs: list[tuple[int, ...]] = []

    def forward(self, tokens, caches=None):
        self.inputs.append(tuple(tokens.shape))
        return self.model(tokens, caches)  # (B, T, V)


def test_generate_with_the_cache_equals_generate_without_it():
    torch.manual_seed(0)
    model = RecordingModel().eval()
    prompt = torch.randint(0, 11, (3, 5))
    cached = generate(model, prompt, 12)
    assert model.inputs == [(3, 5)] + [(3, 1)] * 11  # the prompt once, then one token a step
    model.inputs.clear()
    uncached = generate(model, prompt, 12, use_cache=False)
    assert model.inputs == [(3, 5 + i) for i in range(12)]  # the whole sequence every step
    assert cached.shape == (3, 17) and cached.dtype == torch.long
    assert torch.equal(cached, uncached)
    assert torch.equal(cached[:, :5], prompt)
    assert torch.equal(generate(model, prompt, 0), prompt)


def test_greedy_decoder_is_generate_over_its_model():
    torch.manual_seed(1)
    decoder = GreedyDecoder(vocab_size=9, d_model=8, num_heads=2, num_kv_heads=1, num_layers=3)
    prompt = torch.randint(0, 9, (2, 3))
    with torch.no_grad():
        tokens = decoder(prompt, 7)
    assert torch.equal(tokens, generate(decoder.model, prompt, 7, use_cache=False))


class CountingModel(nn.Module):
    """Logits that put the next token at (last token + 1) mod V: greedy output is known."""

    num_layers = 1

    def forward(self, tokens, caches=None):
        return F.one_hot((tokens + 1) % 7, 7).float()  # (B, T, V)


def test_generate_is_greedy():
    prompt = torch.tensor([[3, 5], [0, 6]])
    expected = torch.tensor([[3, 5, 6, 0, 1, 2], [0, 6, 0, 1, 2, 3]])
    assert torch.equal(generate(CountingModel(), prompt, 4), expected)
    assert torch.equal(generate(CountingModel(), prompt, 4, use_cache=False), expected)
