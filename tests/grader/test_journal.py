"""The journal behind resumable batches: what it keeps and refuses, and the promise itself:
``attn-course grade`` killed (SIGKILL) at random points and run again writes the same
``grades.csv`` as a run never interrupted, with no submission lost or graded twice."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attn_course.cli import main
from attn_course.grader.journal import (
    JOURNAL_NAME,
    Journal,
    JournalMismatch,
    assignment_version,
    digest,
)
from attn_course.grader.kernel import CellRun
from attn_course.grader.pipeline import ExerciseGrade, SubmissionGrade
from attn_course.grader.report import MAX_NAME
from attn_course.grader.sandbox import Limits

ATTN_COURSE = Path(sys.executable).with_name("attn-course")
SEED = 7


def a_grade(name: str) -> SubmissionGrade:
    return SubmissionGrade(
        name,
        "01_scores_softmax_context",
        (
            ExerciseGrade("softmax", 3, 3, "passed", "passed all 10 cases"),
            ExerciseGrade("context_vector", 0, 2.5, "failed", "wrong shape", "expected (2, 3)"),
        ),
        (CellRun(4, "cell 4", "softmax", "error", "NameError: x", "printed"),),
    )


def test_a_reopened_journal_holds_what_was_recorded(tmp_path):
    with Journal.open(tmp_path, SEED, Limits()) as journal:
        journal.record("abc", a_grade("ana.ipynb"))
    with Journal.open(tmp_path, None, Limits()) as journal:
        assert journal.seed == SEED
        assert journal.finished("ana.ipynb", "abc") == a_grade("ana.ipynb")
        assert journal.finished("ana.ipynb", "changed") is None  # an edited file: graded again
        assert journal.finished("bo.ipynb", "abc") is None


def test_a_line_cut_short_by_a_kill_is_dropped(tmp_path):
    with Journal.open(tmp_path, SEED, Limits()) as journal:
        journal.record("abc", a_grade("ana.ipynb"))
    with (tmp_path / JOURNAL_NAME).open("a") as stream:
        stream.write('{"sha256": "def", "grade": {"submiss')
    with Journal.open(tmp_path, None, Limits()) as journal:
        journal.record("def", a_grade("bo.ipynb"))
    with Journal.open(tmp_path, None, Limits()) as journal:
        assert set(journal.done) == {"ana.ipynb", "bo.ipynb"}
    lines = (tmp_path / JOURNAL_NAME).read_text().splitlines()
    assert [json.loads(line).get("sha256") for line in lines] == [None, "abc", "def"]


def test_resume_survives_any_journal_content(tmp_path):
    """Lines the old grader wrote raw (a lone surrogate as a JSON escape, a right-to-left
    override, a 6 MB grade_id), a line cut short in the middle, lines that are JSON of another
    shape, bytes that are not UTF-8: the journal opens, keeps every line that reads back as a
    grade (cleaned and capped), and drops the rest (graded again)."""
    with Journal.open(tmp_path, SEED, Limits()) as journal:
        journal.record("abc", a_grade("ana.ipynb"))
    old = dataclasses.asdict(a_grade("caf\udce9.ipynb"))
    old["problems"][0]["grade_id"] = "g" * 6_000_000 + "\u202e"
    good = a_grade("bo.ipynb")
    shapes = [
        [],
        {"sha256": "x"},
        {"sha256": "x", "grade": "text"},
        {"sha256": 1, "grade": dataclasses.asdict(good)},
        {"sha256": "x", "grade": {**dataclasses.asdict(good), "points": "10"}},
        {"sha256": "x", "grade": {**dataclasses.asdict(good), "exercises": [{"points": []}]}},
        {"sha256": "x", "grade": {**dataclasses.asdict(good), "missing_layers": "seccomp"}},
    ]
    with (tmp_path / JOURNAL_NAME).open("ab") as stream:
        stream.write(b'{"sha256": "def", "grade": {"submiss\n')  # cut short, lines follow
        stream.write(json.dumps({"sha256": "old", "grade": old}).encode() + b"\n")
        stream.writelines(json.dumps(shape).encode() + b"\n" for shape in shapes)
        stream.write(b'{"sha256": "\xe9\xff", "grade": 1}\n\n' + b"[" * 100_000 + b"\n")
        stream.write(json.dumps({"sha256": "bo", "grade": dataclasses.asdict(good)}).encode())
        stream.write(b"\n")
    with Journal.open(tmp_path, None, Limits()) as journal:
        assert set(journal.done) == {"ana.ipynb", "caf\\xe9.ipynb", "bo.ipynb"}
        assert journal.finished("bo.ipynb", "bo") == good
        assert journal.finished("caf\udce9.ipynb", "old") is not None  # the name as it is
        (problem,) = journal.finished("caf\udce9.ipynb", "old").problems
        assert len(problem.grade_id) <= MAX_NAME
    text = (tmp_path / JOURNAL_NAME).read_bytes().decode("utf-8")
    assert len(text) < 10_000 and "\u202e" not in text and len(text.splitlines()) == 4


def test_a_journal_header_of_another_shape_starts_a_new_journal(tmp_path):
    (tmp_path / JOURNAL_NAME).write_text('{"journal": 1, "seed": 7, "limits": {"cpus": 1}}\n')
    with Journal.open(tmp_path, None, Limits()) as journal:
        assert journal.done == {}
        journal.record("abc", a_grade("ana.ipynb"))
    with Journal.open(tmp_path, None, Limits()) as journal:
        assert set(journal.done) == {"ana.ipynb"}
    with Journal.open(tmp_path, SEED, Limits(), restart=True):
        pass
    header = json.loads((tmp_path / JOURNAL_NAME).read_text())
    (tmp_path / JOURNAL_NAME).write_text(json.dumps({**header, "note": "\udce9"}) + "\n")
    with Journal.open(tmp_path, None, Limits()) as journal:  # rewritten without the note
        assert journal.seed == SEED


class FullDisk:
    """A journal stream whose disk is full for the first ``failures`` flushes."""

    def __init__(self, stream, failures: int) -> None:
        self.stream, self.failures = stream, failures

    def write(self, text: str) -> int:
        return self.stream.write(text)

    def flush(self) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        self.stream.flush()

    def fileno(self) -> int:
        return self.stream.fileno()

    def close(self) -> None:
        self.stream.close()


def test_a_line_that_cannot_be_written_does_not_stop_the_batch(tmp_path):
    with Journal.open(tmp_path, SEED, Limits()) as journal:
        journal._stream = FullDisk(journal._stream, failures=1)
        assert journal.record("abc", a_grade("ana.ipynb")) is False
        assert journal.unwritten == ["ana.ipynb: OSError"]
        assert journal.record("def", a_grade("bo.ipynb")) is True
    with Journal.open(tmp_path, None, Limits()) as journal:
        assert journal.finished("bo.ipynb", "def") == a_grade("bo.ipynb")


def test_another_seed_or_other_limits_are_refused_unless_restarting(tmp_path):
    with Journal.open(tmp_path, SEED, Limits(timeout=10)) as journal:
        journal.record("abc", a_grade("ana.ipynb"))
    with pytest.raises(JournalMismatch, match="seed 7, not 8"):
        Journal.open(tmp_path, SEED + 1, Limits(timeout=10))
    with pytest.raises(JournalMismatch, match="timeout 10 there, 20 now"):
        Journal.open(tmp_path, SEED, Limits(timeout=20))
    with Journal.open(tmp_path, SEED + 1, Limits(timeout=20), restart=True) as journal:
        assert journal.done == {}
    with Journal.open(tmp_path, None, Limits(timeout=20)) as journal:
        assert journal.seed == SEED + 1


def test_digest_follows_the_bytes(tmp_path):
    path = tmp_path / "a.ipynb"
    path.write_bytes(b"{}")
    first = digest(path)
    path.write_bytes(b"{ }")
    assert digest(path) != first
    assert digest(tmp_path / "missing.ipynb") == ""


@pytest.fixture(scope="module")
def batch(tmp_path_factory, submission_writer):
    """Five submissions: right, wrong, unfinished, not a notebook, and one that crashes a cell."""
    folder = tmp_path_factory.mktemp("batch")
    wrong = "def softmax(scores, dim=-1):\n    return scores.exp() / scores.exp().sum(dim)\n"
    submission_writer(folder, "correct", "pass")
    submission_writer(folder, "softmax-wrong", "fail", replace={"softmax": wrong})
    submission_writer(folder, "unfinished", "fail", drop=("context_vector", "SimpleAttention"))
    submission_writer(folder, "crash", "fail", add=("raise RuntimeError('boom')",))
    (folder / "test-not-json-fail.ipynb").write_text("{ not json")
    return folder


def grade(batch: Path, out: Path) -> subprocess.Popen:
    command = [str(ATTN_COURSE), "grade", str(batch), "--out", str(out), "--seed", str(SEED)]
    return subprocess.Popen(
        [*command, "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def entries(out: Path) -> int:
    try:
        return max(0, len((out / JOURNAL_NAME).read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def kill_after_entries(process: subprocess.Popen, out: Path, count: int) -> None:
    """SIGKILL ``process`` once the journal holds ``count`` more entries (or it has ended)."""
    goal = entries(out) + count
    while process.poll() is None and entries(out) < goal:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate()


def kill_after(process: subprocess.Popen, seconds: float) -> None:
    try:
        process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.communicate()


@pytest.fixture(scope="module")
def uninterrupted(batch, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("uninterrupted")
    output, _ = grade(batch, out).communicate()
    assert b"graded 5 submissions" in output
    return (out / "grades.csv").read_text()


@pytest.mark.parametrize("seed", [1, 2])
def test_a_killed_batch_resumes_to_the_same_grades(batch, uninterrupted, tmp_path, seed):
    chance = random.Random(seed)
    kill_after_entries(grade(batch, tmp_path), tmp_path, chance.randrange(0, 4))
    kill_after(grade(batch, tmp_path), chance.uniform(0, 15))
    output, _ = grade(batch, tmp_path).communicate()
    assert b"graded 5 submissions" in output
    assert (tmp_path / "grades.csv").read_text() == uninterrupted
    graded = [json.loads(line)["grade"]["submission"] for line in
              (tmp_path / JOURNAL_NAME).read_text().splitlines()[1:]]  # fmt: skip
    assert sorted(graded) == sorted(set(graded))  # none graded twice
    assert len(graded) == 5
    assert os.path.exists(tmp_path / "similarity.html")


def test_grade_refuses_a_journal_of_another_batch(batch, tmp_path, capsys):
    with Journal.open(tmp_path, SEED, Limits()):
        pass
    status = main(["grade", str(batch), "--out", str(tmp_path), "--seed", str(SEED + 1)])
    assert status == 2
    assert "--restart" in capsys.readouterr().err
    assert not (tmp_path / "grades.csv").exists()


class NoZygote:
    """Stands in for the zygote of ``grade_command``: every layer there, nothing forked."""

    def missing_layers(self):
        return ()

    def close(self):
        pass


def test_infrastructure_faults_are_graded_again_on_resume(tmp_path, monkeypatch):
    """A grade the machinery failed (a refusing or dead worker, the grader failing) is not
    journalled; one the submission earned is; pages of near-equal names do not collide; the
    layers a worker lacked are recorded in grades.json."""
    from attn_course.grader import commands, pipeline

    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("a b.ipynb", "a_b.ipynb"):
        (folder / name).write_text("{}")
    graded: list[str] = []
    written: list[dict[str, str]] = []  # the feedback pages once each run's grades are in

    def fake_grade_each(todo, seed, limits, assignments, workers, zygote):
        for name, _ in todo:
            graded.append(name)
            broken = name == "a b.ipynb"
            exercise = ExerciseGrade("*", 0, 0, "error" if broken else "passed", name)
            yield SubmissionGrade(
                name, "", (exercise,), infrastructure=broken, missing_layers=("seccomp",)
            )
        pages = (tmp_path / "out" / "feedback").glob("*.html")
        written.append({page.name: page.read_text() for page in pages})

    monkeypatch.setattr(commands, "Zygote", NoZygote)
    monkeypatch.setattr(pipeline, "grade_each", fake_grade_each)
    monkeypatch.setattr(commands, "_similarity", lambda *args: None)
    out = tmp_path / "out"
    for _ in range(2):
        assert commands.grade_command([str(folder)], str(out), 5.0, 1, 512, seed=SEED) == 0
    assert graded == ["a b.ipynb", "a_b.ipynb", "a b.ipynb"]  # only the fault graded again
    document = json.loads((out / "grades.json").read_text())
    assert document["missing_sandbox_layers"] == ["seccomp"]
    assert sorted(written[0]) == ["a_b-2.html", "a_b.html"]  # as grades arrive: no collision
    assert "a b.ipynb" in written[0]["a_b.html"] and "a_b.ipynb" in written[0]["a_b-2.html"]
    assert sorted(path.name for path in (out / "feedback").iterdir()) == sorted(written[0])
    assert "a b.ipynb" in (out / "feedback" / "a_b.html").read_text()


def test_another_assignment_or_version_is_refused(tmp_path):
    versions = {"01": "v1", "02": "v1"}
    with Journal.open(tmp_path, SEED, Limits(), False, {"01": "v1"}, versions):
        pass
    with Journal.open(tmp_path, None, Limits(), False, {"01": "v1"}, versions) as journal:
        assert journal.seed == SEED  # the same batch: accepted
    with pytest.raises(JournalMismatch, match="is a batch of 01; these submissions are of 02"):
        Journal.open(tmp_path, None, Limits(), False, {"02": "v1"}, versions)
    with pytest.raises(JournalMismatch, match="before its exercises or points changed"):
        Journal.open(tmp_path, None, Limits(), False, {"01": "v2"}, {"01": "v2"})
    header = json.loads((tmp_path / JOURNAL_NAME).read_text())
    del header["grader"]  # a journal of an earlier grader, which did not record its version
    (tmp_path / JOURNAL_NAME).write_text(json.dumps(header) + "\n")
    with pytest.raises(JournalMismatch, match="graded by an earlier attn-course"):
        Journal.open(tmp_path, None, Limits(), False, {"01": "v1"}, versions)
    with Journal.open(tmp_path, None, Limits(), True, {"02": "v1"}, versions):
        pass  # --restart starts over


def test_assignment_version_follows_exercise_names_and_points():
    from attn_course.grader.catalog import course_assignments

    assignment = course_assignments()["01_scores_softmax_context"]
    version = assignment_version(assignment)
    fewer = dataclasses.replace(assignment, exercises=assignment.exercises[:-1])
    assert assignment_version(fewer) != version
    assert assignment_version(dataclasses.replace(assignment)) == version
