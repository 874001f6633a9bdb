"""The last stage: ``grades.csv``, ``grades.json``, one HTML page per submission, and the
learner's table for ``attn-course check``.

Everything a submission can influence (its file name, grade ids, messages from its sandbox) is
treated as hostile: every text passes ``safe`` (capped, with control, format and bidi
characters and lone surrogates shown as escapes; ``clean`` applies it to a whole grade, for the
journal as for every report), CSV cells that a spreadsheet would read as a formula are made
inert, and the HTML pages come from a Jinja2 template with autoescaping.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from attn_course.grader.heatmap import from_record, heatmap_svg
from attn_course.grader.pipeline import BatchGrade, SubmissionGrade, cell_place

MAX_TEXT = 4000
MAX_NAME = 300  # grade ids, exercise and assignment names, statuses
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
# what may need a second look: anything outside printable ASCII but newline and tab
_SUSPECT = re.compile(r"[^\x20-\x7e\n\t]")


def _visible(match: re.Match) -> str:
    """A character as it stays in a report: itself when it is printable, else its escape:
    a lone surrogate (how Python holds the bytes of a file name that are not UTF-8, or a
    broken message) as ``\\xe9`` (its byte) or ``\\udc00``; a control or format character
    (ANSI escapes, NUL, bidi overrides, zero-width characters) as ``\\x1b`` or ``\\u202e``."""
    char = match.group()
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's escape of a byte that is not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF or unicodedata.category(char) in ("Cc", "Cf"):
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else (
            f"\\U{code:08x}"
        )
    return char


def safe(text: object, cap: int = MAX_TEXT) -> str:
    """``text`` as every report and the journal hold it: at most ``cap`` characters, every
    character that is not printable (controls, bidi and other format characters, lone
    surrogates, unassigned code points) shown as its escape (newlines and tabs kept). The one
    cleaning function of everything a submission can influence; ``safe(safe(x)) == safe(x)``."""
    text = text if isinstance(text, str) else str(text)
    more = len(text) - cap
    if more > 0:
        text = text[:cap]
    text = _SUSPECT.sub(_visible, text)
    if more > 0 or len(text) > cap:
        more = max(more, 0) + len(text) - (cap - 40)
        text = text[: cap - 40] + f" [... {more} more]"
    return text


def clean(grade: SubmissionGrade) -> SubmissionGrade:
    """``grade`` with every text in it ``safe``: names and grade ids capped at ``MAX_NAME``,
    messages at ``MAX_TEXT`` (what the journal and every report write)."""

    def short(text: str | None) -> str | None:
        return None if text is None else safe(text, MAX_NAME)

    exercises = tuple(
        dataclasses.replace(
            row,
            exercise=safe(row.exercise, MAX_NAME),
            status=safe(row.status, MAX_NAME),
            feedback=safe(row.feedback),
            detail=safe(row.detail),
            mistake=safe(row.mistake, MAX_NAME),
            override=safe(row.override),
            seconds=_seconds(row.seconds),
            heatmap=from_record(row.heatmap, short),
        )
        for row in grade.exercises
    )
    problems = tuple(
        dataclasses.replace(
            cell,
            name=safe(cell.name, MAX_NAME),
            grade_id=short(cell.grade_id),
            status=safe(cell.status, MAX_NAME),
            message=safe(cell.message),
            output=safe(cell.output),
            task=short(cell.task),
        )
        for cell in grade.problems
    )
    return dataclasses.replace(
        grade,
        submission=safe(grade.submission),
        assignment=safe(grade.assignment, MAX_NAME),
        student=safe(grade.student, MAX_NAME),
        exercises=exercises,
        problems=problems,
        missing_layers=tuple(safe(layer, MAX_NAME) for layer in grade.missing_layers),
    )


def _seconds(value: object) -> float:
    """A time as the reports hold it: a finite, non-negative number of seconds (else 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return round(float(value), 3) if math.isfinite(value) and value > 0 else 0.0


def csv_cell(value: object) -> object:
    """A cell a spreadsheet shows as text: ``=HYPERLINK(...)`` becomes ``'=HYPERLINK(...)``."""
    if not isinstance(value, str):
        return value
    text = " ".join(safe(value).splitlines())
    return "'" + text if text.startswith(_FORMULA) else text


COLUMNS = (
    "submission", "assignment", "exercise", "points", "max_points", "status", "feedback",
    "mistake",  # the stable id of the named mistake of a failed exercise ("" for none)
    "student",  # the id of the student the submission belongs to (``students.py``)
)  # fmt: skip


def write_reports(
    batch: BatchGrade, out: Path, lessons_url: str | None = None
) -> dict[str, Path]:
    """Write all reports under ``out`` (``class.html`` reads ``out/similarity.csv`` as it is;
    ``lessons_url``: the course's static site, to link each mistake to its lesson); return
    their paths by kind."""
    out.mkdir(parents=True, exist_ok=True)
    batch = cleaned(batch)  # once: the stages below take it as it is
    pages = feedback_pages(batch, out / "feedback", is_clean=True)
    paths = {"csv": out / "grades.csv", "json": out / "grades.json", "feedback": out / "feedback"}
    with paths["csv"].open("w", newline="", encoding="utf-8-sig") as stream:  # BOM: Excel
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
                    grade.mistake,
                    submission.student,
                )
                writer.writerow([csv_cell(value) for value in row])
    document = summary(
        batch, {name: page.relative_to(out).as_posix() for name, page in pages.items()},
        is_clean=True,
    )  # fmt: skip
    paths["json"].write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", "utf-8")
    from attn_course.grader.classreport import write_class_report

    paths["class"] = write_class_report(batch, out, pages, lessons_url, is_clean=True)
    return paths


