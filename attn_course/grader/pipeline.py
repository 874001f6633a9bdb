"""The grading pipeline: read → prepare → execute in a sandbox → judge → points.

``grade`` runs it over a batch with ``workers`` submissions at a time; ``grade_notebook`` runs
it for one submission. Everything that decides a score happens here, in the grader's process:
the hidden cases are drawn here, the static check reads the code here, and each exercise's
``judge`` compares the student's outputs with ``attn_course.reference`` here.
"""

from __future__ import annotations

import functools
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from attn_course.grader import static
from attn_course.grader.catalog import Assignment, course_assignments
from attn_course.grader.kernel import CellRun, Execution, ExerciseRequest, execute
from attn_course.grader.notebook import InvalidSubmission, Submission, assignment_of, prepare, read
from attn_course.grader.sandbox import Limits
from attn_course.grader.zygote import Zygote


@dataclass(frozen=True)
class ExerciseGrade:
    """One row of ``grades.csv``: ``feedback`` is one line, ``detail`` shows expected against
    actual on a small case (HTML and JSON only)."""

    exercise: str
    points: float
    max_points: float
    status: str
    feedback: str
    detail: str = ""


@dataclass(frozen=True)
class SubmissionGrade:
    submission: str
    assignment: str
    exercises: tuple[ExerciseGrade, ...]
    problems: tuple[CellRun, ...] = ()  # cells that raised, timed out or killed the kernel

    @property
    def points(self) -> float:
        return sum(grade.points for grade in self.exercises)

    @property
    def max_points(self) -> float:
        return sum(grade.max_points for grade in self.exercises)


@dataclass(frozen=True)
class BatchGrade:
    submissions: tuple[SubmissionGrade, ...]
    seed: int
    limits: Limits = field(default_factory=Limits)


def find_notebooks(paths: Iterable[str | Path]) -> list[tuple[str, Path]]:
    """(name, path) of every ``.ipynb`` given or inside a given folder; the name is the path
    relative to the folder given (the file name for a file given). Raise FileNotFoundError for
    a path that does not exist."""
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
            found.append((given.name, given))
        else:
            raise FileNotFoundError(f"no such file or folder: {given}")
    names = [name for name, _ in found]
    return [(name if names.count(name) == 1 else path.as_posix(), path) for name, path in found]


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
    results = {}
    for result in grade_each(notebooks, seed, limits, assignments, workers, zygote):
        results[result.submission] = result
        if progress is not None:
            progress(1)
    return BatchGrade(tuple(results[name] for name, _ in notebooks), seed, limits)


def grade_each(
    notebooks: Sequence[tuple[str, Path]],
    seed: int,
    limits: Limits,
    assignments: dict[str, Assignment],
    workers: int | None = None,
    zygote: Zygote | None = None,
) -> Iterator[SubmissionGrade]:
    """Grade (name, path) pairs ``workers`` at a time on this machine, yielding each grade as
    it finishes (in any order). ``zygote``: one started early; closed at the end."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(notebooks) or 1))
    keeper, pool = ZygoteKeeper(zygote), ThreadPoolExecutor(max_workers=workers)
    try:
        futures = [
            pool.submit(grade_submission, name, path, seed, limits, assignments, keeper)
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
) -> SubmissionGrade:
    """Grade one submission on the hidden cases of batch ``seed``: the one stage that the
    thread pool and the Dask workers (``attn_course.grader.distributed``) both run."""
    return grade_notebook(name, path, assignments, limits, hidden_cases(seed), zygote)


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
) -> SubmissionGrade:
    """All stages for one submission."""
    try:
        notebook = read(path)
        assignment = assignment_of(notebook, path, assignments)
    except InvalidSubmission as error:
        return SubmissionGrade(name, "", (ExerciseGrade("*", 0, 0, "invalid", str(error)),))
    try:
        submission = prepare(notebook, name, path, assignment)
        requests = [
            ExerciseRequest(exercise.name, cases.of(exercise), exercise.forbidden)
            for exercise in assignment.exercises
        ]
        execution = execute(zygote.get(), path, submission.cells, requests, limits)
        grades = score(submission, execution, requests)
    except Exception as error:  # a fault of the grader: this submission only, batch goes on
        message = f"the grader failed on this submission: {type(error).__name__}: {error}"
        grades = [
            ExerciseGrade(exercise.name, 0, exercise.points, "error", message)
            for exercise in assignment.exercises
        ]
        return SubmissionGrade(name, assignment.id, tuple(grades))
    problems = tuple(cell for cell in execution.cells if cell.status != "ok")
    return SubmissionGrade(name, assignment.id, tuple(grades), problems)


def score(
    submission: Submission, execution: Execution, requests: Sequence[ExerciseRequest]
) -> list[ExerciseGrade]:
    """Each exercise's status, feedback and points (the judging stage)."""
    trees = submission.trees()
    bound, tampering = static.definitions(trees), static.tampering(trees)
    modules = static.imported(bound)
    grades = []
    for exercise, request in zip(submission.assignment.exercises, requests, strict=True):
        status, feedback, detail = _status(exercise, request, execution, bound, modules)
        if tampering:
            status, feedback = "forbidden", TAMPERING_MESSAGE
            detail = "found in the code: " + ", ".join(tampering)
        feedback = " ".join(feedback.splitlines())  # one line in grades.csv
        points = exercise.points if status == "passed" else 0
        grades.append(
            ExerciseGrade(exercise.name, points, exercise.points, status, feedback, detail)
        )
    return grades


