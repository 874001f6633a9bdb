"""The last stage: ``grades.csv``, ``grades.json``, one HTML page per submission, and the
learner's table for ``attn-course check``. Student content is escaped everywhere in HTML."""

from __future__ import annotations

import csv
import html
import json
import re
from pathlib import Path

from attn_course.grader.pipeline import BatchGrade, SubmissionGrade

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
                writer.writerow(
                    (
                        submission.submission,
                        submission.assignment,
                        grade.exercise,
                        _number(grade.points),
                        _number(grade.max_points),
                        grade.status,
                        grade.feedback,
                    )
                )
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
            "submission": submission.submission,
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
                    "feedback": grade.feedback,
                    "detail": grade.detail,
                }
                for grade in submission.exercises
            ],
            "cell_problems": [
                {
                    "cell": cell.index,
                    "grade_id": cell.grade_id,
                    "status": cell.status,
                    "message": cell.message,
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
        "submissions": submissions,
    }


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 4)


def feedback_pages(batch: BatchGrade, folder: Path) -> dict[str, Path]:
    """One HTML page per submission (named after it); return submission -> page."""
    folder.mkdir(parents=True, exist_ok=True)
    pages: dict[str, Path] = {}
    for submission in batch.submissions:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", submission.submission.removesuffix(".ipynb"))
        page = folder / f"{stem}.html"
        counter = 2
        while page in pages.values():
            page, counter = folder / f"{stem}-{counter}.html", counter + 1
        page.write_text(feedback_html(submission), encoding="utf-8")
        pages[submission.submission] = page
    return pages


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 0.4rem; text-align: left; vertical-align: top; }
pre { background: #f6f6f6; padding: 0.6rem; overflow-x: auto; }
.passed { color: #1a7f37; } .failed, .error, .timeout, .forbidden, .invalid { color: #cf222e; }
.missing { color: #9a6700; }
"""


def feedback_html(submission: SubmissionGrade) -> str:
    """The feedback page of one submission (a complete, self-contained HTML document)."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(g.exercise)}</td><td>{_number(g.points)} / {_number(g.max_points)}</td>"
        f'<td class="{e(g.status)}">{e(g.status)}</td><td>{e(g.feedback)}</td></tr>'
        for g in submission.exercises
    )
    details = "".join(
        f"<h3>{e(g.exercise)}: {e(g.status)}</h3><p>{e(g.feedback)}</p><pre>{e(g.detail)}</pre>"
        for g in submission.exercises
        if g.status != "passed" and g.detail
    )
    problems = "".join(
        f"<li>cell {cell.index}{' (' + e(cell.grade_id) + ')' if cell.grade_id else ''}: "
        f"{e(cell.status)}: {e(cell.message)}</li>"
        for cell in submission.problems
    )
    score = f"{_number(submission.points)} / {_number(submission.max_points)}"
    title = f"{submission.submission}: {score}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{e(submission.submission)}</h1>"
        f"<p>Assignment {e(submission.assignment or 'unknown')}: "
        f"<strong>{score}</strong> points</p>"
        "<table><tr><th>exercise</th><th>points</th><th>status</th><th>feedback</th></tr>"
        f"{rows}</table>"
        + (f"<h2>What went wrong</h2>{details}" if details else "")
        + (f"<h2>Cells with problems</h2><ul>{problems}</ul>" if problems else "")
        + "</body></html>\n"
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
        where = f"cell {cell.index}" + (f" ({cell.grade_id})" if cell.grade_id else "")
        lines.append(f"\nnote: {where} {cell.status}: {cell.message}")
    return "\n".join(lines)
