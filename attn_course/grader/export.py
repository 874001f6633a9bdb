"""Gradebooks: ``attn-course export DIR --to csv|canvas|moodle|nbgrader``.

One row per student, built from what ``DIR`` holds: the journal's grades, ``students.json``
(who handed in what, late or not, the roster) and ``overrides.csv`` (applied, and marked).
Students on the roster with no submission keep a row. Every file is CSV in UTF-8 with a BOM
(Excel then shows × and é as they are), each text cell made inert for spreadsheets
(``report.csv_cell``). The layouts (docs/instructors.md, "Gradebooks"):

- ``csv``: this course's own, every column below;
- ``canvas``: Canvas's gradebook import: Student, ID, SIS User ID, SIS Login ID, Section, one
  column per assignment, after a "Points Possible" row;
- ``moodle``: Moodle's CSV grade import: ID number, Email address, Full name, one column per
  assignment and its feedback (lateness and overrides said there);
- ``nbgrader``: the columns of ``nbgrader export``, then ``late`` and ``overrides``.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from attn_course.grader.journal import read_journal
from attn_course.grader.overrides import apply_overrides, load_overrides, unused_overrides
from attn_course.grader.pipeline import BatchGrade, SubmissionGrade
from attn_course.grader.report import csv_cell
from attn_course.grader.sandbox import Limits
from attn_course.grader.students import Student, load, student_of

FORMATS = ("csv", "canvas", "moodle", "nbgrader")
CSV_COLUMNS = (
    "student_id", "name", "email", "section", "assignment", "points", "max_points", "status",
    "late", "overrides", "submission", "superseded",
)  # fmt: skip  # then one column per exercise: its points
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")  # + assignments
CANVAS_POINTS_ROW = "    Points Possible"
MOODLE_COLUMNS = ("ID number", "Email address", "Full name")  # + per assignment: it, feedback
NBGRADER_COLUMNS = (
    "assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
    "raw_score", "late_submission_penalty", "score", "max_score",
)  # fmt: skip
NBGRADER_EXTRA = ("late", "overrides")


@dataclass(frozen=True)
class StudentRow:
    """A student's grade for one assignment (``grade`` None: no submission)."""

    student: Student
    assignment: str
    grade: SubmissionGrade | None = None
    late: bool = False
    submission: str = ""
    superseded: tuple[str, ...] = ()
    on_roster: bool = True

    @property
    def status(self) -> str:
        if self.grade is None:
            return "missing"
        return "invalid" if self.grade.exercises[0].status == "invalid" else "graded"

    @property
    def overrides(self) -> list[str]:
        """``exercise: points (comment)`` of each exercise whose points the instructor set."""
        return [
            f"{g.exercise}: {_number(g.points)} ({g.override})"
            for g in (self.grade.exercises if self.grade else ()) if g.override
        ]  # fmt: skip


def current_batch(folder: Path) -> tuple[BatchGrade, list[str]]:
    """The batch ``folder``'s reports cover: every journalled grade but those of superseded
    files, each with its student, ``overrides.csv`` applied; and a message for each override
    that could not be applied. What ``attn-course export`` (and a rebuild of the reports
    without grading) starts from."""
    header, grades = read_journal(folder)
    classes = load(folder)
    superseded = {entry.name for entry in classes.superseded}
    kept = [
        dataclasses.replace(grade, student=student_of(name, classes))
        for name, grade in sorted(grades.items()) if name not in superseded
    ]  # fmt: skip
    try:
        limits = Limits(**(header or {}).get("limits", {}))
    except (TypeError, ValueError):
        limits = Limits()
    weak = tuple(sorted({layer for grade in kept for layer in grade.missing_layers}))
    batch = BatchGrade(tuple(kept), (header or {}).get("seed", 0), limits, weak)
    overrides, problems = load_overrides(folder)
    problems += unused_overrides(batch, overrides)
    return apply_overrides(batch, overrides), problems


def class_rows(folder: Path) -> tuple[list[StudentRow], list[str]]:
    """The rows of every gradebook of ``folder``, sorted by student id, and a message for each
    override that could not be applied."""
    batch, problems = current_batch(folder)
    classes = load(folder)
    rows = []
    for grade in batch.submissions:
        entry = classes.entries.get(grade.submission)
        student = classes.students.get(grade.student) or Student(grade.student)
        older = tuple(e.name for e in classes.superseded if e.superseded_by == grade.submission)
        rows.append(StudentRow(
            student, grade.assignment, grade, bool(entry and entry.late), grade.submission,
            older, entry.on_roster if entry else True,
        ))  # fmt: skip
    assignments = sorted({row.assignment for row in rows if row.assignment}) or [""]
    for student in classes.missing():
        rows += [StudentRow(student, assignment) for assignment in assignments]
    return sorted(rows, key=lambda row: (row.student.id, row.assignment)), problems


def export_rows(rows: Sequence[StudentRow], to: str) -> list[list[object]]:
    """The table (header first) of gradebook layout ``to`` (one of ``FORMATS``)."""
    return {"csv": _csv, "canvas": _canvas, "moodle": _moodle, "nbgrader": _nbgrader}[to](rows)


