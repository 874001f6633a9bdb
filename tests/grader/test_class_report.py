"""The class report: the mistake counts and who made them, the incidents linked to the
students' pages, the mistake column of grades.csv and grades.json, and every report rebuilt
from the journal (``attn-course report DIR``)."""

from __future__ import annotations

import csv
import dataclasses
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from attn_course.cli import main
from attn_course.grader.classreport import lesson_of, rebuild_reports, reported_batch
from attn_course.grader.journal import Journal
from attn_course.grader.kernel import CellRun
from attn_course.grader.pipeline import BatchGrade, ExerciseGrade, SubmissionGrade
from attn_course.grader.report import write_reports
from attn_course.grader.sandbox import Limits

NO_SHIFT = "softmax.no-max-shift"
WRONG_DIM = "softmax.wrong-dim"


def exercises(softmax: tuple[str, str] = ("passed", ""), scores: str = "passed", seconds=0.5):
    """Two exercises of assignment 01: softmax (status, mistake id) and attention_scores."""
    status, mistake = softmax
    feedback = {NO_SHIFT: "overflows: no max shift", WRONG_DIM: "sums over the wrong dim"}
    return (
        ExerciseGrade("softmax", 3 if status == "passed" else 0, 3, status,
                      feedback.get(mistake, "wrong values on case 'x'"), "", mistake,
                      seconds=seconds),
        ExerciseGrade("attention_scores", 2 if scores == "passed" else 0, 2, scores,
                      "stopped the kernel" if scores == "error" else "", "", "",
                      seconds=2 * seconds),
    )  # fmt: skip


def class_of_ten() -> BatchGrade:
    """Ten students and a file that is no notebook: 4 without the max shift, 2 summing over
    the wrong dim, 1 wrong without a named mistake, 1 whose scores stopped the kernel, 1
    timeout, 1 refused; one override."""
    s = []
    for i in range(4):
        s.append(SubmissionGrade(f"s{i}.ipynb", "01", exercises(("failed", NO_SHIFT)),
                                 student=f"student{i}"))  # fmt: skip
    for i in (4, 5):
        s.append(SubmissionGrade(f"s{i}.ipynb", "01", exercises(("failed", WRONG_DIM))))
    s.append(SubmissionGrade("s6.ipynb", "01", exercises(("failed", ""))))
    crash = exercises(scores="error")
    crash = (
        crash[0],
        dataclasses.replace(
            crash[1], feedback="attention_scores stopped the kernel on the hidden cases: SIGSEGV"
        ),
    )
    s.append(SubmissionGrade("s7.ipynb", "01", crash))
    timeout = exercises(scores="timeout")
    s.append(SubmissionGrade("s8.ipynb", "01", timeout,
                             (CellRun(4, "<cell 4>", None, "timeout", "did not finish", "",
                                      "Task 2"),)))  # fmt: skip
    refused = tuple(dataclasses.replace(g, status="refused", points=0,
                                        feedback="`import os` is not allowed")
                    for g in exercises())  # fmt: skip
    s.append(SubmissionGrade("s9.ipynb", "01", refused))
    s.append(SubmissionGrade("junk.ipynb", "", (ExerciseGrade("*", 0, 0, "invalid", "not JSON"),)))
    overridden = exercises(("failed", NO_SHIFT))
    overridden = (dataclasses.replace(overridden[0], points=2, override="partial: nice try"),
                  overridden[1])  # fmt: skip
    s[3] = dataclasses.replace(s[3], exercises=overridden)
    return BatchGrade(tuple(s), seed=7)


