"""The figures of lessons 00-04: they draw exactly the numbers they are given, with labels."""

import matplotlib

matplotlib.use("Agg")

import math

import numpy as np
import pytest
import torch
from matplotlib.collections import PathCollection, QuadMesh
from matplotlib.figure import Figure

from attn_course import plots

TOKENS = ["a", "cat", "sat", "on", "my", "mat"]


def tick_labels(axis) -> list[str]:
    return [label.get_text() for label in axis.get_ticklabels()]


def bar_heights(ax) -> list[float]:
    return [patch.get_height() for patch in ax.patches]


def test_attention_heatmap_draws_the_matrix_with_token_labels_values_and_a_colorbar():
    torch.manual_seed(0)
    weights = torch.softmax(torch.randn(3, 6), dim=-1)  # (T, S)
    fig = plots.attention_heatmap(weights, TOKENS, ["q0", "q1", "q2"], title="demo")
    assert isinstance(fig, Figure)
    ax, colorbar = fig.axes
    assert colorbar.get_ylabel() == "attention weight"
    (image,) = ax.get_images()
    np.testing.assert_allclose(image.get_array(), weights.numpy())
    assert tick_labels(ax.xaxis) == TOKENS
    assert tick_labels(ax.yaxis) == ["q0", "q1", "q2"]
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("demo", "key", "query")
    texts = [text.get_text() for text in ax.texts]
    assert texts == [f"{value:.2f}" for value in weights.flatten().tolist()]


def test_attention_heatmap_draws_a_vector_as_one_row_and_can_skip_the_numbers():
    fig = plots.attention_heatmap([0.1, 0.2, 0.7], ["x", "y", "z"], annotate=False, vmin=0, vmax=1)
    ax = fig.axes[0]
    (image,) = ax.get_images()
    assert image.get_array().shape == (1, 3)
    assert image.get_clim() == (0, 1)
    assert len(ax.texts) == 0


def test_heatmap_grid_puts_panels_on_one_colour_scale_and_leaves_nan_cells_blank():
    good = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    broken = torch.tensor([[0.5, 0.5], [math.nan, math.nan]])
    fig = plots.heatmap_grid({"left": good, "right": broken}, ["k0", "k1"], ["q0", "q1"])
    *panels, colorbar = fig.axes
    assert [ax.get_title() for ax in panels] == ["left", "right"]
    assert colorbar.get_ylabel() == "attention weight"
    images = [ax.get_images()[0] for ax in panels]
    assert all(image.get_clim() == (0.0, 1.0) for image in images)
    assert np.ma.getmaskarray(np.ma.masked_invalid(images[1].get_array()))[1].all()
    assert [text.get_text() for text in panels[1].texts][2:] == ["nan", "nan"]
    assert panels[0].get_ylabel() == "query" and panels[1].get_ylabel() == ""


def test_bars_per_key_draws_one_panel_per_entry_and_highlights_the_largest_bar():
    scores = torch.tensor([-1.0, 2.0, 0.5, -1.0, -0.6, -0.1])
    fig = plots.bars_per_key({"dot": scores, "halved": [s / 2 for s in scores.tolist()]}, TOKENS)
    top, bottom = fig.axes
    assert (top.get_title(loc="left"), bottom.get_title(loc="left")) == ("dot", "halved")
    np.testing.assert_allclose(bar_heights(top), scores.numpy())
    np.testing.assert_allclose(bar_heights(bottom), (scores / 2).numpy())
    colors = [matplotlib.colors.to_hex(patch.get_facecolor()) for patch in top.patches]
    assert colors[1] == matplotlib.colors.to_hex("tab:orange")
    assert set(colors[:1] + colors[2:]) == {matplotlib.colors.to_hex("tab:blue")}
    assert tick_labels(bottom.xaxis) == TOKENS
    assert top.get_ylim() == bottom.get_ylim(), "one scale: halved scores look halved"


