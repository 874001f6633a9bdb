"""The journal of a batch: ``DIR/journal.jsonl`` records each submission once it is graded, so
that a batch killed at any moment resumes where it stopped.

The first line names the batch: the seed of the hidden cases, the limits, the grader's version
(``attn_course.__version__``) and each assignment graded with the version of its exercises
(``assignment_version``: a hash of their names and points); each further
line is one finished submission: its name, the SHA-256 of the notebook's bytes and its
``SubmissionGrade``, every text in it cleaned and capped by ``report.clean`` (what the reports
write). A line is appended and flushed to disk as soon as its grade is known; a line that
cannot be written (a full disk) is skipped, and the batch goes on. When the journal is opened
again, every line that cannot be read back as a grade (cut short by a kill, not JSON, JSON of
another shape) is dropped and the rest kept: those submissions are graded again. A submission
whose file has changed since it was journalled is graded again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
from pathlib import Path

from attn_course import __version__
from attn_course.grader.kernel import CellRun
from attn_course.grader.pipeline import ExerciseGrade, SubmissionGrade
from attn_course.grader.report import clean, safe
from attn_course.grader.sandbox import Limits

JOURNAL_NAME = "journal.jsonl"
FORMAT = 1


class JournalMismatch(Exception):
    """The out folder holds a journal of a batch with another seed or other limits, of another
    assignment, or graded by another version of the grader or of the assignment."""


GRADER = __version__  # the grader's version, as the journal records it


def assignment_version(assignment: object) -> str:
    """A short hash of an assignment's exercise names and points: what a batch's grades
    mean (an exercise added, or points changed, changes it)."""
    exercises = [[e.name, float(e.points)] for e in getattr(assignment, "exercises", ())]
    text = json.dumps(exercises, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def digest(path: Path) -> str:
    """SHA-256 of a notebook file's bytes (what the journal keys a submission by); "" for a
    file that cannot be read."""
    sha256 = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                sha256.update(chunk)
    except OSError:
        return ""
    return sha256.hexdigest()


class Journal:
    """The journal in ``folder``: ``open`` it, look up ``done``, ``record`` each new grade."""

    def __init__(self, path: Path, seed: int, done: dict) -> None:
        self.path, self.seed = path, seed
        self.done: dict[str, tuple[str, SubmissionGrade]] = done  # name -> (sha256, grade)
        self.unwritten: list[str] = []  # grades that could not be journalled (graded again)
        self._stream = path.open("a", encoding="utf-8")
        self._line_open = False  # a write failed part-way: start the next line afresh

    @classmethod
    def open(
        cls,
        folder: Path,
        seed: int | None,
        limits: Limits,
        restart: bool = False,
        assignments: dict[str, str] | None = None,
        versions: dict[str, str] | None = None,
    ) -> Journal:
        """The journal of ``folder``, created if absent (or if ``restart``). ``seed`` None takes
        the journal's seed, or a random one for a new journal. ``assignments``: the
        assignments of the submissions about to be graded, id -> ``assignment_version``;
        ``versions``: the current version of every assignment the grader knows (None: neither
        is checked, as for a journal read only).
        Raise ``JournalMismatch`` when the journal's seed or limits differ from those asked, its
        grader's version from this one, or when it holds a batch of other assignments or of
        another version of them."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / JOURNAL_NAME
        header, entries = _read(path) if path.exists() and not restart else (None, [])
        assignments = dict(assignments or {})
        if header is None:
            seed = secrets.randbits(62) if seed is None else seed
            _write_lines(path, [_header(seed, limits, GRADER, assignments)])
            return cls(path, seed, {})
        journalled = Limits(**header["limits"])
        if seed is not None and seed != header["seed"]:
            raise JournalMismatch(
                f"{path} is a batch graded with seed {header['seed']}, not {seed}"
            )
        if journalled != limits:
            raise JournalMismatch(
                f"{path} is a batch graded with other limits ({_differences(journalled, limits)})"
            )
        recorded = header.get("assignments") if isinstance(header.get("assignments"), dict) else {}
        if versions is not None:
            _same_batch(path, header.get("grader"), recorded, assignments, versions)
        done = {grade.submission: (sha256, grade) for sha256, grade in entries}
        lines = [_entry(sha256, grade) for sha256, grade in done.values()]
        grader = header.get("grader") if isinstance(header.get("grader"), str) else GRADER
        header = _header(header["seed"], journalled, grader, {**recorded, **assignments})
        _write_lines(path, [header, *lines])  # without the lines that cannot be read
        return cls(path, header["seed"], done)

    def finished(self, name: str, sha256: str) -> SubmissionGrade | None:
        """The journalled grade of ``name`` if its notebook is unchanged, else None (the
        grade's texts as ``report.clean`` leaves them)."""
        entry = self.done.get(safe(name))
        return entry[1] if entry is not None and entry[0] == sha256 else None

    def record(self, sha256: str, grade: SubmissionGrade) -> bool:
        """Append ``grade`` (``clean``) and flush it to disk before returning; whether it is
        journalled. A grade the grading machinery failed (``infrastructure``) is not kept: a
        resumed batch grades it again; nor is one that cannot be written (``OSError``): its
        name is added to ``unwritten``, and the batch goes on."""
        if grade.infrastructure:
            return False
        grade = clean(grade)
        try:
            line = json.dumps(_entry(sha256, grade), ensure_ascii=False) + "\n"
            self._stream.write("\n" + line if self._line_open else line)
            self._line_open = True
            self._stream.flush()
            os.fsync(self._stream.fileno())
            self._line_open = False
        except (OSError, ValueError) as error:  # ValueError: UnicodeError, a closed stream
            self.unwritten.append(f"{grade.submission}: {type(error).__name__}")
            return False
        self.done[grade.submission] = (sha256, grade)
        return True

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_journal(folder: Path) -> tuple[dict | None, dict[str, SubmissionGrade]]:
    """The header and the grades (by submission name, in the order journalled) of
    ``folder``'s journal, read only; (None, {}) where there is none. Never raises for what the
    file holds."""
    path = folder / JOURNAL_NAME
    header, entries = _read(path) if path.exists() else (None, [])
    return header, {grade.submission: grade for _, grade in entries}


