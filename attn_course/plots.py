"""Figures for the lessons: matplotlib only, each function returns a ``Figure``.

Conventions: figures are made with ``matplotlib.figure.Figure`` (not pyplot), so nothing is
drawn twice and no global state leaks between cells; a lesson cell ends with the figure to show
it. Plotting never computes attention: pass in the scores or weights to draw.
"""

from collections.abc import Mapping, Sequence
from functools import partial

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

Values = torch.Tensor | Sequence[float]


def _as_tensor(values: Values) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float32).detach().cpu()


def _draw_heatmap(
    ax: Axes,
    weights: torch.Tensor,
    x_labels: Sequence[str] | None,
    y_labels: Sequence[str] | None,
    annotate: bool,
    vmin: float | None,
    vmax: float | None,
    cmap: str,
) -> AxesImage:
    image = ax.imshow(weights.numpy(), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    if x_labels is not None:
        ax.set_xticks(range(len(x_labels)), labels=list(x_labels), rotation=45, ha="right")
    if y_labels is not None:
        ax.set_yticks(range(len(y_labels)), labels=list(y_labels))
    if annotate:
        middle = (image.norm.vmin + image.norm.vmax) / 2
        for row, values in enumerate(weights.tolist()):
            for col, value in enumerate(values):
                color = "white" if value < middle else "black"
                ax.text(col, row, f"{value:.2f}", ha="center", va="center", color=color, fontsize=8)
    return image


def attention_heatmap(
    weights: Values,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    *,
    title: str = "",
    xlabel: str = "key",
    ylabel: str = "query",
    cbar_label: str = "attention weight",
    annotate: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "viridis",
    figsize: tuple[float, float] = (6, 4),
) -> Figure:
    """One (T, S) matrix of scores or weights, queries down and keys across (lessons 01-04).

    Token labels go on the axes; ``annotate`` writes each value in its cell (keep it for small
    matrices). A 1-D input is drawn as a single row.
    """
    weights = _as_tensor(weights)
    weights = weights.unsqueeze(0) if weights.dim() == 1 else weights  # (T, S)
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    image = _draw_heatmap(ax, weights, x_labels, y_labels, annotate, vmin, vmax, cmap)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    fig.colorbar(image, ax=ax, label=cbar_label)
    return fig


def heatmap_grid(
    panels: Mapping[str, Values],
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    *,
    xlabel: str = "key",
    ylabel: str = "query",
    cbar_label: str = "attention weight",
    annotate: bool = True,
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    cmap: str = "viridis",
    panel_size: tuple[float, float] = (3.5, 3.2),
) -> Figure:
    """Several matrices side by side on one colour scale, one titled panel each (lesson 02).

    ``panels`` maps a title to a (T, S) matrix; all share ``x_labels``, ``y_labels``, ``vmin`` and
    ``vmax`` so their colours can be compared.
    """
    fig = Figure(figsize=(panel_size[0] * len(panels), panel_size[1]), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, weights) in zip(axes, panels.items(), strict=True):
        weights = _as_tensor(weights)
        image = _draw_heatmap(ax, weights, x_labels, y_labels, annotate, vmin, vmax, cmap)
        ax.set(title=title, xlabel=xlabel)
    axes[0].set_ylabel(ylabel)
    fig.colorbar(image, ax=list(axes), label=cbar_label)
    return fig


def bars_per_key(
    panels: Mapping[str, Values],
    key_labels: Sequence[str],
    *,
    ylabel: str = "score",
    title: str = "",
    panel_height: float = 1.6,
) -> Figure:
    """One bar per key for each entry of ``panels`` (title -> (S,) values), stacked (lesson 01).

    All panels share one y scale, so the sizes of the scores can be compared as well as their
    shapes (which key wins, and by how much): a scaled score's bars are visibly shorter.
    """
    fig = Figure(figsize=(6, 0.6 + panel_height * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    positions = range(len(key_labels))
    for ax, (name, values) in zip(axes, panels.items(), strict=True):
        values = _as_tensor(values)
        colors = ["tab:orange" if v == values.max() else "tab:blue" for v in values.tolist()]
        ax.bar(positions, values.numpy(), color=colors)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_title(name, fontsize=10, loc="left")
        ax.set_ylabel(ylabel)
    axes[-1].set_xticks(positions, labels=list(key_labels))
    axes[-1].set_xlabel("key")
    if title:
        fig.suptitle(title)
    return fig


def temperature_figure(
    key_labels: Sequence[str],
    temperatures: Values,
    weights_by_temperature: Values,
    temperature: float,
    weights: Values,
) -> Figure:
    """softmax(scores / temperature): the weights at one temperature, and how each key's weight
    moves as the temperature changes (lesson 02).

    ``weights_by_temperature`` is (N, S) for the N ``temperatures``; ``weights`` (S,) are the
    weights at ``temperature`` (drawn as bars and as a vertical line on the curves). Keys with
    equal curves (equal scores) share one curve, labelled with all their names, and one colour.
    """
    temperatures = _as_tensor(temperatures)
    curves = _as_tensor(weights_by_temperature)
    weights = _as_tensor(weights)
    groups: list[list[int]] = []  # keys whose curves coincide, drawn once
    for key, curve in enumerate(curves.T):
        twin = next((g for g in groups if torch.allclose(curves[:, g[0]], curve)), None)
        if twin is None:
            groups.append([key])
        else:
            twin.append(key)
    color_of = {key: f"C{i % 10}" for i, group in enumerate(groups) for key in group}
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    bars_ax, curves_ax = fig.subplots(1, 2)
    colors = [color_of[key] for key in range(len(key_labels))]  # the same colour as its curve
    bars_ax.bar(range(len(key_labels)), weights.numpy(), color=colors)
    bars_ax.set_xticks(range(len(key_labels)), labels=list(key_labels))
    bars_ax.set(ylim=(0, 1), xlabel="key", ylabel="attention weight",
                title=f"weights at temperature {temperature:g}")
    for group in groups:
        label = " = ".join(key_labels[key] for key in group)
        curves_ax.plot(temperatures.numpy(), curves[:, group[0]].numpy(), label=label,
                       color=color_of[group[0]])
    curves_ax.axvline(temperature, color="black", linestyle="--", linewidth=1)
    curves_ax.set_xscale("log")
    curves_ax.set(ylim=(0, 1), xlabel="temperature (log scale)", ylabel="attention weight",
                  title="each key's weight against temperature")
    curves_ax.legend(fontsize=8, loc="center right")
    return fig


def kernel_regression_figure(
    x_train: Values,
    y_train: Values,
    x_grid: Values,
    y_true: Values,
    y_estimate: Values,
    *,
    query: float | None = None,
    query_weights: Values | None = None,
    query_estimate: float | None = None,
) -> Figure:
    """Attention pooling as kernel regression: training pairs (keys, values), the true function
    and the attention-pooled estimate on a grid of queries (lesson 03).

    With ``query`` and its ``query_weights`` (one per training point), each training point is
    drawn with a size and colour that grow with its weight, so you see which points the query
    averages over; ``query_estimate`` marks the pooled value for that query.
    """
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    x_train, y_train = _as_tensor(x_train).numpy(), _as_tensor(y_train).numpy()
    ax.plot(_as_tensor(x_grid).numpy(), _as_tensor(y_true).numpy(), color="black",
            linestyle="--", label="true function")
    ax.plot(_as_tensor(x_grid).numpy(), _as_tensor(y_estimate).numpy(), color="tab:red",
            label="attention-pooled estimate")
    if query_weights is None:
        ax.scatter(x_train, y_train, s=18, color="tab:blue", alpha=0.7, label="training data")
    else:
        w = _as_tensor(query_weights)
        points = ax.scatter(x_train, y_train, s=10 + 300 * (w / w.max()).numpy(), c=w.numpy(),
                            cmap="Blues", edgecolors="tab:blue", label="training data")
        at = "" if query is None else f" x = {query:.2f}"
        fig.colorbar(points, ax=ax, label=f"weight for the query{at}")
    if query is not None:
        ax.axvline(query, color="tab:green", linewidth=1, label=f"query x = {query:.2f}")
    if query_estimate is not None:
        ax.plot([query], [query_estimate], marker="*", markersize=14, color="tab:green",
                linestyle="none", label="estimate at the query")
    ax.set(xlabel="x (queries and keys)", ylabel="y (values)",
           title="Nadaraya–Watson: attention pooling of y over the keys x")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def kernel_weights_heatmap(weights: Values, x_queries: Values, x_keys: Values) -> Figure:
    """The (T, S) attention weights of kernel regression, placed at the real query and key
    positions, queries down and keys across: keys sorted, so the weight sits on a band along
    the diagonal (lesson 03)."""
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.subplots()
    mesh = ax.pcolormesh(_as_tensor(x_keys).numpy(), _as_tensor(x_queries).numpy(),
                         _as_tensor(weights).numpy(), cmap="viridis", shading="nearest")
    ax.invert_yaxis()  # queries grow downwards, as in every other heatmap of the course
    ax.set(xlabel="key x_i (training input)", ylabel="query x",
           title="attention weights of every query over the training points")
    fig.colorbar(mesh, ax=ax, label="attention weight")
    return fig


def line_chart(
    x: Values,
    series: Mapping[str, Values],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
    logy: bool = False,
    styles: Mapping[str, str] | None = None,
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """Several measured curves over the same x, one legend entry per name (lesson 04).

    ``styles`` maps a series name to a matplotlib format string such as ``"k--"``. With ``logx``
    the ticks sit at the given x values (base 2 axis), labelled as plain numbers.
    """
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for name, values in series.items():
        fmt = (styles or {}).get(name, "o-")
        ax.plot(_as_tensor(x).numpy(), _as_tensor(values).numpy(), fmt, label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logx:
        ax.set_xscale("log", base=2)
        ax.set_xticks(_as_tensor(x).tolist(), labels=[f"{v:g}" for v in _as_tensor(x).tolist()])
    if logy:
        ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(ylim)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def _show_figures_in_notebooks() -> None:
    """Let a notebook cell that ends with a ``Figure`` show the picture.

    IPython's inline backend registers a PNG formatter for ``Figure`` only after
    ``%matplotlib inline``; until then a bare ``Figure`` (this module's convention) shows only as
    ``<Figure size ...>`` text. Importing this module registers the same formatter, unless one is
    already there. Outside IPython this does nothing.
    """
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import print_figure
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    png = shell.display_formatter.formatters["image/png"]
    if Figure not in png.type_printers:
        png.for_type(Figure, partial(print_figure, fmt="png", base64=True, bbox_inches="tight"))


_show_figures_in_notebooks()


def change_per_position(
    changes: Mapping[str, Values],
    token_labels: Sequence[str],
    changed_position: int,
    *,
    ylabel: str = "max |change| of the output",
    title: str = "",
) -> Figure:
    """Grouped bars: how much each position's output moved after one input token was changed,
    one colour per variant (title -> (T,) changes); the changed position is shaded (lesson 05).

    Outputs left of the shaded position should not move at all under a causal mask.
    """
    fig = Figure(figsize=(7, 3.5), layout="constrained")
    ax = fig.subplots()
    positions = torch.arange(len(token_labels), dtype=torch.float32)
    width = 0.8 / len(changes)
    for index, (name, values) in enumerate(changes.items()):
        offset = (index - (len(changes) - 1) / 2) * width
        ax.bar((positions + offset).numpy(), _as_tensor(values).numpy(), width, label=name)
    ax.axvspan(changed_position - 0.5, changed_position + 0.5, color="tab:red", alpha=0.15,
               label="the changed token")
    ax.set_xticks(positions.tolist(), labels=list(token_labels))
    ax.set(xlabel="position of the output", ylabel=ylabel, title=title)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def head_split_figure(
    token_of: Mapping[str, Values],
    feature_of: Mapping[str, Values],
) -> Figure:
    """Where each entry of a split (H, T, Dh) tensor came from: one row of panels per way of
    splitting (title -> (H, T, Dh) source token ids), one panel per head (lesson 07).

    Each cell is coloured by its source token and labelled ``token.feature`` (``feature_of``
    holds the matching source feature ids). In a correct split, row t of every head is token t.
    """
    first = _as_tensor(next(iter(token_of.values())))
    num_heads, seq_len, head_dim = first.shape
    fig = Figure(figsize=(1.0 + 0.75 * head_dim * num_heads, 0.8 + 0.55 * seq_len * len(token_of)),
                 layout="constrained")
    axes = fig.subplots(len(token_of), num_heads, squeeze=False)
    for row, (title, tokens) in enumerate(token_of.items()):
        tokens, features = _as_tensor(tokens).long(), _as_tensor(feature_of[title]).long()
        for head in range(num_heads):
            ax = axes[row, head]
            ax.imshow(tokens[head].numpy(), cmap="tab10", vmin=0, vmax=9, aspect="auto")
            for t in range(seq_len):
                for d in range(head_dim):
                    label = f"{int(tokens[head, t, d])}.{int(features[head, t, d])}"
                    ax.text(d, t, label, ha="center", va="center", fontsize=8)
            ax.set_xticks(range(head_dim))
            ax.set_yticks(range(seq_len))
            ax.set_title(f"{title}\nhead {head}", fontsize=9)
            ax.set_xlabel("head feature")
        axes[row, 0].set_ylabel("row (position t)")
    fig.suptitle("each cell: source token.source feature (colour = source token)", fontsize=10)
    return fig


def attention_over_sequences(
    weights: Values,
    tokens: Values,
    marked: Values,
    *,
    title: str = "",
    cbar_label: str = "attention weight",
    row_labels: Sequence[str] | None = None,
) -> Figure:
    """Attention weights over a few sequences, one row each, labelled with the token ids;
    ``marked`` positions (True, the informative tokens) get a red frame (lesson 08).

    weights (N, T) floats, tokens (N, T) ints, marked (N, T) bool; ``row_labels`` name the
    rows ("sequence 0", "sequence 1", ... when left out).
    """
    weights, tokens, marked = _as_tensor(weights), _as_tensor(tokens).long(), _as_tensor(marked)
    num_rows, seq_len = weights.shape
    fig = Figure(figsize=(1.5 + 0.5 * seq_len, 1.0 + 0.5 * num_rows), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(weights.numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    for row in range(num_rows):
        for col in range(seq_len):
            color = "black" if weights[row, col] > 0.5 else "white"
            ax.text(col, row, str(int(tokens[row, col])), ha="center", va="center", fontsize=8,
                    color=color)
            if marked[row, col]:
                ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False,
                                       edgecolor="red", linewidth=2.5))
    ax.set_xticks(range(seq_len))
    if row_labels is None:
        row_labels = [f"sequence {row}" for row in range(num_rows)]
    ax.set_yticks(range(num_rows), labels=list(row_labels))
    ax.set(xlabel="position (cell text: token id)", title=title)
    fig.colorbar(image, ax=ax, label=cbar_label)
    return fig


def positional_encoding_figure(
    encoding: Values,
    columns: Sequence[int] = (0, 2, 6, 14),
    *,
    waves: Values | None = None,
    wave_positions: Values | None = None,
    curve_len: int | None = None,
) -> Figure:
    """A (T, D) positional encoding as a heatmap, and a few of its columns over the position
    (lesson 10): fast waves in the first columns, slower ones further right.

    On the right each column's values at the integer positions are dots. ``waves`` (N, D), the
    same encoding at N finer ``wave_positions``, draws the continuous wave through them, so a
    fast column is not mistaken for a zigzag joining its samples. ``curve_len`` limits the right
    panel to the first positions.
    """
    encoding = _as_tensor(encoding)  # (T, D)
    fig = Figure(figsize=(8.5, 3.8), layout="constrained")  # wider is scaled down in JupyterLab
    left, right = fig.subplots(1, 2, width_ratios=(1.1, 1))
    image = left.imshow(encoding.numpy(), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    left.set(xlabel="dimension (column of D)", ylabel="position", title="encoding (T, D)")
    fig.colorbar(image, ax=left, label="value")
    shown = encoding[:curve_len]  # (T', D)
    if waves is not None:
        fine = _as_tensor(wave_positions)  # (N,)
        keep = fine <= len(shown) - 1  # (N,): the fine positions inside the panel
        fine, waves = fine[keep], _as_tensor(waves)[keep]  # (N',), (N', D)
    for index, column in enumerate(columns):
        color, label = f"C{index % 10}", f"column {column}"
        if waves is None:
            right.plot(shown[:, column].numpy(), "o-", markersize=3, color=color, label=label)
        else:
            right.plot(fine.numpy(), waves[:, column].numpy(), color=color, linewidth=1,
                       label=label)
            right.plot(shown[:, column].numpy(), "o", markersize=3, color=color)
    right.set(xlabel="position", ylabel="value",
              title="some columns (dots: whole positions)")
    right.legend(loc="lower left", fontsize=8)
    right.grid(alpha=0.3)
    return fig


def image_attention_figure(
    images: Values,
    weights: Values,
    titles: Sequence[str],
    *,
    patch_size: int,
) -> Figure:
    """Images (N, H, W) on top, the same images under their patch attention weights below
    (lesson 11). weights (N, P): one weight per patch, patches in row-major order on the
    (H / patch_size, W / patch_size) grid; they are drawn as coloured squares over the image.
    """
    images, weights = _as_tensor(images), _as_tensor(weights)
    num_images, height, width = images.shape
    grid = weights.view(num_images, height // patch_size, width // patch_size)  # (N, H/p, W/p)
    fig = Figure(figsize=(1.9 * num_images + 0.8, 4.2), layout="constrained")
    axes = fig.subplots(2, num_images, squeeze=False)
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)  # the weights cover the image exactly
    for n in range(num_images):
        top, bottom = axes[0, n], axes[1, n]
        top.imshow(images[n].numpy(), cmap="gray", vmin=0, vmax=1)
        top.set_title(titles[n], fontsize=9)
        bottom.imshow(images[n].numpy(), cmap="gray", vmin=0, vmax=1)
        overlay = bottom.imshow(grid[n].numpy(), cmap="magma", vmin=0, vmax=1, alpha=0.6,
                                extent=extent, interpolation="nearest")
        for ax in (top, bottom):
            ax.set_xticks([x - 0.5 for x in range(0, width + 1, patch_size)], labels=[])
            ax.set_yticks([y - 0.5 for y in range(0, height + 1, patch_size)], labels=[])
            ax.grid(color="white", alpha=0.3, linewidth=0.8)
            ax.tick_params(length=0)
    axes[0, 0].set_ylabel("image")
    axes[1, 0].set_ylabel("attention over patches")
    fig.colorbar(overlay, ax=list(axes[1]), label="attention weight", shrink=0.9)
    return fig


def signal_attention_figure(
    signals: Values,
    weights: Values,
    marked: Values,
    titles: Sequence[str],
    *,
    frame_size: int,
    marked_label: str = "the frames the loud tone overlaps",
) -> Figure:
    """Sound clips (N, L) as waveforms, each frame of ``frame_size`` samples shaded by its
    attention weight (N, F), with the weights as bars underneath; the bars of the ``marked``
    (N, F) frames (``marked_label`` says which they are) are red, the others grey (lesson 11).
    """
    signals, weights, marked = _as_tensor(signals), _as_tensor(weights), _as_tensor(marked)
    num_clips, length = signals.shape
    num_frames = weights.size(1)
    fig = Figure(figsize=(8.5, 2.4 * num_clips), layout="constrained")
    axes = fig.subplots(2 * num_clips, 1, height_ratios=[2, 1] * num_clips, sharex=True)
    centres = [(f + 0.5) * frame_size for f in range(num_frames)]
    for n in range(num_clips):
        wave, bars = axes[2 * n], axes[2 * n + 1]
        for f in range(num_frames):
            wave.axvspan(f * frame_size, (f + 1) * frame_size, color="tab:orange",
                         alpha=0.8 * float(weights[n, f]), linewidth=0)
        wave.plot(signals[n].numpy(), color="black", linewidth=0.6)
        wave.set(title=titles[n], ylabel="amplitude", xlim=(0, length))
        colors = ["tab:red" if marked[n, f] else "tab:gray" for f in range(num_frames)]
        bars.bar(centres, weights[n].numpy(), width=0.8 * frame_size, color=colors)
        bars.set(ylabel="weight", ylim=(0, 1))
    axes[-1].set_xlabel(f"time (samples); red bars: {marked_label}; grey bars: the others")
    return fig


def scaling_figure(
    seq_lens: Sequence[int],
    seconds: Mapping[str, Values],
    peak_bytes: Mapping[str, Values],
    *,
    title: str = "",
) -> Figure:
    """Measured time and peak extra memory of several attention versions over growing
    sequence length T, both on log-log axes (lesson 12). ``seconds`` and ``peak_bytes`` map a
    version's name to one value per T.
    """
    fig = Figure(figsize=(8.5, 4), layout="constrained")  # wider is scaled down in JupyterLab
    left, right = fig.subplots(1, 2)
    for name, values in seconds.items():
        left.plot(seq_lens, [1e3 * s for s in _as_tensor(values).tolist()], "o-", label=name)
    for name, values in peak_bytes.items():
        right.plot(seq_lens, [b / 2**20 for b in _as_tensor(values).tolist()], "o-", label=name)
    left.set(xlabel="sequence length T (= S)", ylabel="time (ms)", title="time per call")
    right.set(xlabel="sequence length T (= S)", ylabel="peak extra memory (MiB)",
              title="peak memory allocated during the call")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(list(seq_lens), labels=[str(t) for t in seq_lens])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def head_heatmaps(
    weights: Values,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    *,
    ncols: int = 2,
    annotate: bool = True,
    panel_size: tuple[float, float] = (3.6, 3.0),
) -> Figure:
    """One heatmap per head of (H, T, S) weights, in a grid ``ncols`` wide on one colour scale
    from 0 to 1 (lesson 07)."""
    weights = _as_tensor(weights)
    num_heads = weights.size(0)
    nrows = -(-num_heads // ncols)  # ceiling division
    fig = Figure(figsize=(panel_size[0] * ncols + 1.0, panel_size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for head, ax in enumerate(axes.flat):
        if head >= num_heads:
            ax.set_visible(False)
            continue
        image = _draw_heatmap(ax, weights[head], x_labels, y_labels, annotate, 0.0, 1.0, "viridis")
        ax.set_title(f"head {head}")
        ax.set(xlabel="key" if head // ncols == nrows - 1 else "",
               ylabel="query" if head % ncols == 0 else "")
    fig.colorbar(image, ax=axes.ravel().tolist(), label="attention weight")
    return fig


def token_score_bars(
    scores: Values,
    highlighted: Values,
    *,
    highlight_label: str,
    other_label: str,
    title: str = "",
) -> Figure:
    """One bar per token id (V,) for a learned per-token score, ``highlighted`` (V,) bool ids
    in orange and the rest in blue, each group named in the legend (lesson 08).
    """
    scores, highlighted = _as_tensor(scores), _as_tensor(highlighted).bool()
    ids = torch.arange(scores.numel())
    fig = Figure(figsize=(6, 2.6), layout="constrained")
    ax = fig.subplots()
    for mask, color, label in ((highlighted, "tab:orange", highlight_label),
                               (~highlighted, "tab:blue", other_label)):
        ax.bar(ids[mask].numpy(), scores[mask].numpy(), color=color, label=label)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(ids.tolist())
    ax.set(xlabel="token id", ylabel="score", title=title)
    ax.legend(fontsize=8)
    return fig


def layer_head_heatmaps(
    weights: Values,
    token_labels: Sequence[str] | None = None,
    *,
    notes: Mapping[tuple[int, int], str] | None = None,
    panel_size: tuple[float, float] = (3.6, 3.2),
) -> Figure:
    """The attention weights of every head of every layer, (L, H, T, S): one row of panels per
    layer, one panel per head, on one colour scale from 0 to 1 (lesson 15).

    ``token_labels`` label both axes (self-attention); ``notes`` maps (layer, head) to a line
    added under that panel's title, such as the head's scores.
    """
    weights = _as_tensor(weights)
    num_layers, num_heads = weights.shape[:2]
    fig = Figure(figsize=(panel_size[0] * num_heads + 1.0, panel_size[1] * num_layers),
                 layout="constrained")
    axes = fig.subplots(num_layers, num_heads, squeeze=False)
    for layer in range(num_layers):
        for head in range(num_heads):
            ax = axes[layer, head]
            image = _draw_heatmap(ax, weights[layer, head], token_labels, token_labels, False,
                                  0.0, 1.0, "viridis")
            note = (notes or {}).get((layer, head))
            ax.set_title(f"layer {layer}, head {head}" + (f"\n{note}" if note else ""), fontsize=9)
            if token_labels is not None:
                ax.tick_params(labelsize=6)
                ax.tick_params(axis="x", labelrotation=90)
        axes[layer, 0].set_ylabel("query")
    for ax in axes[-1]:
        ax.set_xlabel("key")
    fig.colorbar(image, ax=axes.ravel().tolist(), label="attention weight")
    return fig


def decoding_cost_figure(
    cache_bytes: Mapping[str, int], step_seconds: Mapping[str, float], *, title: str = ""
) -> Figure:
    """Bars of KV-cache size (MiB) and time per decoding step (ms), one bar per variant such as
    MHA, GQA and MQA (lesson 14). Both mappings are keyed by the variant's name."""
    fig = Figure(figsize=(8.5, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    names = list(cache_bytes)
    left.bar(names, [cache_bytes[name] / 2**20 for name in names], color="tab:blue")
    right.bar(names, [1e3 * step_seconds[name] for name in names], color="tab:orange")
    left.set(ylabel="KV cache (MiB)", title="cache memory")
    right.set(ylabel="time per step (ms)", title="one decoding step")
    for ax in (left, right):
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig
