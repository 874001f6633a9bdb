import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from matplotlib.figure import Figure

from attn_course import plots
from attn_course.reference import sinusoidal_positional_encoding


def test_positional_encoding_figure_shows_the_matrix_and_the_chosen_columns():
    pe = sinusoidal_positional_encoding(20, 8)
    fig = plots.positional_encoding_figure(pe, columns=(0, 3))
    assert isinstance(fig, Figure)
    heatmap, curves = fig.axes[0], fig.axes[1]
    assert heatmap.images[0].get_array().shape == (20, 8)
    assert [line.get_label() for line in curves.lines] == ["column 0", "column 3"]
    assert curves.lines[1].get_ydata().tolist() == pytest.approx(pe[:, 3].tolist())


def test_positional_encoding_figure_draws_the_continuous_waves_through_the_integer_samples():
    pe = sinusoidal_positional_encoding(20, 8)
    fine_positions = torch.linspace(0, 19, 191)
    waves = torch.sin(fine_positions[:, None] * torch.ones(8))  # (N, D): stands in for the waves
    fig = plots.positional_encoding_figure(
        pe, columns=(0,), waves=waves, wave_positions=fine_positions, curve_len=10
    )
    curves = fig.axes[1]
    wave, dots = curves.lines
    assert wave.get_label() == "column 0" and dots.get_linestyle() == "None"
    assert max(wave.get_xdata()) == pytest.approx(9.0)
    assert wave.get_ydata().tolist() == pytest.approx(waves[fine_positions <= 9, 0].tolist())
    assert dots.get_ydata().tolist() == pytest.approx(pe[:10, 0].tolist())


def test_image_attention_figure_lays_patch_weights_over_each_image():
    images = torch.rand(3, 8, 8)
    weights = torch.softmax(torch.randn(3, 4), dim=-1)  # 2 x 2 patches of 4 x 4 pixels
    fig = plots.image_attention_figure(images, weights, ["a", "b", "c"], patch_size=4)
    assert isinstance(fig, Figure)
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 6  # 3 images, each drawn plain and under its weights
    bottom_first = fig.axes[3]  # row 2, column 1 (axes are listed row by row)
    assert len(bottom_first.images) == 2  # the image and the weights over it
    overlay = bottom_first.images[1]
    assert overlay.get_array().flatten().tolist() == pytest.approx(weights[0].tolist())
    assert overlay.get_extent() == [-0.5, 7.5, 7.5, -0.5]  # the 2 x 2 weights cover the image
    assert fig.axes[0].get_title() == "a"


def test_signal_attention_figure_draws_a_wave_and_one_bar_per_frame():
    signals = torch.randn(2, 64)
    weights = torch.softmax(torch.randn(2, 4), dim=-1)
    marked = torch.tensor([[False, True, False, False], [False, False, False, True]])
    fig = plots.signal_attention_figure(signals, weights, marked, ["x", "y"], frame_size=16)
    assert isinstance(fig, Figure)
    wave, bars = fig.axes[0], fig.axes[1]
    assert wave.lines[0].get_ydata().tolist() == pytest.approx(signals[0].tolist())
    heights = [bar.get_height() for bar in bars.containers[0]]
    assert heights == pytest.approx(weights[0].tolist())
    red = [bar.get_facecolor() for bar in bars.containers[0]]
    assert red[1] != red[0] and red[0] == red[2]  # the marked frame stands out
    assert len(fig.axes) == 4


def test_scaling_figure_plots_time_in_ms_and_memory_in_mib():
    seq_lens = [256, 512]
    fig = plots.scaling_figure(
        seq_lens,
        {"naive": [0.001, 0.004], "tiled": [0.002, 0.005]},
        {"naive": [2**20, 4 * 2**20], "tiled": [2**19, 2**20]},
    )
    assert isinstance(fig, Figure)
    times, memory = fig.axes
    assert times.lines[0].get_ydata().tolist() == pytest.approx([1.0, 4.0])
    assert memory.lines[1].get_ydata().tolist() == pytest.approx([0.5, 1.0])
    assert times.get_xscale() == memory.get_yscale() == "log"
    assert [line.get_label() for line in memory.lines] == ["naive", "tiled"]
