"""The similarity report: which submissions are near copies of each other, and which are close
to the course's reference implementation (``attn_course.reference``). Grades never change.

It compares what students wrote: every code cell of each notebook (a copy moved into scratch
cells counts as much as one in the solution cells), less the code the released exercise gave
them (MOSS's "base file": ``exercises/<assignment>.ipynb``, as the installed course holds it,
and the locked cells of ``cells.json``). Each cell is normalised first so that cosmetic edits do
not hide a copy: Python's tokenizer, which reads code in one flat pass whatever its nesting or
length, drops layout, comments, docstrings, type hints and redundant parentheses; copydetect
then turns every name into one letter (renaming a variable changes nothing). At most
``MAX_CODE`` characters of a submission are read (a note in the report says whose code was cut),
so the report takes a bounded time per submission. Fingerprints are chosen by winnowing (MOSS's
method, as copydetect implements it): every match of ``GUARANTEE`` or more normalised
characters is found, none shorter than ``NOISE``. As MOSS does with its ``-m`` option,
fingerprints found in half or more of an assignment's submissions (and in at least three) are
the code every learner writes the same way, and are left out.

A pair is reported when at least ``threshold`` of either submission's own code is found in the
other, and at least ``MIN_MATCHED`` normalised characters match (a line or two that two barely
started notebooks add in the same obvious way is no copy); a submission is reported as close
to the reference when at least ``threshold`` of its code is found in
``attn_course/reference/*.py`` (read as text).
"""

from __future__ import annotations

import csv
import io
import itertools
import keyword
import tokenize
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

import attn_course
from attn_course.grader.catalog import Assignment, course_assignments
from attn_course.grader.notebook import InvalidSubmission, assignment_of, read
from attn_course.grader.report import csv_cell, safe

THRESHOLD = 0.8
NOISE = 25  # copydetect's defaults, in normalised characters
GUARANTEE = 30
MIN_MATCHED = 2 * GUARANTEE  # a pair shares at least this much code of its own
COMMON_SHARE = 0.5  # fingerprints in more than half of an assignment's submissions (and
COMMON_MIN = 3  # in at least three) are given or universal code
MAX_CODE = 200_000  # characters of a submission's code read (and of its normalised code)
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
    compared: int  # submissions with code of their own
    notes: tuple[str, ...] = ()  # submissions compared in part, or not at all, and why


_STRINGS = {tokenize.STRING} | {
    getattr(tokenize, name) for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
    if hasattr(tokenize, name)
}  # fmt: skip
_SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
_CLOSING = {")", "]", "}"}
_SOFT_KEYWORDS = {"match", "case", "type"}


