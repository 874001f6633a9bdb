"""The grading pipeline: read → prepare → execute in a sandbox → judge → points.

``grade`` runs it over a batch with ``workers`` submissions at a time; ``grade_notebook`` runs
it for one submission. Everything that decides a score happens here, in the grader's process:
the hidden cases are drawn here, the static check reads the code here, and each exercise's
``judge`` compares the student's outputs with ``attn_course.reference`` here.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from attn_course.grader import credit, static
from attn_course.grader.catalog import Assignment, course_assignments
from attn_course.grader.heatmap import Heatmap, capture
from attn_course.grader.kernel import (
    CellRun,
    Execution,
    ExerciseRequest,
    budget_deadline,
    execute,
)
from attn_course.grader.notebook import (
    InvalidSubmission,
    Submission,
    analysed,
    assignment_of,
    prepare,
    read,
)
from attn_course.grader.sandbox import Limits
from attn_course.grader.zygote import Zygote


@dataclass(frozen=True)
class ExerciseGrade:
    """One row of ``grades.csv``: ``feedback`` is one line, ``detail`` shows expected against
    actual on a small case (HTML and JSON only), ``heatmap`` the failing case's weights beside
    the expected ones where the output is attention weights, scores or a mask (HTML only)."""

    exercise: str
    points: float
    max_points: float
    status: str
    feedback: str
    detail: str = ""
    mistake: str = ""  # the stable id of the named mistake (``Verdict.mistake``); "" for none
    override: str = ""  # the instructor's comment where ``DIR/overrides.csv`` set the points
    seconds: float = 0.0  # how long the hidden cases took (the sandbox's round trip; 0: not run)
    heatmap: Heatmap | None = None


@dataclass(frozen=True)
class SubmissionGrade:
    submission: str
    assignment: str
    exercises: tuple[ExerciseGrade, ...]
    problems: tuple[CellRun, ...] = ()  # cells that raised, timed out or killed the kernel
    # a fault of the grading machinery (the grader failed, a worker refused or died), not of
    # the submission: not journalled, so a resumed batch grades it again
    infrastructure: bool = False
    missing_layers: tuple[str, ...] = ()  # the sandbox layers it was graded without
    student: str = ""  # the id of the student it belongs to ("" before students are resolved)

    @property
    def points(self) -> float:
        return sum(grade.points for grade in self.exercises)

    @property
    def max_points(self) -> float:
        return sum(grade.max_points for grade in self.exercises)


@dataclass(frozen=True)
class BatchGrade:
    """A graded batch; ``missing_layers``: the sandbox layers it was graded without
    (``--allow-weak-sandbox``)."""

    submissions: tuple[SubmissionGrade, ...]
    seed: int
    limits: Limits = field(default_factory=Limits)
    missing_layers: tuple[str, ...] = ()

    @property
    def allowed_imports(self) -> tuple[str, ...]:
        """Modules the instructor allowed on top of the static rule's (``--allow-import``)."""
        return self.limits.allowed_imports


def find_notebooks(paths: Iterable[str | Path]) -> list[tuple[str, Path]]:
    """(name, path) of every ``.ipynb`` given or inside a given folder; the name is the path
    relative to the folder given (the file name for a file given). Files of other kinds are
    left out (``other_files`` says why). Raise FileNotFoundError for a path that does not
    exist."""
    found: list[tuple[str, Path]] = []
    for given in map(Path, paths):
        if given.is_dir():
            notebooks = sorted(
                path
                for path in given.rglob("*.ipynb")
                if ".ipynb_checkpoints" not in path.parts and path.is_file()
            )
            found += [(path.relative_to(given).as_posix(), path) for path in notebooks]
        elif given.is_file():
            if given.suffix.lower() != ".ipynb":
                continue  # not graded: ``other_files`` says why
            found.append((given.name, given))
        else:
            raise FileNotFoundError(f"no such file or folder: {given}")
    names = [name for name, _ in found]
    return [(name if names.count(name) == 1 else path.as_posix(), path) for name, path in found]


