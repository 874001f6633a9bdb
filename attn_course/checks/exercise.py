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

from attn_course.checks.core import Case, CheckFailure, Outcome, Verdict, names_list

COMMON_HINTS = (  # (fragment of an error message, advice), for every exercise
    (
        "unexpected keyword argument 'mask'",
        "the check passes the mask by keyword, `mask=...`: keep the parameter's name `mask` "
        "as in the given signature",
    ),
    (
        "size mismatch",
        "a layer has another shape than the exercise's: build the layers with the sizes the "
        "exercise gives, the check loads its weights into them",
    ),
)


UNSTABLE = (  # the run keeps no record of why, so both causes are named
    "a second call with the same input gave a different output (dropout left on, or state "
    "such as a cache kept between calls). In eval mode the output must depend on the input "
    "alone: use nn.Dropout layers or F.dropout(x, p, training=self.training), which "
    "module.eval() switches off, and make any cache inside forward, new for each call."
)


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
    message to advice, ``arg_names`` name the positional inputs when a case is shown,
    ``init_names`` the constructor's arguments of a class. ``diagnose(case, output)`` may name
    a mistake from the form of a wrong output alone, before the known mistakes are tried (None:
    it cannot). ``uses`` names other
    exercises whose learner versions this one may call (``check`` says when one of them fails).
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
    init_names: tuple[str, ...] = ()
    diagnose: Callable[[Case, Any], str | None] | None = None
    uses: tuple[str, ...] = ()

    def make_cases(self, generator: torch.Generator) -> list[Case]:
        return self.cases(generator)

    def judge(self, cases: Sequence[Case], outcomes: Sequence[Outcome]) -> Verdict:
        """Compare every outcome with the reference and name the mistake, if it is a known one."""
        forbidden = sorted({name for outcome in outcomes for name in outcome.forbidden})
        if forbidden:
            message = self.forbidden_message or "uses a built-in that this exercise forbids"
            return Verdict(self.name, "forbidden", message, f"seen: {', '.join(forbidden)}")

        for case, outcome in zip(cases, outcomes, strict=True):
            modified = _strings(outcome.modified)
            if modified and outcome.error is None:
                return self._modified_verdict(case, modified)

        for case, outcome in zip(cases, outcomes, strict=True):  # right or wrong the first time
            if outcome.error is None and outcome.unstable is True:
                return self._failed(UNSTABLE, case, self.expected(case), outcome)

        failures = []  # (case, expected, outcome)
        for case, outcome in zip(cases, outcomes, strict=True):
            expected = self.expected(case)
            if outcome.error is not None or not same(outcome.output, expected):
                failures.append((case, expected, outcome))
        if not failures:
            return self._training_verdict(cases, outcomes)

        wrong = [(c, e, o) for c, e, o in failures if o.error is None]
        for case, expected, outcome in wrong if self.diagnose is not None else ():
            diagnosis = _try(lambda c, o=outcome: self.diagnose(c, o.output), case)
            if isinstance(diagnosis, str):
                return self._failed(diagnosis, case, expected, outcome)
        best, best_matches = self._best_mistake(cases, outcomes, wrong)
        if best is not None:
            case, expected, outcome = min(best_matches, key=lambda f: _size(f[1]))
            return self._failed(best.message, case, expected, outcome)

        errors = [(c, o) for c, _, o in failures if o.error is not None]
        if errors:
            return self._error_verdict(errors, len(cases))
        case, expected, outcome = min(wrong, key=lambda f: _size(f[1]))
        message = describe(outcome.output, expected, case)
        unset = _strings(outcome.unset)
        if unset and message.startswith(("wrong values", "returns inf")):
            message += (
                f" — the check did not set your module's parameters {names_list(unset)}: it loads "
                "only the exercise's weights, so a layer of your own keeps random values"
            )
        return self._failed(message, case, expected, outcome)

    def _best_mistake(
        self, cases: Sequence[Case], outcomes: Sequence[Outcome], wrong: list[tuple]
    ) -> tuple[Mistake | None, list[tuple]]:
        """The known mistake that explains the most failing cases (and its matches); among
        equals, the one that also agrees with the learner on the most other cases."""
        found = []  # (mistake, its matches)
        for mistake in self.mistakes:
            matches = [
                (c, e, o)
                for c, e, o in wrong
                if not same(o.output, e, check_dtype=False)
                and same(o.output, _try(mistake.output, c), check_dtype=False)
            ]
            if matches:
                found.append((mistake, matches))
        most = max((len(matches) for _, matches in found), default=0)
        found = [(mistake, matches) for mistake, matches in found if len(matches) == most]
        if len(found) <= 1:
            return found[0] if found else (None, [])
        failing = {id(c) for c, _, _ in wrong}
        others = [(c, o) for c, o in zip(cases, outcomes, strict=True) if id(c) not in failing]

        def agreement(mistake: Mistake) -> int:
            return sum(
                o.error is None and same(o.output, _try(mistake.output, c), check_dtype=False)
                for c, o in others
            )

        return max(found, key=lambda pair: agreement(pair[0]))  # the first among equals

    def constructor(self, case: Case) -> str:
        """How the case builds the module, as code: ``FeedForward(d_model=4, d_ff=8)``."""
        values = case.init_args or ()
        names = list(self.init_names) + [""] * len(values)
        parts = [f"{n}={v!r}" if n else repr(v) for n, v in zip(names, values, strict=False)]
        return f"{self.name}({', '.join(parts)})"

    def _failed(self, message: str, case: Case, expected: Any, outcome: Outcome) -> Verdict:
        built = self.constructor(case) if case.init_args is not None else ""
        detail = show(case, expected, outcome, self.arg_names, built)
        return Verdict(self.name, "failed", message, detail, case.label)

    def _inputs(self, case: Case) -> str:
        built = self.constructor(case) if case.init_args is not None else ""
        return f"case '{case.label}'\n{describe_inputs(case, self.arg_names, built)}"

    def _modified_verdict(self, case: Case, modified: Sequence[str]) -> Verdict:
        names = [
            self.arg_names[int(n[4:])] if n.startswith("arg ") and n[4:].isdigit()
            and int(n[4:]) < len(self.arg_names) else n
            for n in modified
        ]  # fmt: skip
        message = (
            f"modifies its input {names_list(names)} in place (an in-place operation such as `-=`, "
            "`/=`, `+=` or `.exp_()` on it): the caller's tensor changes under their feet, and "
            "in training autograd may fail. Compute into a new tensor instead "
            "(`x = x - m`, `.exp()`); functions must not modify their inputs."
        )
        return Verdict(self.name, "failed", message, self._inputs(case), case.label)

    def _training_verdict(self, cases: Sequence[Case], outcomes: Sequence[Outcome]) -> Verdict:
        for case, outcome in zip(cases, outcomes, strict=True):
            error = outcome.training_error
            if isinstance(error, str):
                first_line = error.splitlines()[0] if error else error
                message = (
                    "right values, but fails in training: forward and backward() raised "
                    + first_line
                )
                if "inplace" in error or "in-place" in error:
                    message += (
                        " — an in-place operation (`+=`, `masked_fill_`, `.exp_()`, …) "
                        "overwrote a tensor that autograd still needs: write `x = x + …`"
                    )
                return Verdict(self.name, "failed", message, self._inputs(case), case.label)
        labels = "; ".join(case.label for case in cases)
        return Verdict(self.name, "passed", f"passed all {len(cases)} cases: {labels}")

    def _error_verdict(self, errors: list[tuple[Case, Outcome]], n_cases: int) -> Verdict:
        case, outcome = errors[0]
        not_implemented = all(o.error.startswith("NotImplementedError") for _, o in errors)
        if not_implemented and len(errors) == n_cases:
            return Verdict(
                self.name, "error", "not implemented yet (it raises NotImplementedError)"
            )
        prefix = f"{CheckFailure.__name__}: "
        message = outcome.error.removeprefix(prefix)
        if not outcome.error.startswith(prefix):
            message = f"raised {outcome.error}"
        if len(errors) < n_cases:
            message = f"works on some cases but on '{case.label}' {message}"
        hints = [
            hint
            for fragment, hint in (*self.error_hints, *COMMON_HINTS)
            if fragment in outcome.error
        ]
        if hints:
            message += f" — {hints[0]}"
        return Verdict(self.name, "error", message, self._inputs(case), case.label)


