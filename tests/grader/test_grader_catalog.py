"""What the grader ships about each assignment matches ``solutions/`` and the checks."""

from __future__ import annotations

import json
from pathlib import Path

from attn_course.assignments import points_by_exercise, read_notebook
from attn_course.checks import ASSIGNMENTS, EXERCISES
from attn_course.grader import catalog
from attn_course.grader.catalog import (
    CELLS_FILE,
    catalog_is_stale,
    cells_from_solutions,
    course_assignments,
    write_catalog,
)

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


def test_shipped_cells_match_the_solutions():
    shipped = json.loads(CELLS_FILE.read_text(encoding="utf-8"))
    assert shipped == cells_from_solutions(SOLUTIONS), (
        "cells.json is stale: run `attn-course release`"
    )


def test_release_updates_only_the_released_assignments_and_check_notices(tmp_path, monkeypatch):
    cells = tmp_path / "cells.json"
    cells.write_text(CELLS_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(catalog, "CELLS_FILE", cells)
    assert not catalog_is_stale(SOLUTIONS)

    folder = tmp_path / "solutions"
    folder.mkdir()
    source = SOLUTIONS / "02_scaled_dot_product_attention.ipynb"
    text = source.read_text(encoding="utf-8")
    locked_line = "from attn_course.checks import check"  # in the locked setup cell
    assert locked_line in text
    edited = text.replace(locked_line, locked_line + "  # edited")
    (folder / source.name).write_text(edited, encoding="utf-8")
    assert catalog_is_stale(folder)

    write_catalog(folder)
    assert not catalog_is_stale(folder)
    updated = json.loads(cells.read_text(encoding="utf-8"))
    assert updated.keys() == json.loads(CELLS_FILE.read_text(encoding="utf-8")).keys()
    assert updated[source.stem] == cells_from_solutions(folder)[source.stem]
    assert catalog_is_stale(SOLUTIONS)


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
