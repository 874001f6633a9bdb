"""Every probe runs on right code without raising. A check goes on without a probe that raises
(on learner code that returns something odd, it must not crash), so a probe broken on every
input would hide: these tests run each one on the reference's outcomes, where none may raise."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from attn_course import reference
from attn_course.checks import EXERCISES, run_case
from attn_course.checks.exercise import Probe, Trial, probe_errors_raised


def reference_run(name: str, seed: int):
    """The exercise, its cases drawn with ``seed`` and the reference's outcomes on them."""
    exercise = EXERCISES[name]
    cases = exercise.make_cases(torch.Generator().manual_seed(seed))
    outcomes = [run_case(getattr(reference, name), case, exercise.forbidden) for case in cases]
    return exercise, cases, outcomes


@pytest.mark.parametrize("name", EXERCISES)
def test_every_probe_runs_on_the_references_outcomes_without_raising(name):
    exercise, cases, outcomes = reference_run(name, seed=0)
    runs = {case.label: (case, outcome) for case, outcome in zip(cases, outcomes, strict=True)}
    for probe in exercise.all_probes():  # each, whatever cases it is meant for
        for case, outcome in zip(cases, outcomes, strict=True):
            probe.check(Trial(case, outcome, exercise.expected(case), runs))  # raises: fails
    with probe_errors_raised():
        assert exercise.judge(cases, outcomes).passed


def broken(t: Trial) -> str:
    raise RuntimeError("a probe with a bug")


def test_a_probe_that_raises_is_skipped_by_a_check_and_shown_by_the_tests():
    exercise, cases, outcomes = reference_run("softmax", seed=0)
    exercise = dataclasses.replace(exercise, probes=(Probe("broken", broken, "right"),))
    assert exercise.judge(cases, outcomes).passed
    with probe_errors_raised(), pytest.raises(RuntimeError, match="a probe with a bug"):
        exercise.judge(cases, outcomes)
    assert exercise.judge(cases, outcomes).passed  # and only inside the block
