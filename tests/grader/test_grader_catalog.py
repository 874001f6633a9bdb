"""What the grader ships about each assignment matches ``solutions/`` and the checks."""

from __future__ import annotations

import json
from pathlib import Path

from attn_course.assignments import points_by_exercise, read_notebook
from attn_course.checks import ASSIGNMENTS, EXERCISES
from attn_course.grader.catalog import CELLS_FILE, cells_from_solutions, course_assignments

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


def test_shipped_cells_match_the_solutions():
    shipped = json.loads(CELLS_FILE.read_text(encoding="utf-8"))
    assert shipped == cells_from_solutions(SOLUTIONS), (
        "cells.json is stale: run `python -m attn_course.grader.catalog solutions`"
    )


def test_every_assignment_is_known_with_its_exercises_and_points():
    assignments = course_assignments()
    assert set(assignments) == set(ASSIGNMENTS)
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        assignment = assignments[path.stem]
        names = [exercise.name for exercise in assignment.exercises]
        solution_cells = [cell.grade_id for cell in assignment.cells if cell.kind == "solution"]
        assert names == solution_cells == list(ASSIGNMENTS[path.stem])
        points = points_by_exercise(read_notebook(path))
        assert points == {name: EXERCISES[name].points for name in names}
        assert assignment.max_points == sum(points.values())
