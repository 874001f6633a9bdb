"""Ungraded tasks inside the lessons: ``check(fn)`` in a lesson notebook judges them.

Each module ``lNN.py`` here holds the tasks of lesson NN as ``TASKS``, a tuple of
``Exercise`` objects (``assignment`` is the lesson's notebook name, ``points`` 0). They use the
same machinery as the assignments' exercises, but the grader never sees them: ``TASKS`` is
apart from ``attn_course.checks.EXERCISES``.
"""

from __future__ import annotations

import importlib
import pkgutil

from attn_course.checks.exercise import Exercise


def _collect() -> dict[str, Exercise]:
    tasks: dict[str, Exercise] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for task in module.TASKS:
            if task.name in tasks:
                raise ValueError(f"two lesson tasks are called {task.name!r}")
            tasks[task.name] = task
    return tasks


TASKS: dict[str, Exercise] = _collect()
