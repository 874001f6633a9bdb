import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from attn_course import plots

TOKENS = ["the", "cat", "sat", "on", "the", "mat"]


def test_change_per_position_draws_one_bar_per_position_and_variant():
    changes = {"causal mask": torch.tensor([0, 0, 0, 0.5, 0.3, 0.2]), "no mask": torch.rand(6)}
    fig = plots.change_per_position(changes, TOKENS, changed_position=3)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    bars = [patch for container in ax.containers for patch in container]
    assert len(bars) == 12
    heights = [bar.get_height() for bar in ax.containers[0]]
    assert heights == pytest.approx([0, 0, 0, 0.5, 0.3, 0.2])
    assert [label.get_text() for label in ax.get_xticklabels()] == TOKENS
    assert "the changed token" in ax.get_legend_handles_labels()[1]


def test_head_split_figure_labels_every_cell_with_its_source():
    T, D, H = 4, 8, 2
    x = torch.arange(T * D).view(1, T, D)
    good = x.view(1, T, H, D // H).transpose(1, 2)[0]  # (H, T, Dh)
    bad = x.view(1, H, T, D // H)[0]  # (H, T, Dh)
    fig = plots.head_split_figure(
        {"correct": good // D, "wrong": bad // D}, {"correct": good % D, "wrong": bad % D}
    )
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4  # 2 ways of splitting x 2 heads
    correct_head1 = [text.get_text() for text in fig.axes[1].texts]
    assert correct_head1[:4] == ["0.4", "0.5", "0.6", "0.7"]  # row 0 of head 1: token 0
    wrong_head0 = [text.get_text() for text in fig.axes[2].texts]
    assert wrong_head0[4:8] == ["0.4", "0.5", "0.6", "0.7"]  # row 1 of head 0: still token 0
    assert fig.axes[2].images[0].get_array()[1].tolist() == [0, 0, 0, 0]


def test_attention_over_sequences_frames_exactly_the_marked_positions():
    weights = torch.softmax(torch.randn(3, 5), dim=-1)
    tokens = torch.randint(10, (3, 5))
    marked = torch.zeros(3, 5, dtype=torch.bool)
    marked[0, 1] = marked[1, 4] = marked[2, 0] = True
    fig = plots.attention_over_sequences(weights, tokens, marked, title="after training")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    frames = [patch for patch in ax.patches if isinstance(patch, Rectangle)]
    assert sorted((p.get_x() + 0.5, p.get_y() + 0.5) for p in frames) == [
        (0, 2), (1, 0), (4, 1)
    ]
    assert [text.get_text() for text in ax.texts] == [str(t) for t in tokens.flatten().tolist()]
    torch.testing.assert_close(torch.as_tensor(ax.images[0].get_array()), weights)
    assert ax.get_title() == "after training"


@pytest.mark.parametrize(("num_heads", "visible"), [(4, 4), (3, 3)])
def test_head_heatmaps_draws_one_titled_panel_per_head(num_heads, visible):
    weights = torch.softmax(torch.randn(num_heads, 6, 6), dim=-1)
    fig = plots.head_heatmaps(weights, TOKENS, TOKENS)
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.images]
    assert len(panels) == visible
    assert [ax.get_title() for ax in panels] == [f"head {h}" for h in range(num_heads)]
    for head, ax in enumerate(panels):
        torch.testing.assert_close(torch.as_tensor(ax.images[0].get_array()), weights[head])
        assert [label.get_text() for label in ax.get_xticklabels()] == TOKENS


def test_token_score_bars_colours_the_highlighted_ids_and_labels_the_axis_by_token_id():
    scores = torch.tensor([3.0, -1.0, 2.0, 0.5])
    highlighted = torch.tensor([True, False, True, False])
    fig = plots.token_score_bars(scores, highlighted, highlight_label="signal",
                                 other_label="noise")
    ax = fig.axes[0]
    bars = {round(bar.get_x() + bar.get_width() / 2): bar for bar in ax.patches}
    assert sorted(bars) == [0, 1, 2, 3]
    assert [bars[i].get_height() for i in range(4)] == scores.tolist()
    orange, blue = bars[0].get_facecolor(), bars[1].get_facecolor()
    assert orange != blue
    assert [bars[i].get_facecolor() == orange for i in range(4)] == highlighted.tolist()
    assert ax.get_xlabel() == "token id"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["signal", "noise"]


def test_attention_over_sequences_names_its_rows():
    weights = torch.softmax(torch.randn(2, 4), dim=-1)
    tokens, marked = torch.randint(10, (2, 4)), torch.zeros(2, 4, dtype=torch.bool)
    default = plots.attention_over_sequences(weights, tokens, marked).axes[0]
    named = plots.attention_over_sequences(weights, tokens, marked,
                                           row_labels=["asked red", "asked blue"]).axes[0]
    assert [t.get_text() for t in default.get_yticklabels()] == ["sequence 0", "sequence 1"]
    assert [t.get_text() for t in named.get_yticklabels()] == ["asked red", "asked blue"]
