"""The course the way a learner meets it: JupyterLab in Chromium, Run All, widgets that respond.

Each test opens a notebook whose outputs were cleared, runs it from the Run menu, and checks what
the page shows: no error or warning output, every figure an image, every widget a control. The
widget tests then move a control and wait for the picture or text it drives to change. Fixtures
and the ``Lab`` driver are in this folder's conftest.py; screenshots go to the pytest temp
folder and their paths are printed.
"""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from attn_course.lab import course_root

pytestmark = pytest.mark.browser

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
IMAGE = "image/png"
WIDGET = "application/vnd.jupyter.widget-view+json"

# Lessons with widgets: which widget (counted from the top of the notebook) and which of its
# controls to move, one after the other; each move must change what the widget shows besides its
# controls (its figure or its text).
WIDGET_LESSONS = [
    pytest.param("notebooks/02_softmax.ipynb", 0, [".widget-slider"], id="02_softmax"),
    pytest.param("notebooks/03_context_vectors.ipynb", 0, [".widget-slider"], id="03_context"),
    pytest.param(
        "notebooks/05_masks.ipynb", 0, [".widget-slider", ".widget-checkbox"], id="05_masks"
    ),
    pytest.param("notebooks/07_multi_head_attention.ipynb", 0, [".widget-slider"], id="07_heads"),
]


def stored_counts(notebook: nbformat.NotebookNode) -> list[tuple[int, int]]:
    """(figures, widgets) per cell, from the outputs stored when the notebook was executed."""
    counts = []
    for cell in notebook.cells:
        data = [output.get("data", {}) for output in cell.get("outputs", [])]
        counts.append((sum(IMAGE in d for d in data), sum(WIDGET in d for d in data)))
    return counts


def problems(shown: list[dict], expected: list[tuple[int, int]]) -> list[str]:
    """What a learner would find wrong on the page, one line each (empty: all well)."""
    found = []
    for index, (cell, (figures, widgets)) in enumerate(zip(shown, expected, strict=True)):
        where = f"cell {index}"
        found += [f"{where}: error or warning output:\n{text}" for text in cell["errors"]]
        for text in cell["texts"]:
            found += [f"{where}: shows {text[:80]!r} instead of the real thing"
                      for marker in ("<Figure size", "Error displaying widget", "Loading widget")
                      if marker in text]  # fmt: skip
        if len(cell["images"]) != figures:
            found.append(f"{where}: {len(cell['images'])} images on screen, {figures} expected")
        if any(width == 0 or height == 0 for width, height in cell["images"]):
            found.append(f"{where}: an image did not load")
        if len(cell["widgets"]) != widgets:
            found.append(f"{where}: {len(cell['widgets'])} widgets rendered, {widgets} expected")
        if 0 in cell["widgets"]:
            found.append(f"{where}: a widget shows no control")
    return found


def checked_outputs(lab, expected: list[tuple[int, int]]) -> list[dict]:
    """What the page shows, asserting that a learner would find nothing wrong on it."""
    shown = lab.outputs()
    assert problems(shown, expected) == []
    return shown


def explorer_notebook() -> nbformat.NotebookNode:
    """A small notebook in the course's style: a heatmap from ``plots`` and a slider widget."""
    return new_notebook(
        metadata={"kernelspec": KERNELSPEC},
        cells=[
            new_markdown_cell("# Softmax temperature"),
            new_code_cell(
                "import torch\n"
                "from attn_course import plots, widgets\n"
                "_ = torch.manual_seed(0)"
            ),
            new_code_cell(
                "weights = torch.softmax(torch.randn(3, 4), dim=-1)  # (T, S)\n"
                "plots.attention_heatmap(weights, list('abcd'), list('xyz'))"
            ),
            new_code_cell(
                "widgets.temperature_explorer(torch.tensor([2.0, 1.0, 0.1]), ['cat', 'sat', 'on'])"
            ),
        ],
    )  # fmt: skip


def test_a_figure_and_a_slider_render_and_the_slider_redraws(lab):
    lab.add("explorer_renders.ipynb", explorer_notebook())
    expected = [(0, 0), (0, 0), (1, 0), (0, 1)]
    lab.open("explorer_renders.ipynb")
    lab.run_all()
    shown = checked_outputs(lab, expected)
    assert shown[3]["widgets"] == [1], "the temperature explorer has one control, its slider"

    widget = lab.widget(0)
    before, after = lab.move_and_wait_for_change(widget, widget.locator(".widget-slider"))
    assert "temperature" in widget.inner_text()
    assert before["images"] != after["images"], "the figure was not redrawn"
    assert before["texts"] != after["texts"], "the weights under the slider did not change"
    lab.screenshot("explorer_renders")


