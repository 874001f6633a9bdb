"""The registry of the lessons' ungraded tasks (``attn_course.checks.lessons``)."""

from pathlib import Path

from attn_course.checks import EXERCISES
from attn_course.checks.lessons import TASKS

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def test_lesson_tasks_are_apart_from_the_graded_exercises():
    assert not set(TASKS) & set(EXERCISES)
    assert all(task.points == 0 for task in TASKS.values())


def test_each_lesson_task_names_the_lesson_that_holds_it():
    lessons = {path.stem for path in NOTEBOOKS.glob("*.ipynb")}
    for task in TASKS.values():
        assert task.assignment in lessons, task.name
