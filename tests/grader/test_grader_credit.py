"""The reference code placed for fair credit defines the failed dependencies and never the
exercise being judged, nor anything that holds it."""

from __future__ import annotations

import pytest

from attn_course import reference
from attn_course.checks import EXERCISES
from attn_course.grader.credit import reference_piece


@pytest.mark.parametrize("under_test", EXERCISES)
def test_no_piece_defines_the_exercise_under_test(under_test):
    for name in reference.__all__:
        if name == under_test:
            continue
        piece = reference_piece([name], under_test)
        if piece is None:
            continue
        namespace: dict = {}
        exec(compile(piece.source, "<reference>", "exec"), namespace)
        assert name in namespace
        assert under_test not in namespace, (name, under_test)


def test_a_piece_defines_what_the_dependencies_need():
    piece = reference_piece(["split_heads", "merge_heads"], "MultiHeadAttention")
    namespace: dict = {}
    exec(compile(piece.source, "<reference>", "exec"), namespace)
    assert namespace["split_heads"] is not reference.split_heads  # a fresh copy
    assert "scaled_dot_product_attention" not in namespace  # only what they reach


def test_a_dependency_that_needs_the_exercise_gets_no_piece():
    assert reference_piece(["softmax"], "masked_softmax") is None  # softmax calls it
    assert reference_piece(["not_in_the_reference"], "softmax") is None
