"""The class report ``DIR/class.html``, and every report rebuilt from the journal.

``class_summary`` counts what a batch says about the class: per exercise the points
distribution, pass rate and median time; each named mistake (``ExerciseGrade.mistake``) with
how many students made it, who, and the lesson that teaches the exercise; failures without a
named mistake apart; timeouts, crashes, refused and invalid notebooks, the instructor's
overrides and the near copies of ``similarity.csv``, each linked to the students' pages.
``class_html`` renders it with Jinja2 (autoescaped, like every page) and matplotlib figures
embedded as SVG data URIs: one file, readable offline and by e-mail.

``rebuild_reports`` writes ``grades.csv``, ``grades.json``, the feedback pages and
``class.html`` again from ``DIR/journal.jsonl`` (``attn-course report DIR``), with each
submission's student and the instructor's ``overrides.csv`` (``export.current_batch``);
nothing is graded again.
"""

from __future__ import annotations

import base64
import csv
import functools
import gc
import io
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from attn_course.grader.pipeline import STOPPED_THE_KERNEL, BatchGrade, SubmissionGrade, cell_place
from attn_course.grader.report import _TEMPLATES, MAX_NAME, _number, cleaned, safe

CLASS_PAGE = "class.html"
FAILED = ("failed", "error")  # the statuses a mistake (named or not) is counted in


@dataclass(frozen=True)
class Student:
    """A student as the class report names and links them (``href`` "" when no page)."""

    label: str
    href: str


@dataclass(frozen=True)
class Lesson:
    number: str
    stem: str  # the notebook's name without .ipynb: 05_masks
    href: str  # "" without a lessons URL

    @property
    def title(self) -> str:
        return f"lesson {self.number}: {self.stem[3:].replace('_', ' ')}"


@dataclass
class MistakeCount:
    """One named mistake (or, with ``mistake`` "", the failures without one) of an exercise."""

    exercise: str
    mistake: str
    message: str
    students: list[Student]
    share: float  # of the exercise's graded students
    lesson: Lesson | None = None

    @property
    def percent(self) -> str:
        return f"{100 * self.share:.0f} %"


@dataclass
class ExerciseStats:
    name: str
    max_points: float
    graded: int
    passed: int
    median_seconds: float | None
    statuses: dict[str, int]
    points: dict[float, int]  # points -> students
    figure: str = ""  # a data URI
    lesson: Lesson | None = None
    mistakes: list[MistakeCount] = field(default_factory=list)
    generic: MistakeCount | None = None

    @property
    def pass_rate(self) -> str:
        return f"{100 * self.passed / self.graded:.0f} %" if self.graded else "–"


@dataclass
class Incident:
    """A timeout, crash, refused or invalid notebook, or an override: who, where, what."""

    student: Student
    where: str
    what: str


@dataclass
class SimilarPair:
    first: Student
    second: Student
    share: str
    other_share: str


@dataclass
class ClassSummary:
    assignments: list[str]
    submissions: int
    graded: int
    median_points: float | None
    max_points: float
    figure: str
    exercises: list[ExerciseStats]
    timeouts: list[Incident]
    crashes: list[Incident]
    refused: list[Incident]
    invalid: list[Incident]
    overrides: list[Incident]
    similar: list[SimilarPair]


@functools.cache
def lesson_number(exercise: str) -> str | None:
    """The lesson that teaches ``exercise``: the first "lesson NN" of the docstring of its
    reference (``attn_course.reference.<exercise>``), as every reference docstring names it."""
    import attn_course.reference as reference

    found = re.search(r"lesson (\d\d)", getattr(getattr(reference, exercise, None), "__doc__", "")
                      or "")  # fmt: skip
    return found.group(1) if found else None


@functools.cache
def _lesson_stems() -> dict[str, str]:
    """Lesson number -> notebook stem, from the installed course's ``notebooks/``."""
    from attn_course.lab import course_root

    try:
        folder = course_root() / "notebooks"
        return {path.stem[:2]: path.stem for path in sorted(folder.glob("[0-9][0-9]_*.ipynb"))}
    except OSError:
        return {}


def lesson_of(exercise: str, lessons_url: str | None = None) -> Lesson | None:
    """The lesson teaching ``exercise``, linked to its page of the course's static site under
    ``lessons_url`` (``make site``: ``notebooks/NN_topic.html``) when given."""
    number = lesson_number(exercise)
    stem = _lesson_stems().get(number) if number else None
    if stem is None:
        return None
    href = f"{lessons_url.rstrip('/')}/notebooks/{stem}.html" if lessons_url else ""
    return Lesson(number, stem, href)


