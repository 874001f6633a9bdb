"""Assignment notebooks: the nbgrader cells of a solution, and the exercise made from it.

``solutions/NN_topic.ipynb`` is the source of truth, in nbgrader's format: a solution cell per
graded name (``metadata.nbgrader.solution``, ``grade_id`` = the name, the answer between
``### BEGIN SOLUTION`` and ``### END SOLUTION``), then a locked grade cell (``grade_id``
``check_<name>``, ``points``) that runs ``attn_course.checks.check``. ``make_exercise`` turns it
into what learners get, the way nbgrader's ``generate_assignment`` does: each solution region
becomes ``raise NotImplementedError()`` and stored outputs are cleared. A worked-example cell
(tag ``worked-example``) is followed, in the solution itself, by a markdown cell showing its
stored output as the expected one (``with_expected_outputs`` keeps it up to date), so the
expected outputs survive in the exercise whether ``attn-course release`` or nbgrader made it.
"""

from __future__ import annotations

import copy
import re
import site
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")  # nbgrader's default stub
WORKED_EXAMPLE_TAG = "worked-example"
GRADE_ID_PREFIX = "check_"


@dataclass(frozen=True)
class NbgraderCell:
    """One cell that nbgrader knows: ``kind`` is "solution", "grade" or "locked" (read-only).

    ``exercise`` is the graded name the cell defines (solution) or checks (grade), else "".
    """

    index: int
    grade_id: str
    kind: str
    points: float
    source: str

    @property
    def exercise(self) -> str:
        if self.kind == "solution":
            return self.grade_id
        if self.kind == "grade":
            return self.grade_id.removeprefix(GRADE_ID_PREFIX)
        return ""


def read_notebook(path: str | Path) -> NotebookNode:
    return nbformat.read(path, as_version=4)


def assignment_id(notebook: NotebookNode) -> str:
    """The assignment id stored in the notebook metadata (``attn_course.assignment``)."""
    return notebook.metadata["attn_course"]["assignment"]


def nbgrader_cells(notebook: NotebookNode) -> list[NbgraderCell]:
    """The notebook's nbgrader cells, in order."""
    cells = []
    for index, cell in enumerate(notebook.cells):
        meta = cell.metadata.get("nbgrader")
        if not meta:
            continue
        if meta.get("solution"):
            kind = "solution"
        elif meta.get("grade"):
            kind = "grade"
        elif meta.get("locked"):
            kind = "locked"
        else:
            continue
        points = float(meta.get("points", 0)) if kind == "grade" else 0.0
        cells.append(NbgraderCell(index, meta["grade_id"], kind, points, cell.source))
    return cells


def points_by_exercise(notebook: NotebookNode) -> dict[str, float]:
    """Exercise name -> the points of the grade cell that checks it."""
    return {c.exercise: c.points for c in nbgrader_cells(notebook) if c.kind == "grade"}


def strip_solutions(source: str) -> str:
    """Replace every ``### BEGIN SOLUTION`` … ``### END SOLUTION`` region with the code stub,
    indented like the BEGIN line (as nbgrader's ClearSolutions does)."""
    lines, in_solution = [], False
    for line in source.split("\n"):
        if BEGIN_SOLUTION in line:
            if in_solution:
                raise ValueError("nested ### BEGIN SOLUTION")
            in_solution = True
            indent = re.match(r"\s*", line).group(0)
            lines += [indent + stub for stub in CODE_STUB]
        elif END_SOLUTION in line:
            if not in_solution:
                raise ValueError("### END SOLUTION without ### BEGIN SOLUTION")
            in_solution = False
        elif not in_solution:
            lines.append(line)
    if in_solution:
        raise ValueError("### BEGIN SOLUTION without ### END SOLUTION")
    return "\n".join(lines)


def text_output(cell: NotebookNode) -> str:
    """The text a code cell showed: its printed output and its plain-text results."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream" and output.name == "stdout":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            text = output.data.get("text/plain")
            if text and "image/png" not in output.data:
                parts.append(text + "\n")
    return "".join(parts).rstrip("\n")


def expected_output_cell(cell: NotebookNode) -> NotebookNode:
    """A markdown cell showing the worked example's stored output as the expected one."""
    markdown = nbformat.v4.new_markdown_cell(
        "**Expected output** (from the model solution; yours should match it):\n\n"
        f"```text\n{text_output(cell)}\n```"
    )
    markdown.id = f"{cell.id}-expected"[:64]
    markdown.metadata["attn_course"] = {"expected_output_of": cell.id}
    return markdown


