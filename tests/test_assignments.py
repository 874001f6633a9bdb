"""Assignment notebooks: solutions/ agree with the checks' registry, exercises/ is made from them
the way nbgrader would, and `attn-course release --check` notices a stale exercises/."""

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from attn_course.assignments import (
    WORKED_EXAMPLE_TAG,
    assignment_id,
    make_exercise,
    nbgrader_cells,
    points_by_exercise,
    read_notebook,
    release,
    stale_exercises,
    strip_solutions,
    text_output,
)
from attn_course.checks import ASSIGNMENTS, EXERCISES

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = {name: ROOT / "solutions" / f"{name}.ipynb" for name in ASSIGNMENTS}


def release_cli(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "attn_course", "release", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def test_strip_solutions_replaces_each_region_with_an_indented_stub():
    source = (
        "def f(x):\n"
        '    """Doc."""\n'
        "    ### BEGIN SOLUTION\n"
        "    return x\n"
        "    ### END SOLUTION\n"
        "\n"
        "class M:\n"
        "    def g(self):\n"
        "        ### BEGIN SOLUTION\n"
        "        return 1\n"
        "        ### END SOLUTION"
    )
    assert strip_solutions(source) == (
        "def f(x):\n"
        '    """Doc."""\n'
        "    # YOUR CODE HERE\n"
        "    raise NotImplementedError()\n"
        "\n"
        "class M:\n"
        "    def g(self):\n"
        "        # YOUR CODE HERE\n"
        "        raise NotImplementedError()"
    )


@pytest.mark.parametrize(
    "source", ["### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION", "### BEGIN SOLUTION\n" * 2]
)
def test_strip_solutions_rejects_unbalanced_markers(source):
    with pytest.raises(ValueError, match="SOLUTION"):
        strip_solutions(source)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_notebook_matches_the_registry(assignment):
    notebook = read_notebook(SOLUTIONS[assignment])
    assert assignment_id(notebook) == assignment
    assert notebook.metadata.kernelspec.name == "python3"
    cells = nbgrader_cells(notebook)
    solutions = [c for c in cells if c.kind == "solution"]
    assert [c.grade_id for c in solutions] == list(ASSIGNMENTS[assignment])
    assert points_by_exercise(notebook) == {
        name: EXERCISES[name].points for name in ASSIGNMENTS[assignment]
    }
    for solution in solutions:
        assert "### BEGIN SOLUTION" in solution.source and "### END SOLUTION" in solution.source
        assert f"def {solution.grade_id}(" in solution.source or (
            f"class {solution.grade_id}(" in solution.source
        )
        grade = next(c for c in cells if c.kind == "grade" and c.index > solution.index)
        assert grade.exercise == solution.grade_id, "each solution is followed by its grade cell"
        assert f"check({solution.grade_id})" in grade.source
        assert notebook.cells[grade.index].metadata.nbgrader.locked


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_task_has_a_worked_example_with_a_stored_output(assignment):
    notebook = read_notebook(SOLUTIONS[assignment])
    examples = [c for c in notebook.cells if WORKED_EXAMPLE_TAG in c.metadata.get("tags", [])]
    assert len(examples) == len(ASSIGNMENTS[assignment])
    assert all(text_output(cell) for cell in examples)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercise_keeps_signatures_hides_solutions_and_shows_expected_outputs(assignment):
    solution = read_notebook(SOLUTIONS[assignment])
    before = nbformat.writes(solution)
    exercise = make_exercise(solution)
    assert nbformat.writes(solution) == before, "the solution notebook is left unchanged"
    nbformat.validate(exercise)

    code = [cell for cell in exercise.cells if cell.cell_type == "code"]
    text = "\n".join(cell.source for cell in code)
    assert "BEGIN SOLUTION" not in text
    assert "masked_fill" not in text and "amax" not in text  # no model answer left
    assert text.count("raise NotImplementedError()") == len(ASSIGNMENTS[assignment])
    for name in ASSIGNMENTS[assignment]:
        assert f"def {name}(" in text or f"class {name}(" in text
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)

    examples = [c for c in solution.cells if WORKED_EXAMPLE_TAG in c.metadata.get("tags", [])]
    for example in examples:
        index = next(i for i, c in enumerate(exercise.cells) if c.id == example.id)
        shown = exercise.cells[index + 1]
        assert shown.cell_type == "markdown" and "Expected output" in shown.source
        assert text_output(example) in shown.source


def test_exercises_folder_is_up_to_date():
    done = release_cli("--check")
    assert done.returncode == 0, done.stdout + done.stderr


def test_stale_missing_and_extra_exercises_are_reported(tmp_path):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    shutil.copytree(ROOT / "solutions", solutions)
    assert len(stale_exercises(solutions, exercises)) == len(ASSIGNMENTS)  # none released yet
    assert [p.name for p in release(solutions, exercises)] == [f"{a}.ipynb" for a in ASSIGNMENTS]
    assert stale_exercises(solutions, exercises) == []

    stale = exercises / "02_scaled_dot_product_attention.ipynb"
    stale.write_text(stale.read_text().replace("causal_mask(4)", "causal_mask(5)"))
    nbformat.write(new_notebook(cells=[new_code_cell("1")]), exercises / "99_extra.ipynb")
    (exercises / "01_scores_softmax_context.ipynb").unlink()
    assert stale_exercises(solutions, exercises) == [
        f"01_scores_softmax_context.ipynb: missing from {exercises}",
        f"02_scaled_dot_product_attention.ipynb: out of date with {solutions}/"
        "02_scaled_dot_product_attention.ipynb",
        "99_extra.ipynb: has no solution notebook",
    ]

    done = release_cli("--check", "--solutions", str(solutions), "--exercises", str(exercises))
    assert done.returncode == 1
    assert "stale: 99_extra.ipynb" in done.stdout


def test_release_refreshes_the_expected_output_shown_under_a_worked_example(tmp_path):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    shutil.copytree(ROOT / "solutions", solutions)
    release(solutions, exercises)
    path = solutions / "01_scores_softmax_context.ipynb"
    notebook = read_notebook(path)
    example = next(c for c in notebook.cells if WORKED_EXAMPLE_TAG in c.metadata.get("tags", []))
    example.outputs = [nbformat.v4.new_output("stream", name="stdout", text="changed\n")]
    nbformat.write(notebook, path)
    assert stale_exercises(solutions, exercises)[0] == (
        f"{path.name}: its Expected output cells differ from its stored outputs"
    )

    release(solutions, exercises)
    assert stale_exercises(solutions, exercises) == []
    for folder in (solutions, exercises):
        cells = read_notebook(folder / path.name).cells
        index = next(i for i, c in enumerate(cells) if c.id == example.id)
        assert "```text\nchanged\n```" in cells[index + 1].source
        assert sum("**Expected output**" in c.source for c in cells) == len(
            ASSIGNMENTS["01_scores_softmax_context"]
        ), "one expected-output cell per worked example, not a second one"