def write_table(table: Sequence[Sequence[object]], path: Path) -> Path:
    """Write ``table`` as CSV in UTF-8 with a BOM, every text cell inert for spreadsheets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8-sig") as stream:
        writer = csv.writer(stream)
        for row in table:
            writer.writerow([csv_cell(value) for value in row])
    return path


def export_command(folder: str, to: str, output: str | None = None) -> int:
    """Write ``folder``'s gradebook in layout ``to``; 0 once written, 2 if ``folder`` holds no
    graded batch."""
    out = Path(folder)
    header, _ = read_journal(out)
    if header is None:
        print(f"attn-course export: error: {out} holds no graded batch (no journal.jsonl): "
              "run attn-course grade --out there first", file=sys.stderr)
        return 2
    rows, problems = class_rows(out)
    for problem in problems:
        print(f"warning: override not applied: {problem}", file=sys.stderr)
    path = Path(output) if output else out / f"gradebook-{to}.csv"
    write_table(export_rows(rows, to), path)
    count = {status: sum(row.status == status for row in rows) for status in ("missing",)}
    late = sum(row.late for row in rows)
    overridden = sum(bool(row.overrides) for row in rows)
    print(f"wrote {path}: {len({row.student.id for row in rows})} students "
          f"({count['missing']} missing, {late} late, {overridden} with overrides)")
    return 0


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 4)


def _points(row: StudentRow) -> object:
    return "" if row.grade is None else _number(row.grade.points)


def _exercises(rows: Sequence[StudentRow]) -> list[str]:
    names: list[str] = []
    for row in rows:
        for grade in row.grade.exercises if row.grade else ():
            if grade.exercise not in names and grade.exercise != "*":
                names.append(grade.exercise)
    return names


def _csv(rows: Sequence[StudentRow]) -> list[list[object]]:
    exercises = _exercises(rows)
    table: list[list[object]] = [[*CSV_COLUMNS, *exercises]]
    for row in rows:
        student, grade = row.student, row.grade
        points = {g.exercise: _number(g.points) for g in (grade.exercises if grade else ())}
        table.append([
            student.id, student.name, student.email, student.section, row.assignment,
            _points(row), "" if grade is None else _number(grade.max_points), row.status,
            "late" if row.late else "", "; ".join(row.overrides), row.submission,
            "; ".join(row.superseded), *(points.get(name, "") for name in exercises),
        ])  # fmt: skip
    return table


def _by_student(rows: Sequence[StudentRow]) -> dict[str, list[StudentRow]]:
    students: dict[str, list[StudentRow]] = {}
    for row in rows:
        students.setdefault(row.student.id, []).append(row)
    return students


def _assignments(rows: Sequence[StudentRow]) -> list[str]:
    return sorted({row.assignment for row in rows if row.assignment})


def _max_points(rows: Sequence[StudentRow], assignment: str) -> object:
    graded = [row.grade.max_points for row in rows
              if row.grade and row.assignment == assignment and row.status == "graded"]  # fmt: skip
    return _number(max(graded)) if graded else ""


def _canvas(rows: Sequence[StudentRow]) -> list[list[object]]:
    assignments = _assignments(rows)
    table: list[list[object]] = [[*CANVAS_COLUMNS, *assignments]]
    table.append([CANVAS_POINTS_ROW, "", "", "", "", *(_max_points(rows, a) for a in assignments)])
    for own in _by_student(rows).values():
        student = own[0].student
        sis = "" if student.id == student.canvas_id else student.id
        points = {row.assignment: _points(row) for row in own}
        table.append([
            student.name or student.id, student.canvas_id, sis, student.login, student.section,
            *(points.get(a, "") for a in assignments),
        ])  # fmt: skip
    return table


def _feedback(row: StudentRow) -> str:
    if row.grade is None:
        return "no submission"
    notes = ["late"] if row.late else []
    if row.status == "invalid":
        notes.append(f"not a valid notebook: {row.grade.exercises[0].feedback}")
    notes += [f"regraded {text}" for text in row.overrides]
    return "; ".join(notes)


def _moodle(rows: Sequence[StudentRow]) -> list[list[object]]:
    assignments = _assignments(rows)
    columns = [column for a in assignments for column in (a, f"{a} feedback")]
    table: list[list[object]] = [[*MOODLE_COLUMNS, *columns]]
    for own in _by_student(rows).values():
        student = own[0].student
        cells = {}
        for row in own:
            cells[row.assignment] = _points(row)
            cells[f"{row.assignment} feedback"] = _feedback(row)
        table.append([
            student.login or student.id, student.email, student.name,
            *(cells.get(column, "") for column in columns),
        ])  # fmt: skip
    return table


def _names(student: Student) -> tuple[str, str]:
    """(last name, first name): "Smith, John" or "John Smith" -> ("Smith", "John")."""
    name = student.name.strip()
    if "," in name:
        last, first = name.split(",", 1)
        return last.strip(), first.strip()
    first, _, last = name.rpartition(" ")
    return (last, first) if first else (name, "")


def _nbgrader(rows: Sequence[StudentRow]) -> list[list[object]]:
    table: list[list[object]] = [[*NBGRADER_COLUMNS, *NBGRADER_EXTRA]]
    for row in sorted(rows, key=lambda row: (row.assignment, row.student.id)):
        last, first = _names(row.student)
        score = 0 if row.grade is None else _number(row.grade.points)
        max_points = _max_points(rows, row.assignment)
        table.append([
            row.assignment, "", "", row.student.id, last, first, row.student.email,
            score, 0, score, max_points if row.grade is None else _number(row.grade.max_points),
            "late" if row.late else "", "; ".join(row.overrides),
        ])  # fmt: skip
    return table