def _header(seed: int, limits: Limits, grader: str, assignments: dict[str, str]) -> dict:
    return {
        "journal": FORMAT, "seed": seed, "limits": dataclasses.asdict(limits), "grader": grader,
        "assignments": dict(sorted(assignments.items())),
    }  # fmt: skip


def _same_batch(
    path: Path,
    grader: object,
    recorded: dict,
    assignments: dict[str, str],
    versions: dict[str, str],
) -> None:
    """Raise ``JournalMismatch`` unless the journal's batch is one this grader may add to."""
    if grader != GRADER:
        was = f"attn-course {grader}" if isinstance(grader, str) else "an earlier attn-course"
        raise JournalMismatch(f"{path} is a batch graded by {was}, not by {GRADER}")
    others = sorted(set(assignments) - set(recorded))
    if recorded and others:
        raise JournalMismatch(
            f"{path} is a batch of {', '.join(sorted(recorded))}; these submissions are of "
            f"{', '.join(others)}"
        )
    for name, version in sorted(recorded.items()):
        if versions.get(name, version) != version:
            raise JournalMismatch(
                f"{path} is a batch of {name} as it was before its exercises or points changed "
                f"(version {version}, now {versions[name]})"
            )


def _entry(sha256: str, grade: SubmissionGrade) -> dict:
    return {"sha256": sha256, "grade": dataclasses.asdict(grade)}


def _read(path: Path) -> tuple[dict | None, list[tuple[str, SubmissionGrade]]]:
    """The header and the entries of a journal that read back as grades, ``clean`` (a header
    that cannot be read: no journal). Never raises for what the file holds."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return None, []
    complete = text.split("\n")[:-1]  # after the last newline: a line being written, or nothing
    header = _parsed(complete[0]) if complete else None
    if not _is_header(header):
        return None, []
    entries = []
    for line in complete[1:]:
        try:
            entries.append(_grade(_parsed(line)))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # not a grade: that submission is graded again
    return header, entries


def _parsed(line: str) -> object:
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


def _is_header(header: object) -> bool:
    if not isinstance(header, dict) or header.get("journal") != FORMAT:
        return False
    limits = header.get("limits")
    try:
        Limits(**limits)
    except (TypeError, ValueError):
        return False
    return type(header.get("seed")) is int


def _write_lines(path: Path, records: list[dict]) -> None:
    """Replace ``path`` atomically by ``records``, one JSON document a line."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as stream:
        stream.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


# the type of each field a journal line must hold (JSON has no tuples; None where optional)
_FIELDS = {
    SubmissionGrade: {
        "submission": str, "assignment": str, "infrastructure": bool, "student": str,
    },
    ExerciseGrade: {
        "exercise": str, "points": (int, float), "max_points": (int, float), "status": str,
        "feedback": str, "detail": str, "mistake": str, "override": str,
        "seconds": (int, float), "heatmap": (dict, type(None)),
    },
    CellRun: {
        "index": int, "name": str, "grade_id": (str, type(None)), "status": str,
        "message": str, "output": str, "task": (str, type(None)),
    },
}  # fmt: skip


def _typed(kind: type, fields: dict, nested: dict) -> object:
    """``kind(**fields, **nested)``; raise TypeError for a field of another type (a bool is
    not a number here)."""
    for name, value in fields.items():
        expected = _FIELDS[kind].get(name)
        if expected is None or not isinstance(value, expected) or (
            isinstance(value, bool) and expected is not bool
        ):
            raise TypeError(f"{kind.__name__}.{name}")
    return kind(**fields, **nested)


def _grade(entry: object) -> tuple[str, SubmissionGrade]:
    """(sha256, grade) of a journal line, ``clean``; raise for a line of another shape."""
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise TypeError("not a journal entry")
    grade = dict(entry["grade"])
    exercises = tuple(_typed(ExerciseGrade, dict(row), {}) for row in grade.pop("exercises"))
    problems = tuple(_typed(CellRun, dict(cell), {}) for cell in grade.pop("problems"))
    missing = grade.pop("missing_layers", [])
    if not isinstance(missing, list) or not all(isinstance(layer, str) for layer in missing):
        raise TypeError("SubmissionGrade.missing_layers")
    nested = {"exercises": exercises, "problems": problems, "missing_layers": tuple(missing)}
    return entry["sha256"], clean(_typed(SubmissionGrade, grade, nested))


def _differences(journalled: Limits, asked: Limits) -> str:
    old, new = dataclasses.asdict(journalled), dataclasses.asdict(asked)
    return ", ".join(
        f"{key} {old[key]} there, {new[key]} now" for key in old if old[key] != new[key]
    )
