"""The similarity report: which submissions are near copies of each other, and which are close
to the course's reference implementation (``attn_course.reference``). Grades never change.

It compares only what students wrote: the solution cells of each notebook, normalised first so
that cosmetic edits do not hide a copy. Each cell is parsed and printed back with ``ast``
(layout, comments, docstrings and type hints gone), then tokenised by copydetect, which turns
every name into one letter (renaming a variable changes nothing). Fingerprints are chosen by
winnowing (MOSS's method, as copydetect implements it): every match of ``GUARANTEE`` or more
normalised characters is found, none shorter than ``NOISE``. As MOSS does with its ``-m``
option, fingerprints found in half or more of an assignment's submissions (and in at least
three) are the code every learner was given or writes the same way, and are left out.

A pair is reported when at least ``threshold`` of either submission's fingerprinted code is
found in the other; a submission is reported as close to the reference when at least
``threshold`` of its code is found in ``attn_course/reference/*.py`` (read as text).
"""

from __future__ import annotations

import ast
import csv
import io
import itertools
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

import attn_course
from attn_course.grader.catalog import Assignment, course_assignments
from attn_course.grader.notebook import (
    InvalidSubmission,
    assignment_of,
    cell_grade_id,
    python,
    read,
)
from attn_course.grader.report import csv_cell

THRESHOLD = 0.8
NOISE = 25  # copydetect's defaults, in normalised characters
GUARANTEE = 30
COMMON_SHARE = 0.5  # fingerprints in more than half of an assignment's submissions (and
COMMON_MIN = 3  # in at least three) are given or universal code
SHOWN = 200  # pairs (and reference matches) shown side by side in the HTML; the CSV has all
REFERENCE = "attn_course.reference"
COLUMNS = ("submission", "other", "assignment", "share", "other_share")
TEMPLATE = Path(__file__).with_name("similarity_report.html")


@dataclass(frozen=True)
class Match:
    """``share`` of ``submission``'s code is found in ``other`` (and ``other_share`` of
    ``other``'s in ``submission``); the code of both, as (text, matched) pieces."""

    submission: str
    other: str
    assignment: str
    share: float
    other_share: float
    code: tuple[tuple[str, bool], ...]
    other_code: tuple[tuple[str, bool], ...]


@dataclass(frozen=True)
class Similarity:
    pairs: tuple[Match, ...]  # near copies, closest first
    reference: tuple[Match, ...]  # submissions close to the reference, closest first
    threshold: float
    compared: int  # submissions with solution code


def normalise(source: str) -> str:
    """A cell's code without layout, comments, docstrings and type hints (unchanged if it does
    not parse)."""
    try:
        tree = ast.parse(python(source))
    except (SyntaxError, ValueError):
        return source
    return ast.unparse(_Plain().visit(tree))


class _Plain(ast.NodeTransformer):
    """Drops docstrings and annotations."""

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and _is_docstring(body[0]):
            node.body = body[1:] or [ast.Pass()]
        if isinstance(node, ast.arg):
            node.annotation = None
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.returns = None
        if isinstance(node, ast.AnnAssign):
            if node.value is None:
                return None
            return ast.Assign(targets=[node.target], value=node.value, lineno=node.lineno)
        return node


