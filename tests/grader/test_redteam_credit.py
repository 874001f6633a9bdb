"""Red team: fair partial credit re-runs an exercise with the reference in place of a broken
dependency. The re-run must not hand the student the reference of the exercise under test."""

from __future__ import annotations

from test_grader_batch import ALTERNATIVES

from attn_course.grader.pipeline import grade
from attn_course.grader.sandbox import Limits

BROKEN = "def context_vector(weights, values):\n    raise NotImplementedError\n"
# uses context_vector (so it is re-run with the reference context_vector, which lives in the
# same reference module as SimpleAttention), then reaches for the reference SimpleAttention
# through what the re-run left in the notebook's globals
BORROWED = (
    "def SimpleAttention(*args, **kwargs):\n"
    "    context_vector\n"
    "    return reference_namespace['SimpleAttention'](*args, **kwargs)\n"
)


def test_partial_credit_does_not_hand_out_the_exercise_under_test(tmp_path, submission_writer):
    submission_writer(
        tmp_path,
        "borrowed-reference",
        "fail",
        replace={"context_vector": BROKEN, "SimpleAttention": BORROWED},
    )
    (submission,) = grade([tmp_path], Limits(timeout=10, memory_mb=512), workers=1).submissions
    statuses = {g.exercise: (g.status, g.points) for g in submission.exercises}
    assert statuses["context_vector"] == ("missing", 0)
    assert statuses["SimpleAttention"] in (("error", 0), ("failed", 0))
    assert submission.points == 5  # attention_scores and softmax only


UNFINISHED_SOFTMAX = "def softmax(scores, dim=-1):\n    raise NotImplementedError()\n"
WRONG_SOFTMAX = "def softmax(scores, dim=-1):\n    return scores.exp()\n"
ATTENTION = ALTERNATIVES["SimpleAttention"]  # calls the notebook's softmax
# names of built-ins bound at the top of the notebook: the reference placed for fair credit
# must not find them (nor any other name of the student's)
SHADOWS = "max = 0\nlen = 'mine'\ntuple = list\nrange = None\nsum = None\n"


def test_fair_credit_for_an_unfinished_or_wrong_dependency_whatever_names_the_notebook_binds(
    tmp_path, submission_writer
):
    submission_writer(
        tmp_path,
        "softmax-unfinished",
        "pass",
        replace={"softmax": UNFINISHED_SOFTMAX, "SimpleAttention": ATTENTION},
    )
    submission_writer(
        tmp_path,
        "softmax-wrong-builtins-shadowed",
        "pass",
        replace={"softmax": WRONG_SOFTMAX, "SimpleAttention": ATTENTION},
        add=(SHADOWS,),
    )
    batch = grade([tmp_path], Limits(timeout=10, memory_mb=512), workers=1)
    for submission in batch.submissions:
        grades = {g.exercise: g for g in submission.exercises}
        assert grades["SimpleAttention"].status == "passed", (submission.submission, grades)
        assert "once `softmax` is fixed" in grades["SimpleAttention"].feedback
        assert grades["softmax"].points == 0