def _strings(value: Any) -> tuple[str, ...]:
    """``value`` if it is a tuple or list of strings (an outcome from a sandbox may hold
    anything), else nothing."""
    if isinstance(value, tuple | list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return ()


def reference_output(module_class: type[torch.nn.Module], case: Case) -> Any:
    """What the reference ``module_class`` returns on a class case (its own weights from
    ``case.state_dict``; building it leaves the global random state untouched)."""
    with torch.random.fork_rng(devices=[]):
        module = module_class(*case.init_args)
    if case.state_dict is not None:
        module.load_state_dict(case.state_dict)
    module.eval()
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
    item). With ``check_dtype=False`` a 0/1 float mask equals a bool one with the same values."""
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
    if expected.dtype == torch.bool and not ((actual == 0) | (actual == 1)).all():
        return False  # only a 0/1 mask of another dtype equals a bool one
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


def describe_inputs(case: Case, arg_names: Sequence[str] = (), built: str = "") -> str:
    """Shapes and values of a case's inputs, one per line (small tensors in full); ``built``
    is how a class case builds its module (``MultiHeadAttention(d_model=4, num_heads=2)``)."""
    parts = [f"{name} = {_format(value)}" for name, value in _named_inputs(case, arg_names)]
    if built:
        weights = "the check's weights" if case.state_dict is not None else "its own weights"
        parts.insert(0, f"module: {built}, with {weights}, in eval mode")
    return "\n".join(parts)


def show(
    case: Case, expected: Any, outcome: Outcome, arg_names: Sequence[str] = (), built: str = ""
) -> str:
    """Inputs, expected and actual output of one case, for the learner to compare."""
    return (
        f"case '{case.label}'\n{describe_inputs(case, arg_names, built)}\n"
        f"expected: {_format(expected)}\n"
        f"got:      {_format(outcome.output)}"
    )


def _named_inputs(case: Case, arg_names: Sequence[str]) -> list[tuple[str, Any]]:
    names = list(arg_names) + [f"arg {i}" for i in range(len(arg_names), len(case.args))]
    return list(zip(names, case.args, strict=False)) + list(case.kwargs.items())


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
