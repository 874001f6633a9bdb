"""Regrades: ``DIR/overrides.csv`` sets an exercise's points for a student, with a comment.

The file is the instructor's, never written by the grader: it is read every time the reports
or the exports are built, and applied to the grades from the journal (which keep what the
grader found), so it survives every re-run, and deleting a line undoes it. Columns:
``student`` (the student's id as the reports show it, or the submission's name), ``exercise``,
``points`` and ``comment``.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from attn_course.grader.pipeline import BatchGrade, SubmissionGrade

OVERRIDES_NAME = "overrides.csv"
COLUMNS = ("student", "exercise", "points", "comment")
NO_COMMENT = "points set by the instructor"


@dataclass(frozen=True)
class Override:
    """One line of ``overrides.csv``; ``line``: its line number, for messages."""

    student: str
    exercise: str
    points: float
    comment: str = ""
    line: int = 0


def read_overrides(path: Path) -> tuple[list[Override], list[str]]:
    """The overrides in ``path`` (none if it does not exist) and a message for each line that
    cannot be used (a missing column, points that are not a number)."""
    if not path.exists():
        return [], []
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            rows = list(csv.DictReader(stream))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        return [], [f"{path}: cannot be read ({error})"]
    overrides, problems = [], []
    for number, row in enumerate(rows, start=2):
        row = {(key or "").strip().lower(): (value or "").strip() for key, value in row.items()
               if isinstance(value, str)}  # fmt: skip
        where = f"{path.name}, line {number}"
        if not row.get("student") or not row.get("exercise"):
            problems.append(f"{where}: needs a student and an exercise")
            continue
        try:
            points = float(row.get("points", ""))
        except ValueError:
            problems.append(f"{where}: points {row.get('points', '')!r} is not a number")
            continue
        if not math.isfinite(points) or points < 0:
            problems.append(f"{where}: points must be a number of at least 0")
            continue
        comment = row.get("comment", "")
        overrides.append(Override(row["student"], row["exercise"], points, comment, number))
    return overrides, problems


def apply_overrides(batch: BatchGrade, overrides: Sequence[Override]) -> BatchGrade:
    """A new batch with each override's points set on its exercise and ``override`` = its
    comment; an override that matches no grade is left out (``unused_overrides`` says why).
    A later line wins over an earlier."""
    return _applied(batch, overrides)[0]


def unused_overrides(batch: BatchGrade, overrides: Sequence[Override]) -> list[str]:
    """A message for each override that matches no grade of ``batch``: an unknown student or
    exercise, or more points than the exercise is worth."""
    return _applied(batch, overrides)[1]


def load_overrides(folder: Path) -> tuple[list[Override], list[str]]:
    """``read_overrides`` of ``folder/overrides.csv``."""
    return read_overrides(folder / OVERRIDES_NAME)


def _applied(
    batch: BatchGrade, overrides: Sequence[Override]
) -> tuple[BatchGrade, list[str]]:
    unused = []
    submissions = list(batch.submissions)
    for override in overrides:
        position = _find(submissions, override.student)
        where = f"{OVERRIDES_NAME}, line {override.line}" if override.line else OVERRIDES_NAME
        if position is None:
            unused.append(f"{where}: no graded submission of student {override.student!r}")
            continue
        grade = submissions[position]
        names = [exercise.exercise for exercise in grade.exercises]
        if override.exercise not in names:
            unused.append(
                f"{where}: {grade.submission} has no exercise {override.exercise!r} "
                f"(it has {', '.join(names)})"
            )
            continue
        index = names.index(override.exercise)
        exercise = grade.exercises[index]
        if override.points > exercise.max_points:
            unused.append(
                f"{where}: {override.points:g} points for {override.exercise}, which is worth "
                f"{exercise.max_points:g}"
            )
            continue
        changed = dataclasses.replace(
            exercise, points=override.points, override=override.comment or NO_COMMENT
        )
        exercises = (*grade.exercises[:index], changed, *grade.exercises[index + 1 :])
        submissions[position] = dataclasses.replace(grade, exercises=exercises)
    return dataclasses.replace(batch, submissions=tuple(submissions)), unused


def _find(submissions: Sequence[SubmissionGrade], student: str) -> int | None:
    """The position of the submission of ``student`` (its id, case-insensitive, or the
    submission's name)."""
    for position, grade in enumerate(submissions):
        if grade.student.lower() == student.lower() or grade.submission == student:
            return position
    return None