# why a file given (or found in a folder given) is not graded, by its suffix
NOT_NOTEBOOKS = {
    ".zip": "a .zip archive: unzip it first, then grade the folder",
    ".py": "a Python file, not a notebook: ask the student for the .ipynb",
    ".html": "an HTML export, not a notebook: ask the student for the .ipynb",
    ".pdf": "a PDF, not a notebook: ask the student for the .ipynb",
}


def other_files(paths: Iterable[str | Path]) -> dict[str, str]:
    """Path -> why it is not graded, for each file given or inside a folder given that is not
    an ``.ipynb`` (hidden files and checkpoints left out), and each folder without a notebook."""
    found: dict[str, str] = {}
    for given in map(Path, paths):
        if given.is_dir():
            files = [
                path for path in sorted(given.rglob("*"))
                if path.is_file()
                and not any(part.startswith(".") for part in path.relative_to(given).parts)
            ]  # fmt: skip
            if not any(path.suffix.lower() == ".ipynb" for path in files):
                found[given.as_posix()] = "a folder without any notebook (.ipynb)"
        else:
            files = [given] if given.is_file() else []
        for path in files:
            if path.suffix.lower() != ".ipynb":
                why = NOT_NOTEBOOKS.get(path.suffix.lower(), "not a notebook (.ipynb)")
                found[path.as_posix()] = why
    return found


def is_zip(path: Path) -> bool:
    """Whether ``path`` starts like a .zip archive (Canvas's download, renamed or not)."""
    try:
        with path.open("rb") as stream:
            return stream.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def grade(
    paths: Iterable[str | Path],
    limits: Limits | None = None,
    workers: int | None = None,
    assignments: dict[str, Assignment] | None = None,
    seed: int | None = None,
    progress: Callable[[int], Any] | None = None,
    zygote: Zygote | None = None,
) -> BatchGrade:
    """Grade every notebook in ``paths``; never raises for a bad submission. ``progress`` is
    called with the number of submissions that have just finished. ``zygote``: one started
    early (it imports torch while this process does); the batch closes it."""
    notebooks = find_notebooks(paths)
    limits = limits or Limits()
    assignments = assignments if assignments is not None else course_assignments()
    seed = secrets.randbits(62) if seed is None else seed
    zygote = zygote or Zygote()
    missing = zygote.missing_layers()
    results = {}
    for result in grade_each(notebooks, seed, limits, assignments, workers, zygote):
        results[result.submission] = result
        if progress is not None:
            progress(1)
    return BatchGrade(tuple(results[name] for name, _ in notebooks), seed, limits, missing)


