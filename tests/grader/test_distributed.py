"""Grading on a real Dask cluster (``distributed.LocalCluster``, two worker processes): the
same grades as the local thread pool, every column of ``grades.csv``, even when a worker is
killed in the middle of the batch."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from distributed import Client

from attn_course.grader.catalog import course_assignments
from attn_course.grader.distributed import grade_on_dask, local_cluster, parse_scheduler
from attn_course.grader.pipeline import BatchGrade, find_notebooks, grade_each
from attn_course.grader.report import write_reports
from attn_course.grader.sandbox import Limits

SEED = 11
# kills the kernel (SIGSEGV: C recursion through a million nested iterators) with nothing
# outside the allow-list, so the sandbox runs it and the killed-kernel path is taken
CRASH = (
    "import itertools\nit = iter([1])\nfor _ in range(1_000_000):\n"
    "    it = itertools.chain(it)\nnext(it)\n"
)


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory, submission_writer):
    folder = tmp_path_factory.mktemp("batch")
    no_shift = (
        "def softmax(scores, dim=-1):\n    return scores.exp() / scores.exp().sum(dim, True)"
    )
    submission_writer(folder, "correct", "pass")
    submission_writer(folder, "no-max-shift", "fail", replace={"softmax": no_shift})
    submission_writer(folder, "unfinished", "fail", drop=("SimpleAttention",))
    submission_writer(folder, "crash", "fail", add=(CRASH,))
    submission_writer(folder, "forbidden", "fail", replace={
        "softmax": "def softmax(scores, dim=-1):\n    return torch.softmax(scores, dim)\n"
    })  # fmt: skip
    (folder / "test-not-json-fail.ipynb").write_text("{ not json")
    return find_notebooks([folder])


def grades_csv(results, notebooks, out) -> str:
    by_name = {result.submission: result for result in results}
    batch = BatchGrade(tuple(by_name[name] for name, _ in notebooks), SEED, Limits())
    assert len(by_name) == len(results) == len(notebooks)  # none lost, none twice
    return write_reports(batch, out)["csv"].read_text()


@pytest.fixture(scope="module")
def thread_pool(notebooks, tmp_path_factory) -> str:
    results = list(grade_each(notebooks, SEED, Limits(), course_assignments(), workers=2))
    return grades_csv(results, notebooks, tmp_path_factory.mktemp("threads"))


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(2) as address:
        yield address


def test_a_cluster_gives_the_thread_pools_grades(notebooks, thread_pool, cluster, tmp_path):
    results = list(grade_on_dask(notebooks, SEED, Limits(), cluster))
    assert grades_csv(results, notebooks, tmp_path) == thread_pool
    [crash] = [result for result in results if result.submission == "test-crash-fail.ipynb"]
    assert [cell.status for cell in crash.problems] == ["died"]  # the kernel was killed
    assert "passed" in thread_pool and "failed" in thread_pool and "invalid" in thread_pool


def test_a_worker_killed_mid_batch_costs_no_submission(notebooks, thread_pool, cluster, tmp_path):
    results = []
    with Client(cluster) as client:
        pids = client.run(os.getpid)
        for result in grade_on_dask(notebooks, SEED, Limits(), cluster):
            if not results:  # the others are queued or being graded: kill a busy worker
                busy = [address for address, tasks in client.processing().items() if tasks]
                os.kill(pids[(busy or list(pids))[0]], signal.SIGKILL)
            results.append(result)
    assert grades_csv(results, notebooks, tmp_path) == thread_pool


def kill_the_workers_grading(cluster: str, times: int) -> None:
    """SIGKILL the worker that is grading a submission, ``times`` times over (a stand-in for a
    machine that crashes; the endless notebook keeps its worker busy until then)."""
    with Client(cluster) as client:
        killed: set[str] = set()
        deadline = time.monotonic() + 600
        while len(killed) < times and time.monotonic() < deadline:
            busy = [w for w, tasks in client.processing().items() if tasks and w not in killed]
            if busy:
                os.kill(client.run(os.getpid, workers=busy[:1])[busy[0]], signal.SIGKILL)
                killed.add(busy[0])
            time.sleep(0.05)


def test_a_submission_whose_worker_dies_twice_is_graded_error(
    cluster, submission_writer, tmp_path
):
    path = submission_writer(tmp_path, "endless", "fail", add=("while True:\n    pass\n",))
    killer = threading.Thread(target=kill_the_workers_grading, args=(cluster, 2))
    killer.start()
    [result] = grade_on_dask([(path.name, path)], SEED, Limits(timeout=600), cluster)
    killer.join()
    assert [grade.status for grade in result.exercises] == ["error"] * 4
    assert all("died twice" in grade.feedback for grade in result.exercises)
    assert result.max_points == 10


def test_scheduler_addresses():
    assert parse_scheduler("local:2") == "local:2"
    assert parse_scheduler("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    for wrong in ("local:0", "local:two", "nowhere"):
        with pytest.raises(ValueError):
            parse_scheduler(wrong)
