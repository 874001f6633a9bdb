"""What the grader knows of each assignment, all of it inside the installed package.

- exercises, points, hidden cases and judges: ``attn_course.checks`` (``ASSIGNMENTS``,
  ``EXERCISES``);
- the nbgrader cells of each source notebook (which cell is a solution, a locked cell or a
  grade cell, and the locked cells' source): ``cells.json`` next to this module, written from
  ``solutions/`` by ``attn-course release`` (or ``python -m attn_course.grader.catalog
  solutions/``) and checked against it by ``attn-course release --check`` and the tests.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attn_course.assignments import assignment_id, nbgrader_cells, read_notebook

CELLS_FILE = Path(__file__).with_name("cells.json")


@dataclass(frozen=True)
class SourceCell:
    """An nbgrader cell of the assignment's source: ``kind`` is solution, grade or locked;
    ``source`` is kept for the locked and grade cells (the student may not change them)."""

    grade_id: str
    kind: str
    source: str = ""


@dataclass(frozen=True)
class Assignment:
    """One assignment as the grader sees it. ``exercises`` are ``attn_course.checks``
    exercises (or anything with their ``name``, ``points``, ``forbidden``, ``make_cases`` and
    ``judge``)."""

    id: str
    exercises: tuple[Any, ...]
    cells: tuple[SourceCell, ...]

    @property
    def max_points(self) -> float:
        return sum(exercise.points for exercise in self.exercises)

    def locked(self, grade_id: str | None) -> SourceCell | None:
        """The source cell a submitted cell must be restored to (None: the student's own)."""
        for cell in self.cells:
            if cell.grade_id == grade_id and cell.kind != "solution":
                return cell
        return None


def source_cells(notebook: Any) -> list[SourceCell]:
    """The nbgrader cells of a source notebook, as stored in ``cells.json``."""
    return [
        SourceCell(cell.grade_id, cell.kind, "" if cell.kind == "solution" else cell.source)
        for cell in nbgrader_cells(notebook)
    ]


def cells_from_solutions(folder: str | Path) -> dict[str, list[dict[str, str]]]:
    """Assignment id -> its source cells, read from ``folder``'s solution notebooks."""
    catalog = {}
    for path in sorted(Path(folder).glob("*.ipynb")):
        notebook = read_notebook(path)
        catalog[assignment_id(notebook)] = [vars(cell) for cell in source_cells(notebook)]
    return catalog


def _updated_catalog_text(folder: str | Path) -> str:
    """``cells.json`` with the entries of ``folder``'s assignments replaced (others kept)."""
    catalog = json.loads(CELLS_FILE.read_text(encoding="utf-8"))
    catalog.update(cells_from_solutions(folder))
    return json.dumps(dict(sorted(catalog.items())), indent=1, ensure_ascii=False) + "\n"


def write_catalog(folder: str | Path) -> Path:
    """Update ``cells.json`` from the solution notebooks in ``folder``; return its path."""
    CELLS_FILE.write_text(_updated_catalog_text(folder), encoding="utf-8")
    return CELLS_FILE


def catalog_is_stale(folder: str | Path) -> bool:
    """Whether ``write_catalog(folder)`` would change ``cells.json``."""
    return CELLS_FILE.read_text(encoding="utf-8") != _updated_catalog_text(folder)


def course_assignments() -> dict[str, Assignment]:
    """Every assignment of the course, from the checks' registry and ``cells.json``."""
    from attn_course.checks import ASSIGNMENTS, EXERCISES

    stored = json.loads(CELLS_FILE.read_text(encoding="utf-8"))
    return {
        name: Assignment(
            id=name,
            exercises=tuple(EXERCISES[exercise] for exercise in exercises),
            cells=tuple(SourceCell(**cell) for cell in stored.get(name, [])),
        )
        for name, exercises in ASSIGNMENTS.items()
    }


def main(argv: Sequence[str]) -> int:
    """``python -m attn_course.grader.catalog SOLUTIONS_DIR``: rewrite ``cells.json``."""
    if len(argv) != 1:
        print("usage: python -m attn_course.grader.catalog SOLUTIONS_DIR", file=sys.stderr)
        return 2
    print(f"wrote {write_catalog(argv[0])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
