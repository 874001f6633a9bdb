import contextlib
import io

import torch

from attn_course.reference import SimpleAttention, context_vector

# What the `SimpleAttention` example prints (weight [[1, 0, 0]], bias 0, its 1x4x3 input).
EXAMPLE_OUTPUT = """\
Attention weights: tensor([[[0.3655],
         [0.1345],
         [0.1345],
         [0.3655]]], grad_fn=<SoftmaxBackward0>)
Weighted sum: tensor([[0.7311, 0.6345, 0.7689]], grad_fn=<SumBackward1>)
"""


def test_the_simple_attention_example_prints_its_published_numbers():
    x = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]]])
    model = SimpleAttention(input_dim=3)
    with torch.no_grad():
        model.attention.weight.copy_(torch.tensor([[1.0, 0.0, 0.0]]))
        model.attention.bias.fill_(0)
    weighted_sum, weights = model(x)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        print("Attention weights:", weights)
        print("Weighted sum:", weighted_sum)
    assert printed.getvalue() == EXAMPLE_OUTPUT


def test_simple_attention_shapes_and_weights_sum_to_one():
    torch.manual_seed(0)
    model = SimpleAttention(input_dim=6)
    context, weights = model(torch.randn(4, 9, 6))
    assert context.shape == (4, 6)
    assert weights.shape == (4, 9, 1)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(4, 1))


def test_context_vector_is_a_weighted_sum():
    weights = torch.softmax(torch.randn(2, 3, 5), dim=-1)
    values = torch.randn(2, 3, 5, 4)
    expected = (weights.unsqueeze(-1) * values).sum(dim=-2)
    torch.testing.assert_close(context_vector(weights, values), expected)
    one_hot = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0])
    torch.testing.assert_close(context_vector(one_hot, values[0, 0]), values[0, 0, 2])
