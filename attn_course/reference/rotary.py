"""Rotary position embeddings, RoPE (lesson 13).

Sinusoidal encodings (lesson 10) are added to the tokens, so a score q·k mixes content with
absolute positions. RoPE instead rotates each query and key by an angle proportional to its
position: pair j of features (j = 0 .. Dh/2 - 1) turns by ``position * theta_j``. A rotation
by m·theta dotted with one by n·theta equals a rotation by (n - m)·theta, so the score of
query m with key n depends on the contents and on the signed offset n - m only.

Pairing follows GPT-NeoX and Llama ("halves"): feature j pairs with feature j + Dh/2.
"""

import torch


def rotary_frequencies(
    head_dim: int, base: float = 10000.0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """theta_j = base^(-2j / Dh) for the Dh/2 pairs, shape (Dh/2,) (lesson 13).

    Pair 0 turns by one radian per position; the last pair turns slowest. ``head_dim`` must
    be even. Computed in float64, returned as ``dtype``.
    """
    if head_dim % 2 != 0:
        raise ValueError(f"head_dim must be even, got {head_dim}")
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim  # (Dh/2,)
    return (base**-exponents).to(dtype)  # (Dh/2,)


def apply_rotary(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotate every feature pair of x by its position's angle (lesson 13).

    x (..., T, Dh), Dh even; positions (T,) integer positions of the T rows (any tensor that
    broadcasts against x.shape[:-1] works) -> a new tensor (..., T, Dh), same dtype as x.
    Feature j and feature j + Dh/2 form pair j; at position p it is turned by p * theta_j,
    theta_j = base^(-2j/Dh):

        out[j]        = x[j] cos(p theta_j) - x[j + Dh/2] sin(p theta_j)
        out[j + Dh/2] = x[j] sin(p theta_j) + x[j + Dh/2] cos(p theta_j)

    Angles are computed in x's precision, at least float32: float64 for a float64 x, as
    float32 angles at positions in the thousands are off in the fourth decimal; float32 for a
    float32 x, where that error stays within float32's tolerance (and float64 is missing on
    some accelerators).
    """
    Dh = x.size(-1)
    compute_dtype = torch.promote_types(x.dtype, torch.float32)
    theta = rotary_frequencies(Dh, base, compute_dtype).to(x.device)  # (Dh/2,)
    angles = positions.to(device=x.device, dtype=compute_dtype).unsqueeze(-1) * theta  # (T, Dh/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)  # (T, Dh/2)
    x1, x2 = x[..., : Dh // 2], x[..., Dh // 2 :]  # (..., T, Dh/2) each
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (..., T, Dh)
