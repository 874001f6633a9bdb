"""Stage 1: read and validate a submission, then prepare the code the sandbox will run.

Preparing follows nbgrader: cells the assignment's source locks are restored from the source
(whatever the student did to them) and put back if deleted; grade cells, which call the learner
checks, are not run (the grader judges on its own hidden cases); every other code cell runs, in
the student's order. Magics and shell lines become plain Python calls of ``get_ipython()``.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

from attn_course.grader import static
from attn_course.grader.catalog import Assignment
from attn_course.grader.kernel import CellCode
from attn_course.grader.students import original_stem

MAX_NOTEBOOK_BYTES = 32 << 20


class InvalidSubmission(Exception):
    """The file cannot be graded at all (not a notebook, or not of a known assignment)."""


@dataclass(frozen=True)
class Submission:
    """A submission ready to run: ``cells`` are the code cells to execute, in order;
    ``analysis``: what the static rule read in them (``analysed``), computed once."""

    name: str
    path: Path
    assignment: Assignment
    cells: tuple[CellCode, ...]
    analysis: static.Analysis = field(default_factory=static.Analysis)


def analysed(submission: Submission, allowed_imports: Collection[str] = ()) -> Submission:
    """``submission`` with its ``analysis``: one parse of each cell, for every exercise of its
    assignment; ``allowed_imports``: modules the instructor allows on top of the rule's."""
    exercises = {exercise.name: exercise.forbidden for exercise in submission.assignment.exercises}
    cells = [(cell.index, cell.code) for cell in submission.cells]
    analysis = static.analyse(cells, exercises, allowed_imports)
    return dataclasses.replace(submission, analysis=analysis)


def read(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path``, validated against the nbformat schema. A symbolic link is
    refused (it could point at another student's notebook), and no message quotes the file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if path.is_symlink():
            raise InvalidSubmission("a symbolic link, not a notebook file: refused") from None
        raise InvalidSubmission(f"cannot be read ({error.strerror})") from None
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidSubmission("not a regular file")
        data = stream.read(MAX_NOTEBOOK_BYTES + 1)
    if not data:
        raise InvalidSubmission("an empty file (0 bytes): not a notebook")
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise InvalidSubmission(f"larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSubmission("not a valid notebook: not UTF-8 text") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # old notebooks warn about missing cell ids
            notebook = nbformat.reads(text, as_version=4)
            nbformat.validate(notebook)
    except Exception as error:  # JSON or schema: either makes it unreadable
        kind = "not JSON" if isinstance(error, ValueError) else "not in the notebook format"
        raise InvalidSubmission(f"not a valid notebook: {kind}") from None
    return notebook


def assignment_of(
    notebook: nbformat.NotebookNode,
    path: Path,
    assignments: dict[str, Assignment],
    default: str | None = None,
) -> Assignment:
    """The assignment named in the notebook's metadata (``attn_course.assignment``); where
    the metadata was lost: the file's stem (as the student saved it, without Canvas's prefix or
    a ``-1`` / ``-Copy1`` suffix), else the nbgrader grade ids of its cells when they are those
    of one assignment only, else ``default`` (``attn-course grade --assignment``)."""
    meta = notebook.metadata.get("attn_course", {})
    name = meta.get("assignment") if isinstance(meta, dict) else None
    if name is not None and not isinstance(name, str):
        raise InvalidSubmission("the notebook's attn_course.assignment is not a name")
    if name is None:  # metadata lost (e.g. copied into a new notebook)
        stem = original_stem(path.name)
        if path.stem in assignments or stem in assignments:
            name = path.stem if path.stem in assignments else stem
        else:
            name = by_grade_ids(notebook, assignments) or default
    if name not in assignments:
        known = ", ".join(assignments)
        if name is None:
            raise InvalidSubmission(f"the notebook does not name its assignment (known: {known})")
        raise InvalidSubmission(f"unknown assignment {name!r} (known: {known})")
    return assignments[name]


def by_grade_ids(notebook: nbformat.NotebookNode, assignments: dict[str, Assignment]) -> str | None:
    """The one assignment whose nbgrader grade ids (but ``setup``) the notebook's cells carry
    most of; None when no assignment's ids are there, or two share the most."""
    ids = {cell_grade_id(cell) for cell in notebook.cells} - {None, "setup"}
    counts = sorted(
        ((len(ids & {cell.grade_id for cell in a.cells}), a.id) for a in assignments.values()),
        reverse=True,
    )
    if not counts or counts[0][0] == 0 or (len(counts) > 1 and counts[1][0] == counts[0][0]):
        return None
    return counts[0][1]


def prepare(
    notebook: nbformat.NotebookNode, name: str, path: Path, assignment: Assignment
) -> Submission:
    """The code cells to run: locked cells restored, grade cells left out."""
    grade_ids = [cell_grade_id(cell) for cell in notebook.cells]
    present = set(grade_ids)
    cells: list[tuple[str | None, str, str | None]] = []  # (grade_id, source, heading)
    heading = None
    for cell, grade_id in zip(notebook.cells, grade_ids, strict=True):
        if cell.cell_type == "markdown":
            heading = _heading(cell.source) or heading
        if cell.cell_type != "code":
            continue
        locked = assignment.locked(grade_id)
        cells.append((grade_id, locked.source if locked else cell.source, heading))
    for position, source_cell in enumerate(assignment.cells):
        if source_cell.kind == "locked" and source_cell.grade_id not in present:
            later = {cell.grade_id for cell in assignment.cells[position + 1 :]}
            at = next((i for i, (gid, *_) in enumerate(cells) if gid in later), len(cells))
            cells.insert(at, (source_cell.grade_id, source_cell.source, None))
    grade_cells = {cell.grade_id for cell in assignment.cells if cell.kind == "grade"}
    code = [
        CellCode(index, grade_id, python(source), grade_id or heading)
        for index, (grade_id, source, heading) in enumerate(cells, start=1)
        if grade_id not in grade_cells
    ]
    return Submission(name, path, assignment, tuple(code))


def _heading(source: str) -> str | None:
    """The text of the last Markdown heading in ``source`` (None: it has none)."""
    headings = [line.lstrip("#").strip() for line in source.splitlines() if line.startswith("#")]
    return headings[-1][:80] if headings and headings[-1] else None


def cell_grade_id(cell: nbformat.NotebookNode) -> str | None:
    """The cell's nbgrader grade_id; None if it has none, or one that is not a string."""
    metadata = cell.get("metadata", {})
    meta = metadata.get("nbgrader", {}) if isinstance(metadata, dict) else None
    grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
    return grade_id if isinstance(grade_id, str) else None


def python(source: str) -> str:
    """A cell's source as plain Python (IPython's own transformation of magics)."""
    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # let the sandbox report the SyntaxError, with its line
        return source