def normalise(source: str) -> str:
    """A cell's code without layout, comments, docstrings, type hints and redundant
    parentheses, one statement a line (unchanged if Python's tokenizer cannot read it). One
    pass over the tokens: linear in the code's length, at any nesting depth."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):  # SyntaxError: also too deep for 3.12's tokenizer
        return source
    lines: list[str] = []
    statement: list[tuple[int, str]] = []
    depth = 0
    for token in tokens:
        if token.type == tokenize.INDENT:
            depth += 1
        elif token.type == tokenize.DEDENT:
            depth -= 1
        elif token.type == tokenize.NEWLINE:
            lines += _statement(statement, depth)
            statement = []
        elif token.type not in _SKIPPED:
            statement.append((token.type, token.string))
    lines += _statement(statement, depth)
    return "\n".join(lines)


def _statement(tokens: list[tuple[int, str]], depth: int) -> list[str]:
    """One logical line, normalised: [] for a bare string (a docstring) or an annotation
    without a value."""
    if not tokens or all(kind in _STRINGS for kind, _ in tokens):
        return []
    tokens = _without_annotations(tokens)
    if not tokens:
        return []
    return ["    " * depth + _joined(_without_grouping(tokens))]


def _without_annotations(tokens: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """``tokens`` less the type hints of a ``def`` line (``x: int``, ``-> int``) or of an
    annotated assignment (``x: int = 1`` becomes ``x = 1``; ``x: int`` goes)."""
    texts = [text for _, text in tokens]
    first = 1 if texts[0] == "async" else 0
    if texts[first] == "def":
        return _def_without_annotations(tokens)
    kind, text = tokens[0]
    if kind != tokenize.NAME or keyword.iskeyword(text) or text in _SOFT_KEYWORDS:
        return tokens
    at, nesting = 1, 0  # the target: a name, then .name and [...] parts
    while at < len(texts):
        if nesting == 0 and texts[at] == ":":
            break
        if texts[at] in ("[", "("):
            nesting += 1
        elif texts[at] in ("]", ")"):
            nesting -= 1
        elif nesting == 0 and not (texts[at] == "." or tokens[at][0] == tokenize.NAME):
            return tokens
        at += 1
    else:
        return tokens
    if "=" not in texts[at:]:
        return []
    return tokens[:at] + tokens[texts.index("=", at) :]


def _def_without_annotations(tokens: list[tuple[int, str]]) -> list[tuple[int, str]]:
    kept: list[tuple[int, str]] = []
    # header, name, after_name, annotation, default, lambda (in a default), closed, returns, body
    nesting, state = 0, "header"
    for kind, text in tokens:
        opening, closing = text in ("(", "[", "{"), text in _CLOSING
        if state == "annotation" and not (
            (nesting == 1 and text in (",", "=")) or (nesting == 1 and text == ")")
        ):
            nesting += opening - closing
            continue
        if state == "returns":
            if nesting == 0 and text == ":":
                kept.append((kind, text))
                state = "body"
            else:
                nesting += opening - closing
            continue
        if state == "annotation":
            state = "default" if text == "=" else "name"
        if state == "after_name" and nesting == 1 and text == ":":
            state = "annotation"
            continue
        if state == "lambda":
            state = "default" if nesting == 1 and text == ":" else state
        elif (state == "header" and text == "(") or (nesting == 1 and text == ","):
            state = "name"
        elif state == "default" and text == "lambda":
            state = "lambda"
        elif state == "name" and kind == tokenize.NAME:
            state = "after_name"
        elif state == "after_name" and nesting == 1 and text == "=":
            state = "default"
        nesting += opening - closing
        if state != "body" and nesting == 0 and text == ")":
            state = "closed"
        elif state == "closed" and text == "->":
            state = "returns"
            continue
        kept.append((kind, text))
    return kept


def _without_grouping(tokens: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """``tokens`` less parentheses that only group (``return (x * 2)``): not those of a call,
    a definition, a tuple or ``()``."""
    dropped: set[int] = set()
    stack: list[tuple[int, bool, bool]] = []  # (position, groups, holds a comma)
    for position, (_, text) in enumerate(tokens):
        if text in ("(", "[", "{"):
            before = tokens[position - 1] if position else None
            call = before is not None and (
                before[1] in _CLOSING
                or before[0] in _STRINGS
                or (before[0] == tokenize.NAME and not keyword.iskeyword(before[1]))
            )
            stack.append((position, text == "(" and not call, False))
        elif text in _CLOSING and stack:
            start, groups, comma = stack.pop()
            if groups and not comma and position > start + 1:
                dropped.update((start, position))
        elif text == "," and stack:
            stack[-1] = (*stack[-1][:2], True)
    return [token for position, token in enumerate(tokens) if position not in dropped]


def _joined(tokens: list[tuple[int, str]]) -> str:
    """Tokens as one readable line: ``def f(x, y=-1):`` rather than ``def f ( x , y = - 1 ) :``."""
    parts: list[str] = []
    before: tuple[int, str] | None = None
    earlier: tuple[int, str] | None = None
    in_string = 0  # inside an f-string (Python 3.12's tokens): nothing added
    for kind, text in tokens:
        if before is not None and not in_string and _spaced(earlier, before, (kind, text)):
            parts.append(" ")
        parts.append(text)
        in_string += (kind == _FSTRING_START) - (kind == _FSTRING_END)
        earlier, before = before, (kind, text)
    return "".join(parts)


_FSTRING_START = getattr(tokenize, "FSTRING_START", -1)
_FSTRING_END = getattr(tokenize, "FSTRING_END", -1)


def _spaced(earlier, before, token) -> bool:
    """Whether a space goes between ``before`` and ``token`` (``earlier``: the one before)."""
    text = token[1]
    if text in (")", "]", "}", ",", ":", ".", ";") or before[1] in ("(", "[", "{", ".", "@"):
        return False
    if text in ("(", "[") and (
        before[1] in _CLOSING
        or before[0] in _STRINGS
        or (before[0] == tokenize.NAME and not keyword.iskeyword(before[1]))
    ):
        return False
    unary = before[1] in ("-", "+", "~", "*", "**") and (
        earlier is None
        or (earlier[0] == tokenize.OP and earlier[1] not in _CLOSING)
        or keyword.iskeyword(earlier[1])
    )
    return not unary


def own_code(
    path: Path, assignments: dict[str, Assignment], given: dict[str, set[str]] | None = None
) -> tuple[str, str, bool] | None:
    """(assignment id, the normalised code of every code cell of the notebook but those the
    released exercise holds as they are (``given``: assignment id -> ``released_cells``),
    whether it was cut at ``MAX_CODE``), or None for a notebook that cannot be graded."""
    try:
        notebook = read(path)
        assignment = assignment_of(notebook, path, assignments)
    except InvalidSubmission:
        return None
    if given is not None and assignment.id not in given:
        given[assignment.id] = set(released_cells(assignment))
    untouched = given.get(assignment.id, set()) if given is not None else set()
    cells, left, cut = [], MAX_CODE, False
    for cell in notebook.cells:
        if cell.cell_type != "code" or not isinstance(cell.get("source"), str):
            continue
        cut = cut or len(cell.source) > left
        code = normalise(cell.source[:left])
        left -= min(len(cell.source), left)
        if code.strip() and code not in untouched:
            cells.append(code)
        if left <= 0:
            break
    code = "\n\n".join(cells)
    return assignment.id, safe(code[:MAX_CODE], cap=MAX_CODE), cut or len(code) > MAX_CODE


def released_cells(assignment: Assignment) -> list[str]:
    """The code the released exercise gives every learner, cell by cell, normalised: the code
    cells of ``exercises/<assignment>.ipynb`` as the installed course holds it (the
    repository, or the wheel's ``attn_course/course``), and the locked and grade cells of
    ``cells.json``."""
    from attn_course.lab import installed_course

    sources = [cell.source for cell in assignment.cells if cell.source]
    try:
        notebook = read(installed_course() / "exercises" / f"{assignment.id}.ipynb")
    except (FileNotFoundError, InvalidSubmission):
        notebook = None  # the locked cells still count
    if notebook is not None:
        sources += [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    return [normalise(source) for source in sources]


def reference_code() -> str:
    """The course's reference implementation, normalised like a submission."""
    folder = Path(attn_course.__file__).parent / "reference"
    return "\n\n".join(normalise(path.read_text("utf-8")) for path in sorted(folder.glob("*.py")))


def _fingerprint(text: str, window: int = GUARANTEE - NOISE + 1):  # -> CodeFingerprint
    """copydetect's fingerprints of ``text`` (``window`` 1: every k-gram, for given code)."""
    from copydetect import CodeFingerprint  # imports matplotlib: only when a report is made

    return CodeFingerprint("code.py", NOISE, window, fp=io.StringIO(text))


def _without(fingerprint, common: set) -> None:
    """Leave the ``common`` fingerprints out of ``fingerprint`` (given or universal code)."""
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
    notes, released = [], {}
    for name, path in notebooks:
        name = safe(name)
        found = own_code(path, assignments, released)
        if found is None:
            continue
        assignment, code, cut = found
        if cut:
            notes.append(f"{name}: only its first {MAX_CODE:,} characters of code were compared")
        by_assignment[assignment].append((name, code))
    reference = _fingerprint(reference_code())
    pairs, close, compared = [], [], 0
    for assignment, codes in by_assignment.items():
        base = "\n\n".join(released.get(assignment, ()))
        given = set(_fingerprint(base, window=1).hashes)
        prints = [_fingerprint(text) for _, text in codes]
        counts = Counter(h for fingerprint in prints for h in fingerprint.hashes - given)
        floor = max(COMMON_MIN, COMMON_SHARE * len(prints))
        common = given | {h for h, count in counts.items() if count >= floor}
        for fingerprint in prints:
            _without(fingerprint, common)
        compared += sum(bool(fingerprint.hashes) for fingerprint in prints)

        for i, j in _candidates(prints, threshold):
            found = _match(assignment, codes[i][0], prints[i], codes[j][0], prints[j], threshold)
            if found is not None:
                pairs.append(found)
        for (name, _), fingerprint in zip(codes, prints, strict=True):
            found = _match(assignment, name, fingerprint, REFERENCE, reference, threshold, 2)
            if found is not None and found.share >= threshold:
                close.append(found)
    order = lambda m: (-max(m.share, m.other_share), m.submission, m.other)  # noqa: E731
    return Similarity(tuple(sorted(pairs, key=order)), tuple(sorted(close, key=order)),
                      threshold, compared, tuple(notes))  # fmt: skip


def _match(
    assignment: str,
    name: str,
    fingerprint,
    other_name: str,
    other,
    threshold: float,
    context: int | None = None,
) -> Match | None:
    """The match of two fingerprinted codes if either share reaches ``threshold`` and at
    least ``MIN_MATCHED`` characters of normalised code match."""
    from copydetect import compare_files

    if not fingerprint.hashes or not other.hashes:
        return None
    overlap, shares, slices = compare_files(fingerprint, other)
    if not overlap or max(shares) < threshold or overlap < MIN_MATCHED:
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
        found=found,
        reference=REFERENCE,
        noise=NOISE,
        guarantee=GUARANTEE,
        min_matched=MIN_MATCHED,
        shown=SHOWN,
    )
    (out / "similarity.html").write_text(page, encoding="utf-8")
    return found
