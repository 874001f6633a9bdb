"""Preparing a submission: locked cells restored or put back, grade cells left out."""

from __future__ import annotations

import pytest

from attn_course.grader.catalog import course_assignments
from attn_course.grader.notebook import (
    InvalidSubmission,
    assignment_of,
    cell_grade_id,
    prepare,
    python,
    read,
)


@pytest.fixture(scope="module")
def assignment():
    return course_assignments()["01_scores_softmax_context"]


def test_locked_cells_are_restored_and_grade_cells_skipped(assignment, solution_01):
    notebook = solution_01()
    setup = next(
        c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup"
    )
    original = setup.source
    setup.source = "import torch\ntorch.allclose = lambda *a, **k: True"
    submission = prepare(notebook, "s", None, assignment)
    grade_ids = [cell.grade_id for cell in submission.cells]
    assert not any(gid and gid.startswith("check_") for gid in grade_ids)
    assert submission.cells[0].grade_id == "setup"
    assert submission.cells[0].code.strip() == original.strip()
    assert [gid for gid in grade_ids if gid] == ["setup", *assignment_names(assignment)]


def assignment_names(assignment):
    return [exercise.name for exercise in assignment.exercises]


def test_a_deleted_locked_cell_is_put_back_before_the_next_known_cell(assignment, solution_01):
    notebook = solution_01()
    notebook.cells = [
        c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "setup"
    ]
    submission = prepare(notebook, "s", None, assignment)
    assert submission.cells[0].grade_id == "setup"


def test_magics_become_python():
    assert "get_ipython().run_line_magic('matplotlib', 'inline')" in python("%matplotlib inline")
    assert "get_ipython().system('pip install x')" in python("!pip install x")


def test_assignment_comes_from_metadata_then_the_file_name(assignment, solution_01, tmp_path):
    known = {assignment.id: assignment}
    notebook = solution_01()
    assert assignment_of(notebook, tmp_path / "whatever.ipynb", known) is assignment
    del notebook.metadata["attn_course"]
    assert assignment_of(notebook, tmp_path / f"{assignment.id}.ipynb", known) is assignment
    assert assignment_of(notebook, tmp_path / "mine.ipynb", known) is assignment  # grade ids
    for cell in notebook.cells:
        cell.metadata.pop("nbgrader", None)
    with pytest.raises(InvalidSubmission, match="does not name its assignment"):
        assignment_of(notebook, tmp_path / "mine.ipynb", known)


def test_read_rejects_what_is_not_a_notebook(tmp_path):
    path = tmp_path / "x.ipynb"
    path.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(InvalidSubmission, match="not a valid notebook"):
        read(path)
    path.write_text('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"x": 1}]}')
    with pytest.raises(InvalidSubmission, match="not a valid notebook"):
        read(path)


@pytest.mark.parametrize("named", [["01_scores_softmax_context"], {"a": 1}, 3])
def test_an_assignment_named_by_something_else_than_a_string_is_invalid(
    named, solution_01, tmp_path
):
    notebook = solution_01()
    notebook.metadata["attn_course"]["assignment"] = named
    with pytest.raises(InvalidSubmission):
        assignment_of(notebook, tmp_path / "x.ipynb", course_assignments())


def test_grade_ids_that_are_not_strings_are_none(solution_01):
    notebook = solution_01()
    notebook.cells[0].metadata["nbgrader"] = "x"
    notebook.cells[1].metadata["nbgrader"] = {"grade_id": ["softmax"]}
    assert cell_grade_id(notebook.cells[0]) is None
    assert cell_grade_id(notebook.cells[1]) is None
