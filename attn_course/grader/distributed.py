"""Grading on a Dask cluster (``attn-course grade --scheduler ADDRESS`` or ``local:N``).

Each worker process keeps its own zygote (``GraderPlugin``, a Dask worker plugin) and runs
``pipeline.grade_submission``, the same stage the local thread pool runs, with the batch's
seed: the hidden cases are drawn on the worker from the seed, identical everywhere. Notebooks
travel as bytes, so workers need no shared file system; each is written into a private
temporary folder under its own file name before it is graded. Grades stream back as they
finish.

A worker that dies while grading a submission (killed, out of memory, its machine gone) costs
that submission only: the scheduler hands it to another worker once; if that one dies too the
submission is graded ``error``. The scheduler of a ``local:N`` cluster is configured so here;
for a cluster of your own, start the scheduler with
``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=1`` (``docs/instructors.md``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import dask
from distributed import (
    Client,
    KilledWorker,
    LocalCluster,
    WorkerPlugin,
    as_completed,
    get_worker,
)

from attn_course.grader.catalog import Assignment, course_assignments
from attn_course.grader.notebook import MAX_NOTEBOOK_BYTES, InvalidSubmission, assignment_of, read
from attn_course.grader.pipeline import (
    ExerciseGrade,
    SubmissionGrade,
    ZygoteKeeper,
    grade_each,
    grade_submission,
)
from attn_course.grader.sandbox import Limits

PLUGIN = "attn-course-grader"
LOCAL = "local:"
WORKER_DIED = (
    "the grader's worker process died twice while grading this submission (on two workers); "
    "it was not graded"
)


class GraderPlugin(WorkerPlugin):
    """What each worker keeps for the whole batch: its zygote and the course's assignments."""

    name = PLUGIN

    def setup(self, worker: object) -> None:
        self.zygote = ZygoteKeeper()
        self.assignments = course_assignments()

    def teardown(self, worker: object) -> None:
        self.zygote.close()


def _grade_bytes(
    name: str, filename: str, data: bytes, seed: int, limits: Limits, allow_weak: bool = False
) -> SubmissionGrade:
    """The task each worker runs: one submission, from its bytes. A worker whose machine
    cannot give a sandbox every isolation layer refuses it (unless ``allow_weak``); the
    grade names the layers it was graded without."""
    plugin = get_worker().plugins[PLUGIN]
    missing = plugin.zygote.get().missing_layers()
    if missing and not allow_weak:
        message = (
            f"the worker at {get_worker().address} cannot isolate submissions fully (missing "
            f"{', '.join(missing)}); fix it or grade with --allow-weak-sandbox"
        )
        grades = (ExerciseGrade("*", 0, 0, "error", message),)
        return SubmissionGrade(name, "", grades, infrastructure=True, missing_layers=missing)
    with tempfile.TemporaryDirectory(prefix="attn-course-submission-") as folder:
        path = Path(folder) / filename
        path.write_bytes(data)
        grade = grade_submission(name, path, seed, limits, plugin.assignments, plugin.zygote)
    return dataclasses.replace(grade, missing_layers=tuple(missing))


def grade_on_dask(
    notebooks: Sequence[tuple[str, Path]],
    seed: int,
    limits: Limits,
    scheduler: str,
    allow_weak: bool = False,
) -> Iterator[SubmissionGrade]:
    """Grade (name, path) pairs on the Dask cluster at ``scheduler`` (``local:N``: a cluster
    of N worker processes on this machine, closed at the end), yielding each grade as it
    arrives (in any order). ``allow_weak``: workers grade even without every isolation layer."""
    with _client(scheduler) as client:
        client.register_plugin(GraderPlugin(), name=PLUGIN)
        here, futures = [], {}
        for name, path in notebooks:
            if not _sendable(path):
                here.append((name, path))
                continue
            future = client.submit(
                _grade_bytes,
                name,
                path.name,
                path.read_bytes(),
                seed,
                limits,
                allow_weak,
                key=f"grade-{len(futures)}-{name}",
            )
            futures[future] = (name, path)
        # anything not a plain notebook file is refused without running it: no worker needed
        yield from grade_each(here, seed, limits, course_assignments(), workers=1)
        for future in as_completed(futures):
            try:
                yield future.result()
            except KilledWorker:
                yield _worker_died(*futures[future])
            finally:
                future.release()


def _sendable(path: Path) -> bool:
    """A regular file small enough to be a notebook: sent to a worker as bytes."""
    return path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_NOTEBOOK_BYTES


@contextlib.contextmanager
def _client(scheduler: str) -> Iterator[Client]:
    if scheduler.startswith(LOCAL):
        cluster = local_cluster(int(scheduler.removeprefix(LOCAL)))
        with cluster as address, Client(address) as client:
            yield client
    else:
        with Client(scheduler) as client:
            yield client


@contextlib.contextmanager
def local_cluster(workers: int) -> Iterator[str]:
    """A Dask cluster of ``workers`` single-threaded worker processes on this machine, whose
    scheduler gives up on a task after two worker deaths; yields its address."""
    with (
        dask.config.set(
            {
                "distributed.scheduler.allowed-failures": 1,
                # no statistical profiler sampling each worker's stacks every 10 ms
                "distributed.worker.profile.enabled": False,
            }
        ),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",  # a free local port: 8787 may be taken
            silence_logs=logging.ERROR,
            memory_limit=0,  # the sandboxes have their own limits; a worker only coordinates
        ) as cluster,
    ):
        yield cluster.scheduler_address


def parse_scheduler(text: str) -> str:
    """``local:N`` (N ≥ 1) or a scheduler address such as ``tcp://host:8786``."""
    if text.startswith(LOCAL):
        count = text.removeprefix(LOCAL)
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"local:N needs a positive number of workers, not {count!r}")
    elif "://" not in text and ":" not in text:
        raise ValueError(f"not a scheduler address (tcp://HOST:PORT) nor local:N: {text!r}")
    return text


def _worker_died(name: str, path: Path) -> SubmissionGrade:
    try:
        assignment: Assignment | None = assignment_of(read(path), path, course_assignments())
    except InvalidSubmission:
        assignment = None
    if assignment is None:
        grades = (ExerciseGrade("*", 0, 0, "error", WORKER_DIED),)
        return SubmissionGrade(name, "", grades, infrastructure=True)
    grades = tuple(
        ExerciseGrade(exercise.name, 0, exercise.points, "error", WORKER_DIED)
        for exercise in assignment.exercises
    )
    return SubmissionGrade(name, assignment.id, grades, infrastructure=True)
