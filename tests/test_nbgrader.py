"""nbgrader itself takes the solution notebooks unchanged: ``generate_assignment`` releases them,
``autograde`` gives the solutions full marks and the released exercises zero, having run every
cell of the exercises to the end."""

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from attn_course.assignments import nbgrader_cells, read_notebook
from attn_course.checks import ASSIGNMENTS, EXERCISES

ROOT = Path(__file__).resolve().parent.parent
# nbgrader's own log lines at ERROR or above ("[AutogradeApp | ERROR] ..."). Other libraries'
# lines are not asserted on: a kernel shutting down may log a harmless tornado/zmq error.
NBGRADER_ERROR = re.compile(r"^(\x1b\[[\d;]*m)?\[\w+ \| (ERROR|CRITICAL)\]", flags=re.M)
STUDENTS = {"solver": ROOT / "solutions", "beginner": ROOT / "exercises"}


def nbgrader(course: Path, *args: str) -> None:
    bin_dir = str(Path(sys.executable).parent)  # nbgrader runs `alembic` from the same place
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ["PATH"],
        "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTER_CONFIG_DIR": str(course / ".jupyter"),  # no user config leaks in
    }
    done = subprocess.run(
        [str(Path(bin_dir) / "nbgrader"), *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not NBGRADER_ERROR.search(done.stderr), done.stderr


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """An nbgrader course with the three assignments, autograded for two students."""
    course = tmp_path_factory.mktemp("nbgrader-course")
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\n"
        "c.ExecutePreprocessor.timeout = 120\n"
    )
    for assignment in ASSIGNMENTS:
        (course / "source" / assignment).mkdir(parents=True)
        shutil.copy(ROOT / "solutions" / f"{assignment}.ipynb", course / "source" / assignment)
        for student, folder in STUDENTS.items():
            submitted = course / "submitted" / student / assignment
            submitted.mkdir(parents=True)
            shutil.copy(folder / f"{assignment}.ipynb", submitted)
    nbgrader(course, "generate_assignment", "*", "--create")
    nbgrader(course, "autograde", "*", "--create")
    nbgrader(course, "export", "--to", str(course / "grades.csv"))
    return course


def test_autograde_gives_solutions_full_marks_and_exercises_zero(course):
    with open(course / "grades.csv", newline="") as file:
        scores = {(row["assignment"], row["student_id"]): row for row in csv.DictReader(file)}
    for assignment, names in ASSIGNMENTS.items():
        total = sum(EXERCISES[name].points for name in names)
        solver, beginner = scores[assignment, "solver"], scores[assignment, "beginner"]
        assert float(solver["max_score"]) == total
        assert float(solver["score"]) == total
        assert float(beginner["score"]) == 0.0


def test_released_exercises_run_to_the_end_and_fail_only_as_unfinished(course):
    for assignment in ASSIGNMENTS:
        graded = read_notebook(
            course / "autograded" / "beginner" / assignment / f"{assignment}.ipynb"
        )
        grade_cells = {c.index for c in nbgrader_cells(graded) if c.kind == "grade"}
        for index, cell in enumerate(graded.cells):
            if cell.cell_type != "code":
                continue
            assert cell.execution_count is not None, f"{assignment}: cell {index} never ran"
            errors = [o.ename for o in cell.outputs if o.output_type == "error"]
            if index in grade_cells:
                assert errors == ["CheckFailed"]  # an AssertionError, shown without traceback
            else:
                assert errors in ([], ["NotImplementedError"]), f"{assignment} cell {index}"


def test_nbgrader_release_has_the_same_cells_as_attn_course_release(course):
    for assignment in ASSIGNMENTS:
        released = read_notebook(course / "release" / assignment / f"{assignment}.ipynb")
        ours = read_notebook(ROOT / "exercises" / f"{assignment}.ipynb")
        cells = [[(c.cell_type, c.source) for c in nb.cells] for nb in (released, ours)]
        assert cells[0] == cells[1]  # code, instructions and the "Expected output" cells
        assert any("**Expected output**" in source for _, source in cells[0])
