"""The journal of a batch: ``DIR/journal.jsonl`` records each submission once it is graded, so
that a batch killed at any moment resumes where it stopped.

The first line names the batch (the seed of the hidden cases and the limits); each further
line is one finished submission: its name, the SHA-256 of the notebook's bytes and its
``SubmissionGrade``. A line is appended and flushed to disk as soon as its grade is known; a
line cut short by a kill is dropped when the journal is opened again. A submission whose file
has changed since it was journalled is graded again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
from pathlib import Path

from attn_course.grader.kernel import CellRun
from attn_course.grader.pipeline import ExerciseGrade, SubmissionGrade
from attn_course.grader.sandbox import Limits

JOURNAL_NAME = "journal.jsonl"
FORMAT = 1


class JournalMismatch(Exception):
    """The out folder holds a journal of a batch with another seed or other limits."""


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
        self._stream = path.open("a", encoding="utf-8")

    @classmethod
    def open(cls, folder: Path, seed: int | None, limits: Limits, restart: bool = False) -> Journal:
        """The journal of ``folder``, created if absent (or if ``restart``). ``seed`` None takes
        the journal's seed, or a random one for a new journal.
        Raise ``JournalMismatch`` when the journal's seed or limits differ from those asked."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / JOURNAL_NAME
        header, entries = _read(path) if path.exists() and not restart else (None, [])
        if header is None:
            seed = secrets.randbits(62) if seed is None else seed
            _write_lines(path, [_header(seed, limits)])
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
        done = {entry["grade"]["submission"]: (entry["sha256"], _grade(entry)) for entry in entries}
        _write_lines(path, [header, *entries])  # drops a line cut short by a kill
        return cls(path, header["seed"], done)

    def finished(self, name: str, sha256: str) -> SubmissionGrade | None:
        """The journalled grade of ``name`` if its notebook is unchanged, else None."""
        entry = self.done.get(name)
        return entry[1] if entry is not None and entry[0] == sha256 else None

    def record(self, sha256: str, grade: SubmissionGrade) -> None:
        """Append ``grade`` and flush it to disk before returning; a grade the grading
        machinery failed (``infrastructure``) is not kept: a resumed batch grades it again."""
        if grade.infrastructure:
            return
        entry = {"sha256": sha256, "grade": dataclasses.asdict(grade)}
        self._stream.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._stream.flush()
        os.fsync(self._stream.fileno())
        self.done[grade.submission] = (sha256, grade)

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _header(seed: int, limits: Limits) -> dict:
    return {"journal": FORMAT, "seed": seed, "limits": dataclasses.asdict(limits)}


def _read(path: Path) -> tuple[dict | None, list[dict]]:
    """The header and the complete entries of a journal (a header cut short: no journal)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    complete = lines[:-1]  # after the last newline: a line still being written, or nothing
    records = []
    for line in complete:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    if not records or records[0].get("journal") != FORMAT:
        return None, []
    return records[0], records[1:]


def _write_lines(path: Path, records: list[dict]) -> None:
    """Replace ``path`` atomically by ``records``, one JSON document a line."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as stream:
        stream.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


def _grade(entry: dict) -> SubmissionGrade:
    grade = dict(entry["grade"])
    exercises = tuple(ExerciseGrade(**exercise) for exercise in grade.pop("exercises"))
    problems = tuple(CellRun(**cell) for cell in grade.pop("problems"))
    missing = tuple(grade.pop("missing_layers", ()))
    return SubmissionGrade(exercises=exercises, problems=problems, missing_layers=missing, **grade)


def _differences(journalled: Limits, asked: Limits) -> str:
    old, new = dataclasses.asdict(journalled), dataclasses.asdict(asked)
    return ", ".join(
        f"{key} {old[key]} there, {new[key]} now" for key in old if old[key] != new[key]
    )
