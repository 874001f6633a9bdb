"""Red team: submissions that attack the reports (huge or escape-laden messages, spreadsheet
formulas, symbolic links) and what the reports make of honest messages."""

from __future__ import annotations

import csv
import os

import pytest

from attn_course.grader.kernel import CellRun
from attn_course.grader.pipeline import ExerciseGrade, SubmissionGrade, grade
from attn_course.grader.report import MAX_TEXT, feedback_html, write_reports
from attn_course.grader.sandbox import Limits


def raising(message: str) -> dict:
    """Changes to the model solution: its softmax raises ValueError(message)."""
    return {
        "replace": {"softmax": f"def softmax(scores, dim=-1):\n    raise ValueError({message!r})\n"}
    }


@pytest.fixture(scope="module")
def reported(tmp_path_factory, submission_writer):
    root = tmp_path_factory.mktemp("reports")
    folder, elsewhere = root / "submitted", root / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    submission_writer(folder, "huge-message", "fail", **raising("x" * 6_000_000))
    submission_writer(folder, "ansi-escapes", "fail", **raising("\x1b[2J\x1b[31mred\x07\x00"))
    victim = submission_writer(elsewhere, "victim", "pass")
    os.symlink(victim, folder / "test-symlink-to-notebook-invalid.ipynb")
    secret = elsewhere / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENTS")
    os.symlink(secret, folder / "test-symlink-to-secret-invalid.ipynb")
    formula = submission_writer(folder, "formula", "pass")
    formula.rename(folder / "=HYPERLINK(1)-pass.ipynb")
    batch = grade([folder], Limits(timeout=20, memory_mb=1024), workers=2)
    out = root / "out"
    write_reports(batch, out)
    return {s.submission: s for s in batch.submissions}, out, secret


def rows(out) -> list[dict]:
    with (out / "grades.csv").open(newline="", encoding="utf-8-sig") as stream:
        return list(csv.DictReader(stream))


def every_report(out) -> str:
    pages = [page.read_text(encoding="utf-8") for page in (out / "feedback").glob("*.html")]
    texts = [(out / "grades.csv").read_text("utf-8"), (out / "grades.json").read_text("utf-8")]
    return "\n".join(texts + pages)


def test_huge_message_is_capped(reported):
    by_name, out, _ = reported
    grades = {g.exercise: g for g in by_name["test-huge-message-fail.ipynb"].exercises}
    assert grades["softmax"].status == "error" and grades["softmax"].points == 0
    assert by_name["test-huge-message-fail.ipynb"].points == 7
    assert all(len(row["feedback"]) <= MAX_TEXT for row in rows(out))
    assert (out / "grades.csv").stat().st_size < 100_000


def test_control_characters_are_removed(reported):
    by_name, out, _ = reported
    assert by_name["test-ansi-escapes-fail.ipynb"].points == 7
    text = every_report(out)
    assert not any(char in text for char in "\x1b\x07\x00")


def test_formula_file_name_is_inert_in_csv(reported):
    by_name, out, _ = reported
    assert by_name["=HYPERLINK(1)-pass.ipynb"].points == 10
    names = {row["submission"] for row in rows(out)}
    assert "'=HYPERLINK(1)-pass.ipynb" in names
    assert not any(name.startswith(("=", "+", "-", "@")) for name in names)


@pytest.mark.parametrize("name", ["symlink-to-notebook", "symlink-to-secret"])
def test_symlinked_submission_is_invalid_and_not_quoted(reported, name):
    by_name, out, secret = reported
    (row,) = by_name[f"test-{name}-invalid.ipynb"].exercises
    assert (row.status, row.points) == ("invalid", 0)
    assert "symbolic link" in row.feedback
    assert secret.read_text() not in every_report(out)
    assert secret.read_text() == "TOP-SECRET-CONTENTS"


def test_code_spans_are_escaped_then_shown_as_code():
    feedback = "`<b>x</b>` is not allowed in `cell 3`"
    grade_row = ExerciseGrade("softmax", 0, 3, "forbidden", feedback)
    problem = CellRun(6, "<cell 6>", "softmax", "error", "NameError: `x`", task="softmax")
    submission = SubmissionGrade("s.ipynb", "01", (grade_row,), (problem,))
    page = feedback_html(submission, missing_layers=("cgroups",))
    assert "<code>&lt;b&gt;x&lt;/b&gt;</code> is not allowed in <code>cell 3</code>" in page
    where = "the cell of <code>softmax</code> (the 6th code cell)"
    assert f"{where}: error: NameError: <code>x</code>" in page
    assert "cgroups" in page and "<b>" not in page
