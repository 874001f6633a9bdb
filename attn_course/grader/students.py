"""Students, not files: which student each submitted notebook belongs to.

A submission's student comes from, in this order:

1. the roster (``--roster roster.csv``): a row whose ``files`` pattern matches the file's path,
   or whose ``id``, ``login``, ``canvas_id``, e-mail (or the part before its ``@``) or squashed
   name equals one of the file's keys below, or the notebook metadata field
   ``--student-field`` (a dotted path such as ``attn_course.student``);
2. the layout instructors get: a Canvas bulk download (``name_[LATE_]userid_submissionid_file``,
   the student is the Canvas user id), nbgrader's ``submitted/<student>/<assignment>/...``,
   a folder per student (``<student>/...``);
3. else the file's stem (without a ``-Copy1`` suffix).

Several files of one student and assignment: the latest wins (Canvas's resubmission ``-N``
suffix, then the larger Canvas submission id, then the newer file); a stray ``-Copy1`` or
``Untitled`` notebook loses to any other. The others are *superseded*: listed, not graded.
What the grader learnt is kept in ``DIR/students.json`` (merged run after run), so that the
reports and the exports of a folder cover every student graded into it.
"""

from __future__ import annotations

import csv
import dataclasses
import fnmatch
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

STUDENTS_NAME = "students.json"
ROSTER_COLUMNS = ("id", "name", "email", "section", "login", "canvas_id", "files")

# Canvas "Download Submissions": sortablename[_LATE]_userid_submissionid_originalname
_CANVAS = re.compile(
    r"^(?P<key>[^_/]+?)(?P<late>_LATE)?_(?P<user>\d+)_(?P<submission>\d+)_(?P<file>.+)$"
)
_RESUBMITTED = re.compile(r"^(?P<stem>.+?)-(?P<number>\d+)$")  # Canvas renames a re-upload x-1
_COPY = re.compile(r"^(?P<stem>.+)-Copy\d+$", re.IGNORECASE)  # JupyterLab's x-Copy1
_UNTITLED = re.compile(r"^Untitled\d*$", re.IGNORECASE)


@dataclass(frozen=True)
class Student:
    """A student as the gradebooks need them: ``id`` is the key everything is grouped by."""

    id: str
    name: str = ""
    email: str = ""
    section: str = ""
    login: str = ""  # a login or SIS id the gradebook may match on
    canvas_id: str = ""  # Canvas's numeric user id (from the roster or the Canvas file names)


@dataclass(frozen=True)
class Layout:
    """What a file's path says about its student: ``keys`` to look up in a roster (the first
    is the student id when there is no roster), ``late`` (Canvas's ``_LATE``), the stem of the
    file as the student named it, and how it ranks among the student's files."""

    keys: tuple[str, ...]
    late: bool
    original: str
    stray: bool
    resubmission: int
    canvas_submission: int
    kind: str  # canvas, nbgrader, folder or file
    canvas_id: str = ""


def layout(name: str, assignments: Iterable[str] = ()) -> Layout:
    """Read ``name`` (a submission's path relative to the folder given, ``/``-separated)."""
    parts = name.split("/")
    file = parts[-1]
    stem = file[: -len(".ipynb")] if file.lower().endswith(".ipynb") else file
    canvas = _CANVAS.match(file)
    if canvas is not None:
        original = canvas["file"]
        original = original[: -len(".ipynb")] if original.lower().endswith(".ipynb") else original
        number, original = _resubmission(original)
        stray = bool(_UNTITLED.match(original) or _COPY.match(original))
        return Layout(
            (canvas["user"], canvas["key"]), bool(canvas["late"]), _plain(original), stray,
            number, int(canvas["submission"]), "canvas", canvas["user"],
        )  # fmt: skip
    stray = bool(_UNTITLED.match(stem) or _COPY.match(stem))
    folders = parts[:-1]
    if "submitted" in folders[:-1]:  # nbgrader: submitted/<student>/<assignment>/<file>
        student = folders[folders.index("submitted") + 1]
        return Layout((student,), False, _plain(stem), stray, 0, 0, "nbgrader")
    if len(folders) >= 2 and folders[-1] in set(assignments):  # <student>/<assignment>/<file>
        return Layout((folders[-2],), False, _plain(stem), stray, 0, 0, "nbgrader")
    if folders:
        return Layout((folders[0],), False, _plain(stem), stray, 0, 0, "folder")
    return Layout((_plain(stem),), False, _plain(stem), stray, 0, 0, "file")


def _resubmission(stem: str) -> tuple[int, str]:
    found = _RESUBMITTED.match(stem)
    return (int(found["number"]), found["stem"]) if found else (0, stem)


def _plain(stem: str) -> str:
    """A notebook's stem without JupyterLab's copy suffix (``x-Copy1`` -> ``x``)."""
    found = _COPY.match(stem)
    return found["stem"] if found else stem


