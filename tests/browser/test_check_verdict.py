"""A failed check as a learner sees it in JupyterLab: the verdict, then two lines, no traceback.

The notebook is built here: a softmax without the max shift and its check, as in assignment 01,
then the same check asked for a hint. The cell must still fail (nbgrader scores a grade cell
by its error), but what it shows must be the ❌ verdict with its case, not frames of the
course's own code.
"""

from __future__ import annotations

import pytest
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = pytest.mark.browser

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
NOTEBOOK = "check_verdict.ipynb"
SOFTMAX_WITHOUT_MAX_SHIFT = (
    "import torch\n"
    "from attn_course.checks import check\n\n\n"
    "def softmax(scores, dim=-1):\n"
    "    exp = scores.exp()\n"
    "    return exp / exp.sum(dim=dim, keepdim=True)\n"
)


def verdict_notebook():
    return new_notebook(
        cells=[
            new_code_cell(SOFTMAX_WITHOUT_MAX_SHIFT),
            new_code_cell("check(softmax)"),
            new_code_cell("check(softmax, hint=1)"),
        ],
        metadata={"kernelspec": KERNELSPEC},
    )


def test_a_failed_check_shows_its_verdict_and_no_traceback(lab):
    lab.add(NOTEBOOK, verdict_notebook())
    lab.open(NOTEBOOK)
    for index in range(3):
        lab.run_cell(index)
    shown = lab.outputs()

    for index in (1, 2):
        cell = shown[index]
        text = "\n".join(cell["texts"])
        assert cell["texts"][0].startswith("❌ softmax: no max shift"), cell["texts"]
        assert "case '" in text and "expected:" in text and "got:" in text
        assert len(cell["errors"]) == 1, "the cell fails, as a grade cell must"
        (error,) = cell["errors"]
        assert error.startswith("CheckFailed: softmax did not pass"), error
        assert "Traceback" not in error and "File " not in error
        assert "Traceback" not in text and ".py" not in text, "no frames of the course's code"
        assert len(error.splitlines()) == 2
    hinted = "\n".join(shown[2]["texts"])
    assert "hint 1/3" in hinted and "hint 2/3" not in hinted

    lab.cells.nth(1).scroll_into_view_if_needed()
    assert lab.screenshot("check-verdict-failed").stat().st_size > 0
    lab.cells.nth(2).locator(".jp-OutputArea").scroll_into_view_if_needed()
    assert lab.screenshot("check-verdict-hint").stat().st_size > 0
