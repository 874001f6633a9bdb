import pytest
import torch
from torch import nn

from attn_course.induction import (
    AttentionOnlyTransformer,
    ablate_heads,
    induction_scores,
    previous_token_scores,
)
from attn_course.reference import causal_mask, to_torch_multihead_attention

V, T, D, H = 11, 9, 16, 2


@pytest.fixture
def model():
    torch.manual_seed(0)
    return AttentionOnlyTransformer(V, D, H, num_layers=2, max_len=T).eval()


@pytest.fixture
def tokens():
    return torch.randint(V, (3, T), generator=torch.Generator().manual_seed(1))


def test_forward_equals_the_same_model_built_from_nn_multihead_attention(model, tokens):
    torch_layers = [to_torch_multihead_attention(layer, H) for layer in model.layers]
    blocked = ~causal_mask(T)  # torch's boolean attn_mask: True = blocked
    with torch.no_grad():
        logits, weights = model(tokens, need_weights=True)
        x = model.token_embedding(tokens) + model.position_embedding(torch.arange(T))
        expected_weights = []
        for layer in torch_layers:
            out, w = layer(x, x, x, attn_mask=blocked, average_attn_weights=False)
            x = x + out
            expected_weights.append(w)
        expected_logits = model.unembed(model.norm(x))
    assert logits.shape == (3, T, V)
    assert weights.shape == (3, 2, H, T, T)
    assert torch.allclose(logits, expected_logits, atol=1e-5)
    assert torch.allclose(weights, torch.stack(expected_weights, dim=1), atol=1e-6)
    assert torch.equal(model(tokens), logits)


def test_attention_is_causal(model, tokens):
    with torch.no_grad():
        _, weights = model(tokens, need_weights=True)
        changed = tokens.clone()
        changed[:, 5] = (changed[:, 5] + 1) % V
        before, after = model(tokens), model(changed)
    assert torch.all(weights.masked_select(~causal_mask(T)) == 0)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 2, H, T))
    assert torch.allclose(before[:, :5], after[:, :5])
    assert not torch.allclose(before[:, 5:], after[:, 5:])


def one_key_per_query(keys):
    """(1, 1, 1, T, T) weights in which query t puts all its weight on key ``keys[t]``."""
    weights = nn.functional.one_hot(torch.tensor(keys), len(keys)).float()  # (T, T)
    return weights.view(1, 1, 1, len(keys), len(keys))


def test_head_scores_are_one_for_the_ideal_patterns_and_low_otherwise():
    previous = one_key_per_query([0, *range(11)])  # key t - 1
    induction = one_key_per_query([0] * 6 + [1, 2, 3, 4, 5, 6])  # period 6: key t - 5 from t = 6
    uniform = causal_mask(12) / causal_mask(12).sum(-1, keepdim=True)
    weights = torch.cat([previous, induction, uniform.view(1, 1, 1, 12, 12)], dim=2)  # 3 heads
    uniform_previous = (1 / torch.arange(2, 13)).mean().item()  # query t: 1 / (t + 1), t >= 1
    induction_previous = 1 / 11  # of queries 1..11, only query 1 (resting on key 0) looks back 1
    expected = [1.0, induction_previous, uniform_previous]
    assert previous_token_scores(weights)[0].tolist() == pytest.approx(expected)
    scores = induction_scores(weights, period=6)
    assert scores[0, 1].item() == pytest.approx(1.0)
    assert scores[0, 0].item() == 0.0
    assert scores[0, 2].item() == pytest.approx((1 / torch.arange(7, 13)).mean().item())
    assert scores.shape == (1, 3)


def test_ablate_heads_equals_zeroing_the_heads_columns_of_w_o_and_then_restores(model, tokens):
    with torch.no_grad():
        before = model(tokens)
        zeroed = AttentionOnlyTransformer(V, D, H, num_layers=2, max_len=T).eval()
        zeroed.load_state_dict(model.state_dict())
        zeroed.layers[0].w_o.weight[:, 8:16] = 0.0  # layer 0, head 1: columns Dh..2Dh
        zeroed.layers[1].w_o.weight[:, 0:8] = 0.0  # layer 1, head 0
        with ablate_heads(model, [(0, 1), (1, 0)]):
            ablated = model(tokens)
        after = model(tokens)
    assert torch.allclose(ablated, zeroed(tokens), atol=1e-6)
    assert not torch.allclose(ablated, before)
    assert torch.equal(after, before)


def test_ablate_heads_restores_the_model_after_an_error(model, tokens):
    with torch.no_grad():
        before = model(tokens)
        with pytest.raises(RuntimeError), ablate_heads(model, [(0, 0)]):
            raise RuntimeError
        assert torch.equal(model(tokens), before)
    assert all(not layer.w_o._forward_pre_hooks for layer in model.layers)


def test_ablating_every_head_leaves_only_the_current_token_and_position(model, tokens):
    everything = [(layer, head) for layer in range(2) for head in range(H)]
    changed = tokens.clone()
    changed[:, 0] = (changed[:, 0] + 1) % V
    with torch.no_grad(), ablate_heads(model, everything):
        assert torch.allclose(model(tokens)[:, 1:], model(changed)[:, 1:], atol=1e-6)


def test_the_model_trains_end_to_end():
    torch.manual_seed(0)
    model = AttentionOnlyTransformer(V, D, H, num_layers=1, max_len=T)
    logits = model(torch.zeros(2, T, dtype=torch.long))
    targets = torch.zeros(2 * T, dtype=torch.long)
    nn.functional.cross_entropy(logits.flatten(0, 1), targets).backward()
    assert all(p.grad is not None for p in model.parameters())