def grade_each(
    notebooks: Sequence[tuple[str, Path]],
    seed: int,
    limits: Limits,
    assignments: dict[str, Assignment],
    workers: int | None = None,
    zygote: Zygote | None = None,
    default_assignment: str | None = None,
) -> Iterator[SubmissionGrade]:
    """Grade (name, path) pairs ``workers`` at a time on this machine, yielding each grade as
    it finishes (in any order). ``zygote``: one started early; closed at the end.
    ``default_assignment``: the assignment of a notebook that does not say (``--assignment``)."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(notebooks) or 1))
    keeper, pool = ZygoteKeeper(zygote), ThreadPoolExecutor(max_workers=workers)
    try:
        futures = [
            pool.submit(
                grade_submission, name, path, seed, limits, assignments, keeper, default_assignment
            )
            for name, path in notebooks
        ]
        for future in as_completed(futures):
            yield future.result()
    finally:  # also when the caller stops early: what has not started never will
        pool.shutdown(cancel_futures=True)
        keeper.close()


def grade_submission(
    name: str,
    path: Path,
    seed: int,
    limits: Limits,
    assignments: dict[str, Assignment],
    zygote: ZygoteKeeper,
    default_assignment: str | None = None,
) -> SubmissionGrade:
    """Grade one submission on the hidden cases of batch ``seed``: the one stage that the
    thread pool and the Dask workers (``attn_course.grader.distributed``) both run."""
    cases = hidden_cases(seed)
    return grade_notebook(name, path, assignments, limits, cases, zygote, default_assignment)


@functools.lru_cache(maxsize=4)
def hidden_cases(seed: int) -> _HiddenCases:
    """The hidden cases of batch ``seed`` (drawn once per process)."""
    return _HiddenCases(seed)


class _HiddenCases:
    """The hidden cases of each exercise, drawn once per batch from ``seed``: every
    submission meets the same inputs."""

    def __init__(self, seed: int) -> None:
        self.seed, self._cases, self._lock = seed, {}, threading.Lock()

    def of(self, exercise: Any) -> list:
        with self._lock:
            if exercise.name not in self._cases:
                offset = sum(map(ord, exercise.name))
                generator = torch.Generator().manual_seed(self.seed + offset)
                self._cases[exercise.name] = exercise.make_cases(generator)
            return self._cases[exercise.name]


class ZygoteKeeper:
    """The batch's zygote, started on first use and started again if it ever dies."""

    def __init__(self, zygote: Zygote | None = None) -> None:
        self._zygote = zygote
        self._lock = threading.Lock()

    def get(self) -> Zygote:
        with self._lock:
            if self._zygote is None or not self._zygote.alive:
                if self._zygote is not None:
                    self._zygote.close()
                self._zygote = Zygote()
            return self._zygote

    def close(self) -> None:
        if self._zygote is not None:
            self._zygote.close()


def grade_notebook(
    name: str,
    path: Path,
    assignments: dict[str, Assignment],
    limits: Limits,
    cases: _HiddenCases,
    zygote: ZygoteKeeper,
    default_assignment: str | None = None,
) -> SubmissionGrade:
    """All stages for one submission; the budget counts from here (the static analysis too)."""
    deadline = budget_deadline(limits)  # the fair-credit re-runs share the one budget
    try:
        notebook = read(path)
        assignment = assignment_of(notebook, path, assignments, default_assignment)
    except InvalidSubmission as error:
        return SubmissionGrade(name, "", (ExerciseGrade("*", 0, 0, "invalid", str(error)),))
    try:
        submission = analysed(prepare(notebook, name, path, assignment), limits.allowed_imports)
        found = submission.analysis.violations
        if found:
            return SubmissionGrade(name, assignment.id, outside_allow_list(submission, found))
        requests = [
            ExerciseRequest(exercise.name, cases.of(exercise), exercise.forbidden)
            for exercise in assignment.exercises
        ]
        execution = execute(zygote.get(), path, submission.cells, requests, limits, deadline)
        grades = score(submission, execution, requests)
        grades = with_fixed_dependencies(
            submission, requests, grades, zygote.get(), limits, deadline=deadline
        )
    except Exception as error:  # a fault of the grader: this submission only, batch goes on
        message = f"the grader failed on this submission: {type(error).__name__}: {error}"
        grades = [
            ExerciseGrade(exercise.name, 0, exercise.points, "error", message)
            for exercise in assignment.exercises
        ]
        return SubmissionGrade(name, assignment.id, tuple(grades), infrastructure=True)
    problems = tuple(cell for cell in execution.cells if cell.status != "ok")
    return SubmissionGrade(name, assignment.id, tuple(grades), problems)


def score(
    submission: Submission, execution: Execution, requests: Sequence[ExerciseRequest]
) -> list[ExerciseGrade]:
    """Each exercise's status, feedback and points (the judging stage), with the
    submission's ``analysis`` (``notebook.analysed``)."""
    grades = []
    for exercise, request in zip(submission.assignment.exercises, requests, strict=True):
        status, feedback, detail, mistake, heatmap = _status(
            exercise, request, execution, submission.analysis
        )
        feedback = " ".join(feedback.splitlines())  # one line in grades.csv
        points = exercise.points if status == "passed" else 0
        run = execution.exercises.get(exercise.name)
        seconds = run.seconds if run is not None else 0.0
        grades.append(
            ExerciseGrade(
                exercise.name, points, exercise.points, status, feedback, detail, mistake,
                seconds=seconds, heatmap=heatmap,
            )
        )  # fmt: skip
    return grades


