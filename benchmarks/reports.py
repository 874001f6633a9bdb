"""How long ``attn-course report DIR`` takes to rebuild every report of a large class.

    .venv/bin/python benchmarks/reports.py --submissions 1000

It journals ``--submissions`` graded submissions of assignment 01 into a temporary folder
(about 30 % of the exercises failed, most with a named mistake and an 8×8 heatmap of the
failing weights, a few overrides in ``overrides.csv``), then times ``attn-course report`` on
it end to end, as an instructor runs it: a new process, the imports, reading the journal,
grades.csv/json, one feedback page per submission and class.html. Not a test: the time
depends on the machine and its load (printed with it).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from attn_course.checks import ASSIGNMENTS, EXERCISES
from attn_course.grader.heatmap import Heatmap
from attn_course.grader.journal import Journal
from attn_course.grader.pipeline import ExerciseGrade, SubmissionGrade
from attn_course.grader.sandbox import Limits

ASSIGNMENT = "01_scores_softmax_context"


def heatmap(rng: random.Random, size: int = 8) -> Heatmap:
    """A causal leak: the learner's weights spread over the future keys too."""
    expected = tuple(
        tuple(1 / (i + 1) if j <= i else 0.0 for j in range(size)) for i in range(size)
    )
    actual = tuple(tuple(1 / size + rng.uniform(0, 1e-3) for _ in range(size)) for _ in range(size))
    differs = tuple(
        tuple(abs(a - e) > 1e-4 for a, e in zip(got, want, strict=True))
        for got, want in zip(actual, expected, strict=True)
    )
    return Heatmap("causal, T=S=8", "weights", "weights[0]", expected, actual, differs)


def graded(rng: random.Random, number: int) -> SubmissionGrade:
    rows = []
    for name in ASSIGNMENTS[ASSIGNMENT]:
        exercise = EXERCISES[name]
        seconds = rng.uniform(0.05, 0.5)
        if rng.random() > 0.3:
            rows.append(ExerciseGrade(name, exercise.points, exercise.points, "passed",
                                      "passed", seconds=seconds))  # fmt: skip
            continue
        ids = [exercise.mistake_id(m) for m in exercise.mistakes] + [""]
        mistake = rng.choice(ids)
        rows.append(ExerciseGrade(
            name, 0, exercise.points, "failed", f"{name} is wrong: {mistake or 'wrong values'}",
            "case 'x'\nexpected: ...\ngot: ...", mistake, seconds=seconds, heatmap=heatmap(rng),
        ))  # fmt: skip
    return SubmissionGrade(f"student{number:04d}.ipynb", ASSIGNMENT, tuple(rows))


def journal_of(folder: Path, submissions: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with Journal.open(folder, seed, Limits()) as journal:
        for number in range(submissions):
            journal.record(f"{number:064x}", graded(rng, number))
    overrides = ["student,exercise,points,comment"] + [
        f"student{number:04d},softmax,2,partial credit after review" for number in range(0, 50, 7)
    ]
    (folder / "overrides.csv").write_text("\n".join(overrides) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="attn-course-reports-") as folder:
        journal_of(Path(folder), args.submissions)
        command = [sys.executable, "-m", "attn_course", "report", folder]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        pages = len(list(Path(folder, "feedback").glob("*.html")))
    print(
        f"attn-course report: {args.submissions} submissions, {pages} pages and class.html "
        f"rebuilt in {seconds:.1f} s (load average {os.getloadavg()[0]:.2f}, "
        f"{os.cpu_count()} CPUs)"
    )


if __name__ == "__main__":
    main()
