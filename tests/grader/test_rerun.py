"""A class graded end to end: Canvas's bulk-download names (a resubmission, a late one, a stray
Untitled, a .py), nbgrader's layout with its metadata lost, a roster with a student who handed
in nothing; then overrides, a re-run of one file and batches the folder must refuse."""

from __future__ import annotations

import copy
import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from attn_course.cli import main
from attn_course.grader import journal as journal_module
from attn_course.grader.journal import JOURNAL_NAME

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"
A01 = "01_scores_softmax_context"
SMITH_OLD = f"smithjohn_12_1001_{A01}.ipynb"
SMITH = f"smithjohn_12_1002_{A01}-1.ipynb"  # Canvas's resubmission: the one graded
DOE = f"doejane_LATE_34_1003_{A01}.ipynb"
STRAY = "doejane_LATE_34_1004_Untitled.ipynb"
BERG = f"submitted/aberg/{A01}/work.ipynb"  # nbgrader's layout, metadata and ids lost
NO_MAX_SHIFT = (
    "def softmax(scores, dim=-1):\n"
    "    exp = scores.exp()\n"
    "    return exp / exp.sum(dim, keepdim=True)\n"
)
ROSTER = (
    "id,name,email,section,login,canvas_id\n"
    's1,"Smith, John",john@uni.edu,A,,12\n'
    "s2,Jane Doe,jane.doe@uni.edu,B,,\n"
    "s3,Ann Berg,ann@uni.edu,A,aberg,\n"
    "s4,Max Absent,max@uni.edu,B,,\n"
)


def grades_csv(out) -> list[dict]:
    with (out / "grades.csv").open(newline="", encoding="utf-8-sig") as stream:
        return list(csv.DictReader(stream))


def by_submission(out) -> dict[str, float]:
    totals: dict[str, float] = {}
    for row in grades_csv(out):
        totals[row["submission"]] = totals.get(row["submission"], 0) + float(row["points"])
    return totals


@pytest.fixture(scope="module")
def graded(tmp_path_factory, submission_writer, solution_01):
    root = tmp_path_factory.mktemp("class")
    folder = root / "canvas"
    folder.mkdir()
    submission_writer(folder, "old", "pass").rename(folder / SMITH_OLD)
    submission_writer(folder, "new", "fail", replace={"softmax": NO_MAX_SHIFT}).rename(
        folder / SMITH
    )
    submission_writer(folder, "late", "pass").rename(folder / DOE)
    submission_writer(folder, "stray", "pass").rename(folder / STRAY)
    (folder / "leeann_56_1005_notes.py").write_text("x = 1\n")
    lost = copy.deepcopy(solution_01())
    del lost.metadata["attn_course"]
    for cell in lost.cells:
        cell.metadata.pop("nbgrader", None)
    (folder / BERG).parent.mkdir(parents=True)
    nbformat.write(lost, folder / BERG)
    (root / "roster.csv").write_text(ROSTER, encoding="utf-8")
    out = root / "out"
    command = ["grade", str(folder), "--out", str(out), "--roster", str(root / "roster.csv"),
               "--assignment", A01, "--seed", "7", "--workers", "2"]  # fmt: skip
    assert main(command) == 0
    return folder, out


