"""Learner checks: ``check(fn)`` tests an exercise on fresh random cases and names the mistake.

```python
from attn_course.checks import check
check(softmax)                 # the exercise is found from the name
check("softmax", my_softmax)   # or named explicitly
```

A passing check prints one line; a failing one prints what went wrong, in words, with expected
against actual on a small case, and raises ``AssertionError`` (so an nbgrader grade cell scores
zero). The registry ``EXERCISES`` (name -> ``Exercise``: cases, points, forbidden built-ins,
known mistakes) and ``ASSIGNMENTS`` (assignment id -> its exercise names, in order) are what the
grader uses too; points live only here.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable

import torch

from attn_course.checks import a01, a02, a03, a04, a05, a06, advice
from attn_course.checks.core import Case, Outcome, Verdict, record_forbidden, run_case
from attn_course.checks.exercise import Exercise, Mistake

EXERCISES: dict[str, Exercise] = {
    exercise.name: exercise
    for module in (a01, a02, a03, a04, a05, a06)
    for exercise in module.EXERCISES
}
ASSIGNMENTS: dict[str, tuple[str, ...]] = {
    module.ASSIGNMENT: tuple(exercise.name for exercise in module.EXERCISES)
    for module in (a01, a02, a03, a04, a05, a06)
}

# What a learner's notebook may import from here: the grader's static rule allows exactly these
# names (``attn_course.grader.static``), and the advice a check prints imports only these.
LEARNER_API: tuple[str, ...] = ("check", "rebuild_case")

__all__ = [
    "ASSIGNMENTS",
    "EXERCISES",
    "LEARNER_API",
    "Case",
    "Exercise",
    "Mistake",
    "Outcome",
    "Verdict",
    "check",
    "format_verdict",
    "rebuild_case",
    "record_forbidden",
    "run_case",
    "run_check",
]


def run_check(name: str, obj: Callable, seed: int | None = None) -> Verdict:
    """All three steps of a check in this process: cases, the learner's calls, the judgement.

    ``seed`` fixes the random cases (tests); None draws fresh ones. A failing verdict ends with
    code that rebuilds the case it shows; a slow pass gets a note.
    """
    exercise = _exercise(name)
    seed = secrets.randbits(63) if seed is None else seed
    cases = exercise.make_cases(torch.Generator().manual_seed(seed))
    outcomes, seconds = [], []
    for case in cases:  # run_case runs each call on one thread
        start = time.perf_counter()
        outcomes.append(run_case(obj, case, exercise.forbidden))
        seconds.append(time.perf_counter() - start)
    verdict = exercise.judge(cases, outcomes)
    if verdict.case:
        hint = advice.rebuild_hint(exercise, seed, verdict.case)
        verdict = dataclasses.replace(verdict, detail=f"{verdict.detail}\n{hint}".strip())
    if verdict.passed and sum(seconds[1:]) > advice.SLOW_SECONDS:  # the first call warms up
        verdict = dataclasses.replace(verdict, detail=advice.slow_note(sum(seconds[1:])))
    return verdict


def rebuild_case(name: str, seed: int, label: str) -> Case:
    """The case ``label`` of the check of ``name`` drawn with ``seed`` (a failing check prints
    the call to make)."""
    return advice.rebuild_case(_exercise(name), seed, label)


def _lesson_tasks() -> dict[str, Exercise]:
    from attn_course.checks.lessons import TASKS  # lessons import this package's modules

    return TASKS


def _exercise(name: str) -> Exercise:
    """The assignment exercise or the lesson task called ``name``."""
    if name in EXERCISES:
        return EXERCISES[name]
    if name in _lesson_tasks():
        return _lesson_tasks()[name]
    known = ", ".join(EXERCISES)
    raise ValueError(f"no exercise is called {name!r}; the exercises are: {known}")


def format_verdict(verdict: Verdict) -> str:
    """The verdict as the learner reads it: a first line with ✅ or ❌, then the detail."""
    mark = "✅" if verdict.passed else "❌"
    text = f"{mark} {verdict.exercise}: {verdict.message}"
    return f"{text}\n{verdict.detail}" if verdict.detail else text


def check(name_or_obj: str | Callable, obj: Callable | None = None) -> None:
    """Check the learner's function or class; print the verdict, raise AssertionError if an
    assignment's exercise is wrong (a lesson's task only prints)."""
    if obj is None:
        obj = name_or_obj
        name = getattr(obj, "__name__", None)
        if not isinstance(name, str):
            raise TypeError(f"check() needs a function or class, got {obj!r}")
    else:
        name = name_or_obj
    verdict = run_check(name, obj)
    if not verdict.passed:
        blame = advice.blame(_exercise(name), obj, run_check)
        verdict = dataclasses.replace(verdict, detail=f"{blame}\n{verdict.detail}".strip())
    print(format_verdict(verdict))
    lesson_task = name in _lesson_tasks()  # a lesson notebook is never graded
    for warning in () if lesson_task else advice.refusal_warnings():  # warns only
        print(warning)
    if not verdict.passed and not lesson_task:  # a lesson is run top to bottom
        # and nothing grades it: only an assignment's check stops the notebook
        raise AssertionError(f"{verdict.exercise}: {verdict.message}")
