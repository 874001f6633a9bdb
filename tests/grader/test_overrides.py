"""Regrades: overrides.csv sets an exercise's points with a comment, on a new batch; lines
that cannot be used are named, never applied."""

from __future__ import annotations

from attn_course.grader.overrides import (
    NO_COMMENT,
    Override,
    apply_overrides,
    read_overrides,
    unused_overrides,
)
from attn_course.grader.pipeline import BatchGrade, ExerciseGrade, SubmissionGrade


def a_batch() -> BatchGrade:
    exercises = (
        ExerciseGrade("softmax", 0, 3, "failed", "no max shift", mistake="softmax.no_max_shift"),
        ExerciseGrade("context_vector", 2.5, 2.5, "passed", "passed all 10 cases"),
    )
    return BatchGrade(
        (
            SubmissionGrade("smith.ipynb", "01", exercises, student="s1"),
            SubmissionGrade("doe.ipynb", "01", exercises, student="s2"),
        ),
        seed=7,
    )


def test_an_override_sets_points_and_comment_on_a_new_batch():
    batch = a_batch()
    changed = apply_overrides(batch, [Override("S1", "softmax", 2, "max shift not required")])
    smith, doe = changed.submissions
    assert (smith.exercises[0].points, smith.exercises[0].override) == (2, "max shift not required")
    assert smith.exercises[0].status == "failed"  # what the grader found stays
    assert smith.points == 4.5 and doe.points == 2.5
    assert batch.submissions[0].exercises[0].points == 0  # the batch given is unchanged
    later = apply_overrides(batch, [Override("doe.ipynb", "context_vector", 1), ])
    assert later.submissions[1].exercises[1].override == NO_COMMENT


def test_overrides_that_match_nothing_are_named_and_left_out():
    overrides = [
        Override("s9", "softmax", 1, line=2),
        Override("s1", "nope", 1, line=3),
        Override("s1", "softmax", 4, line=4),
    ]
    problems = unused_overrides(a_batch(), overrides)
    assert len(problems) == 3
    assert "line 2" in problems[0] and "'s9'" in problems[0]
    assert "no exercise 'nope'" in problems[1]
    assert "worth 3" in problems[2]
    assert apply_overrides(a_batch(), overrides) == a_batch()


def test_read_overrides_takes_excels_bom_and_names_bad_lines(tmp_path):
    path = tmp_path / "overrides.csv"
    path.write_text(
        "\ufeffstudent,exercise,points,comment\n"
        "s1,softmax,2.5,\"regraded: × shown right\"\n"
        "s2,softmax,many,\n"
        ",softmax,1,\n"
        "s3,softmax,-1,\n",
        encoding="utf-8",
    )
    overrides, problems = read_overrides(path)
    assert overrides == [Override("s1", "softmax", 2.5, "regraded: × shown right", 2)]
    assert [problem.split(":")[0] for problem in problems] == [
        "overrides.csv, line 3", "overrides.csv, line 4", "overrides.csv, line 5"
    ]
    assert read_overrides(tmp_path / "absent.csv") == ([], [])
