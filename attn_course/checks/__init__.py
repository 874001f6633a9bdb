"""Learner checks: ``check(fn)`` tests an exercise on fresh random cases and names the mistake.

```python
from attn_course.checks import check, hint
check(softmax)                 # the exercise is found from the name
check("softmax", my_softmax)   # or named explicitly
check(softmax, hint=1)         # the verdict, then the first hint (levels 1 to 3)
hint("softmax", level=2)       # hints without running the check
```

A passing check prints one line; a failing one prints what went wrong, in words, with expected
against actual on a small case, and raises ``CheckFailed``, an ``AssertionError`` (so an nbgrader
grade cell scores zero) that IPython shows as two lines under the verdict, without a traceback.
The registry ``EXERCISES`` (name -> ``Exercise``: cases, points, forbidden built-ins, known
mistakes) and ``ASSIGNMENTS`` (assignment id -> its exercise names, in order) are what the
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
from attn_course.checks.hints import HINTS, ExerciseHints, format_hints

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
LEARNER_API: tuple[str, ...] = ("check", "hint", "rebuild_case")

__all__ = [
    "ASSIGNMENTS",
    "EXERCISES",
    "HINTS",
    "LEARNER_API",
    "Case",
    "CheckFailed",
    "Exercise",
    "ExerciseHints",
    "Mistake",
    "Outcome",
    "Verdict",
    "check",
    "format_verdict",
    "hint",
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


class CheckFailed(AssertionError):
    """A check that did not pass. It is an ``AssertionError`` (an nbgrader grade cell that
    raises it scores zero); in IPython it renders as two short lines, since the verdict above
    it already says what went wrong, and a traceback into the checks would only bury it."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(f"{verdict.exercise}: {verdict.message}")
        self.verdict = verdict

    def _render_traceback_(self) -> list[str]:  # IPython's protocol: what to show instead
        name = self.verdict.exercise
        return [
            f"CheckFailed: {name} did not pass its check (the verdict above says why).",
            f"Fix {name}, run its cell, then this one. Stuck? {_hint_call(name)} gives a hint.",
        ]


def _hint_call(name: str) -> str:
    """How to ask for a hint with what the notebook already imported (``check``)."""
    return f"`check({name}, hint=1)`" if name in HINTS else "the hints"


def _name_of(name_or_obj: str | Callable) -> str:
    if isinstance(name_or_obj, str):
        return name_or_obj
    name = getattr(name_or_obj, "__name__", None)
    if not isinstance(name, str):
        raise TypeError(f"check() needs a function or class, got {name_or_obj!r}")
    return name


def hint(name_or_obj: str | Callable, level: int = 1) -> None:
    """Print hints 1 to ``level`` (1: the idea, 2: the shapes, 3: the line that usually goes
    wrong) for an exercise, given by name or by the learner's function or class."""
    name = _name_of(name_or_obj)
    if name in HINTS:
        print(format_hints(HINTS[name], level))
    elif name in _lesson_tasks():
        print(f"💡 {name} is a lesson's task: its answer is one click away, under the task")
    else:
        _exercise(name)  # raises, listing the exercises


def check(name_or_obj: str | Callable, obj: Callable | None = None, *, hint: int = 0) -> None:
    """Check the learner's function or class; print the verdict (then hints 1 to ``hint``, if
    asked), and raise ``CheckFailed`` if an assignment's exercise is wrong (a lesson's task
    only prints)."""
    if obj is None:
        obj = name_or_obj
        if isinstance(obj, str):
            raise TypeError(f"check() needs a function or class, got {obj!r}")
        name = _name_of(obj)
    else:
        name = name_or_obj
    lesson_task = name not in EXERCISES and name in _lesson_tasks()
    verdict = run_check(name, obj)
    if not verdict.passed:
        blame = advice.blame(_exercise(name), obj, run_check)
        verdict = dataclasses.replace(verdict, detail=f"{blame}\n{verdict.detail}".strip())
    print(format_verdict(verdict))
    if hint and name in HINTS:
        print(format_hints(HINTS[name], hint))
    if not lesson_task:  # lessons are not graded: what the grader refuses is no concern there
        for warning in advice.refusal_warnings():  # warns only: the check's verdict stands
            print(warning)
    if not verdict.passed and not lesson_task:  # a lesson is run top to bottom and nothing
        # grades it: only an assignment's check stops the notebook
        raise CheckFailed(verdict)
