"""What only a check in the learner's own kernel can add to a verdict: how to rebuild the case
that failed, which other function of the learner's is to blame, and a note on slow code.

(The grader judges hidden cases in its own process and adds none of these.)
"""

from __future__ import annotations

import dis
import sys
import types
from collections.abc import Callable

import torch

from attn_course.checks.core import Case, Verdict
from attn_course.checks.exercise import Exercise

SLOW_SECONDS = 5.0  # a check's calls but the first (which warms torch up) together; the model
# solutions take under 0.3 s even on a busy machine


def rebuild_case(exercise: Exercise, seed: int, label: str) -> Case:
    """The case called ``label`` among the cases the check drew with ``seed``."""
    cases = exercise.make_cases(torch.Generator().manual_seed(seed))
    for case in cases:
        if case.label == label:
            return case
    raise ValueError(
        f"{exercise.name} has no case {label!r} (its cases: {[c.label for c in cases]})"
    )


def rebuild_hint(exercise: Exercise, seed: int, label: str) -> str:
    """Code that rebuilds the case ``label`` of the check drawn with ``seed`` and calls the
    learner's code on it, for the learner to copy into a cell."""
    get = f"case = rebuild_case({exercise.name!r}, seed={seed}, label={label!r})"
    if rebuild_case(exercise, seed, label).init_args is None:
        call = f"{exercise.name}(*case.args, **case.kwargs)"
    else:
        call = (
            f"module = {exercise.name}(*case.init_args)\n"
            "module.load_state_dict(case.state_dict, strict=False)  # the check's weights\n"
            "module.eval()\n"
            "module(*case.args, **case.kwargs)"
        )
    return f"rebuild this case:\n{learner_import('rebuild_case')}\n{get}\n{call}"


def learner_import(*names: str) -> str:
    """The import line of ``names`` from ``attn_course.checks``, each of which must be in its
    ``LEARNER_API`` (what the grader lets a notebook import)."""
    from attn_course.checks import LEARNER_API  # here: the package imports this module

    unknown = [name for name in names if name not in LEARNER_API]
    if unknown:
        raise ValueError(f"not in attn_course.checks.LEARNER_API: {unknown}")
    return f"from attn_course.checks import {', '.join(names)}"


def refusal_warnings() -> list[str]:
    """One ⚠️ line for each construct the grader would refuse in the code this IPython kernel
    has run (its input history, ``In``: what a check can see of the notebook), naming the
    input's number and the line; none outside IPython. The grader refuses a whole notebook
    for one of them, so a check says it even when it passes."""
    try:
        from IPython import get_ipython
    except ImportError:
        return []
    shell = get_ipython()
    if shell is None:
        return []
    inputs = shell.user_ns.get("In") or shell.history_manager.input_hist_parsed
    cells = [(number, code) for number, code in enumerate(inputs) if number and code]
    from attn_course.grader import static  # reads code only: light, and nothing to run

    return [
        f"⚠️ the grader would refuse this notebook (0 points): `{violation.construct}` in "
        f"In [{violation.cell}], line {violation.line}: {violation.reason} "
        "(if that cell is gone, restart the kernel and run all to check again)"
        for violation in static.violations(cells)
    ]


def slow_note(seconds: float) -> str:
    """The note a passing but slow check gets: its calls took ``seconds`` in all (the first,
    warming up, left out), and whole-tensor code is faster than Python loops."""
    return (
        f"note: correct, but slow: its calls took {seconds:.1f} s, where the model solution "
        "takes a fraction of a second. Python loops over single rows or queries are "
        "slow; work on whole tensors (or whole blocks) at a time."
    )


def blame(exercise: Exercise, obj: Callable, run: Callable[[str, Callable], Verdict]) -> str:
    """If ``obj`` calls the learner's own version of an exercise it ``uses`` and that version
    fails its check, say so ("" otherwise). ``run(name, fn)`` checks ``fn`` as ``name``."""
    namespace = _namespace(obj)
    called = _names_reached(obj, namespace)
    for name in exercise.uses:
        helper = namespace.get(name)
        if name not in called or not callable(helper):
            continue
        verdict = run(name, helper)
        if verdict.status in ("failed", "error", "forbidden", "invalid"):
            first_line = verdict.message.splitlines()[0].rstrip(".")
            return (
                f"this probably fails because your `{name}` is wrong: `{exercise.name}` calls "
                f"it, and its own check fails ({first_line}). Fix `{name}` first."
            )
    return ""


def _names_reached(obj: Callable, namespace: dict, depth: int = 3) -> set[str]:
    """The global names ``obj`` loads, and those loaded by the functions and classes of the
    learner's own namespace that it reaches, up to ``depth`` calls deep: ``GreedyDecoder``
    reaches ``GroupedQueryAttention`` through ``TinyLanguageModel``."""
    reached: set[str] = set()
    frontier = [obj]
    for _ in range(depth):
        names = set().union(*(_names_called(f) for f in frontier)) - reached
        reached |= names
        frontier = [
            namespace[name]
            for name in names
            if callable(namespace.get(name))
            and getattr(namespace[name], "__module__", None) == getattr(obj, "__module__", "")
        ]
    return reached


def _namespace(obj: Callable) -> dict:
    if isinstance(obj, types.FunctionType):
        return obj.__globals__
    module = sys.modules.get(getattr(obj, "__module__", ""), None)
    return vars(module) if module is not None else {}


_GLOBAL_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME"})


def _names_called(obj: Callable) -> set[str]:
    """The global names the code of ``obj`` (a function, or a class's own methods, with the
    functions and classes nested in them) loads. Attribute names (``torch.softmax``,
    ``x.softmax``) are not global names, though ``code.co_names`` lists them too."""
    if isinstance(obj, type):
        functions = [
            getattr(value, "__func__", value)
            for klass in obj.__mro__
            if klass.__module__ == obj.__module__
            for value in vars(klass).values()
        ]
    else:
        functions = [obj]
    codes = [f.__code__ for f in functions if isinstance(f, types.FunctionType)]
    names: set[str] = set()
    while codes:
        code = codes.pop()
        names.update(i.argval for i in dis.get_instructions(code) if i.opname in _GLOBAL_LOADS)
        codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return names