class Page(HTMLParser):
    """The mistakes (data-mistake -> data-count, who) and every link of class.html."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.mistakes: dict[str, dict] = {}
        self.links: list[str] = []
        self._current, self._depth = None, 0  # the mistake being read, divs open in it
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div" and "data-mistake" in attrs:
            self._current = {"count": int(attrs["data-count"]), "who": []}
            self.mistakes[attrs["data-mistake"]] = self._current
        elif tag == "div" and self._current is not None:
            self._depth += 1
        if tag == "a":
            self.links.append(attrs["href"])
            if self._current is not None:
                self._current["who"].append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "div" and self._current is not None:
            if self._depth:
                self._depth -= 1
            else:
                self._current = None


@pytest.fixture
def reported(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with (out / "similarity.csv").open("w", newline="", encoding="utf-8") as stream:
        csv.writer(stream).writerows(
            [("submission", "other", "assignment", "share", "other_share"),
             ("s0.ipynb", "s1.ipynb", "01", "0.95", "0.91")]
        )  # fmt: skip
    paths = write_reports(class_of_ten(), out)
    return out, paths


def test_class_report_counts_each_named_mistake_and_who_made_it(reported):
    out, paths = reported
    text = paths["class"].read_text(encoding="utf-8")
    page = Page(text)
    assert page.mistakes[NO_SHIFT]["count"] == 4
    assert page.mistakes[WRONG_DIM]["count"] == 2
    assert page.mistakes[""]["count"] == 1  # the generic failure, counted apart
    assert "40 %</span> (4 of 10)" in text  # 10 graded: the refused one too, not the invalid
    assert "20 %</span> (2 of 10)" in text
    who = page.mistakes[NO_SHIFT]["who"]
    assert who == [f"feedback/s{i}.html#softmax" for i in range(4)]
    assert all((out / href.split("#")[0]).is_file() for href in page.links if "feedback/" in href)
    assert "student0" in text  # named by the student, not the file, where known


def test_class_report_lists_incidents_overrides_and_similar_pairs_linked_to_pages(reported):
    _, paths = reported
    text = paths["class"].read_text(encoding="utf-8")
    links = Page(text).links
    assert "feedback/s7.html#attention_scores" in links  # the crash
    assert "feedback/s8.html#attention_scores" in links  # the timeout of an exercise
    assert "feedback/s8.html" in links  # and of a cell
    assert "feedback/s9.html" in links  # refused
    assert "feedback/junk.html" in links  # invalid
    assert "feedback/s3.html#softmax" in links and "partial: nice try" in text  # override
    assert "Timeouts (2)" in text and "Crashes (the kernel stopped) (1)" in text
    assert "the 4th code cell (under &#34;Task 2&#34;)" in text
    assert "Near copies (1 pairs" in text and "0.95" in text


def test_class_report_has_the_pass_rate_median_time_lesson_and_embedded_figures(reported):
    _, paths = reported
    text = paths["class"].read_text(encoding="utf-8")
    assert "20 %<br>(2 of 10)" in text  # softmax: passed by the crash and the timeout only
    assert "0.50 s" in text and "1.00 s" in text  # median times
    assert "lesson 02: softmax" in text and "lesson 01: attention scores" in text
    assert text.count('src="data:image/svg+xml;base64,') == 3  # totals and one per exercise
    assert "http" not in text.replace("http://www.w3.org", "")  # nothing fetched


def test_lessons_link_to_the_course_site_when_its_url_is_given():
    lesson = lesson_of("scaled_dot_product_attention", "https://example.org/course/")
    assert lesson.number == "04"
    assert (
        lesson.href == "https://example.org/course/notebooks/04_scaled_dot_product_attention.html"
    )
    assert lesson_of("not_an_exercise") is None


def test_grades_csv_and_json_carry_the_mistake_id(reported):
    out, _ = reported
    with (out / "grades.csv").open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.DictReader(stream))
    mistakes = {(r["submission"], r["exercise"]): r["mistake"] for r in rows}
    assert mistakes[("s0.ipynb", "softmax")] == NO_SHIFT
    assert mistakes[("s4.ipynb", "softmax")] == WRONG_DIM
    assert mistakes[("s6.ipynb", "softmax")] == ""
    document = json.loads((out / "grades.json").read_text(encoding="utf-8"))
    s0 = next(s for s in document["submissions"] if s["submission"] == "s0.ipynb")
    assert s0["student"] == "student0"
    assert [e["mistake"] for e in s0["exercises"]] == [NO_SHIFT, ""]
    assert s0["exercises"][0]["seconds"] == 0.5


def journalled(out: Path, batch: BatchGrade) -> None:
    with Journal.open(out, batch.seed, Limits()) as journal:
        for number, submission in enumerate(batch.submissions):
            assert journal.record(f"sha{number}", submission)


def test_report_rebuilds_every_report_from_the_journal_alone(tmp_path):
    batch = class_of_ten()
    journalled(tmp_path, batch)
    assert main(["report", str(tmp_path)]) == 0
    page = Page((tmp_path / "class.html").read_text(encoding="utf-8"))
    assert page.mistakes[NO_SHIFT]["count"] == 4 and page.mistakes[WRONG_DIM]["count"] == 2
    with (tmp_path / "grades.csv").open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 10 * 2 + 1
    assert {p.name for p in (tmp_path / "feedback").iterdir()} == {
        f"s{i}.html" for i in range(10)
    } | {"junk.html"}
    rebuilt, _ = reported_batch(tmp_path)
    assert {s.submission: s.points for s in rebuilt.submissions} == {
        s.submission: s.points for s in batch.submissions
    }


def test_report_applies_overrides_csv_and_warns_of_one_it_cannot_apply(tmp_path, capsys):
    journalled(tmp_path, class_of_ten())
    (tmp_path / "overrides.csv").write_text(
        "student,exercise,points,comment\n"
        "s6.ipynb,softmax,3,regraded by hand\n"
        "nobody,softmax,1,no such student\n",
        encoding="utf-8",
    )
    assert main(["report", str(tmp_path)]) == 0
    assert "nobody" in capsys.readouterr().err
    document = json.loads((tmp_path / "grades.json").read_text(encoding="utf-8"))
    s6 = next(s for s in document["submissions"] if s["submission"] == "s6.ipynb")
    assert s6["points"] == 5 and s6["exercises"][0]["override"] == "regraded by hand"
    page = (tmp_path / "feedback" / "s6.html").read_text(encoding="utf-8")
    assert "Points set by the instructor: regraded by hand" in page
    text = (tmp_path / "class.html").read_text(encoding="utf-8")
    assert "3 / 3: regraded by hand" in text and "feedback/s6.html#softmax" in text


def test_rebuild_takes_the_batch_from_any_loader(tmp_path):
    def one_student(out: Path) -> tuple[BatchGrade, list[str]]:
        assert out == tmp_path
        grade = SubmissionGrade("x.ipynb", "01", exercises(("failed", NO_SHIFT)))
        return BatchGrade((grade,), seed=1), ["a problem"]

    paths, problems = rebuild_reports(tmp_path, load=one_student)
    assert problems == ["a problem"]
    assert Page(paths["class"].read_text(encoding="utf-8")).mistakes[NO_SHIFT]["count"] == 1


def test_report_of_a_folder_without_a_journal_is_an_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no journal" in capsys.readouterr().err


def test_hostile_names_stay_text_in_the_class_report(tmp_path):
    evil = '<img src=x onerror=alert(1)>"\u202e.ipynb'
    grade = ExerciseGrade("softmax", 0, 3, "failed", "<b>bold</b>", "", "<script>x</script>")
    batch = BatchGrade((SubmissionGrade(evil, "01", (grade,), student="<i>who</i>"),), seed=1)
    text = write_reports(batch, tmp_path)["class"].read_text(encoding="utf-8")
    assert "<img src=x" not in text and "<script>x" not in text and "<i>who" not in text
    assert "\u202e" not in text and "&lt;i&gt;who&lt;/i&gt;" in text
