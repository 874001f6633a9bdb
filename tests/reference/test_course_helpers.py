"""The course's helper modules beside the reference: hooks that clean up after a bad argument,
and tensors made on the input's device and in its dtype ("meta" stands in for an accelerator:
a CPU tensor mixed with a meta one raises as it would with a CUDA one)."""

import pytest
import torch

from attn_course.induction import AttentionOnlyTransformer, ablate_heads
from attn_course.models import MeanPoolingClassifier


def test_ablate_heads_removes_its_hooks_when_a_pair_is_out_of_range():
    model = AttentionOnlyTransformer(10, 8, 2, num_layers=2)
    with pytest.raises(IndexError), ablate_heads(model, [(0, 0), (1, 1), (5, 0)]):
        pass
    assert all(not layer.w_o._forward_pre_hooks for layer in model.layers)


def test_ablate_heads_works_on_the_models_device():
    model = AttentionOnlyTransformer(10, 8, 2).to("meta")
    tokens = torch.zeros(2, 5, dtype=torch.long, device="meta")
    with ablate_heads(model, [(0, 1)]):
        assert model(tokens).shape == (2, 5, 10)


def test_mean_pooling_weights_follow_the_models_dtype_and_device():
    model = MeanPoolingClassifier(10, 4, 3).double()
    _, weights = model(torch.zeros(2, 5, dtype=torch.long))
    assert weights.dtype == torch.float64
    _, weights = model.to("meta")(torch.zeros(2, 5, dtype=torch.long, device="meta"))
    assert weights.device.type == "meta"
