"""Students, not files: a submission's student from the roster, the layouts instructors get
(Canvas's bulk download, nbgrader's submitted/, a folder per student) or the file's stem; the
latest file of a student wins; the roster's students with no submission are missing."""

from __future__ import annotations

import os

import pytest

from attn_course.grader.catalog import course_assignments
from attn_course.grader.notebook import InvalidSubmission, assignment_of
from attn_course.grader.pipeline import find_notebooks, other_files
from attn_course.grader.students import (
    ClassList,
    RosterError,
    layout,
    load,
    merged,
    read_roster,
    resolve,
    save,
)

A01 = "01_scores_softmax_context"


@pytest.mark.parametrize(
    ("name", "student", "late", "original"),
    [
        (f"smithjohn_12_1001_{A01}.ipynb", "12", False, A01),
        (f"smithjohn_12_1002_{A01}-1.ipynb", "12", False, A01),
        (f"doejane_LATE_34_1003_{A01}.ipynb", "34", True, A01),
        (f"submitted/aberg/{A01}/{A01}.ipynb", "aberg", False, A01),
        (f"aberg/{A01}/{A01}.ipynb", "aberg", False, A01),
        ("aberg/homework.ipynb", "aberg", False, "homework"),
        ("aberg.ipynb", "aberg", False, "aberg"),
        ("aberg-Copy1.ipynb", "aberg", False, "aberg"),
    ],
)
def test_layouts_name_the_student(name, student, late, original):
    found = layout(name, [A01])
    assert (found.keys[0], found.late, found.original) == (student, late, original)


def test_canvas_resubmissions_and_strays_rank_below_the_latest():
    first = layout(f"smithjohn_12_1001_{A01}.ipynb")
    again = layout(f"smithjohn_12_1002_{A01}-1.ipynb")
    stray = layout("smithjohn_12_1003_Untitled.ipynb")
    copy = layout(f"smithjohn_12_1004_{A01}-Copy1.ipynb")
    assert (again.resubmission, first.resubmission) == (1, 0)
    assert stray.stray and copy.stray and not again.stray


def write_roster(path, text):
    path.write_text("\ufeff" + text, encoding="utf-8")  # as Excel saves it
    return path


@pytest.fixture
def roster(tmp_path):
    return read_roster(write_roster(tmp_path / "roster.csv", (
        "id,name,email,section,login,canvas_id,files\n"
        "s1,\"Smith, John\",john@uni.edu,A,,12,\n"
        "s2,Jane Doe,jane.doe@uni.edu,B,,,\n"
        "s3,Ann Berg,ann@uni.edu,A,aberg,,\n"
        "s4,Max Absent,max@uni.edu,B,,,\n"
        "s5,Eve Field,eve@uni.edu,A,,,*eve_notebook*\n"
    )))  # fmt: skip


def notebooks_in(folder, names):
    found = []
    for position, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
        os.utime(path, ns=(10**18 + position, 10**18 + position))  # later files are newer
        found.append((name, path))
    return found


def test_the_roster_maps_every_layout_to_its_students(roster, tmp_path):
    names = [
        f"smithjohn_12_1001_{A01}.ipynb",
        f"smithjohn_12_1002_{A01}-1.ipynb",  # Canvas's resubmission: wins
        f"doejane_LATE_34_1003_{A01}.ipynb",  # matched by the squashed name
        "doejane_LATE_34_1004_Untitled.ipynb",  # a stray of a known student
        f"submitted/aberg/{A01}/{A01}.ipynb",  # nbgrader, matched by login
        "eve_notebook.ipynb",  # the roster's files pattern
        "stranger.ipynb",  # not on the roster
    ]
    notebooks = notebooks_in(tmp_path, names)
    classes = resolve(notebooks, {name: A01 for name in names}, roster, known_assignments=[A01])
    students = {entry.name: entry.student for entry in classes.entries.values()}
    assert students == {
        names[0]: "s1", names[1]: "s1", names[2]: "s2", names[3]: "s2", names[4]: "s3",
        names[5]: "s5", names[6]: "stranger",
    }  # fmt: skip
    classes = merged(ClassList(), classes)
    winners = {entry.student: entry.name for entry in classes.graded}
    assert winners == {"s1": names[1], "s2": names[2], "s3": names[4], "s5": names[5],
                       "stranger": names[6]}  # fmt: skip
    assert {entry.name: entry.superseded_by for entry in classes.superseded} == {
        names[0]: names[1], names[3]: names[2]
    }
    assert classes.entries[names[2]].late and not classes.entries[names[1]].late
    assert not classes.entries[names[6]].on_roster
    assert [student.id for student in classes.missing()] == ["s4"]
    assert classes.students["s1"].canvas_id == "12"