def _is_docstring(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def solution_code(path: Path, assignments: dict[str, Assignment]) -> tuple[str, str] | None:
    """(assignment id, the normalised code of the notebook's solution cells), or None for a
    notebook that cannot be graded."""
    try:
        notebook = read(path)
        assignment = assignment_of(notebook, path, assignments)
    except InvalidSubmission:
        return None
    solutions = {cell.grade_id for cell in assignment.cells if cell.kind == "solution"}
    cells = [
        normalise(cell.source)
        for cell in notebook.cells
        if cell.cell_type == "code"
        and cell_grade_id(cell) in solutions
    ]
    return assignment.id, "\n\n".join(cells)


def reference_code() -> str:
    """The course's reference implementation, normalised like a submission."""
    folder = Path(attn_course.__file__).parent / "reference"
    return "\n\n".join(normalise(path.read_text("utf-8")) for path in sorted(folder.glob("*.py")))


def _fingerprint(text: str):  # -> copydetect.CodeFingerprint
    from copydetect import CodeFingerprint  # imports matplotlib: only when a report is made

    return CodeFingerprint("code.py", NOISE, GUARANTEE - NOISE + 1, fp=io.StringIO(text))


def _without(fingerprint, common: set) -> None:
    """Leave the ``common`` fingerprints out of ``fingerprint`` (given code)."""
    from copydetect.utils import get_token_coverage

    fingerprint.hash_idx = {h: i for h, i in fingerprint.hash_idx.items() if h not in common}
    fingerprint.hashes = set(fingerprint.hash_idx)
    fingerprint.token_coverage = get_token_coverage(
        fingerprint.hash_idx, fingerprint.k, len(fingerprint.filtered_code)
    )


def similarity(
    notebooks: Sequence[tuple[str, Path]],
    threshold: float = THRESHOLD,
    assignments: dict[str, Assignment] | None = None,
) -> Similarity:
    """Near copies among (name, path) ``notebooks`` and submissions close to the reference."""
    assignments = assignments if assignments is not None else course_assignments()
    by_assignment: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name, path in notebooks:
        found = solution_code(path, assignments)
        if found is not None and found[1].strip():
            by_assignment[found[0]].append((name, found[1]))
    reference = _fingerprint(reference_code())
    pairs, close = [], []
    for assignment, codes in by_assignment.items():
        prints = [_fingerprint(text) for _, text in codes]
        counts = Counter(h for fingerprint in prints for h in fingerprint.hashes)
        floor = max(COMMON_MIN, COMMON_SHARE * len(prints))
        common = {h for h, count in counts.items() if count >= floor}
        for fingerprint in prints:
            _without(fingerprint, common)

        for i, j in _candidates(prints, threshold):
            found = _match(assignment, codes[i][0], prints[i], codes[j][0], prints[j], threshold)
            if found is not None:
                pairs.append(found)
        for (name, _), fingerprint in zip(codes, prints, strict=True):
            found = _match(assignment, name, fingerprint, REFERENCE, reference, threshold, 2)
            if found is not None and found.share >= threshold:
                close.append(found)
    order = lambda m: (-max(m.share, m.other_share), m.submission, m.other)  # noqa: E731
    compared = sum(map(len, by_assignment.values()))
    return Similarity(tuple(sorted(pairs, key=order)), tuple(sorted(close, key=order)),
                      threshold, compared)  # fmt: skip


def _match(
    assignment: str,
    name: str,
    fingerprint,
    other_name: str,
    other,
    threshold: float,
    context: int | None = None,
) -> Match | None:
    """The match of two fingerprinted codes if either share reaches ``threshold``."""
    from copydetect import compare_files

    _, shares, slices = compare_files(fingerprint, other)
    if max(shares) < threshold:
        return None
    return Match(
        name,
        other_name,
        assignment,
        float(shares[0]),
        float(shares[1]),
        _pieces(fingerprint.raw_code, slices[0]),
        _pieces(other.raw_code, slices[1], context),
    )


def _candidates(prints: list, threshold: float) -> list[tuple[int, int]]:
    """Pairs worth comparing in full: those sharing at least half the fingerprints that the
    threshold asks of the smaller one (an inverted index, not every pair)."""
    holders = defaultdict(list)
    for index, fingerprint in enumerate(prints):
        for h in fingerprint.hashes:
            holders[h].append(index)
    shared = Counter(pair for docs in holders.values() for pair in itertools.combinations(docs, 2))
    return sorted(
        pair
        for pair, count in shared.items()
        if count >= 0.5 * threshold * min(len(prints[pair[0]].hashes), len(prints[pair[1]].hashes))
    )


def _pieces(text: str, slices, context: int | None = None) -> tuple[tuple[str, bool], ...]:
    """``text`` cut into (piece, matched) at the start and end of each matched slice; with
    ``context``, unmatched stretches keep only that many lines next to a match."""
    cuts, at = [], 0
    for start, end in sorted(zip(slices[0].tolist(), slices[1].tolist(), strict=True)):
        start = max(start, at)
        cuts += [(at, start, False), (start, end, True)]
        at = max(at, end)
    cuts.append((at, len(text), False))
    pieces = []
    for start, end, matched in cuts:
        piece = text[start:end]
        lines = piece.split("\n")
        if context is not None and not matched and len(lines) > 2 * context + 1:
            head = lines[: context + 1] if start > 0 else []
            tail = lines[-context - 1 :] if end < len(text) else []
            piece = "\n".join([*head, "…", *tail])
        if piece:
            pieces.append((piece, matched))
    return tuple(pieces)


def write_similarity(
    notebooks: Sequence[tuple[str, Path]], out: Path, threshold: float = THRESHOLD
) -> Similarity:
    """Write ``out/similarity.html`` and ``out/similarity.csv``; return what they hold."""
    found = similarity(notebooks, threshold)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "similarity.csv").open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(COLUMNS)
        for match in found.pairs + found.reference:
            writer.writerow(
                (
                    csv_cell(match.submission),
                    csv_cell(match.other),
                    match.assignment,
                    f"{match.share:.3f}",
                    f"{match.other_share:.3f}",
                )
            )
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    page = environment.from_string(TEMPLATE.read_text("utf-8")).render(
        found=found, reference=REFERENCE, noise=NOISE, guarantee=GUARANTEE, shown=SHOWN
    )
    (out / "similarity.html").write_text(page, encoding="utf-8")
    return found
