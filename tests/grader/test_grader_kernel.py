"""Sandboxes seen from the grader: confinement, restarts, and what crosses back."""

from __future__ import annotations

import contextlib
import faulthandler
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from attn_course.checks.core import Case
from attn_course.grader import isolate, kernel
from attn_course.grader.confine import landlock_abi
from attn_course.grader.kernel import (
    CellCode,
    ExerciseRequest,
    Limits,
    Sandbox,
    SandboxDied,
    execute,
)
from attn_course.grader.zygote import SETUP_FAILED


def test_environment_is_scrubbed_and_home_is_private(run, monkeypatch):
    monkeypatch.setenv("GRADER_SECRET_TOKEN", "hunter2")
    cells = [
        "import os\nassert 'GRADER_SECRET_TOKEN' not in os.environ, 'leaked'",
        "assert os.path.exists('submission.ipynb')\nassert os.environ['HOME'] == os.getcwd()",
        "import torch\nassert torch.get_num_threads() == 1",
    ]
    assert [cell.status for cell in run(cells).cells] == ["ok", "ok", "ok"]


def test_reference_is_not_in_the_sandbox_and_checks_do_nothing(run):
    cells = [
        "import attn_course.reference",
        "from attn_course.checks import check\nassert check(print) is None",
        "import gc, sys\n"
        "assert not any(name.startswith('attn_course.reference') for name in sys.modules)\n"
        "modules = {str(getattr(o, '__module__', '')) for o in gc.get_objects()}\n"
        "assert not any(m.startswith('attn_course.reference') for m in modules), 'in memory'",
    ]
    runs = run(cells).cells
    assert [cell.status for cell in runs] == ["error", "ok", "ok"]
    assert "not available to code being graded" in runs[0].message


def test_a_cell_that_hangs_is_dropped_and_the_others_replayed(run):
    cells = ["x = 41", "while True:\n    pass", "x += 1", "def answer(t):\n    return t + x"]
    request = ExerciseRequest("answer", [Case("one", (torch.zeros(2),))], ())
    execution = run(cells, [request], timeout=5)  # also covers start-up: loaded machines
    assert [cell.status for cell in execution.cells] == ["ok", "timeout", "ok", "ok"]
    (outcome,) = execution.exercises["answer"].outcomes
    assert torch.equal(outcome.output, torch.full((2,), 42.0))


def test_memory_limit(run):
    runs = run(["import torch\nbig = torch.ones(1 << 30)", "x = 1"]).cells  # 4 GB
    assert [cell.status for cell in runs] == ["error", "ok"]  # refused, and the kernel lives


def test_printed_output_is_capped(run):
    runs = run(["print('x' * 10_000_000)"]).cells
    assert runs[0].status == "ok"
    assert len(runs[0].output) < 100_000 and "dropped" in runs[0].output


@pytest.mark.skipif(landlock_abi() < 6, reason="Landlock cannot scope signals on this kernel")
def test_the_grader_cannot_be_signalled(run):
    cells = [f"import os, signal\nos.kill({os.getpid()}, signal.SIGTERM)"]
    runs = run(cells).cells
    assert runs[0].status == "error"  # not visible (PID namespace) or not allowed (Landlock)


def sandbox_that_exited(code: int) -> Sandbox:
    sandbox = Sandbox.__new__(Sandbox)
    sandbox.exit_code = code
    return sandbox


@pytest.mark.parametrize(
    ("code", "said"),
    [
        (-9, "SIGKILL (memory exhausted"),
        (128 + 9, "SIGKILL (memory exhausted"),  # the waiter's fallback status
        (-11, "SIGSEGV (crashed)"),
        (-40, "signal 40"),  # a real-time signal has no name
        (SETUP_FAILED, "could not start"),
        (3, "status 3"),
    ],
)
def test_exit_reasons(code, said):
    assert said in sandbox_that_exited(code).exit_reason()


def children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(n) for n in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def test_a_kernel_killed_from_outside_is_reported_killed(run, zygote):
    """What the OOM killer does: SIGKILL to the sandbox's PID 1 (the waiter's child)."""
    if "namespaces" in zygote.missing_layers():
        pytest.skip("no PID namespace: no waiter")
    stop = threading.Event()

    def kill_pid_1() -> None:
        while not stop.is_set():
            for waiter in children(zygote._process.pid):
                for pid_1 in children(waiter):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid_1, signal.SIGKILL)
            time.sleep(0.2)

    killer = threading.Thread(target=kill_pid_1)
    killer.start()
    try:
        runs = run(["while True:\n    pass"], timeout=120).cells
    finally:
        stop.set()
        killer.join()
    assert runs[0].status == "died"
    assert "SIGKILL" in runs[0].message and "memory" in runs[0].message


