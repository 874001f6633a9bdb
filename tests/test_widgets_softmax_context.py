"""The explorers of lessons 02 and 03: moving the slider redraws the figure and the text."""

import matplotlib

matplotlib.use("Agg")

import base64

import ipywidgets
import torch
from matplotlib.figure import Figure

from attn_course import widgets
from attn_course.reference import softmax

TOKENS = ["a", "cat", "sat", "on", "my", "mat"]
SCORES = torch.tensor([-1.0, 2.0, 0.5, -1.0, -0.6, -0.1])


def shown_png(output: ipywidgets.Output) -> str:
    (display,) = output.outputs
    assert display["output_type"] == "display_data"
    return display["data"]["image/png"]


def test_show_figure_replaces_the_output_with_one_png():
    output = ipywidgets.Output()
    for _ in range(2):
        fig = Figure()
        fig.subplots().plot([0, 1])
        widgets.show_figure(output, fig)
    assert base64.b64decode(shown_png(output)).startswith(b"\x89PNG")
    assert output.outputs[0]["data"]["text/plain"].startswith("<Figure")


def test_temperature_explorer_redraws_when_the_temperature_moves():
    explorer = widgets.temperature_explorer(SCORES, TOKENS)
    slider, text, output = explorer.children
    assert isinstance(slider, ipywidgets.FloatSlider) and slider.value == 1.0
    assert f"cat: {softmax(SCORES)[1]:.3f}" in text.value
    at_one = shown_png(output)

    slider.value = 3.0
    assert f"cat: {softmax(SCORES / 3.0)[1]:.3f}" in text.value
    assert shown_png(output) != at_one

    slider.value = 1.0
    assert shown_png(output) == at_one


def test_kernel_regression_explorer_asks_for_the_weights_of_the_chosen_query():
    x_train = torch.linspace(0, 5, 11)  # (S,)
    y_train = torch.sin(x_train)  # (S,)
    x_grid = torch.linspace(0, 5, 21)  # (T,)
    asked = []

    def nearest_point(query: float) -> torch.Tensor:
        asked.append(query)
        return (x_train - query).abs().argmin().eq(torch.arange(11)).float()  # one-hot (S,)

    explorer = widgets.kernel_regression_explorer(
        x_train, y_train, x_grid, torch.sin(x_grid), torch.sin(x_grid), nearest_point
    )
    slider, text, output = explorer.children
    assert isinstance(slider, ipywidgets.FloatSlider)
    assert (slider.min, slider.max, slider.value) == (0.0, 5.0, 2.5)
    assert asked == [2.5]
    middle = shown_png(output)

    slider.value = 1.0
    assert asked == [2.5, 1.0]
    assert f"estimate {torch.sin(torch.tensor(1.0)).item():.3f}" in text.value
    assert "x = 1.00" in text.value
    assert shown_png(output) != middle
