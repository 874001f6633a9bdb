"""A failed check in a notebook: the verdict, then two lines, not a traceback into the checks."""

from __future__ import annotations

import pytest

from attn_course import reference
from attn_course.checks import CheckFailed, check


def softmax(scores, dim=-1):  # no max shift: overflows on the check's ±1e4 scores
    exp = scores.exp()
    return exp / exp.sum(dim=dim, keepdim=True)


def test_a_failed_check_raises_an_assertion_error_that_renders_as_two_short_lines(capsys):
    with pytest.raises(CheckFailed) as raised:
        check(softmax)
    assert isinstance(raised.value, AssertionError)  # an nbgrader grade cell scores zero
    assert str(raised.value).startswith("softmax: no max shift")
    first, second = raised.value._render_traceback_()
    assert first.startswith("CheckFailed: softmax did not pass")
    assert "`check(softmax, hint=1)`" in second
    assert max(len(first), len(second)) <= 92  # short enough not to wrap in a notebook
    assert capsys.readouterr().out.startswith("❌ softmax: no max shift")


def test_ipython_shows_the_verdict_and_no_frames_of_the_checks(ipython, capsys):
    code = (
        "from attn_course.checks import check\n"
        "def softmax(scores, dim=-1):\n"
        "    return scores.exp() / scores.exp().sum(dim=dim, keepdim=True)\n"
        "check(softmax)\n"
    )
    result = ipython.run_cell(code, store_history=True)
    shown = capsys.readouterr().out
    assert isinstance(result.error_in_exec, CheckFailed)  # the cell still fails
    assert shown.startswith("❌ softmax: no max shift")
    assert "case '" in shown and "expected:" in shown
    assert "Traceback" not in shown and "checks/__init__.py" not in shown
    assert shown.rstrip().splitlines()[-2].startswith("CheckFailed: softmax did not pass")


def test_a_passing_check_prints_one_line_and_raises_nothing(ipython, capsys):
    ipython.user_ns["softmax"] = reference.softmax
    result = ipython.run_cell("from attn_course.checks import check\ncheck('softmax', softmax)")
    assert result.success
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("✅ softmax: passed all")


def test_a_lesson_task_prints_its_verdict_and_lets_the_lesson_run_on(capsys):
    def most_similar_key(query, keys):
        return (keys @ query).argmin()

    check(most_similar_key)  # raises nothing
    printed = capsys.readouterr().out
    assert printed.startswith("❌ most_similar_key: returns the key with the lowest")


def test_check_needs_a_function_or_class():
    with pytest.raises(TypeError, match="needs a function or class"):
        check("softmax")
