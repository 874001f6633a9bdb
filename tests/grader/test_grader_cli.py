"""``attn-course grade`` and ``attn-course check`` as instructors and learners call them."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from attn_course.cli import main
from attn_course.grader.zygote import Zygote


def attn_course(*args: str, cwd=None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "attn_course", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)


def test_grade_writes_the_reports_and_exits_0(submission_writer, tmp_path):
    folder = tmp_path / "submitted"
    folder.mkdir()
    submission_writer(folder, "correct", "pass")
    (folder / "test-broken-fail.ipynb").write_text("[")
    result = attn_course("grade", str(folder), "--out", str(tmp_path / "out"), "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "graded 2 submissions: 10 / 10 points" in result.stdout
    with (tmp_path / "out" / "grades.csv").open(newline="", encoding="utf-8-sig") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == [
        "submission",
        "assignment",
        "exercise",
        "points",
        "max_points",
        "status",
        "feedback",
        "mistake",
        "student",
    ]
    assert {row[8] for row in rows[1:]} == {"test-broken-fail", "test-correct-pass"}
    statuses = [(row[0], row[2], row[5]) for row in rows[1:]]
    assert ("test-broken-fail.ipynb", "*", "invalid") in statuses
    assert statuses.count(("test-correct-pass.ipynb", "softmax", "passed")) == 1
    assert len(list((tmp_path / "out" / "feedback").glob("*.html"))) == 2


def test_grade_default_out_is_grades(submission_writer, tmp_path):
    submission_writer(tmp_path, "correct", "pass")
    result = attn_course("grade", "test-correct-pass.ipynb", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "grades" / "grades.csv").is_file()
    assert (tmp_path / "grades" / "grades.json").is_file()


@pytest.mark.parametrize(
    "args",
    [
        ["grade"],
        ["grade", "no-such-folder"],
        ["grade", ".", "--timeout", "0"],
        ["grade", ".", "--workers", "two"],
        ["grade", ".", "--memory-limit", "-5"],
        ["check", "no-such.ipynb"],
    ],
)
def test_usage_errors_exit_2(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        status = main(args)
    except SystemExit as exit:
        status = exit.code
    assert status == 2
    assert not (tmp_path / "grades").exists()


def test_check_prints_the_verdicts_as_a_table(submission_writer, tmp_path):
    softmax = (
        "def softmax(scores, dim=-1):\n"
        "    exp = scores.exp()\n"
        "    return exp / exp.sum(dim, keepdim=True)\n"
    )
    path = submission_writer(tmp_path, "no-max-shift", "fail", replace={"softmax": softmax})
    result = attn_course("check", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["exercise", "points", "status", "feedback"]
    table = {line.split()[0]: line.split()[1:3] for line in lines[1:6]}
    assert table["softmax"] == ["0/3", "failed"]
    assert table["attention_scores"] == ["2/2", "passed"]
    assert table["total"] == ["7/10"]
    assert "max shift" in result.stdout and "expected" in result.stdout


def test_grade_refuses_when_a_layer_is_missing(submission_writer, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Zygote, "missing_layers", lambda self: ("cgroups",))
    submission_writer(tmp_path, "correct", "pass")
    out = tmp_path / "out"
    assert main(["grade", str(tmp_path), "--out", str(out)]) == 3
    assert "cgroups" in capsys.readouterr().err
    assert not out.exists()


def test_allow_weak_sandbox_records_the_missing_layers(submission_writer, tmp_path, monkeypatch):
    monkeypatch.setattr(Zygote, "missing_layers", lambda self: ("cgroups",))
    folder, out = tmp_path / "submitted", tmp_path / "out"
    folder.mkdir()
    submission_writer(folder, "correct", "pass")
    assert main(["grade", str(folder), "--out", str(out), "--allow-weak-sandbox"]) == 0
    document = json.loads((out / "grades.json").read_text(encoding="utf-8"))
    assert document["missing_sandbox_layers"] == ["cgroups"]
    assert document["totals"]["points"] == 10
    (page,) = (out / "feedback").glob("*.html")
    assert "cgroups" in page.read_text(encoding="utf-8")


def test_check_names_what_the_grader_refuses_with_its_cell_and_line(submission_writer, tmp_path):
    path = submission_writer(tmp_path, "scratch-import-os", "refused", add=("x = 1\nimport os\n",))
    result = attn_course("check", str(path))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stdout.splitlines() if line.startswith("⚠️")]
    assert any("line 2: `import os` is not allowed" in line for line in warnings), result.stdout
    assert "refused" in result.stdout


def test_allow_import_widens_the_rule_and_is_recorded(submission_writer, tmp_path):
    folder, out = tmp_path / "submitted", tmp_path / "out"
    folder.mkdir()
    submission_writer(folder, "imports-json", "pass", add=("import json\nprint(json.dumps(1))\n",))
    assert main(["grade", str(folder), "--out", str(out), "--allow-import", "json"]) == 0
    document = json.loads((out / "grades.json").read_text(encoding="utf-8"))
    assert document["totals"]["points"] == 10
    assert document["limits"]["allowed_imports"] == ["json"]
    header = json.loads((out / "journal.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert header["limits"]["allowed_imports"] == ["json"]
    # resuming the batch without the allowance is refused, as with other limits
    assert main(["grade", str(folder), "--out", str(out)]) == 2


def test_check_names_a_folder_and_a_zip_and_fails_an_invalid_notebook(tmp_path, capsys):
    (tmp_path / "submissions.zip").write_bytes(b"PK\x03\x04")
    (tmp_path / "renamed.ipynb").write_bytes(b"PK\x03\x04")  # Canvas's zip, renamed
    assert main(["check", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    for name in ("submissions.zip", "renamed.ipynb"):
        assert main(["check", str(tmp_path / name)]) == 2
        assert "unzip it first" in capsys.readouterr().err
    (tmp_path / "empty.ipynb").write_text("")
    assert main(["check", str(tmp_path / "empty.ipynb")]) == 1
    assert "empty file" in capsys.readouterr().out


def test_grade_reports_files_that_are_not_notebooks(submission_writer, tmp_path):
    folder = tmp_path / "submitted"
    folder.mkdir()
    submission_writer(folder, "correct", "pass")
    (folder / "aberg_notes.py").write_text("x = 1\n")
    result = attn_course("grade", str(folder), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "aberg_notes.py: a Python file, not a notebook" in result.stderr
    assert "graded 1 submissions: 10 / 10 points" in result.stdout