def cleaned(batch: BatchGrade) -> BatchGrade:
    """``batch`` with every submission's grade ``clean``."""
    return dataclasses.replace(
        batch,
        submissions=tuple(clean(submission) for submission in batch.submissions),
        missing_layers=tuple(safe(layer, MAX_NAME) for layer in batch.missing_layers),
    )


def summary(batch: BatchGrade, pages: dict[str, str], is_clean: bool = False) -> dict:
    """What ``grades.json`` holds: every row with its detail, totals per submission and for
    the batch, the seed of the hidden cases and the limits (``pages``: the feedback page of
    each submission, by its ``safe`` name; ``is_clean``: ``batch`` is ``cleaned`` already)."""
    batch = batch if is_clean else cleaned(batch)
    submissions = [
        {
            "submission": safe(submission.submission),
            "student": submission.student,
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
                    "mistake": grade.mistake,
                    "override": grade.override,
                    "seconds": grade.seconds,
                }
                for grade in submission.exercises
            ],
            "cell_problems": [
                {
                    "cell": cell.index,
                    "where": cell_place(cell),
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
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", safe(submission).removesuffix(".ipynb"))
        stem = stem[:150]  # a file name the file system takes
        name, counter = f"{stem}.html", 2
        while name.lower() in taken:
            name, counter = f"{stem}-{counter}.html", counter + 1
        taken.add(name.lower())
        names[submission] = name
    return names


def feedback_pages(
    batch: BatchGrade, folder: Path, names: dict[str, str] | None = None, is_clean: bool = False
) -> dict[str, Path]:
    """One HTML page per submission, named by ``names`` (default: ``page_names`` of the
    batch's submissions); return submission -> page. ``is_clean``: ``batch`` is ``cleaned``
    already (each grade is not cleaned again)."""
    folder.mkdir(parents=True, exist_ok=True)
    if names is None:
        names = page_names([submission.submission for submission in batch.submissions])
    pages: dict[str, Path] = {}
    for submission in batch.submissions:
        name = submission.submission
        page = folder / (names[name] if name in names else names[safe(name)])
        layers = batch.missing_layers or submission.missing_layers
        html = _page(submission, layers) if is_clean else feedback_html(submission, layers)
        page.write_text(html, encoding="utf-8")
        pages[safe(submission.submission)] = page
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
_TEMPLATES.filters.update(
    code_spans=code_spans, number=_number, safe_text=safe, heatmap_svg=heatmap_svg,
    cell_place=cell_place,
)


def feedback_html(submission: SubmissionGrade, missing_layers: tuple[str, ...] = ()) -> str:
    """The feedback page of one submission (a complete, self-contained HTML document);
    ``missing_layers``: the sandbox layers it was graded without."""
    return _page(clean(submission), tuple(safe(layer, MAX_NAME) for layer in missing_layers))


def _page(submission: SubmissionGrade, missing_layers: tuple[str, ...]) -> str:
    """``feedback_html`` of a grade and layers that are ``clean`` already."""
    return _TEMPLATES.get_template("feedback.html").render(
        submission=submission,
        score=f"{_number(submission.points)} / {_number(submission.max_points)}",
        details=[g for g in submission.exercises if g.status != "passed" and g.detail],
        missing_layers=missing_layers,
    )


def table(submission: SubmissionGrade) -> str:
    """The learner's view (``attn-course check``): one line per exercise, then the details."""
    submission = clean(submission)
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
        lines.append(f"\nnote: {cell_place(cell)} {cell.status}: {cell.message}")
    return safe("\n".join(lines), cap=64 * MAX_TEXT)


def labelled(notebooks: Sequence[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """(name, path) ``notebooks`` with each name ``safe`` (as the journal and reports write
    it), two that would read the same told apart by `` (2)``, `` (3)``..."""
    taken: set[str] = set()
    found = []
    for name, path in notebooks:
        label, counter = safe(name), 2
        while label in taken:
            label, counter = f"{safe(name)} ({counter})", counter + 1
        taken.add(label)
        found.append((label, path))
    return found
