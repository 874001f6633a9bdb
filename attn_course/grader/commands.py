"""``attn-course grade`` and ``attn-course check``: the pipeline plus progress and printing.

Both start the zygote before importing the pipeline, so that the two processes import torch
at the same time.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from attn_course.grader import DEFAULT_BUDGET
from attn_course.grader.zygote import Zygote


def grade_command(
    submissions: Sequence[str],
    out: str,
    timeout: float,
    workers: int | None,
    memory_limit: int,
    scheduler: str | None = None,
    seed: int | None = None,
    restart: bool = False,
    similarity_threshold: float | None = None,
    budget: float = DEFAULT_BUDGET,
    allow_weak_sandbox: bool = False,
    allow_imports: Sequence[str] = (),
) -> int:
    """Grade a batch and write the reports; 0 once graded, 2 if a path does not exist or
    ``out`` holds the journal of a batch with another seed or other limits, 3 if an isolation
    layer is missing (and ``allow_weak_sandbox`` is not set). Submissions the journal already
    holds are not graded again (``restart``: grade them all again). ``allow_imports``: modules
    notebooks may import on top of the static rule's (part of the limits: recorded)."""
    missing = [path for path in submissions if not Path(path).exists()]
    if missing:
        print(f"attn-course grade: error: no such file or folder: {missing[0]}", file=sys.stderr)
        return 2
    zygote = Zygote() if scheduler is None else None
    from attn_course.grader.catalog import course_assignments
    from attn_course.grader.isolate import LAYERS
    from attn_course.grader.journal import Journal, JournalMismatch, digest
    from attn_course.grader.pipeline import BatchGrade, find_notebooks, grade_each
    from attn_course.grader.report import feedback_pages, labelled, page_names, write_reports
    from attn_course.grader.sandbox import Limits

    weak = zygote.missing_layers() if zygote is not None else ()  # Dask: each worker checks
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
    limits = Limits(
        timeout=timeout, memory_mb=memory_limit, budget=budget, allowed_imports=tuple(allow_imports)
    )
    notebooks = labelled(find_notebooks(submissions))  # names as every report writes them
    try:
        journal = Journal.open(Path(out), seed, limits, restart)
    except JournalMismatch as error:
        if zygote is not None:
            zygote.close()
        print(f"attn-course grade: error: {error}; grade into another --out, or add "
              "--restart to grade the whole batch again", file=sys.stderr)
        return 2
    names = page_names([name for name, _ in notebooks])  # pages as grades arrive, and at the end
    with journal:
        results, todo, digests = {}, [], {}
        for name, path in notebooks:
            digests[name] = digest(path)
            done = journal.finished(name, digests[name])
            if done is not None:
                results[name] = done
            else:
                todo.append((name, path))
        if scheduler is None:
            graded = grade_each(todo, journal.seed, limits, course_assignments(), workers, zygote)
        else:
            from attn_course.grader.distributed import grade_on_dask

            graded = grade_on_dask(todo, journal.seed, limits, scheduler, allow_weak_sandbox)
        bar = tqdm(total=len(notebooks), initial=len(results), unit="notebook",
                   disable=not sys.stderr.isatty())
        with bar:
            for result in graded:  # each is on disk before the next: a kill loses none
                # an infrastructure fault is not journalled; nor is a line the disk refused
                if not journal.record(digests[result.submission], result) and (
                    not result.infrastructure
                ):
                    print(f"warning: not journalled, graded again on resume: "
                          f"{journal.unwritten[-1]}", file=sys.stderr)
                results[result.submission] = result
                page = BatchGrade((result,), journal.seed, limits, weak)
                feedback_pages(page, Path(out, "feedback"), names)
                bar.update(1)
    # with --scheduler, each worker says what its sandboxes lacked: the batch lacked them all
    weak = tuple(sorted({*weak, *(layer for r in results.values() for layer in r.missing_layers)}))
    batch = BatchGrade(tuple(results[name] for name, _ in notebooks), journal.seed, limits, weak)
    paths = write_reports(batch, Path(out))
    points = sum(s.points for s in batch.submissions)
    max_points = sum(s.max_points for s in batch.submissions)
    resumed = len(notebooks) - len(todo)
    print(
        f"graded {len(batch.submissions)} submissions"
        + (f" ({resumed} from the journal)" if resumed else "")
        + f": {points:g} / {max_points:g} points"
    )
    print(f"wrote {paths['csv']}, {paths['json']} and {paths['feedback']}/")
    _similarity(notebooks, Path(out), similarity_threshold)
    return 0


def similar_command(submissions: Sequence[str], out: str, threshold: float | None) -> int:
    """Write only the similarity report of a batch; 0 once written, 2 if a path is missing."""
    missing = [path for path in submissions if not Path(path).exists()]
    if missing:
        print(f"attn-course similar: error: no such file or folder: {missing[0]}", file=sys.stderr)
        return 2
    from attn_course.grader.pipeline import find_notebooks

    _similarity(find_notebooks(submissions), Path(out), threshold)
    return 0


def _similarity(notebooks: Sequence[tuple[str, Path]], out: Path, threshold: float | None) -> None:
    from attn_course.grader.similarity import THRESHOLD, write_similarity

    threshold = THRESHOLD if threshold is None else threshold
    found = write_similarity(notebooks, out, threshold)
    print(
        f"similarity (threshold {threshold:g}): {len(found.pairs)} pairs of near copies, "
        f"{len(found.reference)} submissions close to attn_course.reference; "
        f"wrote {out / 'similarity.html'} and {out / 'similarity.csv'}"
    )


def check_command(
    notebook: str, timeout: float, memory_limit: int, budget: float = DEFAULT_BUDGET
) -> int:
    """Grade one notebook and print its verdicts as a table; 0 once graded (a missing
    isolation layer only warns: the learner grades their own work). What the grader would
    refuse is named first, with its cell and line."""
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
    graded = batch.submissions[0]
    refused = [grade for grade in graded.exercises if grade.status == "refused"]
    if refused:
        print("⚠️  the grader refuses this notebook (it is not run, every exercise gets 0):")
        for line in refused[0].detail.splitlines():
            print(f"⚠️  {line}")
    print(table(graded))
    return 0