def test_one_row_per_student_and_exercise(graded):
    _, out = graded
    assert by_submission(out) == {SMITH: 7, DOE: 10, BERG: 10}  # superseded files not graded
    header = json.loads((out / JOURNAL_NAME).read_text("utf-8").splitlines()[0])
    assert header["grader"] and list(header["assignments"]) == [A01]
    students = {json.loads(line)["grade"]["student"]
                for line in (out / JOURNAL_NAME).read_text("utf-8").splitlines()[1:]}  # fmt: skip
    assert students == {"s1", "s2", "s3"}
    assert {row["submission"]: row["student"] for row in grades_csv(out)} == {
        SMITH: "s1", DOE: "s2", BERG: "s3"
    }
    assert (out / "grades.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_the_exports_keep_late_and_missing_students(graded):
    _, out = graded
    assert main(["export", str(out), "--to", "csv"]) == 0
    with (out / "gradebook-csv.csv").open(newline="", encoding="utf-8-sig") as stream:
        rows = {row["student_id"]: row for row in csv.DictReader(stream)}
    assert sorted(rows) == ["s1", "s2", "s3", "s4"]
    assert rows["s1"]["points"] == "7" and rows["s1"]["superseded"] == SMITH_OLD
    assert rows["s2"]["late"] == "late" and rows["s2"]["superseded"] == STRAY
    assert rows["s3"]["submission"] == BERG and rows["s3"]["points"] == "10"
    assert rows["s4"]["status"] == "missing"


def test_overrides_survive_a_re_run_and_show_in_the_exports(graded, tmp_path):
    folder, source = graded
    out = tmp_path / "out"
    shutil.copytree(source, out)
    (out / "overrides.csv").write_text(
        "student,exercise,points,comment\ns1,softmax,3,max shift not asked in the task\n", "utf-8"
    )
    assert main(["grade", str(folder / DOE), "--out", str(out)]) == 0  # nothing graded again
    assert by_submission(out)[SMITH] == 10
    assert main(["export", str(out), "--to", "canvas"]) == 0
    with (out / "gradebook-canvas.csv").open(newline="", encoding="utf-8-sig") as stream:
        rows = {row[0]: row for row in csv.reader(stream)}
    assert rows["Smith, John"][-1] == "10"


def test_re_running_one_file_keeps_every_other_students_grade(graded, tmp_path, capsys):
    folder, source = graded
    out = tmp_path / "out"
    shutil.copytree(source, out)
    pairs = (source / "similarity.csv").read_text("utf-8")
    changed = tmp_path / DOE
    notebook = nbformat.read(folder / DOE, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("x = 1"))
    nbformat.write(notebook, changed)
    capsys.readouterr()
    assert main(["grade", str(changed), "--out", str(out)]) == 0
    assert "graded 3 submissions" in capsys.readouterr().out
    assert by_submission(out) == {SMITH: 7, DOE: 10, BERG: 10}
    assert SMITH in (out / "similarity.csv").read_text("utf-8")  # the pair of the others kept
    assert len((out / "similarity.csv").read_text("utf-8").splitlines()) == len(pairs.splitlines())


def test_a_batch_of_another_assignment_is_refused(graded, tmp_path, capsys):
    _, source = graded
    out = tmp_path / "out"
    shutil.copytree(source, out)
    other = tmp_path / "02_scaled_dot_product_attention.ipynb"
    shutil.copy(SOLUTIONS / "02_scaled_dot_product_attention.ipynb", other)
    before = (out / "grades.csv").read_bytes()
    assert main(["grade", str(other), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "is a batch of 01_scores_softmax_context" in error and "--restart" in error
    assert (out / "grades.csv").read_bytes() == before


def test_another_grader_version_is_refused(graded, tmp_path, capsys, monkeypatch):
    folder, source = graded
    out = tmp_path / "out"
    shutil.copytree(source, out)
    monkeypatch.setattr(journal_module, "GRADER", "99.0")
    assert main(["grade", str(folder / DOE), "--out", str(out)]) == 2
    assert "graded by attn-course" in capsys.readouterr().err


def test_nothing_to_grade_exits_1(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "submissions.zip").write_bytes(b"PK\x03\x04")
    assert main(["grade", str(tmp_path / "empty"), str(tmp_path / "submissions.zip"),
                 "--out", str(tmp_path / "out")]) == 1  # fmt: skip
    error = capsys.readouterr().err
    assert "unzip it first" in error and "without any notebook" in error
    assert not (tmp_path / "out" / "grades.csv").exists()


def test_a_file_of_nbgrader_layout_given_alone_keeps_its_student(graded, tmp_path, capsys):
    folder, source = graded
    out = tmp_path / "out"
    shutil.copytree(source, out)
    capsys.readouterr()
    assert main(["grade", str(folder / BERG), "--out", str(out)]) == 0
    assert "(1 from the journal)" in capsys.readouterr().out  # known by its first name
    assert by_submission(out) == {SMITH: 7, DOE: 10, BERG: 10}
