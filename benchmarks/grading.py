"""How long grading takes per submission: ``attn-course grade`` against plain nbclient and nbgrader.

    .venv/bin/python benchmarks/grading.py [--copies 16] [--workers 2] [--skip-nbgrader]

It writes ``--copies`` copies of the model solution of assignment 01 plus four buggy variants
(no max shift, batch broadcasting by @, softmax over the wrong dim, a deleted solution) into a
temporary folder, then times, in one run and on the same notebooks:

- ``attn-course grade`` end to end (start-up, sandboxes, judging, reports), ``--workers`` at once;
- plain nbclient: each notebook executed top to bottom in a fresh kernel, one after another
  (what any notebook-running grader pays before it scores anything);
- nbgrader's ``autograde`` on the same submissions, when nbgrader is installed.

It prints seconds per submission and the ratios to ``attn-course grade``. Not a test: timings
depend on the machine and its load (the load average is printed with them).
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "01_scores_softmax_context"
SOLUTION = ROOT / "solutions" / f"{ASSIGNMENT}.ipynb"
BIN = Path(sys.executable).parent

BUGS = {
    "no-max-shift": {
        "softmax": "def softmax(scores, dim=-1):\n"
        "    exp = scores.exp()\n"
        "    return exp / exp.sum(dim=dim, keepdim=True)\n"
    },
    "batch-broadcast": {
        "attention_scores": "def attention_scores(query, keys):\n"
        "    return query @ keys.transpose(-2, -1)\n"
    },
    "wrong-dim": {
        "softmax": "def softmax(scores, dim=-1):\n"
        "    exp = (scores - scores.amax(-1, keepdim=True)).exp()\n"
        "    return exp / exp.sum(-1, keepdim=True)\n"
    },
    "deleted-solution": {"context_vector": None},
}


def write_submissions(folder: Path, copies: int) -> list[Path]:
    """``copies`` model solutions and one notebook per bug, as ``student-NN.ipynb``."""
    solution = nbformat.read(SOLUTION, as_version=4)
    variants = [{}] * copies + list(BUGS.values())
    paths = []
    for number, changes in enumerate(variants):
        notebook = copy.deepcopy(solution)
        cells = []
        for cell in notebook.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in changes and changes[grade_id] is None:
                continue
            if grade_id in changes:
                cell.source = changes[grade_id]
            cells.append(cell)
        notebook.cells = cells
        path = folder / f"student-{number:02d}.ipynb"
        nbformat.write(notebook, path)
        paths.append(path)
    return paths


def time_attn_course(folder: Path, out: Path, workers: int) -> float:
    start = time.perf_counter()
    command = [str(BIN / "attn-course"), "grade", str(folder), "--out", str(out)]
    subprocess.run([*command, "--workers", str(workers)], check=True, capture_output=True)
    return time.perf_counter() - start


def time_nbclient(paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        client = NotebookClient(
            notebook,
            timeout=120,
            kernel_name="python3",
            allow_errors=True,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
    return time.perf_counter() - start


def time_nbgrader(paths: list[Path], course: Path) -> float | None:
    """Seconds for ``nbgrader autograde`` of all ``paths`` (None without nbgrader)."""
    nbgrader = BIN / "nbgrader"
    if not nbgrader.exists():
        return None
    course.mkdir()
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\n"
        "c.ExecutePreprocessor.timeout = 120\n"
    )
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(SOLUTION, course / "source" / ASSIGNMENT)
    for path in paths:
        submitted = course / "submitted" / path.stem / ASSIGNMENT
        submitted.mkdir(parents=True)
        shutil.copy(path, submitted / f"{ASSIGNMENT}.ipynb")
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTER_CONFIG_DIR": str(course / ".jupyter"),
    }

    def run(*args: str) -> None:
        subprocess.run([str(nbgrader), *args], cwd=course, env=env, check=True, capture_output=True)

    run("generate_assignment", ASSIGNMENT, "--create")
    start = time.perf_counter()
    run("autograde", ASSIGNMENT, "--create")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=16, help="model solutions (default 16)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="for attn-course")
    parser.add_argument("--skip-nbgrader", action="store_true")
    args = parser.parse_args()
    os.environ["JUPYTER_PLATFORM_DIRS"] = "1"
    with tempfile.TemporaryDirectory(prefix="grading-benchmark-") as tmp:
        tmp = Path(tmp)
        (tmp / "submitted").mkdir()
        paths = write_submissions(tmp / "submitted", args.copies)
        count = len(paths)
        seconds = {
            "attn-course grade": time_attn_course(tmp / "submitted", tmp / "grades", args.workers)
        }
        seconds["nbclient, sequential"] = time_nbclient(paths)
        if not args.skip_nbgrader:
            nbgrader = time_nbgrader(paths, tmp / "course")
            if nbgrader is not None:
                seconds["nbgrader autograde"] = nbgrader
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"{count} submissions of {ASSIGNMENT} ({args.copies} correct, {len(BUGS)} buggy); "
        f"{os.cpu_count()} cores, --workers {args.workers}; load average {load}"
    )
    ours = seconds["attn-course grade"] / count
    for name, total in seconds.items():
        per = total / count
        print(f"{name:<22} {per:6.3f} s/submission  ({total:6.1f} s total, {per / ours:5.1f}x)")


if __name__ == "__main__":
    main()
