"""Sample submissions for the grader's tests, built from the real assignment 01 source.

``write_submission`` takes ``solutions/01_scores_softmax_context.ipynb`` (the model solution),
swaps in a student's code for some graded names, drops or adds cells, and writes it as
``test-<case>-<pass|fail>.ipynb``: the name says what the grader must conclude.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest

from attn_course.grader.kernel import CellCode, Zygote, execute
from attn_course.grader.sandbox import Limits

ROOT = Path(__file__).resolve().parents[2]
SOLUTION_01 = ROOT / "solutions" / "01_scores_softmax_context.ipynb"


def solution_notebook() -> nbformat.NotebookNode:
    return nbformat.read(SOLUTION_01, as_version=4)


def write_submission(
    folder: Path,
    case: str,
    outcome: str,
    replace: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
    add: tuple[str, ...] = (),
    edit_locked: dict[str, str] | None = None,
) -> Path:
    """Write ``folder/test-<case>-<outcome>.ipynb``: the model solution with ``replace``
    (grade_id -> new source), cells ``drop``ped by grade_id, ``edit_locked`` (grade_id -> what
    the student typed into a locked cell), and ``add``ed scratch cells after the setup cell."""
    notebook = copy.deepcopy(solution_notebook())
    replace, edit_locked = replace or {}, edit_locked or {}
    cells = []
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in drop:
            continue
        if grade_id in replace:
            cell.source = replace[grade_id]
        if grade_id in edit_locked:
            cell.source = edit_locked[grade_id]
        cells.append(cell)
        if grade_id == "setup":
            cells += [nbformat.v4.new_code_cell(source) for source in add]
    notebook.cells = cells
    path = folder / f"test-{case}-{outcome}.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.fixture(scope="session")
def submission_writer():
    """``write_submission``, for tests and module-scoped fixtures."""
    return write_submission


@pytest.fixture(scope="session")
def solution_01():
    """A function returning a fresh copy of the model solution of assignment 01."""
    return solution_notebook


@pytest.fixture(scope="module")
def zygote():
    """One zygote for a test module's sandboxes."""
    with Zygote() as zygote:
        yield zygote


@pytest.fixture
def run(zygote, tmp_path):
    """``run(cells, exercises=(), timeout=20.0, in_zygote=None)``: execute code cells (then
    exercises' hidden cases) in a sandbox of the module's zygote (or ``in_zygote``), 512 MB of
    memory, as the grader does."""

    def run_cells(cells, exercises=(), timeout=20.0, in_zygote=None):
        notebook = tmp_path / "submission.ipynb"
        notebook.write_text("{}")
        code = [CellCode(index, None, source) for index, source in enumerate(cells, start=1)]
        limits = Limits(timeout=timeout, memory_mb=512)
        return execute(in_zygote or zygote, notebook, code, list(exercises), limits)

    return run_cells
