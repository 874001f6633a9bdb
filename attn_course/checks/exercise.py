"""What an exercise is to the checks: its cases, its expected outputs, its known mistakes.

``Exercise.judge`` needs nothing but the cases and the outcomes: it recomputes the expected
output of every case with ``attn_course.reference``, and, where the learner's output differs,
recomputes what each known mistake would have returned. The first mistake whose output the
learner's output matches names the diagnosis; otherwise the verdict says what differs (shape,
dtype, NaN, values). Messages describe mistakes in words and show tensors, never code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from attn_course.checks.core import Case, Outcome, Verdict


@dataclass(frozen=True)
class Mistake:
    """A known mistake: ``message`` names it in words; ``output(case)`` is what code with this
    mistake returns on ``case`` (it may raise where such code would raise too)."""

    message: str
    output: Callable[[Case], Any]


@dataclass(frozen=True)
class Exercise:
    """One graded name of an assignment (a function or an ``nn.Module`` class).

    ``cases(generator)`` draws the inputs, ``expected(case)`` is the reference output,
    ``forbidden`` lists fragments of the names of torch functions or ATen ops the learner's code
    must not reach (see ``record_forbidden``), ``error_hints`` maps a fragment of an error
    message to advice, ``arg_names`` name the positional inputs when a case is shown.
    """

    name: str
    assignment: str
    points: int
    cases: Callable[[torch.Generator], list[Case]]
    expected: Callable[[Case], Any]
    mistakes: tuple[Mistake, ...] = ()
    forbidden: tuple[str, ...] = ()
    forbidden_message: str = ""
    error_hints: tuple[tuple[str, str], ...] = ()
    arg_names: tuple[str, ...] = ()

    def make_cases(self, generator: torch.Generator) -> list[Case]:
        return self.cases(generator)

    def judge(self, cases: Sequence[Case], outcomes: Sequence[Outcome]) -> Verdict:
        """Compare every outcome with the reference and name the mistake, if it is a known one."""
        forbidden = sorted({name for outcome in outcomes for name in outcome.forbidden})
        if forbidden:
            message = self.forbidden_message or "uses a built-in that this exercise forbids"
            return Verdict(self.name, "forbidden", message, f"seen: {', '.join(forbidden)}")

        failures = []  # (case, expected, outcome)
        for case, outcome in zip(cases, outcomes, strict=True):
            expected = self.expected(case)
            if outcome.error is not None or not same(outcome.output, expected):
                failures.append((case, expected, outcome))
        if not failures:
            labels = "; ".join(case.label for case in cases)
            return Verdict(self.name, "passed", f"passed all {len(cases)} cases: {labels}")

        wrong = [(c, e, o) for c, e, o in failures if o.error is None]
        best, best_matches = None, []
        for mistake in self.mistakes:  # the mistake that explains the most failing cases
            matches = [
                (c, e, o)
                for c, e, o in wrong
                if not same(o.output, e, check_dtype=False)
                and same(o.output, _try(mistake.output, c), check_dtype=False)
            ]
            if len(matches) > len(best_matches):
                best, best_matches = mistake, matches
        if best is not None:
            case, expected, outcome = min(best_matches, key=lambda f: _size(f[1]))
            return Verdict(
                self.name, "failed", best.message, show(case, expected, outcome, self.arg_names)
            )

        errors = [(c, o) for c, _, o in failures if o.error is not None]
        if errors:
            return self._error_verdict(errors, len(cases))
        case, expected, outcome = min(wrong, key=lambda f: _size(f[1]))
        return Verdict(
            self.name,
            "failed",
            describe(outcome.output, expected, case),
            show(case, expected, outcome, self.arg_names),
        )

    def _error_verdict(self, errors: list[tuple[Case, Outcome]], n_cases: int) -> Verdict:
        case, outcome = errors[0]
        not_implemented = all(o.error.startswith("NotImplementedError") for _, o in errors)
        if not_implemented and len(errors) == n_cases:
            return Verdict(
                self.name, "error", "not implemented yet (it raises NotImplementedError)"
            )
        message = f"raised {outcome.error}"
        if len(errors) < n_cases:
            message = f"works on some cases but on '{case.label}' {message}"
        hints = [hint for fragment, hint in self.error_hints if fragment in outcome.error]
        if hints:
            message += f" — {hints[0]}"
        return Verdict(
            self.name,
            "error",
            message,
            f"case '{case.label}'\n{describe_inputs(case, self.arg_names)}",
        )


def reference_output(module_class: type[torch.nn.Module], case: Case) -> Any:
    """What the reference ``module_class`` returns on a class case (its own weights from
    ``case.state_dict``; building it leaves the global random state untouched)."""
    with torch.random.fork_rng(devices=[]):
        module = module_class(*case.init_args)
    if case.state_dict is not None:
        module.load_state_dict(case.state_dict)
    with torch.no_grad():
        return module(*case.args, **case.kwargs)


def _try(function: Callable[[Case], Any], case: Case) -> Any:
    try:
        return function(case)
    except Exception:  # this mistake would have raised on this case: nothing to compare
        return _RAISED


_RAISED = object()


def _tolerance(dtype: torch.dtype) -> dict[str, float]:
    if dtype == torch.float64:
        return {"rtol": 1e-6, "atol": 1e-8}
    return {"rtol": 1e-3, "atol": 1e-4}  # float32 summed in another order, ±1e4 scores


def same(actual: Any, expected: Any, check_dtype: bool = True) -> bool:
    """Whether ``actual`` equals ``expected`` (tensors close, NaN equal to NaN; tuples item by
    item). With ``check_dtype=False`` a float mask equals a bool one with the same values."""
    if expected is _RAISED:
        return False
    if isinstance(expected, tuple | list):
        return (
            isinstance(actual, tuple | list)
            and len(actual) == len(expected)
            and all(same(a, e, check_dtype) for a, e in zip(actual, expected, strict=True))
        )
    if not isinstance(actual, torch.Tensor) or actual.shape != expected.shape:
        return False
    if check_dtype and actual.dtype != expected.dtype:
        return False
    if expected.dtype == torch.bool or not expected.is_floating_point():
        return torch.equal(actual.to(expected.dtype), expected)
    if not actual.is_floating_point() and actual.dtype != torch.bool:
        return False
    actual = actual.to(expected.dtype)
    return torch.allclose(actual, expected, equal_nan=True, **_tolerance(expected.dtype))


def describe(actual: Any, expected: Any, case: Case) -> str:
    """Say in words how ``actual`` differs from ``expected`` (no known mistake matched)."""
    if isinstance(expected, tuple):
        if not isinstance(actual, tuple | list) or len(actual) != len(expected):
            kind = type(actual).__name__
            return f"should return a tuple of {len(expected)} tensors, returned {kind}"
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            if not same(a, e):
                return f"item {index} of the returned tuple: {describe(a, e, case)}"
    if not isinstance(actual, torch.Tensor):
        return f"should return a tensor, returned {type(actual).__name__}"
    if actual.shape != expected.shape:
        return (
            f"wrong shape on case '{case.label}': expected {tuple(expected.shape)}, "
            f"got {tuple(actual.shape)}"
        )
    if actual.dtype != expected.dtype:
        return f"wrong dtype on case '{case.label}': expected {expected.dtype}, got {actual.dtype}"
    finite = torch.isfinite(actual).all() if actual.is_floating_point() else True
    if not finite and torch.isfinite(expected).all():
        return f"returns inf or NaN on case '{case.label}' where every value should be finite"
    return f"wrong values on case '{case.label}'"


def describe_inputs(case: Case, arg_names: Sequence[str] = ()) -> str:
    """Shapes and values of a case's inputs, one per line (small tensors in full)."""
    parts = [f"{name} = {_format(value)}" for name, value in _named_inputs(case, arg_names)]
    return "\n".join(parts)


