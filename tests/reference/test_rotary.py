import math

import pytest
import torch

from attn_course.reference import apply_rotary, rotary_frequencies


def rotary_by_complex_numbers(x: torch.Tensor, positions: torch.Tensor, base: float):
    """RoPE written independently: pair j is the complex number x[j] + i x[j + Dh/2], and
    rotating it by p·theta_j is multiplying by e^(i p theta_j)."""
    half = x.size(-1) // 2
    theta = torch.tensor([base ** (-2 * j / x.size(-1)) for j in range(half)], dtype=torch.float64)
    turns = torch.polar(torch.ones(len(positions), half, dtype=torch.float64),
                        positions.double()[:, None] * theta)  # fmt: skip
    z = torch.complex(x[..., :half].double(), x[..., half:].double()) * turns
    return torch.cat((z.real, z.imag), dim=-1).to(x.dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(5, 2), (3, 7, 8), (2, 4, 6, 16)])
def test_apply_rotary_equals_the_complex_number_formulation(shape, dtype):
    torch.manual_seed(len(shape))
    x = torch.randn(shape, dtype=dtype)
    positions = torch.randint(0, 500, (shape[-2],))
    # float32 holds an angle near 500 rad to about 3e-5, so its outputs differ by as much
    tolerance = {"atol": 1e-4, "rtol": 1e-4} if dtype == torch.float32 else {}
    for base in (10000.0, 100.0):
        actual = apply_rotary(x, positions, base)
        assert actual.dtype == dtype and actual.shape == x.shape
        expected = rotary_by_complex_numbers(x, positions, base)
        torch.testing.assert_close(actual, expected, **tolerance)


def test_apply_rotary_by_hand():
    x = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 2.0]])  # (T, Dh) = (2, 4)
    out = apply_rotary(x, torch.tensor([1, 2]))
    theta1 = 1 / 100.0  # 10000^(-2/4)
    expected = torch.tensor([
        [math.cos(1), 0.0, math.sin(1), 0.0],  # pair 0 (features 0 and 2) turned by 1 rad
        [-math.sin(2), -2 * math.sin(2 * theta1), math.cos(2), 2 * math.cos(2 * theta1)],
    ])  # fmt: skip
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(rotary_frequencies(4), torch.tensor([1.0, theta1]))


def test_scores_depend_only_on_the_signed_offset():
    torch.manual_seed(0)
    q, k = torch.randn(1, 32, dtype=torch.float64), torch.randn(1, 32, dtype=torch.float64)

    def score(query_pos: int, key_pos: int) -> float:
        rotated_q = apply_rotary(q, torch.tensor([query_pos]))
        rotated_k = apply_rotary(k, torch.tensor([key_pos]))
        return (rotated_q @ rotated_k.T).item()

    assert score(3, 7) == pytest.approx(score(103, 107), rel=1e-9)
    assert score(7, 3) == pytest.approx(score(250, 246), rel=1e-9)
    assert score(5, 5) == pytest.approx((q @ k.T).item(), rel=1e-9)  # offset 0: no rotation
    assert abs(score(3, 7) - score(7, 3)) > 1e-3  # the sign of the offset matters


def test_apply_rotary_keeps_norms_and_leaves_the_input_alone():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 9, 8)
    copy = x.clone()
    out = apply_rotary(x, torch.arange(9))
    assert torch.equal(x, copy)
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(out[..., 0, :], x[..., 0, :])  # position 0 is not turned


def test_apply_rotary_rejects_an_odd_head_width():
    with pytest.raises(ValueError, match="even"):
        apply_rotary(torch.zeros(3, 5), torch.arange(3))
