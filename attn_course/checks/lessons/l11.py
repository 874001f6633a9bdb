"""Lesson 11's tasks: attention pooling with a temperature, and a clip's spectrogram."""

from __future__ import annotations

import torch

from attn_course.checks.core import Case
from attn_course.checks.exercise import Exercise, Mistake, Probe, Trial

LESSON = "11_attention_beyond_text"


def _pool_cases(g: torch.Generator) -> list[Case]:
    cases = []
    for label, (b, s, d), temperature in (
        ("B=2, S=4, D=3, temperature 1", (2, 4, 3), 1.0),
        ("B=3, S=5, D=2, temperature 0.5", (3, 5, 2), 0.5),
        ("B=2, S=6, D=4, temperature 0.01", (2, 6, 4), 0.01),
        ("B=1, S=3, D=2, temperature 100", (1, 3, 2), 100.0),
    ):
        x, scores = torch.randn(b, s, d, generator=g), torch.randn(b, s, generator=g)
        cases.append(Case(label, (x, scores, temperature)))
    return cases


def _pool(x: torch.Tensor, scores: torch.Tensor, temperature: float) -> torch.Tensor:
    weights = torch.softmax(scores / temperature, dim=-1)  # (B, S)
    return (weights.unsqueeze(-1) * x).sum(dim=1)  # (B, D)


pool_with_temperature = Exercise(
    name="pool_with_temperature",
    assignment=LESSON,
    points=0,
    cases=_pool_cases,
    expected=lambda case: _pool(*case.args),
    arg_names=("x", "scores", "temperature"),
    mistakes=(
        Mistake(
            "the scores are multiplied by the temperature: divide them, so that a small "
            "temperature sharpens the weights (towards max pooling) and a large one flattens "
            "them (towards the mean)",
            lambda case: _pool(case.args[0], case.args[1], 1 / case.args[2]),
        ),
        Mistake(
            "the temperature is not used: the result is plain attention pooling at "
            "temperature 1",
            lambda case: _pool(case.args[0], case.args[1], 1.0),
        ),
        Mistake(
            "the softmax runs over the batch (dim 0), so each piece's weights are shared out "
            "between the examples: normalise over the S pieces of each example (dim -1)",
            lambda case: (torch.softmax(case.args[1] / case.args[2], dim=0).unsqueeze(-1)
                          * case.args[0]).sum(dim=1),
        ),
        Mistake(
            "the weighted pieces are averaged, not added: the weights already sum to 1, so "
            "the mean divides by S once more",
            lambda case: _pool(*case.args) / case.args[0].size(1),
        ),
    ),
)


def _spectrogram_cases(g: torch.Generator) -> list[Case]:
    return [
        Case("N=2 clips of 64 samples, frame_size=16", (torch.randn(2, 64, generator=g), 16)),
        Case("N=3 clips of 96 samples, frame_size=32", (torch.randn(3, 96, generator=g), 32)),
        Case("N=1 clip of 40 samples, frame_size=8", (torch.randn(1, 40, generator=g), 8)),
    ]


def _spectrogram(signals: torch.Tensor, frame_size: int) -> torch.Tensor:
    frames = signals.unflatten(-1, (-1, frame_size))  # (N, S, frame_size)
    return torch.fft.rfft(frames).abs()  # (N, S, frame_size // 2 + 1)


COMPLEX = (
    "these are complex Fourier coefficients: take their magnitude (`.abs()`), the amount of "
    "each frequency, which no longer depends on the tone's phase"
)


def _complex(trial: Trial) -> str | None:
    output = trial.output
    return COMPLEX if torch.is_tensor(output) and output.is_complex() else None


frame_spectrogram = Exercise(
    name="frame_spectrogram",
    assignment=LESSON,
    points=0,
    cases=_spectrogram_cases,
    expected=lambda case: _spectrogram(*case.args),
    arg_names=("signals", "frame_size"),
    probes=(Probe("complex-output", _complex),),
    mistakes=(
        Mistake(
            "the frames interleave: (frame_size, -1) puts every S-th sample into one frame. "
            "A frame is frame_size *consecutive* samples: unflatten to (-1, frame_size)",
            lambda case: torch.fft.rfft(
                case.args[0].unflatten(-1, (case.args[1], -1)).transpose(-1, -2)).abs(),
        ),
        Mistake(
            "the full FFT of a real signal repeats its frequencies mirrored: `torch.fft.rfft` "
            "keeps the frame_size / 2 + 1 that carry information",
            lambda case: torch.fft.fft(case.args[0].unflatten(-1, (-1, case.args[1]))).abs(),
        ),
    ),
)

TASKS = (pool_with_temperature, frame_spectrogram)