def show(case: Case, expected: Any, outcome: Outcome, arg_names: Sequence[str] = ()) -> str:
    """Inputs, expected and actual output of one case, for the learner to compare."""
    return (
        f"case '{case.label}'\n{describe_inputs(case, arg_names)}\n"
        f"expected: {_format(expected)}\n"
        f"got:      {_format(outcome.output)}"
    )


def _named_inputs(case: Case, arg_names: Sequence[str]) -> list[tuple[str, Any]]:
    names = list(arg_names) + [f"arg {i}" for i in range(len(arg_names), len(case.args))]
    named = list(zip(names, case.args, strict=False))
    named += list(case.kwargs.items())
    if case.init_args is not None:
        named.insert(0, ("constructed with", case.init_args))
    return named


def _size(value: Any) -> int:
    if isinstance(value, tuple | list):
        return sum(_size(v) for v in value)
    return value.numel() if isinstance(value, torch.Tensor) else 1


def _format(value: Any, max_numel: int = 48) -> str:
    """A tensor as torch prints it (4 decimals), only its first 2-D slice when it is large."""
    if isinstance(value, tuple | list):
        return "(" + ",\n".join(_format(v, max_numel) for v in value) + ")"
    if not isinstance(value, torch.Tensor):
        return repr(value)
    shown, note = value, ""
    if value.numel() > max_numel and value.dim() > 2:
        index = (0,) * (value.dim() - 2)
        shown, note = value[index], f"  (the slice [{', '.join(map(str, index))}] of it)"
    with torch._tensor_str.printoptions(precision=4, sci_mode=False, linewidth=100):
        text = repr(shown)
    return f"{text}, shape {tuple(value.shape)}, {value.dtype}{note}"
