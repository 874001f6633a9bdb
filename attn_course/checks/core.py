"""The data that learner checks and the grader share: cases, outcomes, verdicts.

A check is three steps, split so the grader can run the middle one in a sandbox:

1. ``Exercise.make_cases(generator)`` builds the inputs (in the checker's or grader's process).
2. ``run_case(obj, case, forbidden)`` calls the learner's function or class on one case
   (in the learner's kernel for ``check``; in the isolated student process for the grader).
   It returns an ``Outcome`` made only of plain data and tensors.
3. ``Exercise.judge(cases, outcomes)`` compares with ``attn_course.reference`` and diagnoses the
   mistake (always in the checker's or grader's own process).

``Case`` and ``Outcome`` hold only tensors, numbers, strings, None, tuples, lists and dicts with
string keys, so they can cross a process boundary without pickle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

STATUSES = ("passed", "failed", "error", "timeout", "missing", "forbidden", "invalid")


@dataclass(frozen=True)
class Case:
    """One call of the learner's code on fixed inputs.

    For a function: ``obj(*args, **kwargs)``. For a class (``init_args`` not None):
    ``module = obj(*init_args)``, then ``module.load_state_dict(state_dict)`` when given, then
    ``module(*args, **kwargs)``.
    """

    label: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    init_args: tuple | None = None
    state_dict: dict[str, torch.Tensor] | None = None


@dataclass
class Outcome:
    """What one call gave: its output, or the error it raised, and the forbidden ops it reached."""

    output: Any = None
    error: str | None = None
    forbidden: tuple[str, ...] = ()


@dataclass
class Verdict:
    """The judgement of one exercise. ``status`` is one of ``STATUSES``; ``message`` names the
    mistake in words; ``detail`` shows expected against actual on a small case."""

    exercise: str
    status: str
    message: str
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


class _ForbiddenOpRecorder(TorchDispatchMode):
    """Records every ATen operator whose name contains one of ``fragments``.

    Works at the dispatcher level, so ``torch.softmax``, ``Tensor.softmax``, ``F.softmax``,
    ``nn.Softmax``, ``log_softmax(...).exp()`` and any alias of them are all seen alike.
    """

    def __init__(self, fragments: Sequence[str], seen: list[str]) -> None:
        super().__init__()
        self.fragments = tuple(fragments)
        self.seen = seen

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.__name__  # e.g. "_softmax.default"
        if any(fragment in name for fragment in self.fragments) and name not in self.seen:
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


class _ForbiddenFunctionRecorder(TorchFunctionMode):
    """Records every torch function (Python API level) whose name contains one of ``fragments``.

    Some built-ins leave no trace of their own at the ATen level: on CPU,
    ``F.scaled_dot_product_attention`` decomposes into ordinary ops before dispatch. This mode
    sees the call itself, however it was reached (``F.``, ``torch._C._nn.``, an alias, a module
    such as ``nn.MultiheadAttention`` calling ``F.multi_head_attention_forward``).
    """

    def __init__(self, fragments: Sequence[str], seen: list[str]) -> None:
        super().__init__()
        self.fragments = tuple(fragments)
        self.seen = seen

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")  # e.g. "scaled_dot_product_attention"
        if any(fragment in name for fragment in self.fragments) and name not in self.seen:
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


@contextmanager
def record_forbidden(fragments: Sequence[str]) -> Iterator[list[str]]:
    """Inside the block, collect the names of torch functions and ATen ops matching
    ``fragments`` into the list (function names like ``softmax``, op names like
    ``_softmax.default``)."""
    seen: list[str] = []
    if not fragments:
        yield seen
        return
    with _ForbiddenFunctionRecorder(fragments, seen), _ForbiddenOpRecorder(fragments, seen):
        yield seen


def run_case(obj: Callable, case: Case, forbidden: Sequence[str] = ()) -> Outcome:
    """Call the learner's ``obj`` on ``case`` and return what happened (never raises).

    The learner's code gets copies of the case's tensors, so an in-place slip cannot change
    the inputs that ``judge`` later recomputes the expected output from.
    """
    args, kwargs = _copy(case.args), _copy(case.kwargs)
    try:
        with record_forbidden(forbidden) as seen, torch.no_grad():
            if case.init_args is None:
                output = obj(*args, **kwargs)
            else:
                module = obj(*case.init_args)
                if case.state_dict is not None:
                    module.load_state_dict(case.state_dict)
                output = module(*args, **kwargs)
        return Outcome(output=_plain(output), forbidden=tuple(seen))
    except Exception as error:  # the learner's code may raise anything
        return Outcome(error=f"{type(error).__name__}: {error}")


def _plain(value: Any) -> Any:
    """Keep tensors (detached, contiguous, on CPU) and plain data; describe anything else."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().contiguous()
    if isinstance(value, tuple | list):
        return type(value)(_plain(v) for v in value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return f"<{type(value).__name__}>"


def _copy(value: Any) -> Any:
    """Clone the tensors inside tuples, lists and dicts; leave everything else as it is."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, tuple | list):
        return type(value)(_copy(v) for v in value)
    if isinstance(value, dict):
        return {key: _copy(v) for key, v in value.items()}
    return value
