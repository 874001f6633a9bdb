"""``attn-course grade`` and ``attn-course check``: the pipeline plus progress and printing.

Both start the zygote before importing the pipeline, so that the two processes import torch
at the same time.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from attn_course.grader.zygote import Zygote


def grade_command(
    submissions: Sequence[str],
    out: str,
    timeout: float,
    workers: int | None,
    memory_limit: int,
    budget: float = 0.0,
    allow_weak_sandbox: bool = False,
) -> int:
    """Grade a batch and write the reports; 0 once graded, 2 if a path does not exist, 3 if
    an isolation layer is missing (and ``allow_weak_sandbox`` is not set)."""
    missing = [path for path in submissions if not Path(path).exists()]
    if missing:
        print(f"attn-course grade: error: no such file or folder: {missing[0]}", file=sys.stderr)
        return 2
    zygote = Zygote()
    from attn_course.grader.isolate import LAYERS
    from attn_course.grader.pipeline import find_notebooks, grade
    from attn_course.grader.report import write_reports
    from attn_course.grader.sandbox import Limits

    weak = zygote.missing_layers()
    if weak and not allow_weak_sandbox:
        zygote.close()
        print(
            "attn-course grade: error: this machine cannot isolate submissions fully:",
            file=sys.stderr,
        )
        for layer in weak:
            print(f"  missing {layer}: {LAYERS[layer]}", file=sys.stderr)
        print("grade anyway with --allow-weak-sandbox (recorded in the reports)", file=sys.stderr)
        return 3
    limits = Limits(timeout=timeout, memory_mb=memory_limit, budget=budget)
    count = len(find_notebooks(submissions))
    with tqdm(total=count, unit="notebook", disable=not sys.stderr.isatty()) as bar:
        batch = grade(submissions, limits, workers, progress=bar.update, zygote=zygote)
    paths = write_reports(batch, Path(out))
    points = sum(s.points for s in batch.submissions)
    max_points = sum(s.max_points for s in batch.submissions)
    print(f"graded {len(batch.submissions)} submissions: {points:g} / {max_points:g} points")
    print(f"wrote {paths['csv']}, {paths['json']} and {paths['feedback']}/")
    return 0


def check_command(notebook: str, timeout: float, memory_limit: int, budget: float = 0.0) -> int:
    """Grade one notebook and print its verdicts as a table; 0 once graded (a missing
    isolation layer only warns: the learner grades their own work)."""
    path = Path(notebook)
    if not path.is_file():
        print(f"attn-course check: error: no such notebook: {path}", file=sys.stderr)
        return 2
    zygote = Zygote()
    from attn_course.grader.pipeline import grade
    from attn_course.grader.report import table
    from attn_course.grader.sandbox import Limits

    limits = Limits(timeout=timeout, memory_mb=memory_limit, budget=budget)
    batch = grade([path], limits, workers=1, zygote=zygote)
    if batch.missing_layers:
        print(f"warning: sandbox without {', '.join(batch.missing_layers)}", file=sys.stderr)
    print(table(batch.submissions[0]))
    return 0