def original_stem(name: str) -> str:
    """The stem of the notebook as the student saved it: ``01_topic`` for Canvas's
    ``smithjo_LATE_12_34_01_topic-1.ipynb`` (what the assignment may be guessed from)."""
    return layout(name).original


def squashed(text: str) -> str:
    """Lower-case letters and digits only: Canvas's ``smithjohn`` for "Smith, John"."""
    return re.sub(r"[\W_]+", "", text.lower())


class RosterError(ValueError):
    """The roster cannot be used (no file, no ``id`` column, a duplicate id)."""


@dataclass(frozen=True)
class Roster:
    """The class list: ``students`` in the roster's order, ``patterns`` their ``files``."""

    students: tuple[Student, ...]
    patterns: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def match(self, name: str, keys: Sequence[str], field_value: str | None) -> Student | None:
        """The student of a submission called ``name`` with layout ``keys``."""
        for student in self.students:
            if any(fnmatch.fnmatch(name.lower(), p.lower()) for p in self.patterns[student.id]):
                return student
        wanted = [key.lower() for key in ([field_value] if field_value else []) + list(keys)]
        for key in wanted:
            for student in self.students:
                if key and key in _aliases(student):
                    return student
        return None


def _aliases(student: Student) -> set[str]:
    """What a file's key may be for ``student``: ids, e-mail, and the name squashed in either
    order (Canvas squashes the sortable name: "Doe, Jane" and "Jane Doe" are ``doejane``)."""
    email = student.email.lower()
    first, _, last = student.name.replace(",", " ").strip().rpartition(" ")
    names = {squashed(student.name), squashed(last + first)}
    ids = {student.id, student.login, student.canvas_id, email, email.split("@")[0]}
    return {alias.lower() for alias in ids | names if alias}


def read_roster(path: Path) -> Roster:
    """The roster CSV (UTF-8, with or without a BOM): an ``id`` column, and any of ``name``,
    ``email``, ``section``, ``login``, ``canvas_id``, ``files`` (patterns such as
    ``*smithjohn*``, separated by ``;``). Raise ``RosterError``."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            rows = list(csv.DictReader(stream))
            header = rows[0].keys() if rows else ()
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise RosterError(f"cannot read the roster {path}: {error}") from None
    columns = {(column or "").strip().lower(): column for column in header}
    if "id" not in columns:
        raise RosterError(f"the roster {path} has no `id` column (columns: {', '.join(header)})")
    students, patterns = [], {}
    for number, row in enumerate(rows, start=2):
        value = {
            key: (row.get(columns[key]) or "").strip() for key in ROSTER_COLUMNS if key in columns
        }
        if not value["id"]:
            continue
        if value["id"] in patterns:
            raise RosterError(f"{path}, line {number}: the id {value['id']!r} appears twice")
        files = value.pop("files", "")
        students.append(Student(**value))
        patterns[value["id"]] = tuple(p.strip() for p in files.split(";") if p.strip())
    return Roster(tuple(students), patterns)


@dataclass(frozen=True)
class Entry:
    """One submitted notebook: its student, late or not, its rank among the student's files
    (the largest wins), and ``superseded_by`` (the name of the file that won; "" if it won)."""

    name: str
    path: str
    student: str
    assignment: str
    late: bool = False
    rank: tuple = ()
    superseded_by: str = ""
    on_roster: bool = True


@dataclass(frozen=True)
class ClassList:
    """Everything ``students.json`` holds: the students, every notebook seen (by name), the
    roster's ids (empty without a roster), and files that were not notebooks."""

    students: dict[str, Student] = field(default_factory=dict)
    entries: dict[str, Entry] = field(default_factory=dict)
    roster: tuple[str, ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)  # path -> why it was not graded
    patterns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # the roster's files

    def as_roster(self) -> Roster | None:
        """The roster an earlier run was given (None: there was none)."""
        if not self.roster:
            return None
        students = tuple(self.students[sid] for sid in self.roster if sid in self.students)
        return Roster(students, {s.id: tuple(self.patterns.get(s.id, ())) for s in students})

    @property
    def graded(self) -> list[Entry]:
        """The entries that count: one per student and assignment."""
        return [entry for entry in self.entries.values() if not entry.superseded_by]

    @property
    def superseded(self) -> list[Entry]:
        return [entry for entry in self.entries.values() if entry.superseded_by]

    def missing(self) -> list[Student]:
        """Students on the roster with no submission."""
        handed_in = {entry.student for entry in self.entries.values()}
        return [self.students[sid] for sid in self.roster if sid not in handed_in]


