"""Hints on demand: every exercise has three, a difficulty and a time, and the notebooks agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from attn_course.assignments import nbgrader_cells, read_notebook
from attn_course.checks import ASSIGNMENTS, EXERCISES, check, hint
from attn_course.checks.hints import DIFFICULTIES, HINTS, difficulty_line, format_hints

ROOT = Path(__file__).resolve().parents[2]


def test_every_exercise_has_three_hints_a_difficulty_and_a_time():
    assert set(HINTS) == set(EXERCISES)
    for name, hints in HINTS.items():
        assert hints.difficulty in DIFFICULTIES, name
        assert 0 < hints.minutes <= 90, name
        texts = [hints.hint(level) for level in (1, 2, 3)]
        assert all(len(text) > 40 for text in texts), name
        assert len(set(texts)) == 3, name


def solution_lines(assignment: str) -> dict[str, list[str]]:
    """The model solution's lines of each exercise (between the solution markers)."""
    notebook = read_notebook(ROOT / "solutions" / f"{assignment}.ipynb")
    found = {}
    for cell in nbgrader_cells(notebook):
        if cell.kind == "solution":
            body = cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
            found[cell.exercise] = [line.split("#")[0].strip() for line in body.splitlines()]
    return found


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_hint_holds_a_line_of_the_model_solution(assignment):
    for name, lines in solution_lines(assignment).items():
        text = " ".join(HINTS[name].hint(level) for level in (1, 2, 3))
        for line in lines:
            if len(line) >= 20:  # short lines (`return tokens`) say nothing on their own
                assert line not in text, (name, line)


@pytest.mark.parametrize("folder", ["solutions", "exercises"])
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_task_states_its_difficulty_and_time_under_its_heading(folder, assignment):
    notebook = read_notebook(ROOT / folder / f"{assignment}.ipynb")
    headings = {}
    for cell in notebook.cells:
        found = re.match(r"## Task \d+: `(\w+)`", cell.source)
        if cell.cell_type == "markdown" and found:
            headings[found.group(1)] = cell.source.splitlines()
    assert list(headings) == list(ASSIGNMENTS[assignment])
    for name, lines in headings.items():
        assert lines[2] == difficulty_line(HINTS[name]), (name, lines[:3])


def test_hint_gives_the_hints_up_to_the_level_asked(capsys):
    hint("softmax")
    first = capsys.readouterr().out
    assert "hint 1/3" in first and "hint 2/3" not in first and "level=2" in first
    hint("softmax", level=3)
    every = capsys.readouterr().out
    assert every == format_hints(HINTS["softmax"], 3) + "\n"
    assert max(len(line) for line in every.splitlines()) <= 92  # wrapped between words
    flat = " ".join(line.strip() for line in every.splitlines())
    assert all(HINTS["softmax"].hint(level) in flat for level in (1, 2, 3))


def test_hint_takes_the_learners_function_and_refuses_unknown_names_and_levels(capsys):
    def split_heads(x, num_heads):
        raise NotImplementedError

    hint(split_heads, level=2)
    assert "split_heads (medium, about 15 minutes)" in capsys.readouterr().out
    with pytest.raises(ValueError, match="no exercise is called"):
        hint("no_such_exercise")
    with pytest.raises(ValueError, match="levels are 1, 2 and 3"):
        hint("softmax", level=4)


def test_a_lesson_task_points_to_its_answer_in_the_lesson(capsys):
    hint("most_similar_key")
    assert "one click away" in capsys.readouterr().out


def test_check_with_a_hint_prints_the_verdict_then_the_hints(capsys):
    def causal_mask(size):
        raise NotImplementedError

    with pytest.raises(AssertionError, match="not implemented yet"):
        check(causal_mask, hint=2)
    out = capsys.readouterr().out
    assert out.startswith("❌ causal_mask: not implemented yet")
    assert out.index("hint 1/3") < out.index("hint 2/3") and "hint 3/3" not in out
