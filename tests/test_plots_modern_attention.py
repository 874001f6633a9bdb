import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from matplotlib.figure import Figure

from attn_course import plots


def test_layer_head_heatmaps_draws_one_panel_per_layer_and_head():
    weights = torch.softmax(torch.randn(2, 3, 5, 5), dim=-1)  # (L, H, T, S)
    labels = list("abcde")
    fig = plots.layer_head_heatmaps(weights, labels, notes={(1, 2): "induction 0.90"})
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 6  # plus one colour bar
    last = panels[5]  # layer 1, head 2 (axes are listed row by row)
    assert last.images[0].get_array().tolist() == weights[1, 2].tolist()
    assert last.get_title() == "layer 1, head 2\ninduction 0.90"
    assert panels[0].get_title() == "layer 0, head 0"
    assert [t.get_text() for t in last.get_xticklabels()] == labels
    assert last.images[0].get_clim() == (0.0, 1.0)


def test_decoding_cost_figure_draws_mib_and_ms_bars_per_variant():
    fig = plots.decoding_cost_figure(
        {"MHA": 4 * 2**20, "GQA": 2**20, "MQA": 2**19}, {"MHA": 0.004, "GQA": 0.002, "MQA": 0.001}
    )
    assert isinstance(fig, Figure)
    memory, time = fig.axes
    assert [bar.get_height() for bar in memory.patches] == [4.0, 1.0, 0.5]
    assert [bar.get_height() for bar in time.patches] == pytest.approx([4.0, 2.0, 1.0])
    assert [label.get_text() for label in memory.get_xticklabels()] == ["MHA", "GQA", "MQA"]