def class_summary(
    batch: BatchGrade,
    pages: dict[str, str],
    similar: list[tuple[str, str, str, str]] = (),
    lessons_url: str | None = None,
    figures: bool = True,
    is_clean: bool = False,
) -> ClassSummary:
    """What the class report shows: ``pages`` maps each submission's ``safe`` name to its
    page relative to the report folder; ``similar``: (submission, other, share, other_share)
    rows of ``similarity.csv``; ``is_clean``: ``batch`` is ``cleaned`` already."""
    batch = batch if is_clean else cleaned(batch)
    by_name = {submission.submission: submission for submission in batch.submissions}

    def student(submission: SubmissionGrade, anchor: str = "") -> Student:
        href = pages.get(submission.submission, "")
        label = submission.student or submission.submission
        return Student(label, href + (f"#{anchor}" if href and anchor else ""))

    valid = [s for s in batch.submissions if s.assignment and not _all(s, "invalid")]
    rows = defaultdict(list)  # exercise -> [(submission, grade)]
    for submission in valid:
        for grade in submission.exercises:
            rows[grade.exercise].append((submission, grade))
    exercises = []
    for name, graded in rows.items():
        seconds = [g.seconds for _, g in graded if g.seconds > 0]
        stats = ExerciseStats(
            name=name,
            max_points=max(g.max_points for _, g in graded),
            graded=len(graded),
            passed=sum(g.status == "passed" for _, g in graded),
            median_seconds=statistics.median(seconds) if seconds else None,
            statuses=dict(Counter(g.status for _, g in graded).most_common()),
            points=dict(sorted(Counter(g.points for _, g in graded).items())),
            lesson=lesson_of(name, lessons_url),
        )
        failed = [(s, g) for s, g in graded if g.status in FAILED and not _crash(g)]
        named = defaultdict(list)
        for s, g in failed:
            named[g.mistake].append((s, g))
        for mistake, who in sorted(named.items(), key=lambda item: (-len(item[1]), item[0])):
            message = Counter(g.feedback for _, g in who).most_common(1)[0][0]
            count = MistakeCount(
                name, mistake, message, [student(s, name) for s, _ in who],
                len(who) / len(graded), stats.lesson,
            )  # fmt: skip
            if mistake:
                stats.mistakes.append(count)
            else:
                stats.generic = count
        exercises.append(stats)
    if figures:
        for stats in exercises:
            stats.figure = _points_figure(stats.points, stats.max_points)

    timeouts, crashes, refused, invalid, overrides = [], [], [], [], []
    for submission in batch.submissions:
        if _all(submission, "invalid"):
            invalid.append(Incident(student(submission), "", submission.exercises[0].feedback))
            continue
        refusals = [g for g in submission.exercises if g.status == "refused"]
        if refusals:
            refused.append(Incident(student(submission), "", refusals[0].feedback))
        for g in submission.exercises:
            if g.status == "timeout":
                timeouts.append(Incident(student(submission, g.exercise), g.exercise, g.feedback))
            elif _crash(g):
                crashes.append(Incident(student(submission, g.exercise), g.exercise, g.feedback))
            if g.override:
                what = f"{_number(g.points)} / {_number(g.max_points)}: {g.override}"
                overrides.append(Incident(student(submission, g.exercise), g.exercise, what))
        for cell in submission.problems:
            incident = Incident(student(submission), cell_place(cell), cell.message)
            if cell.status == "timeout":
                timeouts.append(incident)
            elif cell.status == "died":
                crashes.append(incident)

    def named(name: str) -> Student:
        if name in by_name:
            return student(by_name[name])
        return Student(name, "")

    pairs = [SimilarPair(named(a), named(b), share, other) for a, b, share, other in similar]
    totals = [s.points for s in valid]
    max_points = max((s.max_points for s in valid), default=0)
    return ClassSummary(
        assignments=sorted({s.assignment for s in valid}),
        submissions=len(batch.submissions),
        graded=len(valid),
        median_points=statistics.median(totals) if totals else None,
        max_points=max_points,
        figure=_totals_figure(totals, max_points) if figures and totals else "",
        exercises=exercises,
        timeouts=timeouts,
        crashes=crashes,
        refused=refused,
        invalid=invalid,
        overrides=overrides,
        similar=pairs,
    )


def _all(submission: SubmissionGrade, status: str) -> bool:
    return bool(submission.exercises) and all(g.status == status for g in submission.exercises)