def test_a_metadata_field_names_the_student(roster, tmp_path):
    notebooks = notebooks_in(tmp_path, ["work.ipynb"])
    classes = resolve(notebooks, {"work.ipynb": A01}, roster, {"work.ipynb": "jane.doe@uni.edu"})
    assert classes.entries["work.ipynb"].student == "s2"


def test_without_a_roster_copies_of_a_students_file_are_superseded(tmp_path):
    names = ["aberg.ipynb", "aberg-Copy1.ipynb", "test-correct-pass.ipynb", "test-broken.ipynb"]
    classes = merged(ClassList(), resolve(notebooks_in(tmp_path, names), {}))
    assert sorted(entry.name for entry in classes.graded) == sorted(
        ["aberg.ipynb", "test-correct-pass.ipynb", "test-broken.ipynb"]
    )
    assert classes.missing() == []


def test_a_file_of_no_known_assignment_loses_to_a_notebook_of_one(tmp_path):
    names = ["aberg/broken.ipynb", "aberg/homework.ipynb"]
    notebooks = notebooks_in(tmp_path, names)
    classes = merged(ClassList(), resolve(notebooks, {"aberg/homework.ipynb": A01}))
    assert [entry.name for entry in classes.graded] == ["aberg/homework.ipynb"]


def test_the_class_list_is_merged_run_after_run(roster, tmp_path):
    first = notebooks_in(tmp_path, [f"smithjohn_12_1001_{A01}.ipynb"])
    save(merged(ClassList(), resolve(first, {first[0][0]: A01}, roster)), tmp_path / "out")
    second = notebooks_in(tmp_path, [f"doejane_34_1003_{A01}.ipynb"])
    earlier = load(tmp_path / "out")  # its roster is used again: no --roster the second time
    classes = merged(earlier, resolve(second, {second[0][0]: A01}, earlier.as_roster()))
    assert sorted(entry.student for entry in classes.graded) == ["s1", "s2"]
    assert [student.id for student in classes.missing()] == ["s3", "s4", "s5"]


def test_a_roster_without_ids_is_refused(tmp_path):
    with pytest.raises(RosterError, match="no `id` column"):
        read_roster(write_roster(tmp_path / "r.csv", "name,email\nAnn,a@b\n"))
    with pytest.raises(RosterError, match="twice"):
        read_roster(write_roster(tmp_path / "r.csv", "id\ns1\ns1\n"))


def test_files_that_are_not_notebooks_are_named_with_why(tmp_path):
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "smithjohn_12_1001_work.py").write_text("x = 1\n")
    (tmp_path / "class" / "a.ipynb").write_text("{}")
    (tmp_path / "empty").mkdir()
    (tmp_path / "submissions.zip").write_bytes(b"PK\x03\x04")
    given = [tmp_path / "class", tmp_path / "empty", tmp_path / "submissions.zip"]
    found = other_files(given)
    assert "unzip it first" in found[(tmp_path / "submissions.zip").as_posix()]
    assert "Python file" in found[(tmp_path / "class" / "smithjohn_12_1001_work.py").as_posix()]
    assert "without any notebook" in found[(tmp_path / "empty").as_posix()]
    assert [name for name, _ in find_notebooks(given)] == ["a.ipynb"]


def test_the_assignment_of_a_notebook_without_metadata(solution_01, tmp_path):
    known = course_assignments()
    notebook = solution_01()
    del notebook.metadata["attn_course"]
    canvas = tmp_path / f"smithjohn_12_1001_{A01}-2.ipynb"
    assert assignment_of(notebook, canvas, known).id == A01  # the student's own file name
    assert assignment_of(notebook, tmp_path / "work.ipynb", known).id == A01  # its grade ids
    for cell in notebook.cells:
        cell.metadata.pop("nbgrader", None)
    with pytest.raises(InvalidSubmission, match="does not name its assignment"):
        assignment_of(notebook, tmp_path / "work.ipynb", known)
    assert assignment_of(notebook, tmp_path / "work.ipynb", known, A01).id == A01