def resolve(
    notebooks: Sequence[tuple[str, Path]],
    assignment_of: dict[str, str],
    roster: Roster | None = None,
    fields: dict[str, str] | None = None,
    known_assignments: Iterable[str] = (),
) -> ClassList:
    """The class list of ``notebooks`` ((name, path) pairs): ``assignment_of`` gives the
    assignment id of each name ("" where unknown), ``fields`` the value of the roster's
    notebook metadata field by name."""
    students: dict[str, Student] = {sid.id: sid for sid in (roster.students if roster else ())}
    entries = {}
    known = tuple(known_assignments)
    for name, path in notebooks:
        found = layout(name, known)
        student = roster.match(name, found.keys, (fields or {}).get(name)) if roster else None
        on_roster = student is not None or roster is None
        if student is None:
            sid = found.keys[0]
            student = students.get(sid) or Student(
                sid, name=found.keys[1] if found.kind == "canvas" else "", canvas_id=found.canvas_id
            )
        elif found.canvas_id and not student.canvas_id:
            student = dataclasses.replace(student, canvas_id=found.canvas_id)
        students[student.id] = student
        try:
            modified = os.stat(path).st_mtime_ns
        except OSError:
            modified = 0
        rank = (not found.stray, found.resubmission, found.canvas_submission, modified, name)
        entries[name] = Entry(
            name, str(Path(path).absolute()), student.id, assignment_of.get(name, ""),
            found.late, rank, "", on_roster,
        )  # fmt: skip
    ids = tuple(student.id for student in roster.students) if roster else ()
    return ClassList(students, entries, ids, {}, dict(roster.patterns) if roster else {})


def merged(old: ClassList, new: ClassList) -> ClassList:
    """``old`` (``students.json``) updated by this run's ``new`` list, then the winner of each
    student's files chosen again over both."""
    students = {**old.students, **new.students}
    entries = {**old.entries, **new.entries}
    roster, patterns = (new.roster, new.patterns) if new.roster else (old.roster, old.patterns)
    skipped = {**old.skipped, **new.skipped}
    return superseded(ClassList(students, entries, roster, skipped, patterns))


def superseded(classes: ClassList) -> ClassList:
    """Mark every file but the latest of each student and assignment as superseded; a file
    of no known assignment (not a notebook, metadata lost) loses to any of a known one."""
    groups: dict[str, list[Entry]] = {}
    for entry in classes.entries.values():
        groups.setdefault(entry.student, []).append(entry)
    entries = dict(classes.entries)
    for files in groups.values():
        known = {entry.assignment for entry in files if entry.assignment}
        by_assignment: dict[str, list[Entry]] = {}
        for entry in files:
            key = entry.assignment if entry.assignment or not known else "?"
            by_assignment.setdefault(key, []).append(entry)
        unknown = by_assignment.pop("?", [])
        winners = []
        for group in by_assignment.values():
            best = max(group, key=lambda entry: tuple(entry.rank))
            winners.append(best)
            for entry in group:
                entries[entry.name] = dataclasses.replace(
                    entry, superseded_by="" if entry is best else best.name
                )
        for entry in unknown:
            entries[entry.name] = dataclasses.replace(entry, superseded_by=winners[0].name)
    return dataclasses.replace(classes, entries=entries)


def load(folder: Path) -> ClassList:
    """``folder/students.json`` (an empty list when absent or unreadable)."""
    try:
        document = json.loads((folder / STUDENTS_NAME).read_text(encoding="utf-8"))
        students = {sid: Student(**value) for sid, value in document["students"].items()}
        entries = {
            name: Entry(**{**value, "rank": tuple(value["rank"])})
            for name, value in document["entries"].items()
        }
        patterns = {sid: tuple(found) for sid, found in document.get("patterns", {}).items()}
        return ClassList(
            students, entries, tuple(document["roster"]), dict(document["skipped"]), patterns
        )
    except (OSError, ValueError, KeyError, TypeError):
        return ClassList()


def save(classes: ClassList, folder: Path) -> Path:
    """Write ``folder/students.json`` atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "students": {sid: dataclasses.asdict(student) for sid, student in classes.students.items()},
        "entries": {name: dataclasses.asdict(entry) for name, entry in classes.entries.items()},
        "roster": list(classes.roster),
        "skipped": classes.skipped,
        "patterns": {sid: list(found) for sid, found in classes.patterns.items()},
    }
    path = folder / STUDENTS_NAME
    temporary = path.with_name(path.name + ".tmp")
    # ASCII: a path that is not UTF-8 (its bytes held as surrogates) is kept as escapes
    temporary.write_text(json.dumps(document, indent=1) + "\n", "utf-8")
    os.replace(temporary, path)
    return path


def student_of(name: str, classes: ClassList) -> str:
    """The student id of a journalled submission: from the class list, else from its name."""
    entry = classes.entries.get(name)
    return entry.student if entry is not None else layout(name).keys[0]