def with_expected_outputs(solution: NotebookNode) -> NotebookNode:
    """A copy of the solution with an up-to-date "Expected output" markdown cell right after
    each worked example (the stored output is the truth; the markdown cell is derived)."""
    notebook = copy.deepcopy(solution)
    cells = []
    for cell in notebook.cells:
        if "expected_output_of" in cell.metadata.get("attn_course", {}):
            continue  # made again below, from the current output
        cells.append(cell)
        if cell.cell_type == "code" and WORKED_EXAMPLE_TAG in cell.metadata.get("tags", []):
            cells.append(expected_output_cell(cell))
    notebook.cells = cells
    return notebook


def make_exercise(solution: NotebookNode) -> NotebookNode:
    """The learner's notebook made from a solution notebook (the solution is left unchanged)."""
    exercise = with_expected_outputs(solution)
    for cell in exercise.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            if cell.metadata.get("nbgrader", {}).get("solution"):
                cell.source = strip_solutions(cell.source)
            cell.outputs, cell.execution_count = [], None
    return exercise


def notebook_text(notebook: NotebookNode) -> str:
    """The notebook as written to disk (nbformat's JSON, with a final newline)."""
    return nbformat.writes(notebook) + "\n"


def _expected_outputs_are_stale(solution: NotebookNode) -> bool:
    return nbformat.writes(with_expected_outputs(solution)) != nbformat.writes(solution)


class ReleaseError(Exception):
    """``attn-course release`` cannot run as asked (the message says why and what to do)."""


def installed_in_site_packages() -> bool:
    """Whether this package lies in a site-packages folder (a regular install from a wheel),
    rather than being an editable install of a checkout."""
    package = Path(__file__).resolve().parent
    paths = sysconfig.get_paths()
    folders = {*site.getsitepackages(), site.getusersitepackages(), paths["purelib"],
               paths["platlib"]}  # fmt: skip
    return any(package.is_relative_to(Path(folder).resolve()) for folder in folders)


def usable_solutions(solutions_dir: str | Path, writing: bool) -> None:
    """Raise ``ReleaseError`` unless ``solutions_dir`` holds solution notebooks and, when
    ``writing``, the grader's ``cells.json`` belongs to a checkout rather than an installed
    package (a release rewrites it)."""
    folder = Path(solutions_dir)
    if not folder.is_dir():
        raise ReleaseError(f"no solutions folder {folder}: pass --solutions DIR")
    if not any(folder.glob("*.ipynb")):
        raise ReleaseError(f"no solution notebooks (*.ipynb) in {folder}")
    if writing and installed_in_site_packages():
        raise ReleaseError(
            "this attn-course is installed in site-packages, and a release would rewrite the "
            "grader's cells.json inside it; release from a clone of the course installed with "
            "`pip install -e .` (--check only reads, and works here)"
        )


def release(solutions_dir: str | Path, exercises_dir: str | Path) -> list[Path]:
    """Write ``exercises_dir/NAME.ipynb`` for every ``solutions_dir/NAME.ipynb``, after bringing
    the solution's "Expected output" cells up to date; return the files written."""
    exercises_dir = Path(exercises_dir)
    exercises_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(Path(solutions_dir).glob("*.ipynb")):
        solution = read_notebook(source)
        if _expected_outputs_are_stale(solution):
            source.write_text(notebook_text(with_expected_outputs(solution)), encoding="utf-8")
            written.append(source)
        target = exercises_dir / source.name
        target.write_text(notebook_text(make_exercise(solution)), encoding="utf-8")
        written.append(target)
    return written


def stale_exercises(solutions_dir: str | Path, exercises_dir: str | Path) -> list[str]:
    """What ``release`` would change in ``exercises_dir``, one line each (empty: up to date)."""
    problems = []
    solutions = {path.name: path for path in Path(solutions_dir).glob("*.ipynb")}
    exercises = {path.name: path for path in Path(exercises_dir).glob("*.ipynb")}
    for name, source in sorted(solutions.items()):
        if _expected_outputs_are_stale(read_notebook(source)):
            problems.append(f"{name}: its Expected output cells differ from its stored outputs")
        if name not in exercises:
            problems.append(f"{name}: missing from {exercises_dir}")
            continue
        fresh = notebook_text(make_exercise(read_notebook(source)))
        if exercises[name].read_text(encoding="utf-8") != fresh:
            problems.append(f"{name}: out of date with {solutions_dir}/{name}")
    problems += [
        f"{name}: has no solution notebook" for name in sorted(exercises.keys() - solutions.keys())
    ]
    return problems