def outside_allow_list(
    submission: Submission, found: Sequence[static.Violation]
) -> tuple[ExerciseGrade, ...]:
    """Every exercise refused, naming the first construct outside the allow-list, its cell
    and line (all of them in the detail): the notebook is not run at all."""
    lines = violation_lines(submission, found)
    more = f" (and {len(lines) - 1} more, see the details)" if len(lines) > 1 else ""
    feedback = lines[0] + more + "; the notebook was not run, so no exercise can be graded"
    return tuple(
        ExerciseGrade(exercise.name, 0, exercise.points, "refused", feedback, "\n".join(lines))
        for exercise in submission.assignment.exercises
    )


def violation_lines(submission: Submission, found: Sequence[static.Violation]) -> list[str]:
    """One line per violation: where (cell and line), the construct, why."""
    where = {cell.index: cell_place(cell) for cell in submission.cells}
    return [
        f"{where.get(v.cell, f'the {ordinal(v.cell)} code cell')}"
        + (f", line {v.line}" if v.line else "")
        + f": `{v.construct}` is not allowed: {v.reason}"
        for v in found
    ]


def ordinal(number: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``11th``, ``22nd``."""
    if 10 <= number % 100 <= 20:
        return f"{number}th"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def cell_place(cell: CellRun | Any) -> str:
    """A cell as the learner finds it in JupyterLab, which numbers no cells: by the graded name
    it defines (its nbgrader grade id), else by the heading it is under, with its place among
    the code cells: ``the cell of `softmax` (the 6th code cell)``, ``the 3rd code cell (under
    "Task 1: ...")``, ``the 9th code cell``."""
    place = f"the {ordinal(cell.index)} code cell"
    if cell.grade_id:
        return f"the cell of `{cell.grade_id}` ({place})"
    return f'{place} (under "{cell.task}")' if cell.task else place


def with_fixed_dependencies(
    submission: Submission,
    requests: Sequence[ExerciseRequest],
    grades: list[ExerciseGrade],
    zygote: Zygote,
    limits: Limits,
    deadline: float | None = None,
) -> list[ExerciseGrade]:
    """Fair partial credit: an exercise that failed while it uses another exercise of the same
    notebook that did not pass (the learner's ``split_heads`` inside their
    ``MultiHeadAttention``, a ``softmax`` still raising NotImplementedError inside their
    ``SimpleAttention``) is run again with the reference in place of that dependency; if it
    then passes, it gets its points, and the feedback says so. The reference placed never
    holds the exercise being judged (``credit.reference_piece``). The re-runs end by
    ``deadline`` (that of the first run: one budget for all; None: a budget from now)."""
    status = {grade.exercise: grade.status for grade in grades}
    analysis = submission.analysis
    deadline = budget_deadline(limits) if deadline is None else deadline
    grades = list(grades)
    for position, (exercise, request) in enumerate(
        zip(submission.assignment.exercises, requests, strict=True)
    ):
        if status[exercise.name] not in ("failed", "error", "missing"):
            continue
        bound = analysis.bound.get(exercise.name)
        if not bound or _unfinished(bound):
            continue  # not written yet: no dependency can be the reason
        broken = [
            name
            for name, grade in status.items()
            if name != exercise.name
            and grade != "passed"
            and analysis.reaches(exercise.name, name)
        ]
        piece = credit.reference_piece(broken, exercise.name) if broken else None
        if piece is None:
            continue
        if time.monotonic() >= deadline:
            break  # the budget is spent: no more re-runs
        fixed = dataclasses.replace(request, reference=piece)
        execution = execute(zygote, submission.path, submission.cells, [fixed], limits, deadline)
        run = execution.exercises[exercise.name]
        try:
            passed = run.status == "ok" and exercise.judge(request.cases, run.outcomes).passed
        except Exception:  # outputs of a shape the judge did not foresee: no credit
            passed = False
        if not passed:
            continue
        names = ", ".join(f"`{name}`" for name in broken)
        grades[position] = ExerciseGrade(
            exercise.name,
            exercise.points,
            exercise.points,
            "passed",
            f"correct once {names} is fixed (judged with the reference {names})",
            seconds=grades[position].seconds,
        )
    return grades


def _unfinished(statements: Sequence[Any]) -> bool:
    """Whether a definition still raises NotImplementedError somewhere (the released stub)."""
    for node in (node for statement in statements for node in ast.walk(statement)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(raised, ast.Name) and raised.id == "NotImplementedError":
                return True
    return False


def _status(
    exercise: Any, request: ExerciseRequest, execution: Execution, analysis: static.Analysis
) -> tuple[str, str, str, str, Heatmap | None]:
    """(status, feedback, detail, mistake id, heatmap of the failing case) of one exercise."""
    name = exercise.name
    uses = analysis.forbidden.get(name, ())
    if uses:
        message = getattr(exercise, "forbidden_message", "") or "it uses a forbidden built-in"
        return "forbidden", message, "found in the code: " + ", ".join(uses), "", None
    run = execution.exercises[name]
    if run.status == "missing":
        broken = [cell for cell in execution.cells if cell.grade_id == name and cell.status != "ok"]
        if not broken:
            message = f"{name} is not defined (its cell is missing or was emptied)"
            return "missing", message, "", "", None
        cell = broken[-1]
        status = "timeout" if cell.status == "timeout" else "error"
        message = f"{name} is not defined: the cell defining it {_cell_problem(cell)}"
        return status, message, "", "", None
    if run.status == "timeout":
        return "timeout", f"{name} {run.message}", "", "", None
    if run.status == "died":
        message = f"{name} {STOPPED_THE_KERNEL} on the hidden cases: {run.message}"
        return "error", message, "", "", None
    try:
        verdict = exercise.judge(request.cases, run.outcomes)
    except Exception as error:  # outputs of a shape the judge did not foresee
        message = f"{name} returned something the grader cannot compare ({error})"
        return "error", message, "", "", None
    errors = [outcome.error or "" for outcome in run.outcomes]
    if verdict.status == "error" and all(e.startswith("NotImplementedError") for e in errors):
        message = f"{name} is not implemented yet (it raises NotImplementedError)"
        return "missing", message, "", "", None
    heatmap = None
    if verdict.status == "failed":
        heatmap = failing_heatmap(exercise, request.cases, run.outcomes, verdict.case)
    return verdict.status, verdict.message, verdict.detail, verdict.mistake, heatmap


STOPPED_THE_KERNEL = "stopped the kernel"  # how a crash reads in feedback (the class report)


def failing_heatmap(
    exercise: Any, cases: Sequence[Any], outcomes: Sequence[Any], label: str
) -> Heatmap | None:
    """The heatmap of the case labelled ``label`` (the verdict's failing case) when its output
    looks like weights, scores or a mask (``heatmap.capture``); None otherwise, and never an
    exception (a picture is never worth a grade)."""
    if not label:
        return None
    try:
        for case, outcome in zip(cases, outcomes, strict=True):
            if case.label == label and outcome.error is None:
                return capture(exercise.name, label, exercise.expected(case), outcome.output)
    except Exception:
        return None
    return None


def _cell_problem(cell: CellRun) -> str:
    if cell.status == "timeout":
        return f"did not finish within the time limit ({cell.message})"
    if cell.status == "died":
        return f"stopped the kernel ({cell.message})"
    return f"raised {cell.message}"