def _crash(grade: object) -> bool:
    """Whether an exercise's hidden cases stopped the kernel (``pipeline._status``)."""
    return grade.status == "error" and f"{grade.exercise} {STOPPED_THE_KERNEL}" in grade.feedback


def class_html(summary: ClassSummary) -> str:
    """The class report, one self-contained HTML document."""
    return _TEMPLATES.get_template(CLASS_PAGE).render(summary=summary, number=_number)


def read_similarity(out: Path) -> list[tuple[str, str, str, str]]:
    """The pairs of ``out/similarity.csv`` (none when it is absent or unreadable): the names
    as the reports write them, a spreadsheet's formula guard taken off."""
    try:
        with (out / "similarity.csv").open(newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []

    def name(value: object) -> str:
        text = safe(value if isinstance(value, str) else "")
        return text[1:] if text.startswith("'") and text[1:2] in "=+-@\t\r" else text

    return [
        (name(row.get("submission")), name(row.get("other")),
         safe(row.get("share") or "", MAX_NAME), safe(row.get("other_share") or "", MAX_NAME))
        for row in rows
        if row.get("other")  # rows of a submission close to the reference name no other
    ]  # fmt: skip


def write_class_report(
    batch: BatchGrade,
    out: Path,
    pages: dict[str, Path],
    lessons_url: str | None = None,
    is_clean: bool = False,
) -> Path:
    """Write ``out/class.html`` (``pages``: submission -> its feedback page); return its path."""
    links = {name: page.relative_to(out).as_posix() for name, page in pages.items()}
    summary = class_summary(batch, links, read_similarity(out), lessons_url, is_clean=is_clean)
    path = out / CLASS_PAGE
    path.write_text(class_html(summary), encoding="utf-8")
    return path


# -- figures -------------------------------------------------------------------------------


def _svg_uri(figure: object) -> str:
    stream = io.BytesIO()
    figure.savefig(stream, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(stream.getvalue()).decode("ascii")


def _figure(width: float, height: float) -> tuple[object, object]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    return figure, axes


def _points_figure(points: dict[float, int], max_points: float) -> str:
    """Bars: how many students got each number of points of an exercise (red 0, green full)."""
    figure, axes = _figure(2.6, 1.3)
    values = list(points)
    colours = ["#1a7f37" if v >= max_points else "#cf222e" if v == 0 else "#9a6700" for v in values]
    axes.bar([f"{_number(v)}" for v in values], list(points.values()), color=colours)
    axes.set_xlabel("points", fontsize=8)
    axes.set_ylabel("students", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.yaxis.get_major_locator().set_params(integer=True)
    return _svg_uri(figure)


def _totals_figure(totals: list[float], max_points: float) -> str:
    """A histogram of the students' total points."""
    figure, axes = _figure(5.0, 2.0)
    top = max(max_points, max(totals), 1)
    bins = min(20, int(top) + 1) if float(top).is_integer() else 20
    axes.hist(totals, bins=bins, range=(-0.5, top + 0.5), color="#0969da", rwidth=0.9)
    axes.set_xlabel("total points", fontsize=9)
    axes.set_ylabel("students", fontsize=9)
    axes.tick_params(labelsize=8)
    axes.yaxis.get_major_locator().set_params(integer=True)
    return _svg_uri(figure)


# -- rebuilding every report from the journal ----------------------------------------------


def reported_batch(out: Path) -> tuple[BatchGrade, list[str]]:
    """The batch ``out``'s reports cover (``export.current_batch``: the journal's grades but
    superseded files, each with its student, ``overrides.csv`` applied) and a message for each
    override that could not be applied; raise FileNotFoundError without a journal."""
    from attn_course.grader.export import current_batch
    from attn_course.grader.journal import JOURNAL_NAME

    if not (out / JOURNAL_NAME).is_file():
        raise FileNotFoundError(f"no journal of a graded batch in {out} ({JOURNAL_NAME})")
    return current_batch(out)


def rebuild_reports(
    out: Path,
    lessons_url: str | None = None,
    load: Callable[[Path], tuple[BatchGrade, list[str]]] = reported_batch,
) -> tuple[dict[str, Path], list[str]]:
    """Write every report of ``out`` again from its journal and overrides (``load``); return
    their paths by kind and the problems ``load`` found (overrides that could not be applied).
    Nothing is graded; ``similarity.csv`` is read as it is."""
    from attn_course.grader.report import write_reports

    collecting = gc.isenabled()
    gc.disable()  # a journal of 1,000 grades is many small objects: no full scans of them
    try:
        batch, problems = load(out)
        return write_reports(batch, out, lessons_url=lessons_url), problems
    finally:
        if collecting:
            gc.enable()
