import matplotlib

matplotlib.use("Agg")

import ipywidgets
import torch

from attn_course import widgets

TOKENS = ["the", "cat", "sat", "on", "the", "mat"]


def shown_png(output: ipywidgets.Output) -> str:
    (display,) = output.outputs
    return display["data"]["image/png"]


def test_mask_explorer_redraws_when_the_padding_length_or_causal_box_changes():
    torch.manual_seed(0)
    explorer = widgets.mask_explorer(torch.randn(6, 6), TOKENS)
    controls, output = explorer.children
    length, causal = controls.children
    assert isinstance(length, ipywidgets.IntSlider) and (length.min, length.max) == (1, 6)
    assert isinstance(causal, ipywidgets.Checkbox) and causal.value is False
    full = shown_png(output)

    length.value = 3
    padded = shown_png(output)
    assert padded != full

    causal.value = True
    assert shown_png(output) not in (full, padded)

    length.value, causal.value = 6, False
    assert shown_png(output) == full


def test_head_explorer_shows_the_selected_head():
    torch.manual_seed(0)
    weights = torch.softmax(torch.randn(4, 6, 6), dim=-1)  # (H, T, S)
    explorer = widgets.head_explorer(weights, TOKENS, TOKENS)
    head, output = explorer.children
    assert isinstance(head, ipywidgets.IntSlider) and (head.min, head.max) == (0, 3)
    pictures = []
    for index in range(4):
        head.value = index
        pictures.append(shown_png(output))
    assert len(set(pictures)) == 4
    head.value = 0
    assert shown_png(output) == pictures[0]
