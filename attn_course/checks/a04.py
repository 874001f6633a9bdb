"""Assignment 04 (lesson 10): sinusoidal positional encoding, the feed-forward network and the
pre-norm transformer encoder block."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from attn_course import reference
from attn_course.checks.a01 import randn
from attn_course.checks.a02 import random_mask
from attn_course.checks.a03 import multi_head
from attn_course.checks.core import Case
from attn_course.checks.exercise import (
    Exercise,
    Mistake,
    Probe,
    Trial,
    catalogue,
    hint,
    reference_output,
    same,
)

ASSIGNMENT = "04_positional_encoding_and_block"


# --- sinusoidal_positional_encoding(seq_len, d_model) -----------------------------------------


def _encoding_cases(g: torch.Generator) -> list[Case]:
    seq_len, half_width = (int(n) for n in torch.randint(5, 60, (2,), generator=g))
    return [
        Case("seq_len 4, d_model 6", (4, 6)),
        Case("seq_len 10, d_model 8", (10, 8)),
        Case("a single position, seq_len 1", (1, 4)),
        Case("one column pair, d_model 2", (5, 2)),
        Case("seq_len 50, d_model 32", (50, 32)),
        Case("seq_len 3, d_model 64", (3, 64)),
        Case("random seq_len and d_model", (seq_len, 2 * half_width)),
    ]


def encoding(
    case: Case,
    first_position: int = 0,
    exponent: str = "2i/D",
    swap: bool = False,
    halves: bool = False,
) -> torch.Tensor:
    """The sinusoidal encoding written out, with one knob per known mistake.

    ``exponent`` of 10000 in the frequency of column pair i: "2i/D" (right), "i/D", "2i" (no
    division by D), "column/D" (odd column 2i+1 uses 2i+1); ``swap``: cos in even columns;
    ``halves``: sin in the first half of the columns, cos in the second.
    """
    seq_len, d_model = case.args
    position = torch.arange(first_position, first_position + seq_len, dtype=torch.float64)
    pair = torch.arange(d_model // 2, dtype=torch.float64)  # i
    power = {"2i/D": 2 * pair / d_model, "i/D": pair / d_model, "2i": 2 * pair}
    odd_power = (2 * pair + 1) / d_model if exponent == "column/D" else None
    even_power = power.get(exponent, 2 * pair / d_model)
    odd_power = even_power if odd_power is None else odd_power
    even = position[:, None] / 10000.0**even_power  # (T, D/2)
    odd = position[:, None] / 10000.0**odd_power  # (T, D/2)
    first, second = (even.cos(), odd.sin()) if swap else (even.sin(), odd.cos())
    if halves:
        return torch.cat((first, second), dim=-1).float()  # (T, D)
    return torch.stack((first, second), dim=-1).flatten(-2).float()  # (T, D)


ENCODING_MISTAKES = catalogue(
    "sinusoidal_positional_encoding",
    "sin-cos-swapped halves frequency-i-over-D frequency-not-divided odd-column-frequency "
    "positions-from-1",
    Mistake(
        "sin and cos are swapped: the even columns (0, 2, 4, …) hold sin(pos·ω_i), the odd "
        "columns cos(pos·ω_i). Position 0 must read 0, 1, 0, 1, …",
        lambda case: encoding(case, swap=True),
    ),
    Mistake(
        "sin and cos sit in two halves (all sines, then all cosines): they interleave, "
        "column 2i holds sin(pos·ω_i) and column 2i+1 holds cos(pos·ω_i)",
        lambda case: encoding(case, halves=True),
    ),
    Mistake(
        "wrong frequency: the exponent uses the pair index i instead of 2i. Column pair i "
        "has ω_i = 1 / 10000^(2i / D), which is the even column index 2i divided by D.",
        lambda case: encoding(case, exponent="i/D"),
    ),
    Mistake(
        "wrong frequency: the exponent is not divided by d_model, so all but the first "
        "column pair have a frequency near 0. Use ω_i = 1 / 10000^(2i / D).",
        lambda case: encoding(case, exponent="2i"),
    ),
    Mistake(
        "wrong frequency in the odd columns: column 2i+1 uses its own index in the exponent. "
        "A sin/cos pair shares one frequency, ω_i = 1 / 10000^(2i / D), for both columns "
        "2i and 2i+1.",
        lambda case: encoding(case, exponent="column/D"),
    ),
    Mistake(
        "positions start at 1: the first token is position 0, so the first row is "
        "0, 1, 0, 1, … (sin 0 and cos 0)",
        lambda case: encoding(case, first_position=1),
    ),
)


def _frequencies_off(t: Trial) -> str | None:
    """Names frequencies that are off when the sin/cos layout itself is right (row 0 reads
    0, 1, 0, 1, … and every column pair is (sin, cos) of one angle) and no known mistake
    explains them."""
    case, output = t.case, t.output
    seq_len, d_model = case.args
    known = [mistake.output(case) for mistake in ENCODING_MISTAKES]
    right = reference.sinusoidal_positional_encoding(seq_len, d_model)
    if any(same(output, value, check_dtype=False) for value in [right, *known]):
        return None
    shaped = isinstance(output, torch.Tensor) and output.shape == (seq_len, d_model)
    if not (shaped and seq_len >= 2):  # row 1 shows the frequencies
        return None
    output = output.double()
    even, odd = output[:, 0::2], output[:, 1::2]  # (T, D/2) each
    start = torch.zeros(d_model, dtype=torch.float64)
    start[1::2] = 1.0
    on_circle = torch.allclose(even**2 + odd**2, torch.ones_like(even), atol=1e-3)
    if not (on_circle and torch.allclose(output[0], start, atol=1e-4)):
        return None
    theirs = torch.atan2(even[1], odd[1])[:4]  # the angle each pair turns by per position
    ours = 1 / 10000.0 ** (2 * torch.arange(len(theirs), dtype=torch.float64) / d_model)
    return (
        "the sin/cos layout is right, but the frequencies are off: column pair i must turn "
        f"by ω_i = 1 / 10000^(2i / D) per position, here (D = {d_model}) "
        f"{', '.join(f'{w:.4f}' for w in ours.tolist())}, …; yours turn by "
        f"{', '.join(f'{w:.4f}' for w in theirs.tolist())}, …"
    )


sinusoidal_positional_encoding = Exercise(
    name="sinusoidal_positional_encoding",
    arg_names=("seq_len", "d_model"),
    assignment=ASSIGNMENT,
    points=4,
    cases=_encoding_cases,
    expected=lambda case: reference.sinusoidal_positional_encoding(*case.args),
    probes=(Probe("frequencies-off", _frequencies_off),),
    mistakes=ENCODING_MISTAKES,
)


# --- FeedForward(d_model, d_ff) ----------------------------------------------------------------


def _ffn_state(g: torch.Generator, d_model: int, d_ff: int, gain: float = 1.0) -> dict:
    return {
        "up.weight": randn(g, d_ff, d_model) * gain / math.sqrt(d_model),
        "up.bias": randn(g, d_ff) * 0.5,
        "down.weight": randn(g, d_model, d_ff) / math.sqrt(d_ff),
        "down.bias": randn(g, d_model) * 0.1,
    }


def _gelu_far_off_case() -> Case:
    """Pre-activations near ±2.7, where the tanh approximation of GELU is furthest from the
    exact GELU (4.7e-4), all summed into each output, which the bias brings close to 0: the
    approximation is off by 40 times the tolerance, on every run."""
    d_model, d_ff = 4, 16
    pre_activation = torch.tensor([2.7, -2.7]).repeat(d_ff // 2)  # (d_ff,)
    pattern = torch.arange(d_ff * d_model, dtype=torch.float32).reshape(d_ff, d_model)
    down = torch.ones(d_model, d_ff)
    state = {
        "up.weight": 0.001 * (pattern % 7 - 3),
        "up.bias": pre_activation,
        "down.weight": down,
        "down.bias": -(down @ F.gelu(pre_activation.double()).float()),
    }
    x = torch.tensor([[[1.0, -2.0, 0.5, 3.0], [-1.0, 0.0, 2.0, -0.5]]])  # (1, 2, 4)
    label = "pre-activations near ±2.7, where the tanh approximation of GELU is furthest off"
    return Case(label, (x,), init_args=(d_model, d_ff), state_dict=state)


def _ffn_cases(g: torch.Generator) -> list[Case]:
    cases = [_gelu_far_off_case()]
    for label, shape, d_ff, gain in (
        ("B=2, T=3, D=4, d_ff=8", (2, 3, 4), 8, 1.0),
        ("B=1, T=5, D=6, d_ff=24", (1, 5, 6), 24, 1.0),
        ("no batch, (T, D) = (4, 8), d_ff=16", (4, 8), 16, 1.0),
        ("large pre-activations, B=2, T=4, D=8, d_ff=32", (2, 4, 8), 32, 4.0),
    ):
        d_model = shape[-1]
        state = _ffn_state(g, d_model, d_ff, gain)
        cases.append(Case(label, (randn(g, *shape),), init_args=(d_model, d_ff), state_dict=state))
    return cases


WRONG_ACTIVATIONS = (F.relu, lambda h: F.gelu(h, approximate="tanh"), lambda h: h)


def ffn_output(case: Case, activation=F.gelu, after_down: bool = False) -> torch.Tensor:
    """The FFN written out from ``case``, with the activation as a knob."""
    x, state = case.args[0], case.state_dict
    hidden = activation(F.linear(x, state["up.weight"], state["up.bias"]))  # (..., d_ff)
    output = F.linear(hidden, state["down.weight"], state["down.bias"])  # (..., D)
    return activation(output) if after_down else output


feed_forward = Exercise(
    name="FeedForward",
    arg_names=("x",),
    init_names=("d_model", "d_ff"),
    assignment=ASSIGNMENT,
    points=2,
    cases=_ffn_cases,
    expected=lambda case: reference_output(reference.FeedForward, case),
    mistakes=catalogue(
        "FeedForward",
        "relu tanh-gelu no-activation gelu-after-down",
        Mistake(
            "ReLU instead of GELU between the two linear layers",
            lambda case: ffn_output(case, activation=F.relu),
        ),
        Mistake(
            "the tanh approximation of GELU: use the exact GELU (F.gelu's default, "
            "nn.GELU()), as nn.TransformerEncoderLayer(activation='gelu') does",
            lambda case: ffn_output(case, activation=lambda h: F.gelu(h, approximate="tanh")),
        ),
        Mistake(
            "no activation between `up` and `down`: two linear layers in a row are just one "
            "linear map. Apply GELU to the output of `up`.",
            lambda case: ffn_output(case, activation=lambda h: h),
        ),
        Mistake(
            "GELU is applied after `down` too: the FFN ends with the linear layer `down`",
            lambda case: ffn_output(case, after_down=True),
        ),
    ),
    probes=(
        hint(
            "state_dict",
            "keep the two layers as given, `self.up = nn.Linear(d_model, d_ff)` and "
            "`self.down = nn.Linear(d_ff, d_model)`: the check loads weights by these names",
        ),
    ),
)


# --- TransformerEncoderBlock(d_model, num_heads, d_ff) -----------------------------------------


def _norm_state(g: torch.Generator, name: str, d_model: int) -> dict[str, torch.Tensor]:
    return {
        f"{name}.weight": 1.0 + 0.3 * randn(g, d_model),
        f"{name}.bias": 0.2 * randn(g, d_model),
    }


def _block_state(g: torch.Generator, d_model: int, d_ff: int) -> dict[str, torch.Tensor]:
    state = _norm_state(g, "norm1", d_model)
    for name in ("w_q", "w_k", "w_v", "w_o"):
        state[f"attn.{name}.weight"] = randn(g, d_model, d_model) / math.sqrt(d_model)
        state[f"attn.{name}.bias"] = randn(g, d_model) * 0.1
    state |= _norm_state(g, "norm2", d_model)
    state |= {f"ffn.{key}": value for key, value in _ffn_state(g, d_model, d_ff).items()}
    return state


def _block_case(g, label, B, T, D, H, d_ff, mask=None, scale=1.0) -> Case:
    kwargs = {} if mask is None else {"mask": mask}
    x = randn(g, B, T, D) * scale + 0.5 * scale  # off-centre, so a missing norm shows
    return Case(label, (x,), kwargs, init_args=(D, H, d_ff), state_dict=_block_state(g, D, d_ff))


def _block_cases(g: torch.Generator) -> list[Case]:
    padding = reference.padding_mask(torch.tensor([5, 2, 4]), 5).unsqueeze(1)  # (B, 1, T)
    return [
        _block_case(g, "B=2, T=4, D=8, H=2, d_ff=16", 2, 4, 8, 2, 16),
        _block_case(g, "one head, B=1, T=3, D=4, d_ff=8", 1, 3, 4, 1, 8),
        _block_case(
            g, "causal (T, T) mask, B=2, T=5, D=8, H=4", 2, 5, 8, 4, 32, reference.causal_mask(5)
        ),
        _block_case(g, "(B, 1, T) padding mask, B=3, T=5, D=6, H=2", 3, 5, 6, 2, 12, mask=padding),
        _block_case(
            g, "(B, T, T) mask, B=2, T=4, D=8, H=2", 2, 4, 8, 2, 16, mask=random_mask(g, 2, 4, 4)
        ),
        _block_case(g, "large inputs (×10), B=2, T=3, D=8, H=2", 2, 3, 8, 2, 16, scale=10.0),
    ]


def encoder_block(
    case: Case,
    order: tuple[str, str] = ("pre-norm", "pre-norm"),
    residual_attn: bool = True,
    residual_ffn: bool = True,
    norms: tuple[str, str] = ("norm1", "norm2"),
    mask_mode: str = "used",
    ffn_first: bool = False,
    ffn_activation=None,
) -> torch.Tensor:
    """The encoder block written out with functions (the reference's parts as ``multi_head``
    and ``ffn_output``), one knob per known mistake.

    ``order`` of the attention and of the FFN: "pre-norm" (right), "post-norm" (norm after
    the residual addition), "normalised stream" (the residual adds the normalised x);
    ``norms``: the norm before attention and before the FFN ("" for none); ``mask_mode``:
    "used", "ignored", "inverted";
    ``ffn_activation``: another activation inside the FFN (a wrong ``FeedForward``).
    """
    d_model, num_heads, _ = case.init_args
    state = case.state_dict
    mask = case.kwargs.get("mask")
    mask = {"used": mask, "ignored": None}.get(mask_mode, None if mask is None else ~mask)

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}

    def attention(h: torch.Tensor) -> torch.Tensor:
        kwargs = {} if mask is None else {"mask": mask}
        attn_case = Case("", (h, h, h), kwargs, (d_model, num_heads), part("attn."))
        return multi_head(attn_case)  # (B, T, D)

    def norm(name: str, x: torch.Tensor) -> torch.Tensor:
        if not name:
            return x
        return F.layer_norm(x, (d_model,), state[f"{name}.weight"], state[f"{name}.bias"])

    def ffn(h: torch.Tensor) -> torch.Tensor:
        return ffn_output(Case("", (h,), state_dict=part("ffn.")), ffn_activation or F.gelu)

    sublayers = [
        (attention, norms[0], residual_attn, order[0]),
        (ffn, norms[1], residual_ffn, order[1]),
    ]
    if ffn_first:
        sublayers.reverse()
    x = case.args[0]
    with torch.no_grad():
        for sublayer, norm_name, residual, sublayer_order in sublayers:
            if sublayer_order == "post-norm":
                x = norm(norm_name, x + sublayer(x) if residual else sublayer(x))
            elif sublayer_order == "normalised stream":
                x = norm(norm_name, x)
                x = x + sublayer(x) if residual else sublayer(x)
            else:
                x = x + sublayer(norm(norm_name, x)) if residual else sublayer(norm(norm_name, x))
    return x  # (B, T, D)


transformer_encoder_block = Exercise(
    name="TransformerEncoderBlock",
    arg_names=("x",),
    init_names=("d_model", "num_heads", "d_ff"),
    uses=("FeedForward", "MultiHeadAttention"),
    assignment=ASSIGNMENT,
    points=4,
    cases=_block_cases,
    expected=lambda case: reference_output(reference.TransformerEncoderBlock, case),
    mistakes=catalogue(
        "TransformerEncoderBlock",
        "post-norm normalised-stream attn-residual-normalised ffn-residual-normalised "
        "no-attn-residual no-ffn-residual no-residuals norm1-twice norms-swapped no-norm1 "
        "no-norm2 ffn-first mask-ignored wrong-feedforward wrong-feedforward wrong-feedforward "
        "mask-inverted",
        Mistake(
            "post-norm: the layer norms come after the residual additions, "
            "x = norm(x + sublayer(x)). This block is pre-norm: each sublayer reads a "
            "normalised copy and adds its result to the un-normalised x, "
            "x = x + sublayer(norm(x)).",
            lambda case: encoder_block(case, order=("post-norm", "post-norm")),
        ),
        Mistake(
            "the residual stream itself is normalised: x is replaced by norm(x) before the "
            "addition, so the block's input never passes through unchanged. Normalise only the "
            "sublayer's input: x = x + sublayer(norm(x)).",
            lambda case: encoder_block(case, order=("normalised stream",) * 2),
        ),
        Mistake(
            "the residual around the attention adds the normalised input: x = h + attn(h) with "
            "h = norm1(x) replaces x by norm1(x). Add the attention's output to the "
            "un-normalised x: x = x + attn(norm1(x)).",
            lambda case: encoder_block(case, order=("normalised stream", "pre-norm")),
        ),
        Mistake(
            "the residual around the FFN adds the normalised input: x = h + ffn(h) with "
            "h = norm2(x) replaces x by norm2(x). Add the FFN's output to the un-normalised x: "
            "x = x + ffn(norm2(x)).",
            lambda case: encoder_block(case, order=("pre-norm", "normalised stream")),
        ),
        Mistake(
            "no residual connection around the attention: add its output to x, "
            "x = x + attn(norm1(x))",
            lambda case: encoder_block(case, residual_attn=False),
        ),
        Mistake(
            "no residual connection around the FFN: add its output to x, x = x + ffn(norm2(x))",
            lambda case: encoder_block(case, residual_ffn=False),
        ),
        Mistake(
            "no residual connections at all: each sublayer's output must be added to its "
            "input, x = x + sublayer(norm(x))",
            lambda case: encoder_block(case, residual_attn=False, residual_ffn=False),
        ),
        Mistake(
            "norm1 is used before the FFN too: each sublayer has its own layer norm, norm1 "
            "before the attention and norm2 before the FFN",
            lambda case: encoder_block(case, norms=("norm1", "norm1")),
        ),
        Mistake(
            "the norms are swapped: norm1 goes before the attention, norm2 before the FFN",
            lambda case: encoder_block(case, norms=("norm2", "norm1")),
        ),
        Mistake(
            "no layer norm before the attention: it must read norm1(x)",
            lambda case: encoder_block(case, norms=("", "norm2")),
        ),
        Mistake(
            "no layer norm before the FFN: it must read norm2(x)",
            lambda case: encoder_block(case, norms=("norm1", "")),
        ),
        Mistake(
            "the FFN comes first: attention (tokens exchange information) comes before the FFN "
            "(each token transformed on its own)",
            lambda case: encoder_block(case, ffn_first=True),
        ),
        Mistake(
            "the mask is ignored: pass it on to the attention, self.attn(h, h, h, mask)",
            lambda case: encoder_block(case, mask_mode="ignored"),
        ),
        *(
            Mistake(
                "the block is put together right, but the FeedForward it uses is not: fix "
                "FeedForward first (its check names the mistake)",
                lambda case, activation=activation: encoder_block(case, ffn_activation=activation),
            )
            for activation in WRONG_ACTIVATIONS
        ),
        Mistake(
            "inverted mask: True means the query MAY attend to the key; pass the mask on unchanged",
            lambda case: encoder_block(case, mask_mode="inverted"),
        ),
    ),
    probes=(
        hint(
            "state_dict",
            "keep the attribute names: norm1, attn (the given MultiHeadAttention), norm2 and "
            "ffn (your FeedForward, with up and down); the check loads weights by these names",
        ),
    ),
)

EXERCISES = (sinusoidal_positional_encoding, feed_forward, transformer_encoder_block)
