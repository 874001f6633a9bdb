"""Gradebooks from a graded folder (its journal, students.json and overrides.csv): one row per
student, in the layouts docs/instructors.md documents, with a BOM, late and missing students
kept and overrides marked. The folder is written here without grading (test_rerun grades)."""

from __future__ import annotations

import csv

import pytest

from attn_course.cli import main
from attn_course.grader.export import (
    CANVAS_COLUMNS,
    CANVAS_POINTS_ROW,
    CSV_COLUMNS,
    MOODLE_COLUMNS,
    NBGRADER_COLUMNS,
    NBGRADER_EXTRA,
    class_rows,
)
from attn_course.grader.journal import Journal
from attn_course.grader.pipeline import ExerciseGrade, SubmissionGrade
from attn_course.grader.sandbox import Limits
from attn_course.grader.students import ClassList, Entry, Student, merged, save

A01 = "01_scores_softmax_context"
SMITH = f"smithjohn_12_1002_{A01}-1.ipynb"
DOE = f"doejane_LATE_34_1003_{A01}.ipynb"


def grade(name: str, student: str, softmax: float) -> SubmissionGrade:
    return SubmissionGrade(name, A01, (
        ExerciseGrade("softmax", softmax, 3, "passed" if softmax else "failed", "f"),
        ExerciseGrade("context_vector", 2.5, 2.5, "passed", "ok"),
    ), student=student)  # fmt: skip


@pytest.fixture
def graded(tmp_path):
    out = tmp_path / "out"
    with Journal.open(out, 7, Limits()) as journal:
        journal.record("a", grade(SMITH, "s1", 0))
        journal.record("b", grade(DOE, "s2", 3))
    students = {
        "s1": Student("s1", "Smith, John", "john@uni.edu", "A", "", "12"),
        "s2": Student("s2", "Jane Doe", "jane.doe@uni.edu", "B", "jdoe", "34"),
        "s4": Student("s4", "Max Absent", "max@uni.edu", "B"),
    }
    entries = {
        f"smithjohn_12_1001_{A01}.ipynb": Entry(f"smithjohn_12_1001_{A01}.ipynb", "", "s1", A01,
                                                rank=(True, 0, 1001, 0, "")),
        SMITH: Entry(SMITH, "", "s1", A01, rank=(True, 1, 1002, 0, "")),
        DOE: Entry(DOE, "", "s2", A01, late=True, rank=(True, 0, 1003, 0, "")),
    }  # fmt: skip
    save(merged(ClassList(), ClassList(students, entries, ("s1", "s2", "s4"))), out)
    (out / "overrides.csv").write_text(
        "student,exercise,points,comment\ns1,softmax,2,\"max shift not asked × é\"\n", "utf-8"
    )
    return out


def export(out, to) -> list[list[str]]:
    assert main(["export", str(out), "--to", to]) == 0
    data = (out / f"gradebook-{to}.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # a BOM: Excel reads UTF-8
    with (out / f"gradebook-{to}.csv").open(newline="", encoding="utf-8-sig") as stream:
        return list(csv.reader(stream))


def test_rows_are_students_with_overrides_late_and_missing(graded):
    rows, problems = class_rows(graded)
    assert problems == []
    assert [(r.student.id, r.status, r.late) for r in rows] == [
        ("s1", "graded", False), ("s2", "graded", True), ("s4", "missing", False)
    ]
    assert rows[0].grade.points == 4.5
    assert rows[0].overrides == ["softmax: 2 (max shift not asked × é)"]
    assert rows[0].superseded == (f"smithjohn_12_1001_{A01}.ipynb",)


def test_csv_layout(graded):
    table = export(graded, "csv")
    assert table[0] == [*CSV_COLUMNS, "softmax", "context_vector"]
    rows = {row[0]: dict(zip(table[0], row, strict=True)) for row in table[1:]}
    assert rows["s1"]["points"] == "4.5" and rows["s1"]["softmax"] == "2"
    assert "max shift not asked × é" in rows["s1"]["overrides"]
    assert rows["s2"]["late"] == "late" and rows["s2"]["points"] == "5.5"
    assert rows["s4"]["status"] == "missing" and rows["s4"]["points"] == ""


def test_canvas_layout(graded):
    table = export(graded, "canvas")
    assert table[0] == [*CANVAS_COLUMNS, A01]
    assert table[1] == [CANVAS_POINTS_ROW, "", "", "", "", "5.5"]
    assert table[2] == ["Smith, John", "12", "s1", "", "A", "4.5"]
    assert table[3] == ["Jane Doe", "34", "s2", "jdoe", "B", "5.5"]
    assert table[4] == ["Max Absent", "", "s4", "", "B", ""]  # missing: left as it is in Canvas


def test_moodle_layout(graded):
    table = export(graded, "moodle")
    assert table[0] == [*MOODLE_COLUMNS, A01, f"{A01} feedback"]
    rows = {row[1]: row for row in table[1:]}  # keyed by e-mail, as Moodle maps it
    assert rows["john@uni.edu"][3] == "4.5" and "regraded softmax: 2" in rows["john@uni.edu"][4]
    assert rows["jane.doe@uni.edu"][0] == "jdoe" and rows["jane.doe@uni.edu"][4] == "late"
    assert rows["max@uni.edu"][3:] == ["", "no submission"]


def test_nbgrader_layout(graded):
    table = export(graded, "nbgrader")
    assert table[0] == [*NBGRADER_COLUMNS, *NBGRADER_EXTRA]
    rows = {row[3]: dict(zip(table[0], row, strict=True)) for row in table[1:]}
    assert (rows["s1"]["last_name"], rows["s1"]["first_name"]) == ("Smith", "John")
    assert (rows["s2"]["last_name"], rows["s2"]["first_name"]) == ("Doe", "Jane")
    assert rows["s1"]["score"] == "4.5" and rows["s1"]["max_score"] == "5.5"
    assert rows["s2"]["late"] == "late"
    assert rows["s4"]["score"] == "0" and rows["s4"]["max_score"] == "5.5"  # as nbgrader does


def test_export_of_a_folder_never_graded_exits_2(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--to", "csv"]) == 2
    assert "no graded batch" in capsys.readouterr().err
