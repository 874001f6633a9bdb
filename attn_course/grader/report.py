"""The last stage: ``grades.csv``, ``grades.json``, one HTML page per submission, and the
learner's table for ``attn-course check``.

Everything a submission can influence (its file name, messages from its sandbox) is treated as
hostile: every text is capped at ``MAX_TEXT`` characters and stripped of control characters
(``safe``), CSV cells that a spreadsheet would read as a formula are made inert, and the HTML
pages come from a Jinja2 template with autoescaping.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from attn_course.grader.pipeline import BatchGrade, SubmissionGrade

MAX_TEXT = 4000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def safe(text: object, cap: int = MAX_TEXT) -> str:
    """``text`` without control characters (newlines and tabs kept), at most ``cap``
    characters."""
    text = _CONTROL.sub("", str(text))
    return text if len(text) <= cap else text[: cap - 40] + f" [... {len(text) - cap + 40} more]"


def csv_cell(value: object) -> object:
    """A cell a spreadsheet shows as text: ``=HYPERLINK(...)`` becomes ``'=HYPERLINK(...)``."""
    if not isinstance(value, str):
        return value
    text = " ".join(safe(value).splitlines())
    return "'" + text if text.startswith(_FORMULA) else text


COLUMNS = ("submission", "assignment", "exercise", "points", "max_points", "status", "feedback")


def write_reports(batch: BatchGrade, out: Path) -> dict[str, Path]:
    """Write all reports under ``out``; return their paths by kind."""
    out.mkdir(parents=True, exist_ok=True)
    pages = feedback_pages(batch, out / "feedback")
    paths = {"csv": out / "grades.csv", "json": out / "grades.json", "feedback": out / "feedback"}
    with paths["csv"].open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(COLUMNS)
        for submission in batch.submissions:
            for grade in submission.exercises:
                row = (
                    submission.submission,
                    submission.assignment,
                    grade.exercise,
                    _number(grade.points),
                    _number(grade.max_points),
                    grade.status,
                    grade.feedback,
                )
                writer.writerow([csv_cell(value) for value in row])
    document = summary(
        batch, {name: page.relative_to(out).as_posix() for name, page in pages.items()}
    )
    paths["json"].write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", "utf-8")
    return paths


def summary(batch: BatchGrade, pages: dict[str, str]) -> dict:
    """What ``grades.json`` holds: every row with its detail, totals per submission and for
    the batch, the seed of the hidden cases and the limits."""
    submissions = [
        {
            "submission": safe(submission.submission),
            "assignment": submission.assignment,
            "points": _number(submission.points),
            "max_points": _number(submission.max_points),
            "feedback_page": pages.get(submission.submission),
            "exercises": [
                {
                    "exercise": grade.exercise,
                    "points": _number(grade.points),
                    "max_points": _number(grade.max_points),
                    "status": grade.status,
                    "feedback": safe(grade.feedback),
                    "detail": safe(grade.detail),
                }
                for grade in submission.exercises
            ],
            "cell_problems": [
                {
                    "cell": cell.index,
                    "grade_id": cell.grade_id,
                    "status": cell.status,
                    "task": cell.task,
                    "message": safe(cell.message),
                }
                for cell in submission.problems
            ],
        }
        for submission in batch.submissions
    ]
    statuses: dict[str, int] = {}
    for submission in batch.submissions:
        for grade in submission.exercises:
            statuses[grade.status] = statuses.get(grade.status, 0) + 1
    return {
        "totals": {
            "submissions": len(batch.submissions),
            "invalid": sum(s.exercises[0].status == "invalid" for s in batch.submissions),
            "points": _number(sum(s.points for s in batch.submissions)),
            "max_points": _number(sum(s.max_points for s in batch.submissions)),
            "statuses": statuses,
        },
        "seed": batch.seed,
        "limits": vars(batch.limits),
        "missing_sandbox_layers": list(batch.missing_layers),
        "submissions": submissions,
    }


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 4)


def page_names(submissions: Sequence[str]) -> dict[str, str]:
    """The file name of each submission's feedback page: its name with what is not a letter,
    digit, dot, dash or underscore replaced, and ``-2``, ``-3``... where two would be the same
    file (also on a file system that ignores case). The one place pages are named: the pages
    written as grades arrive and those written at the end of a batch agree, given the same
    submissions in the same order."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for submission in submissions:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", submission.removesuffix(".ipynb"))
        name, counter = f"{stem}.html", 2
        while name.lower() in taken:
            name, counter = f"{stem}-{counter}.html", counter + 1
        taken.add(name.lower())
        names[submission] = name
    return names


def feedback_pages(
    batch: BatchGrade, folder: Path, names: dict[str, str] | None = None
) -> dict[str, Path]:
    """One HTML page per submission, named by ``names`` (default: ``page_names`` of the
    batch's submissions); return submission -> page."""
    folder.mkdir(parents=True, exist_ok=True)
    if names is None:
        names = page_names([submission.submission for submission in batch.submissions])
    pages: dict[str, Path] = {}
    for submission in batch.submissions:
        page = folder / names[submission.submission]
        layers = batch.missing_layers or submission.missing_layers
        page.write_text(feedback_html(submission, layers), encoding="utf-8")
        pages[submission.submission] = page
    return pages


def code_spans(text: str) -> Markup:
    """``text`` escaped, with its `backtick` spans shown as ``<code>``."""
    escaped = str(escape(safe(text)))
    return Markup(re.sub(r"`([^`\n]+)`", r"<code>\1</code>", escaped))


_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("attn_course.grader", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_TEMPLATES.filters.update(code_spans=code_spans, number=_number, safe_text=safe)


def feedback_html(submission: SubmissionGrade, missing_layers: tuple[str, ...] = ()) -> str:
    """The feedback page of one submission (a complete, self-contained HTML document);
    ``missing_layers``: the sandbox layers it was graded without."""
    return _TEMPLATES.get_template("feedback.html").render(
        submission=submission,
        score=f"{_number(submission.points)} / {_number(submission.max_points)}",
        details=[g for g in submission.exercises if g.status != "passed" and g.detail],
        missing_layers=missing_layers,
    )


def table(submission: SubmissionGrade) -> str:
    """The learner's view (``attn-course check``): one line per exercise, then the details."""
    width = max([len("exercise")] + [len(g.exercise) for g in submission.exercises])
    lines = [f"{'exercise':<{width}}  points  status     feedback"]
    for g in submission.exercises:
        points = f"{_number(g.points)}/{_number(g.max_points)}"
        lines.append(f"{g.exercise:<{width}}  {points:>6}  {g.status:<9}  {g.feedback}")
    lines.append(
        f"{'total':<{width}}  {_number(submission.points)}/{_number(submission.max_points)}"
    )
    for g in submission.exercises:
        if g.status != "passed" and g.detail:
            lines += ["", f"{g.exercise} ({g.status}): {g.feedback}", g.detail]
    for cell in submission.problems:
        lines.append(f"\nnote: {cell.where} {cell.status}: {cell.message}")
    return safe("\n".join(lines), cap=64 * MAX_TEXT)