def end_like(child: Callable[[], None]) -> int:
    """The wait status of a waiter (``isolate._wait_and_end_like``) whose child runs
    ``child``."""
    waiter = os.fork()
    if waiter == 0:
        try:
            pid = os.fork()
            if pid == 0:
                try:
                    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
                    faulthandler.disable()  # no traceback dump in the test's log
                    child()
                finally:
                    os._exit(99)
            isolate._wait_and_end_like(pid, [])
        finally:
            os._exit(98)  # not reached: the waiter ends itself
    return os.waitpid(waiter, 0)[1]


def test_the_waiter_ends_as_its_child_did_without_a_core_dump():
    assert os.waitstatus_to_exitcode(end_like(lambda: os._exit(5))) == 5
    for number in (signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV, signal.SIGRTMIN + 6):
        status = end_like(lambda number=number: os.kill(os.getpid(), number))
        assert os.waitstatus_to_exitcode(status) == -number
        assert not os.WCOREDUMP(status)


class BrokenZygote:
    def fork(self, *args):
        raise BrokenPipeError(32, "Broken pipe")

    def exit_code(self, pid, timeout):
        return None


def test_a_failed_fork_is_sandbox_died_and_leaks_nothing(tmp_path, monkeypatch):
    notebook = tmp_path / "submission.ipynb"
    notebook.write_text("{}")
    homes, mkdtemp = [], tempfile.mkdtemp

    def recorded(**options):
        homes.append(mkdtemp(**options))
        return homes[-1]

    monkeypatch.setattr(kernel.tempfile, "mkdtemp", recorded)
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(SandboxDied):
        Sandbox(BrokenZygote(), notebook, Limits(memory_mb=64))
    assert set(os.listdir("/proc/self/fd")) <= before
    assert homes and not any(Path(home).exists() for home in homes)


class NoForks:
    def fork(self, *args):
        raise AssertionError("a sandbox was started after the budget was spent")


def test_no_sandbox_is_started_once_the_budget_is_spent(tmp_path):
    execution = execute(
        NoForks(),
        tmp_path / "submission.ipynb",
        [CellCode(1, None, "x = 1")],
        [ExerciseRequest("answer", [], ())],
        Limits(budget=1.0),
        deadline=time.monotonic() - 1,
    )
    assert execution.cells[0].status == "timeout" and "budget" in execution.cells[0].message
    assert execution.exercises["answer"].status == "timeout"


def test_a_probe_that_crashes_reports_every_layer_missing(monkeypatch):
    def raises(home):
        raise RuntimeError("the probe broke")

    def crashes(home):
        os._exit(3)

    for broken in (raises, crashes):
        monkeypatch.setattr(isolate, "_try_layers", broken)
        assert set(isolate.probe()) == set(isolate.LAYERS)


def test_cpu_limit_under_an_existing_finite_hard_limit():
    """The CPU hard limit a second above the soft one never exceeds a hard limit already set
    (raising it would be refused)."""
    code = (
        "import resource\nfrom attn_course.grader import confine\n"
        "resource.setrlimit(resource.RLIMIT_CPU, (100, 100))\n"
        "confine._lower(resource.RLIMIT_CPU, 100)\n"
        "assert resource.getrlimit(resource.RLIMIT_CPU) == (100, 100)\n"
        "confine._lower(resource.RLIMIT_CPU, 50)\n"
        "assert resource.getrlimit(resource.RLIMIT_CPU) == (50, 51)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


THREAD_IN_A_CELL = """
import sys, threading, time
import torch
stop = threading.Event()
worker = threading.Thread(target=stop.wait, daemon=True)
worker.start()

def threads_seen(x):
    return torch.full_like(x, float(len(sys._current_frames())))

def starts_a_thread(x):
    helper = threading.Thread(target=lambda: None)
    helper.start()
    helper.join()
    return x
"""


def test_exercises_are_judged_with_no_other_thread_and_can_start_none(run):
    """A thread a cell started would run beside the recorders, which see one thread: it is
    not there when exercises are judged, and none can be started then (seccomp)."""
    case = [Case("one", (torch.zeros(2),))]
    result = run(
        [THREAD_IN_A_CELL, "seen_in_cells = len(sys._current_frames())\nassert seen_in_cells == 2"],
        [ExerciseRequest("threads_seen", case, ()), ExerciseRequest("starts_a_thread", case, ())],
    )
    assert [cell.status for cell in result.cells] == ["ok", "ok"]
    (seen,) = result.exercises["threads_seen"].outcomes
    assert seen.error is None and seen.output.tolist() == [1.0, 1.0]
    (started,) = result.exercises["starts_a_thread"].outcomes
    assert started.error is not None and "thread" in started.error


def test_numpy_parts_that_load_compiled_code_cannot_be_imported(run):
    """``np.testing`` builds and imports C extensions, ``np.ctypeslib`` reads raw memory: the
    sandbox refuses them whatever name the notebook reaches them by."""
    cells = ["import numpy as np\nt = np.testing", "import numpy.f2py", "import torch.testing"]
    runs = run(cells).cells
    assert [cell.status for cell in runs] == ["error", "error", "ok"]
    assert all("not available to code being graded" in cell.message for cell in runs[:2])