def test_temperature_figure_shows_the_weights_as_bars_and_one_curve_per_key():
    temperatures = torch.tensor([0.1, 1.0, 10.0])
    curves = torch.tensor([[0.0, 1.0], [0.3, 0.7], [0.5, 0.5]])  # (N, S)
    fig = plots.temperature_figure(["x", "y"], temperatures, curves, 2.0, [0.4, 0.6])
    bars, lines = fig.axes
    np.testing.assert_allclose(bar_heights(bars), [0.4, 0.6])
    assert "2" in bars.get_title()
    *key_curves, marker = lines.get_lines()
    assert [line.get_label() for line in key_curves] == ["x", "y"]
    np.testing.assert_allclose(key_curves[1].get_ydata(), curves[:, 1].numpy())
    assert list(marker.get_xdata()) == [2.0, 2.0]
    assert lines.get_xscale() == "log"


def test_temperature_figure_draws_keys_with_equal_scores_as_one_labelled_curve():
    temperatures = torch.tensor([0.1, 1.0, 10.0])
    curves = torch.tensor([[0.0, 1.0, 0.0], [0.2, 0.6, 0.2], [0.3, 0.4, 0.3]])  # x and z equal
    fig = plots.temperature_figure(["x", "y", "z"], temperatures, curves, 1.0, [0.2, 0.6, 0.2])
    bars, lines = fig.axes
    *key_curves, _ = lines.get_lines()
    assert [line.get_label() for line in key_curves] == ["x = z", "y"]
    legend = [text.get_text() for text in lines.get_legend().get_texts()]
    assert legend == ["x = z", "y"], "every legend entry is a visible curve"
    bar_colors = [patch.get_facecolor() for patch in bars.patches]
    assert bar_colors[0] == bar_colors[2] != bar_colors[1]
    assert matplotlib.colors.to_rgba(key_curves[0].get_color()) == bar_colors[0]


def test_kernel_regression_figure_draws_data_truth_and_estimate():
    x = torch.linspace(0, 1, 5)
    fig = plots.kernel_regression_figure(x, x**2, x, x**2, x**2 + 0.1)
    (ax,) = fig.axes
    truth, estimate = ax.get_lines()
    np.testing.assert_allclose(estimate.get_ydata(), (x**2 + 0.1).numpy())
    assert truth.get_label() == "true function"
    (points,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    np.testing.assert_allclose(points.get_offsets()[:, 0], x.numpy())


def test_kernel_regression_figure_sizes_points_by_the_query_weights_and_marks_the_estimate():
    x = torch.linspace(0, 1, 4)
    weights = torch.tensor([0.1, 0.6, 0.2, 0.1])
    fig = plots.kernel_regression_figure(
        x, x, x, x, x, query=0.3, query_weights=weights, query_estimate=0.25
    )
    ax, colorbar = fig.axes
    assert "0.30" in colorbar.get_ylabel()
    (points,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert int(np.argmax(points.get_sizes())) == 1
    np.testing.assert_allclose(points.get_array(), weights.numpy())
    star = ax.get_lines()[-1]
    assert (list(star.get_xdata()), list(star.get_ydata())) == ([0.3], [0.25])


def test_kernel_weights_heatmap_places_the_weights_at_the_query_and_key_positions():
    weights = torch.softmax(torch.randn(3, 4), dim=-1)
    fig = plots.kernel_weights_heatmap(weights, [0.0, 0.5, 1.0], [0.1, 0.2, 0.6, 0.9])
    ax, colorbar = fig.axes
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(3, 4), weights.numpy())
    assert ax.get_xlabel().startswith("key") and ax.get_ylabel().startswith("query")
    top, bottom = ax.get_ylim()
    assert top > bottom, "queries increase downwards, as in every other heatmap"
    assert colorbar.get_ylabel() == "attention weight"


def test_line_chart_draws_each_series_with_its_style_and_log_axes():
    dims = [2, 4, 8]
    fig = plots.line_chart(
        dims,
        {"measured": [1.9, 4.2, 7.8], "prediction": dims},
        xlabel="D",
        ylabel="variance",
        logx=True,
        logy=True,
        styles={"prediction": "k--"},
        ylim=(1, 10),
    )
    (ax,) = fig.axes
    measured, prediction = ax.get_lines()
    np.testing.assert_allclose(measured.get_ydata(), [1.9, 4.2, 7.8])
    assert prediction.get_linestyle() == "--"
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert tick_labels(ax.xaxis) == ["2", "4", "8"]
    assert ax.get_ylim() == pytest.approx((1, 10))
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["measured", "prediction"]