def test_errors_and_pictures_shown_as_text_are_reported(lab):
    notebook = new_notebook(
        metadata={"kernelspec": KERNELSPEC},
        cells=[
            new_code_cell(  # a bare Figure without attn_course.plots: IPython shows only text
                "from matplotlib.figure import Figure\n"
                "fig = Figure()\n"
                "fig.subplots().plot([0, 1])\n"
                "fig"
            ),
            new_code_cell("1 / 0"),
            new_code_cell("print('never runs')"),
        ],
    )  # fmt: skip
    lab.add("error_and_text_figure.ipynb", notebook)
    lab.open("error_and_text_figure.ipynb")
    lab.run_all()
    assert lab.prompts() == ["[1]:", "[2]:", "[ ]:"], "Run All stops at the failing cell"
    found = problems(lab.outputs(), [(1, 0), (0, 0), (0, 0)])
    assert len(found) == 3, found
    assert "cell 0: shows '<Figure size" in found[0]
    assert found[1] == "cell 0: 0 images on screen, 1 expected"
    assert found[2].startswith("cell 1: error or warning output")
    assert "ZeroDivisionError" in found[2]


@pytest.mark.parametrize(("relative", "widget_index", "controls"), WIDGET_LESSONS)
def test_lesson_runs_in_jupyterlab_and_its_widget_responds(lab, relative, widget_index, controls):
    stored = lab.add_from_course(relative)
    expected = stored_counts(stored)
    assert sum(figures for figures, _ in expected) >= 1, "every lesson shows a picture"
    lab.open(relative)
    lab.run_all()
    checked_outputs(lab, expected)
    name = relative.rsplit("/", 1)[-1].removesuffix(".ipynb")
    lab.screenshot(f"{name}-all", full=True)

    widget = lab.widget(widget_index)
    for control in controls:
        lab.move_and_wait_for_change(widget, widget.locator(control).first)
    assert problems(lab.outputs(), expected) == [], "moving a control broke something"
    widget.scroll_into_view_if_needed()
    lab.screenshot(f"{name}-widget")


EXERCISE = "exercises/01_scores_softmax_context.ipynb"
SOLUTION = "solutions/01_scores_softmax_context.ipynb"
# Assignment 01's softmax without the max shift: exp overflows for scores of 1e4.
SOFTMAX_WITHOUT_MAX_SHIFT = """\
def softmax(scores: torch.Tensor, dim: int = -1) -> torch.Tensor:
    exp = scores.exp()
    return exp / exp.sum(dim=dim, keepdim=True)
"""


def cell_index(notebook: nbformat.NotebookNode, grade_id: str) -> int:
    ids = [cell.metadata.get("nbgrader", {}).get("grade_id") for cell in notebook.cells]
    return ids.index(grade_id)


def learner_code(solution_source: str) -> str:
    """A model solution as a learner would type it: without nbgrader's solution markers."""
    lines = solution_source.splitlines()
    return "\n".join(line for line in lines if "### BEGIN SOLUTION" not in line
                      and "### END SOLUTION" not in line)  # fmt: skip


def test_exercise_checks_say_passed_for_right_code_and_name_the_mistake_in_wrong_code(lab):
    exercise = lab.add_from_course(EXERCISE)
    solutions = nbformat.read(course_root() / SOLUTION, as_version=4)
    names = [
        cell.metadata.nbgrader.grade_id
        for cell in exercise.cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    ]
    assert names == ["attention_scores", "softmax", "context_vector", "SimpleAttention"]

    lab.open(EXERCISE)
    for name in names:
        solution = solutions.cells[cell_index(solutions, name)].source
        lab.replace_source(cell_index(exercise, name), learner_code(solution))
    lab.run_all()
    shown = checked_outputs(lab, [(0, 0)] * len(exercise.cells))  # assignment 01 draws nothing
    for name in names:
        verdict = shown[cell_index(exercise, f"check_{name}")]["texts"]
        assert verdict and verdict[0].startswith(f"✅ {name}"), (name, verdict)
    lab.screenshot("exercise-01-passed", full=True)

    softmax_cell = cell_index(exercise, "softmax")
    check_cell = cell_index(exercise, "check_softmax")
    lab.replace_source(softmax_cell, SOFTMAX_WITHOUT_MAX_SHIFT)
    lab.run_cell(softmax_cell)
    lab.run_cell(check_cell)
    shown = lab.outputs()[check_cell]
    assert shown["texts"][0].startswith("❌ softmax: no max shift"), shown["texts"]
    assert "CheckFailed" in shown["errors"][0], "a failed check makes its cell fail"
    lab.cells.nth(check_cell).scroll_into_view_if_needed()
    lab.screenshot("exercise-01-no-max-shift")
