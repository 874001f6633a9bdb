"""Sandboxes seen from the grader: confinement, restarts, and what crosses back."""

from __future__ import annotations

import os

import pytest
import torch

from attn_course.checks.core import Case
from attn_course.grader.confine import landlock_abi
from attn_course.grader.kernel import ExerciseRequest


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
    execution = run(cells, [request], timeout=1)
    assert [cell.status for cell in execution.cells] == ["ok", "timeout", "ok", "ok"]
    (outcome,) = execution.exercises["answer"].outcomes
    assert torch.equal(outcome.output, torch.full((2,), 42.0))


def test_memory_limit(run):
    runs = run(["import torch\nbig = torch.ones(1 << 30)"]).cells  # 4 GB
    assert runs[0].status == "error" and "allocate" in runs[0].message


def test_printed_output_is_capped(run):
    runs = run(["print('x' * 10_000_000)"]).cells
    assert runs[0].status == "ok"
    assert len(runs[0].output) < 100_000 and "dropped" in runs[0].output


@pytest.mark.skipif(landlock_abi() < 6, reason="Landlock cannot scope signals on this kernel")
def test_the_grader_cannot_be_signalled(run):
    cells = [f"import os, signal\nos.kill({os.getpid()}, signal.SIGTERM)"]
    runs = run(cells).cells
    assert runs[0].status == "error"  # not visible (PID namespace) or not allowed (Landlock)
