"""``attn-course grade`` and ``attn-course check``: the pipeline plus progress and printing.

Both start the zygote before importing the pipeline, so that the two processes import torch
at the same time.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from attn_course.grader import DEFAULT_BUDGET
from attn_course.grader.zygote import Zygote

if TYPE_CHECKING:
    from attn_course.grader.pipeline import BatchGrade, SubmissionGrade
    from attn_course.grader.students import ClassList


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
    roster: str | None = None,
    student_field: str | None = None,
    assignment: str | None = None,
) -> int:
    """Grade a batch and write the reports; 0 once graded, 1 if there is no notebook to
    grade, 2 if a path does not exist, the roster or ``assignment`` cannot be used, or ``out``
    holds the journal of another batch (another seed or other limits, another assignment,
    another version of the grader or of the assignment), 3 if an isolation layer is missing
    (and ``allow_weak_sandbox`` is not set). Submissions the journal already holds are not
    graded again (``restart``: grade them all again); the reports cover every submission of
    the journal, whatever subset is given. ``allow_imports``: modules notebooks may import on
    top of the static rule's (part of the limits: recorded). ``roster``, ``student_field``:
    see ``students``; ``assignment``: that of notebooks that do not name theirs."""
    missing = [path for path in submissions if not Path(path).exists()]
    if missing:
        print(f"attn-course grade: error: no such file or folder: {missing[0]}", file=sys.stderr)
        return 2
    from attn_course.grader import students as classes_
    from attn_course.grader.catalog import course_assignments

    known = course_assignments()
    if assignment is not None and assignment not in known:
        print(f"attn-course grade: error: unknown assignment {assignment!r} (known: "
              f"{', '.join(known)})", file=sys.stderr)
        return 2
    if assignment is not None and scheduler is not None:
        print("attn-course grade: error: --assignment cannot be used with --scheduler",
              file=sys.stderr)
        return 2
    try:
        class_roster = classes_.read_roster(Path(roster)) if roster else None
    except classes_.RosterError as error:
        print(f"attn-course grade: error: {error}", file=sys.stderr)
        return 2
    zygote = Zygote() if scheduler is None else None
    from attn_course.grader.isolate import LAYERS
    from attn_course.grader.journal import Journal, JournalMismatch, assignment_version, digest
    from attn_course.grader.pipeline import (
        BatchGrade,
        find_notebooks,
        grade_each,
        other_files,
    )
    from attn_course.grader.report import (
        feedback_pages,
        labelled,
        page_names,
        safe,
        write_reports,
    )
    from attn_course.grader.sandbox import Limits

    def stop(status: int) -> int:
        if zygote is not None:
            zygote.close()
        return status

    weak = zygote.missing_layers() if zygote is not None else ()  # Dask: each worker checks
    if weak and not allow_weak_sandbox:
        print(
            "attn-course grade: error: this machine cannot isolate submissions fully:",
            file=sys.stderr,
        )
        for layer in weak:
            print(f"  missing {layer}: {LAYERS[layer]}", file=sys.stderr)
        print("grade anyway with --allow-weak-sandbox (recorded in the reports)", file=sys.stderr)
        return stop(3)
    limits = Limits(
        timeout=timeout, memory_mb=memory_limit, budget=budget, allowed_imports=tuple(allow_imports)
    )
    earlier = classes_.ClassList() if restart else classes_.load(Path(out))
    # a file graded before keeps its name (``submitted/aberg/01/01.ipynb`` given alone is
    # still aberg's), so the journal knows it; names as every report writes them
    known_paths = {entry.path: name for name, entry in earlier.entries.items()}
    notebooks = labelled(
        [(known_paths.get(str(path.absolute()), name), path)
         for name, path in find_notebooks(submissions)]
    )  # fmt: skip
    skipped = other_files(submissions)
    for path, why in skipped.items():
        print(f"not graded: {safe(path)}: {why}", file=sys.stderr)
    if not notebooks:
        print(f"attn-course grade: error: no notebook (.ipynb) to grade in "
              f"{', '.join(submissions)}", file=sys.stderr)
        return stop(1)
    surveyed = {name: _survey(path, known, assignment, student_field) for name, path in notebooks}
    this_list = classes_.resolve(
        notebooks, {name: survey[0] for name, survey in surveyed.items()},
        class_roster or earlier.as_roster(),
        {name: survey[1] for name, survey in surveyed.items() if survey[1]}, known,
    )  # fmt: skip
    class_list = classes_.merged(earlier, dataclasses.replace(this_list, skipped=skipped))
    ours = {entry.assignment for entry in class_list.graded if entry.name in surveyed}
    versions = {name: assignment_version(known[name]) for name in known}
    try:
        journal = Journal.open(
            Path(out), seed, limits, restart, {a: versions[a] for a in ours if a}, versions
        )
    except JournalMismatch as error:
        print(f"attn-course grade: error: {error}; grade into another --out, or add "
              "--restart to grade the whole batch again", file=sys.stderr)
        return stop(2)
    current = {entry.name for entry in class_list.graded}
    this_run = [(name, path) for name, path in notebooks if name in current]
    with journal:
        if restart:
            for page in Path(out, "feedback").glob("*.html"):
                page.unlink()  # pages of the batch thrown away
        classes_.save(class_list, Path(out))
        # pages as grades arrive, and at the end: named over the whole batch, in one order
        names = page_names(sorted({*journal.done, *(name for name, _ in this_run)}))
        results, todo, digests = {}, [], {}
        for name, path in this_run:
            digests[name] = digest(path)
            done = journal.finished(name, digests[name])
            if done is not None:
                results[name] = done
            else:
                todo.append((name, path))
        if scheduler is None:
            extra = {"default_assignment": assignment} if assignment else {}
            graded = grade_each(todo, journal.seed, limits, known, workers, zygote, **extra)
        else:
            from attn_course.grader.distributed import grade_on_dask

            graded = grade_on_dask(todo, journal.seed, limits, scheduler, allow_weak_sandbox)
        bar = tqdm(total=len(this_run), initial=len(results), unit="notebook",
                   disable=not sys.stderr.isatty())
        with bar:
            for result in graded:  # each is on disk before the next: a kill loses none
                result = dataclasses.replace(
                    result, student=classes_.student_of(result.submission, class_list)
                )
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
        every = {name: grade for name, (_, grade) in journal.done.items()}
    every.update(results)  # with this run's faults, which the journal does not keep
    superseded = {entry.name for entry in class_list.superseded}
    kept = [every[name] for name in sorted(every) if name not in superseded]
    # with --scheduler, each worker says what its sandboxes lacked: the batch lacked them all
    weak = tuple(sorted({*weak, *(layer for r in kept for layer in r.missing_layers)}))
    batch = BatchGrade(tuple(_with_student(g, class_list) for g in kept), journal.seed, limits,
                       weak)  # fmt: skip
    batch = _overridden(batch, Path(out))
    # similarity.csv first: class.html lists its pairs
    _similarity(_paths_of(batch, class_list, dict(notebooks)), Path(out), similarity_threshold)
    paths = write_reports(batch, Path(out))
    points = sum(s.points for s in batch.submissions)
    max_points = sum(s.max_points for s in batch.submissions)
    resumed = len(this_run) - len(todo)
    earlier_runs = len(batch.submissions) - len(this_run)
    print(
        f"graded {len(batch.submissions)} submissions"
        + (f" ({resumed} from the journal)" if resumed else "")
        + f": {points:g} / {max_points:g} points"
        + (f" ({earlier_runs} graded by earlier runs into {out})" if earlier_runs > 0 else "")
    )
    _print_class(class_list, surveyed)
    print(f"wrote {paths['csv']}, {paths['json']}, {paths['feedback']}/ and {paths['class']}")
    return 0


def _survey(
    path: Path, known: dict, default: str | None, student_field: str | None
) -> tuple[str, str | None]:
    """(assignment id or "", the value of the notebook metadata field ``student_field``) of a
    notebook, read without running anything; ("", None) for what cannot be read."""
    from attn_course.grader.notebook import InvalidSubmission, assignment_of, read

    try:
        notebook = read(path)
    except InvalidSubmission:
        return "", None
    try:
        name = assignment_of(notebook, path, known, default).id
    except InvalidSubmission:
        name = ""
    value: object = notebook.metadata
    for key in (student_field or "").split(".") if student_field else []:
        value = value.get(key) if isinstance(value, dict) else None
    return name, value if isinstance(value, str) and value.strip() else None


def _with_student(grade: SubmissionGrade, class_list: ClassList) -> SubmissionGrade:
    from attn_course.grader.students import student_of

    return dataclasses.replace(grade, student=student_of(grade.submission, class_list))


def _overridden(batch: BatchGrade, out: Path) -> BatchGrade:
    """``batch`` with ``out/overrides.csv`` applied; each line that cannot be used is named."""
    from attn_course.grader.overrides import apply_overrides, load_overrides, unused_overrides

    overrides, problems = load_overrides(out)
    for problem in [*problems, *unused_overrides(batch, overrides)]:
        print(f"warning: override not applied: {problem}", file=sys.stderr)
    return apply_overrides(batch, overrides)


def _print_class(class_list: ClassList, surveyed: dict) -> None:
    """What the grader found about the students: superseded files, late submissions, files
    not on the roster, students on it with no submission."""
    for entry in class_list.superseded:
        if entry.name in surveyed:
            print(f"superseded (not graded): {entry.name}: {entry.student} handed in "
                  f"{entry.superseded_by}")
    late = [entry.student for entry in class_list.graded if entry.late]
    if late:
        print(f"late: {len(late)} ({', '.join(late)})")
    strangers = [entry.name for entry in class_list.graded if not entry.on_roster]
    if strangers:
        print(f"not on the roster: {', '.join(strangers)}")
    absent = class_list.missing()
    if absent:
        print(f"missing: {len(absent)} students on the roster with no submission "
              f"({', '.join(student.id for student in absent)})")


def _paths_of(
    batch: BatchGrade, class_list: ClassList, given: dict[str, Path]
) -> list[tuple[str, Path]]:
    """(name, path) of each submission of ``batch`` whose notebook is still there: those of
    this run, and those of earlier runs at the path ``students.json`` recorded."""
    found = []
    for grade in batch.submissions:
        entry = class_list.entries.get(grade.submission)
        path = given.get(grade.submission) or (Path(entry.path) if entry else None)
        if path is not None and path.is_file():
            found.append((grade.submission, path))
    return found


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
    isolation layer only warns: the learner grades their own work), 1 if it is not a valid
    notebook, 2 if it is not a notebook file (a folder, a .zip). What the grader would
    refuse is named first, with its cell and line."""
    path = Path(notebook)
    problem = (
        "is a folder: name the notebook in it" if path.is_dir()
        else "no such notebook" if not path.is_file()
        else "a .zip archive: unzip it first" if path.suffix.lower() == ".zip" or _zipped(path)
        else None
    )  # fmt: skip
    if problem is not None:
        print(f"attn-course check: error: {path}: {problem}", file=sys.stderr)
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
    return 1 if graded.exercises[0].status == "invalid" else 0


def _zipped(path: Path) -> bool:
    from attn_course.grader.pipeline import is_zip

    return is_zip(path)
