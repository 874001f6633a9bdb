"""``grade`` on a batch of sample submissions of assignment 01: right answers, known mistakes,
forbidden code, tampering, and code that loops, floods, eats memory, kills its kernel, sends
pickles or writes outside its sandbox. Each asserts the exact statuses and points."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import nbformat
import pytest

from attn_course.assignments import make_exercise
from attn_course.grader.confine import landlock_abi
from attn_course.grader.pipeline import grade
from attn_course.grader.report import COLUMNS, write_reports
from attn_course.grader.sandbox import Limits
from attn_course.grader.zygote import Zygote

EXERCISES = ("attention_scores", "softmax", "context_vector", "SimpleAttention")
POINTS = {"attention_scores": 2, "softmax": 3, "context_vector": 2, "SimpleAttention": 3}

ALTERNATIVES = {
    "attention_scores": "def attention_scores(query, keys):\n"
    "    return (query.unsqueeze(-2) * keys).sum(-1)\n",
    "softmax": "def softmax(scores, dim=-1):\n"
    "    shifted = scores - scores.max(dim=dim, keepdim=True).values\n"
    "    exp = torch.exp(shifted)\n"
    "    return exp / exp.sum(dim, keepdim=True)\n",
    "context_vector": "def context_vector(weights, values):\n"
    "    return torch.einsum('...s,...sd->...d', weights, values)\n",
    "SimpleAttention": "class SimpleAttention(nn.Module):\n"
    "    def __init__(self, input_dim):\n"
    "        super().__init__()\n"
    "        self.attention = nn.Linear(input_dim, 1)\n"
    "\n"
    "    def forward(self, x):\n"
    "        weights = softmax(self.attention(x), dim=1)\n"
    "        return (weights * x).sum(1), weights\n",
}
NO_MAX_SHIFT = (
    "def softmax(scores, dim=-1):\n"
    "    exp = scores.exp()\n"
    "    return exp / exp.sum(dim, keepdim=True)\n"
)


def samples(outside: Path) -> dict[str, tuple[dict, dict[str, str]]]:
    """case-outcome -> (what to change in the model solution, expected non-passed statuses)."""
    sentinel, marker = outside / "sentinel.txt", outside / "unpickled.txt"
    evil = (
        "import os, pickle\n"
        "class Evil:\n"
        f"    def __reduce__(self):\n        return (open, ({str(marker)!r}, 'w'))\n"
    )
    return {
        "correct-pass": ({}, {}),
        "alternatives-pass": ({"replace": ALTERNATIVES}, {}),
        "softmax-no-max-shift-fail": (
            {"replace": {"softmax": NO_MAX_SHIFT}},
            {"softmax": "failed"},
        ),
        "softmax-wrong-dim-fail": (
            {
                "replace": {
                    "softmax": "def softmax(scores, dim=-1):\n"
                    "    exp = (scores - scores.amax(-1, keepdim=True)).exp()\n"
                    "    return exp / exp.sum(-1, keepdim=True)\n"
                }
            },
            {"softmax": "failed"},
        ),
        "scores-batch-broadcast-fail": (
            {
                "replace": {
                    "attention_scores": "def attention_scores(query, keys):\n"
                    "    return query @ keys.transpose(-2, -1)\n"
                }
            },
            {"attention_scores": "failed"},
        ),
        "builtin-softmax-fail": (
            {
                "replace": {
                    "softmax": "def softmax(scores, dim=-1):\n"
                    "    return torch.softmax(scores, dim)\n"
                }
            },
            {"softmax": "forbidden"},
        ),
        "reference-import-fail": (
            {"replace": {"context_vector": "from attn_course.reference import context_vector\n"}},
            dict.fromkeys(EXERCISES, "refused"),
        ),
        "hidden-builtin-fail": (  # vars() is outside the allow-list
            {
                "replace": {
                    "softmax": "table = vars(torch.nn.functional)\n"
                    "def softmax(scores, dim=-1):\n"
                    "    return table['soft' + 'max'](scores, dim=dim)\n"
                }
            },
            dict.fromkeys(EXERCISES, "refused"),
        ),
        "computed-getattr-fail": (
            {
                "replace": {
                    "softmax": "def softmax(scores, dim=-1):\n"
                    "    return getattr(torch, 'soft' + 'max')(scores, dim)\n"
                }
            },
            {"softmax": "forbidden"},  # a constant name: the static reach sees torch.softmax
        ),
        "recorder-disabled-fail": (  # reaching into the sandbox forfeits every exercise
            {
                "replace": {
                    "softmax": "import contextlib, sys\n"
                    "for module in list(sys.modules.values()):\n"
                    "    if 'record_forbidden' in vars(module):\n"
                    "        module.record_forbidden = lambda f: contextlib.nullcontext([])\n"
                    "def softmax(scores, dim=-1):\n"
                    "    return getattr(torch, 'soft' + 'max')(scores, dim)\n"
                }
            },
            dict.fromkeys(EXERCISES, "refused"),
        ),
        "faked-outcomes-fail": (  # a scratch cell swaps the sandbox's run_case for its own
            {
                "add": (
                    "import sys\n"
                    "core = sys.modules['_attn_course_sandbox_core']\n"
                    "real = core.run_case\n"
                    "def fake(obj, case, forbidden=()):\n"
                    "    if getattr(obj, '__name__', '') == 'softmax':\n"
                    "        dim = case.kwargs.get('dim', -1)\n"
                    "        return core.Outcome(output=torch.softmax(case.args[0], dim))\n"
                    "    return real(obj, case, forbidden)\n"
                    "core.run_case = fake\n",
                ),
                "replace": {"softmax": "def softmax(scores, dim=-1):\n    return scores\n"},
            },
            dict.fromkeys(EXERCISES, "refused"),
        ),
        "patched-allclose-fail": (
            {
                "add": (
                    "torch.allclose = lambda *args, **kwargs: True\n"
                    "torch.equal = lambda *args, **kwargs: True\n",
                ),
                "replace": {
                    "softmax": "def softmax(scores, dim=-1):\n    return torch.zeros_like(scores)\n"
                },
            },
            {"softmax": "failed"},
        ),
        "tampered-checks-fail": (
            {
                "add": (
                    "import attn_course.checks as checks\n"
                    "checks.check = lambda *args, **kwargs: None\n",
                ),
                "edit_locked": {"check_softmax": "print('softmax: all good')\n"},
                "replace": {"softmax": NO_MAX_SHIFT},
            },
            {"softmax": "failed"},
        ),
        "locked-setup-edited-pass": ({"edit_locked": {"setup": "import torch\n"}}, {}),
        "setup-deleted-pass": ({"drop": ("setup",)}, {}),
        "cell-timeout-fail": (
            {
                "replace": {
                    "context_vector": ALTERNATIVES["context_vector"] + "while True:\n    pass\n"
                }
            },
            {"context_vector": "timeout"},
        ),
        "function-loop-fail": (
            {
                "replace": {
                    "softmax": "def softmax(scores, dim=-1):\n    while True:\n        pass\n"
                }
            },
            {"softmax": "timeout"},
        ),
        "kernel-death-scratch-fail": (  # import os is outside the allow-list: nothing runs
            {"add": ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",)},
            dict.fromkeys(EXERCISES, "refused"),
        ),
        "kernel-death-forward-fail": (
            {
                "replace": {
                    "SimpleAttention": ALTERNATIVES["SimpleAttention"].replace(
                        "weights = softmax", "import os; os._exit(1)\n        weights = softmax"
                    )
                }
            },
            dict.fromkeys(EXERCISES, "refused"),
        ),
        "memory-hog-fail": (
            {
                "add": ("hog = [bytearray(1 << 30) for _ in range(64)]\n",),
                "replace": {
                    "softmax": "def softmax(scores, dim=-1):\n"
                    "    return torch.ones(1 << 40) * scores.sum()\n"
                },
            },
            {"softmax": "error"},
        ),
        "output-flood-pass": (
            {"add": ("for _ in range(200_000):\n    print('x' * 100)\n",)},
            {},
        ),
        "pickle-payload-fail": (
            {
                "add": (
                    evil + "payload = pickle.dumps(Evil())\n"
                    "for fd in range(3, 64):\n"
                    "    try:\n        os.write(fd, payload)\n"
                    "    except OSError:\n        pass\n",
                ),
                "replace": {
                    "attention_scores": evil + "def attention_scores(query, keys):\n"
                    "    return Evil()\n"
                },
            },
            dict.fromkeys(EXERCISES, "refused"),
        ),
        "rewrite-files-fail": (
            {
                "add": (
                    "import os, pathlib\n"
                    f"for target in [{str(sentinel)!r}, os.path.abspath('../../x.txt')]:\n"
                    "    try:\n        pathlib.Path(target).write_text('overwritten')\n"
                    "    except OSError:\n        pass\n"
                    f"os.remove({str(sentinel)!r})\n",
                    "import pathlib\npathlib.Path('mine.txt').write_text('my own directory')\n",
                )
            },
            dict.fromkeys(EXERCISES, "refused"),
        ),
        "kill-zygote-fail": (
            {"add": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",)},
            dict.fromkeys(EXERCISES, "refused"),
        ),
        "syntax-error-fail": (
            {"replace": {"softmax": "def softmax(scores, dim=-1)\n    return scores\n"}},
            {"softmax": "error"},
        ),
        "softmax-broken-inside-module-fail": (  # SimpleAttention passes with softmax fixed
            {
                "replace": {
                    "softmax": "def softmax(scores, dim=-1):\n    return scores\n",
                    "SimpleAttention": ALTERNATIVES["SimpleAttention"],
                }
            },
            {"softmax": "failed"},
        ),
        "missing-cell-fail": ({"drop": ("context_vector",)}, {"context_vector": "missing"}),
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory, submission_writer, solution_01):
    root = tmp_path_factory.mktemp("grading")
    folder, outside = root / "submitted", root / "outside"
    folder.mkdir()
    outside.mkdir()
    (outside / "sentinel.txt").write_text("original")
    for name, (changes, _) in samples(outside).items():
        case, outcome = name.rsplit("-", 1)
        submission_writer(folder, case, outcome, **changes)
    nbformat.write(make_exercise(solution_01()), folder / "test-released-unchanged-fail.ipynb")
    (folder / "test-not-json-fail.ipynb").write_text("{not json")
    (folder / "test-not-a-notebook-fail.ipynb").write_text(json.dumps({"cells": 3}))
    unknown = solution_01()
    unknown.metadata["attn_course"]["assignment"] = "99_no_such_assignment"
    nbformat.write(unknown, folder / "test-unknown-assignment-fail.ipynb")
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    batch = grade([folder], Limits(timeout=5, memory_mb=1024), workers=2)
    out = root / "grades"
    write_reports(batch, out)
    by_name = {s.submission: s for s in batch.submissions}
    return batch, by_name, folder, outside, before, out


@pytest.mark.parametrize("name", list(samples(Path("/outside"))))
def test_statuses_and_points(graded, name):
    _, by_name, *_ = graded
    _, expected = samples(Path("/outside"))[name]
    submission = by_name[f"test-{name}.ipynb"]
    statuses = {g.exercise: g.status for g in submission.exercises}
    assert statuses == {exercise: expected.get(exercise, "passed") for exercise in EXERCISES}
    assert submission.points == sum(POINTS[e] for e in EXERCISES if e not in expected)
    assert submission.max_points == 10
    assert name.endswith("-pass") == (submission.points == 10)


def test_released_exercise_is_all_missing(graded):
    _, by_name, *_ = graded
    submission = by_name["test-released-unchanged-fail.ipynb"]
    assert [g.status for g in submission.exercises] == ["missing"] * 4
    assert submission.points == 0


@pytest.mark.parametrize("name", ["not-json", "not-a-notebook", "unknown-assignment"])
def test_unreadable_notebook_is_one_invalid_row(graded, name):
    _, by_name, *_ = graded
    submission = by_name[f"test-{name}-fail.ipynb"]
    assert len(submission.exercises) == 1
    row = submission.exercises[0]
    assert (row.exercise, row.status, row.points) == ("*", "invalid", 0)
    assert row.feedback


def test_feedback_names_the_mistake(graded):
    _, by_name, *_ = graded

    def feedback(name: str, exercise: str) -> str:
        grades = by_name[f"test-{name}.ipynb"].exercises
        return next(g for g in grades if g.exercise == exercise).feedback

    assert "max shift" in feedback("softmax-no-max-shift-fail", "softmax")
    assert "wrong dim" in feedback("softmax-wrong-dim-fail", "softmax")
    assert "batch broadcasting" in feedback("scores-batch-broadcast-fail", "attention_scores")
    assert "built-in softmax" in feedback("builtin-softmax-fail", "softmax")
    assert "attn_course.reference" in feedback("reference-import-fail", "context_vector")
    assert "built-in softmax" in feedback("computed-getattr-fail", "softmax")
    assert "the cell of `softmax` (the " in feedback("hidden-builtin-fail", "attention_scores")
    assert "`import sys`" in feedback("faked-outcomes-fail", "attention_scores")
    assert "time" in feedback("cell-timeout-fail", "context_vector")
    assert "`import os`" in feedback("kernel-death-forward-fail", "SimpleAttention")
    hog = feedback("memory-hog-fail", "softmax")  # torch's own wording varies: its class only
    assert any(kind in hog for kind in ("RuntimeError", "MemoryError")), hog
    assert "SyntaxError" in feedback("syntax-error-fail", "softmax")
    fixed = feedback("softmax-broken-inside-module-fail", "SimpleAttention")
    assert "once `softmax` is fixed" in fixed
    detail = next(
        g
        for g in by_name["test-softmax-no-max-shift-fail.ipynb"].exercises
        if g.exercise == "softmax"
    ).detail
    assert "expected" in detail and "got" in detail


def test_broken_cells_are_reported(graded):
    _, by_name, *_ = graded
    timeout, *later = by_name["test-cell-timeout-fail.ipynb"].problems
    assert (timeout.grade_id, timeout.status) == ("context_vector", "timeout")
    assert [cell.status for cell in later] == ["error"]  # the worked example using it
    assert "NameError" in later[0].message


@pytest.mark.skipif(landlock_abi() == 0, reason="the kernel has no Landlock")
def test_nothing_outside_the_sandbox_changed(graded):
    _, _, folder, outside, before, _ = graded
    assert (outside / "sentinel.txt").read_text() == "original"
    assert not (outside / "unpickled.txt").exists()
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    assert not (folder.parent / "x.txt").exists()


def test_reports(graded):
    batch, _, folder, _, _, out = graded
    with (out / "grades.csv").open(newline="", encoding="utf-8-sig") as stream:
        rows = list(csv.DictReader(stream))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == sum(len(s.exercises) for s in batch.submissions)
    assert {row["status"] for row in rows} <= {
        "passed",
        "failed",
        "error",
        "timeout",
        "missing",
        "forbidden",
        "refused",
        "invalid",
    }
    correct = [row for row in rows if row["submission"] == "test-correct-pass.ipynb"]
    assert [(r["exercise"], r["points"], r["max_points"]) for r in correct] == [
        (e, str(POINTS[e]), str(POINTS[e])) for e in EXERCISES
    ]
    document = json.loads((out / "grades.json").read_text(encoding="utf-8"))
    assert document["totals"]["submissions"] == len(list(folder.iterdir()))
    assert document["totals"]["invalid"] == 3
    entry = next(s for s in document["submissions"] if s["submission"] == "test-correct-pass.ipynb")
    assert (entry["points"], entry["max_points"]) == (10, 10)
    pages = sorted((out / "feedback").glob("*.html"))
    assert len(pages) == len(batch.submissions)
    page = (out / entry["feedback_page"]).read_text(encoding="utf-8")
    assert "10 / 10" in page


def test_html_escapes_student_content(submission_writer, tmp_path):
    script = "<script>alert(1)</script>"
    softmax = f"def softmax(scores, dim=-1):\n    raise ValueError({script!r})\n"
    submission_writer(tmp_path, "script-in-error", "fail", replace={"softmax": softmax})
    batch = grade([tmp_path], Limits(timeout=10), workers=1)
    write_reports(batch, tmp_path / "out")
    page = next((tmp_path / "out" / "feedback").glob("*.html")).read_text(encoding="utf-8")
    assert "&lt;script&gt;" in page
    assert script not in page


def test_fair_credit_re_runs_share_the_submissions_budget(submission_writer, tmp_path):
    """Slow cells and an exercise failing through a broken dependency: the first run and the
    fair-credit re-run together stay within one --budget (before, each re-run had its own, so
    this took at least twice the sleeping)."""
    path = submission_writer(
        tmp_path,
        "slow-and-dependent",
        "fail",
        replace={
            "softmax": "def softmax(scores, dim=-1):\n    return scores\n",
            "SimpleAttention": ALTERNATIVES["SimpleAttention"],
        },
        add=("import time\ntime.sleep(5)", "time.sleep(5)"),
    )
    zygote = Zygote()
    zygote.missing_layers()  # started: only grading is timed
    budget = 12.0
    started = time.monotonic()
    batch = grade([path], Limits(timeout=8, memory_mb=1024, budget=budget), 1, zygote=zygote)
    elapsed = time.monotonic() - started
    statuses = {grade.exercise: grade.status for grade in batch.submissions[0].exercises}
    assert statuses["softmax"] == "failed"
    assert elapsed < 1.45 * budget  # two runs with their sleeps would take 20 s or more