def _status(
    exercise: Any, request: ExerciseRequest, execution: Execution, bound: dict, modules: set
) -> tuple[str, str, str]:
    name = exercise.name
    reached = static.reached(name, bound) if name in bound else []
    uses = static.forbidden_uses(reached, exercise.forbidden, modules)
    if uses:
        return (
            "forbidden",
            _forbidden_message(exercise, uses),
            "found in the code: " + ", ".join(uses),
        )
    run = execution.exercises[name]
    if run.status == "missing":
        broken = [cell for cell in execution.cells if cell.grade_id == name and cell.status != "ok"]
        if not broken:
            return "missing", f"{name} is not defined (its cell is missing or was emptied)", ""
        cell = broken[-1]
        status = "timeout" if cell.status == "timeout" else "error"
        return status, f"{name} is not defined: the cell defining it {_cell_problem(cell)}", ""
    if run.status == "timeout":
        return "timeout", f"{name} {run.message}", ""
    if run.status == "died":
        return "error", f"{name} stopped the kernel on the hidden cases: {run.message}", ""
    try:
        verdict = exercise.judge(request.cases, run.outcomes)
    except Exception as error:  # outputs of a shape the judge did not foresee
        return "error", f"{name} returned something the grader cannot compare ({error})", ""
    errors = [outcome.error or "" for outcome in run.outcomes]
    if verdict.status == "error" and all(e.startswith("NotImplementedError") for e in errors):
        return "missing", f"{name} is not implemented yet (it raises NotImplementedError)", ""
    return verdict.status, verdict.message, verdict.detail


def _cell_problem(cell: CellRun) -> str:
    if cell.status == "timeout":
        return f"did not finish within the time limit ({cell.message})"
    if cell.status == "died":
        return f"stopped the kernel ({cell.message})"
    return f"raised {cell.message}"


TAMPERING_MESSAGE = (
    "the notebook reaches into the grader's sandbox (its frames, modules or recorder), which "
    "could change what it reports: no exercise can be graded"
)
FORBIDDEN_REASONS = {
    "reference": "it uses the course's reference implementation (attn_course.reference), "
    "which a solution may not call",
    "dynamic": "it runs code from strings or imports by name (exec, eval, importlib), which "
    "hides what it calls from the grader",
}


def _forbidden_message(exercise: Any, uses: list[str]) -> str:
    kinds = []
    for use in uses:
        if static.REFERENCE in use:
            kind = "reference"
        elif "code run from a string" in use or use == "importlib":
            kind = "dynamic"
        else:
            kind = getattr(exercise, "forbidden_message", "") or "it uses a forbidden built-in"
        if kind not in kinds:
            kinds.append(kind)
    return "; ".join(FORBIDDEN_REASONS.get(kind, kind) for kind in kinds)
