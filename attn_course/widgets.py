"""Interactive explorers for the lessons (the only module that imports ipywidgets).

Each function returns a widget whose figures come from ``attn_course.plots``. A lesson cell that
shows a widget carries the cell tag ``nbval-ignore-output`` (nbval honours the tag as it does the
``# NBVAL_IGNORE_OUTPUT`` comment, without showing learners a marker); the next cell draws the
same picture statically, at a setting the lesson names (compared by nbval, and readable where
widgets do not render).
"""

import base64
import io
from collections.abc import Callable, Sequence

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure

from attn_course import plots
from attn_course.reference import causal_mask, masked_softmax, padding_mask, softmax


def show_figure(output: widgets.Output, fig: Figure) -> None:
    """Replace what ``output`` shows with ``fig`` as a PNG (works with or without a kernel)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    output.outputs = (
        {
            "output_type": "display_data",
            "data": {"image/png": png, "text/plain": repr(fig)},
            "metadata": {},
        },
    )


def temperature_explorer(scores: torch.Tensor, key_labels: Sequence[str]) -> widgets.VBox:
    """A temperature slider over softmax(scores / temperature) for one query (lesson 02).

    scores (S,). Moving the slider redraws ``plots.temperature_figure`` and rewrites the line of
    weights under it. Children: slider, weights text, figure output.
    """
    temperatures = torch.logspace(-1, 1, 41)  # (N,) from 0.1 to 10
    weights_by_temperature = softmax(scores / temperatures[:, None], dim=-1)  # (N, S)
    slider = widgets.FloatSlider(
        value=1.0, min=0.1, max=5.0, step=0.1, description="temperature", readout_format=".1f",
        style={"description_width": "initial"},  # the default width cuts "temperature" short
    )
    text = widgets.HTML()
    output = widgets.Output()

    def redraw(change: dict | None = None) -> None:
        weights = softmax(scores / slider.value, dim=-1)  # (S,)
        pairs = zip(key_labels, weights.tolist(), strict=True)
        listing = ", ".join(f"{key}: {weight:.3f}" for key, weight in pairs)
        text.value = f"<code>weights = {listing}</code>"
        fig = plots.temperature_figure(
            key_labels, temperatures, weights_by_temperature, slider.value, weights
        )
        show_figure(output, fig)

    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([slider, text, output])


def kernel_regression_explorer(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_grid: torch.Tensor,
    y_true: torch.Tensor,
    y_estimate: torch.Tensor,
    weights_for: Callable[[float], torch.Tensor],
) -> widgets.VBox:
    """A slider that picks the query x of attention pooling and shows its weights (lesson 03).

    ``weights_for(query)`` returns the (S,) weights of one query over the S training points (the
    lesson's own kernel); the figure is ``plots.kernel_regression_figure``. Children: slider,
    text with the pooled estimate, figure output.
    """
    low, high = float(x_grid.min()), float(x_grid.max())
    slider = widgets.FloatSlider(
        value=round((low + high) / 2, 1), min=low, max=high, step=0.1, description="query x"
    )
    text = widgets.HTML()
    output = widgets.Output()

    def redraw(change: dict | None = None) -> None:
        weights = weights_for(slider.value)  # (S,)
        estimate = float(weights @ y_train)
        top = int(weights.argmax())
        text.value = (
            f"<code>query x = {slider.value:.2f}: estimate {estimate:.3f}; largest weight "
            f"{float(weights[top]):.3f} on the key x = {float(x_train[top]):.2f}</code>"
        )
        fig = plots.kernel_regression_figure(
            x_train, y_train, x_grid, y_true, y_estimate,
            query=slider.value, query_weights=weights, query_estimate=estimate,
        )
        show_figure(output, fig)

    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([slider, text, output])


def mask_explorer(scores: torch.Tensor, token_labels: Sequence[str]) -> widgets.VBox:
    """Padding and causal masks on one sequence's (T, T) self-attention scores (lesson 05).

    A slider sets how many tokens are real (the rest is padding); a checkbox adds the causal
    mask. Each change redraws the mask and the masked-softmax weights side by side
    (``plots.heatmap_grid``). Children: a row with the slider and the checkbox, figure output.
    """
    seq_len = scores.size(-1)
    length = widgets.IntSlider(
        value=seq_len, min=1, max=seq_len, description="real tokens",
        style={"description_width": "initial"},  # the default width cuts the label short
    )
    causal = widgets.Checkbox(value=False, description="causal mask")
    output = widgets.Output()

    def redraw(change: dict | None = None) -> None:
        mask = padding_mask(torch.tensor([length.value]), seq_len)  # (1, S): same for every row
        if causal.value:
            mask = mask & causal_mask(seq_len)  # (T, S)
        mask = mask.expand(seq_len, seq_len)  # (T, S)
        weights = masked_softmax(scores, mask)  # (T, S)
        panels = {"mask (1 = may attend)": mask.float(), "attention weights": weights}
        show_figure(output, plots.heatmap_grid(panels, token_labels, token_labels))

    length.observe(redraw, names="value")
    causal.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([length, causal]), output])


def head_explorer(
    weights: torch.Tensor, key_labels: Sequence[str], query_labels: Sequence[str]
) -> widgets.VBox:
    """A head selector over per-head attention weights (H, T, S) (lesson 07).

    Moving the slider redraws that head's (T, S) weights with ``plots.attention_heatmap``.
    Children: slider, figure output.
    """
    head = widgets.IntSlider(value=0, min=0, max=weights.size(0) - 1, description="head")
    output = widgets.Output()

    def redraw(change: dict | None = None) -> None:
        fig = plots.attention_heatmap(
            weights[head.value], key_labels, query_labels, title=f"head {head.value}",
            vmin=0.0, vmax=1.0, figsize=(5, 4),
        )
        show_figure(output, fig)

    head.observe(redraw, names="value")
    redraw()
    return widgets.VBox([head, output])
