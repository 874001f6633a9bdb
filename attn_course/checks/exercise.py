"""What an exercise is to the checks: its cases, its expected outputs, its known mistakes.

``Exercise.judge`` needs nothing but the cases and the outcomes: it recomputes the expected
output of every case with ``attn_course.reference``, and, where the learner's output differs,
recomputes what each known mistake would have returned. The first mistake whose output the
learner's output matches names the diagnosis; otherwise the verdict says what differs (shape,
dtype, NaN, values). Messages describe mistakes in words and show tensors, never code.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    """A known mistake, as data: ``message`` names it in words, ``id`` is its stable name in
    grades and reports (``softmax.no-max-shift``), ``knobs`` are the arguments of the
    exercise's ``variant`` function that make it. ``output(case)``, where given, is what code
    with this mistake returns on ``case`` instead (it may raise where such code would)."""

    message: str
    output: Callable[[Case], Any] | None = None
    id: str = ""
    knobs: tuple[tuple[str, Any], ...] = ()


def catalogue(exercise: str, ids: str, *mistakes: Mistake) -> tuple[Mistake, ...]:
    """``mistakes`` with the stable ids ``ids`` (space-separated, in order, for those that
    have none), each prefixed with the exercise's name."""
    names = iter(ids.split())
    unnamed = sum(not m.id for m in mistakes)
    if unnamed != len(ids.split()):
        raise ValueError(f"{exercise}: {len(ids.split())} ids for {unnamed} mistakes")
    return tuple(
        m if m.id else dataclasses.replace(m, id=f"{exercise}.{next(names)}") for m in mistakes
    )


def mistake(id: str, message: str, **knobs: Any) -> Mistake:
    """A known mistake made by the exercise's variant function with ``knobs``."""
    return Mistake(message, None, id, tuple(knobs.items()))


@dataclass(frozen=True)
class Trial:
    """What a probe reads: one case, the learner's outcome on it, the reference output, and
    every case of the check with its outcome by label (a probe's derived cases among them)."""

    case: Case
    outcome: Outcome
    expected: Any
    runs: Mapping[str, tuple[Case, Outcome]]

    @property
    def output(self) -> Any:
        return self.outcome.output

    def partner(self, tag: str) -> tuple[Case, Outcome] | None:
        """The derived case ``tag`` of this case and the learner's outcome on it."""
        return self.runs.get(derived_label(self.case.label, tag))


@dataclass(frozen=True)
class Probe:
    """One rule of a check, as PyBryt's annotations have one ``check``: ``check(trial)``
    returns what is wrong in words, or None. ``when`` says which cases it reads: "always"
    (every case, before values are compared), "wrong" (a case whose values are wrong),
    "error" (a case that raised), "right" (every case, once all values are right). ``id`` is
    the stable id of the mistake it names ("" for advice that names none); ``status`` the
    verdict's status when it fires."""

    id: str
    check: Callable[[Trial], str | tuple[str, str] | None]
    when: str = "wrong"
    status: str = "failed"


@dataclass(frozen=True)
class Derivation:
    """A derived case a probe needs: ``derive(case)`` is the case changed in one known way
    (queries scaled, a future key perturbed, positions shifted; None: not for this case).
    ``make_cases`` adds it after the case, labelled ``derived_label(case.label, tag)``, so
    the grader runs it in its sandbox like any other case and a probe reads both outcomes."""

    tag: str
    derive: Callable[[Case], Case | None]


def derived_label(label: str, tag: str) -> str:
    return f"{label} [{tag}]"


def hint(fragment: str, advice: str) -> Probe:
    """Advice for an error whose message holds ``fragment`` (names no mistake)."""
    return Probe("", lambda t: advice if fragment in (t.outcome.error or "") else None, "error")


@dataclass(frozen=True)
class Exercise:
    """One graded name of an assignment (a function or an ``nn.Module`` class).

    ``cases(generator)`` draws the inputs, ``expected(case)`` is the reference output,
    ``mistakes`` the catalogue of known mistakes (``variant(case, **knobs)`` computes one),
    ``probes`` the exercise's rules (``Probe``), ``derived`` the extra cases they read.
    ``forbidden`` lists fragments of the names of torch functions or ATen ops that are
    recorded while the learner's code runs (see ``record_forbidden``; a probe fails the
    check when one is reached), ``arg_names`` name the positional inputs when a case is
    shown, ``init_names`` the constructor's arguments of a class. ``uses`` names other
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
    arg_names: tuple[str, ...] = ()
    init_names: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    probes: tuple[Probe, ...] = ()
    derived: tuple[Derivation, ...] = ()
    variant: Callable[..., Any] | None = None

    def make_cases(self, generator: torch.Generator) -> list[Case]:
        cases = []
        for case in self.cases(generator):
            cases.append(case)
            for derivation in self.derived:
                extra = derivation.derive(case)
                if extra is not None:
                    label = derived_label(case.label, derivation.tag)
                    cases.append(dataclasses.replace(extra, label=label))
        return cases

    def mistake_output(self, mistake: Mistake, case: Case) -> Any:
        """What code with ``mistake`` returns on ``case``."""
        if mistake.output is not None:
            return mistake.output(case)
        if self.variant is None:
            raise ValueError(f"{self.name}: mistake {mistake.id!r} has knobs but no variant")
        return self.variant(case, **dict(mistake.knobs))

    def full_id(self, probe_id: str) -> str:
        """A probe's id as grades carry it: the exercise's name in front of a bare one."""
        return probe_id if not probe_id or "." in probe_id else f"{self.name}.{probe_id}"

    def mistake_id(self, mistake: Mistake) -> str:
        """The mistake's stable id (one is made from its position where none was given)."""
        return mistake.id or f"{self.name}.mistake-{self.mistakes.index(mistake) + 1}"

    def all_probes(self) -> tuple[Probe, ...]:
        """The exercise's probes with those every exercise runs."""
        forbidden = (forbidden_probe(self.name, self.forbidden_message),) if self.forbidden else ()
        before = (modified_probe(self.arg_names), *BEFORE_PROBES)
        return (*forbidden, *before, *self.probes, *AFTER_PROBES)

    def judge(self, cases: Sequence[Case], outcomes: Sequence[Outcome]) -> Verdict:
        """Compare every outcome with the reference and name the mistake: the probes that
        read every case first, then, where values are wrong, the catalogue (outputs that
        match a known mistake beyond NaN), the probes, and the catalogue's matches on NaN
        alone; where the code raised, advice for the error; once every value is right, the
        probes that judge how it was computed."""
        runs = {case.label: (case, outcome) for case, outcome in zip(cases, outcomes, strict=True)}
        cache: dict[int, Any] = {}

        def trial(case: Case, outcome: Outcome) -> Trial:
            if id(case) not in cache:
                cache[id(case)] = self.expected(case)
            return Trial(case, outcome, cache[id(case)], runs)

        probes = self.all_probes()
        for probe in (p for p in probes if p.when == "always"):
            for case, outcome in zip(cases, outcomes, strict=True):
                verdict = self._fire(probe, trial(case, outcome))
                if verdict is not None:
                    return verdict

        failures = []  # trials whose outcome is wrong
        for case, outcome in zip(cases, outcomes, strict=True):
            t = trial(case, outcome)
            if outcome.error is not None or not same(outcome.output, t.expected):
                failures.append(t)
        if not failures:
            for probe in (p for p in probes if p.when == "right"):
                for case, outcome in zip(cases, outcomes, strict=True):
                    verdict = self._fire(probe, trial(case, outcome))
                    if verdict is not None:
                        return verdict
            labels = "; ".join(case.label for case in cases)
            return Verdict(self.name, "passed", f"passed all {len(cases)} cases: {labels}")

        wrong = [t for t in failures if t.outcome.error is None]
        best, matches = self._best_mistake(cases, outcomes, wrong, informative=True)
        if best is not None:
            return self._named(best, matches)
        for probe in (p for p in probes if p.when == "wrong"):
            for t in sorted(wrong, key=lambda t: _size(t.expected)):
                verdict = self._fire(probe, t)
                if verdict is not None:
                    return verdict
        best, matches = self._best_mistake(cases, outcomes, wrong, informative=False)
        if best is not None:
            return self._named(best, matches)

        errors = [t for t in failures if t.outcome.error is not None]
        if errors:
            return self._error_verdict(errors, len(cases))
        t = min(wrong, key=lambda t: _size(t.expected))
        message = describe(t.output, t.expected, t.case)
        unset = _strings(t.outcome.unset)
        if unset and message.startswith(("wrong values", "returns inf")):
            message += (
                f" — the check did not set your module's parameters {names_list(unset)}: it loads "
                "only the exercise's weights, so a layer of your own keeps random values"
            )
        return self._failed(message, t.case, t.expected, t.outcome)

    def _fire(self, probe: Probe, t: Trial) -> Verdict | None:
        message = run_probe(probe, t)
        if isinstance(message, tuple) and len(message) == 2:  # (the mistake's id, message)
            probe, message = dataclasses.replace(probe, id=message[0]), message[1]
        if not isinstance(message, str):
            return None
        probe = dataclasses.replace(probe, id=self.full_id(probe.id))
        if probe.when in ("always", "right") or t.outcome.error is not None:
            detail = (
                _sizes_detail(t.case, self.arg_names)
                if probe.when == "right"
                else (self._inputs(t.case))
            )
            if probe.status == "forbidden":
                detail = message.split("\n", 1)[1] if "\n" in message else ""
                message = message.split("\n", 1)[0]
                return Verdict(self.name, "forbidden", message, detail, mistake=probe.id)
            return Verdict(self.name, probe.status, message, detail, t.case.label, probe.id)
        verdict = self._failed(message, t.case, t.expected, t.outcome)
        return dataclasses.replace(verdict, mistake=probe.id)

    def _named(self, best: Mistake, matches: list[Trial]) -> Verdict:
        t = min(matches, key=lambda t: _size(t.expected))
        verdict = self._failed(best.message, t.case, t.expected, t.outcome)
        return dataclasses.replace(verdict, mistake=self.mistake_id(best))

    def _best_mistake(
        self,
        cases: Sequence[Case],
        outcomes: Sequence[Outcome],
        wrong: list[Trial],
        informative: bool,
    ) -> tuple[Mistake | None, list[Trial]]:
        """The known mistake that explains the most failing cases (and its matches); among
        equals, the one that also agrees with the learner on the most other cases. With
        ``informative``, a mistake counts only where it matches at least half the wrong
        cases, on some value that is finite and wrong (not on NaN or inf alone, which many
        mistakes share): a match on one case of many is left to the probes."""
        found = []  # (mistake, its matches)
        for known in self.mistakes:
            matches = []
            telling = False
            for t in wrong:
                theirs = _try(lambda c, m=known: self.mistake_output(m, c), t.case)
                if not same(t.output, t.expected, check_dtype=False) and same(
                    t.output, theirs, check_dtype=False
                ):
                    matches.append(t)
                    telling = telling or finite_difference(theirs, t.expected)
            if matches and (not informative or (telling and 2 * len(matches) >= len(wrong))):
                found.append((known, matches))
        most = max((len(matches) for _, matches in found), default=0)
        found = [(known, matches) for known, matches in found if len(matches) == most]
        if len(found) <= 1:
            return found[0] if found else (None, [])
        failing = {id(t.case) for t in wrong}
        others = [(c, o) for c, o in zip(cases, outcomes, strict=True) if id(c) not in failing]

        def agreement(known: Mistake) -> int:
            return sum(
                o.error is None
                and same(o.output, _try(lambda c: self.mistake_output(known, c), c), False)
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

    def _error_verdict(self, errors: list[Trial], n_cases: int) -> Verdict:
        t = errors[0]
        case, outcome = t.case, t.outcome
        not_implemented = all(e.outcome.error.startswith("NotImplementedError") for e in errors)
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
        for probe in (p for p in self.all_probes() if p.when == "error"):
            advice = run_probe(probe, t)
            if isinstance(advice, str):
                message += f" — {advice}"
                mistake_id = self.full_id(probe.id)
                return Verdict(
                    self.name, "error", message, self._inputs(case), case.label, mistake_id
                )
        return Verdict(self.name, "error", message, self._inputs(case), case.label)


# --- probes every exercise runs ---------------------------------------------------------------


def modified_probe(arg_names: Sequence[str]) -> Probe:
    """Fails a check whose call changed one of its inputs in place (named as the exercise
    names its arguments)."""

    def check(t: Trial) -> str | None:
        modified = _strings(t.outcome.modified)
        if not modified or t.outcome.error is not None:
            return None
        names = [
            arg_names[int(n[4:])]
            if n.startswith("arg ") and n[4:].isdigit() and int(n[4:]) < len(arg_names)
            else n
            for n in modified
        ]
        return _modified_message(names)

    return Probe("modifies-input", check, "always")


def _modified_message(modified: Sequence[str]) -> str:
    return (
        f"modifies its input {names_list(modified)} in place (an in-place operation such as `-=`, "
        "`/=`, `+=` or `.exp_()` on it): the caller's tensor changes under their feet, and "
        "in training autograd may fail. Compute into a new tensor instead "
        "(`x = x - m`, `.exp()`); functions must not modify their inputs."
    )


def _unstable(t: Trial) -> str | None:
    return UNSTABLE if t.outcome.error is None and t.outcome.unstable is True else None


def _training(t: Trial) -> str | None:
    error = t.outcome.training_error
    if not isinstance(error, str):
        return None
    first_line = error.splitlines()[0] if error else error
    message = "right values, but fails in training: forward and backward() raised " + first_line
    if "inplace" in error or "in-place" in error:
        message += (
            " — an in-place operation (`+=`, `masked_fill_`, `.exp_()`, …) "
            "overwrote a tensor that autograd still needs: write `x = x + …`"
        )
    return message


BEFORE_PROBES = (Probe("unstable", _unstable, "always"),)
AFTER_PROBES = (
    Probe("fails-in-training", _training, "right"),
    *(hint(fragment, advice) for fragment, advice in COMMON_HINTS),
)


def forbidden_probe(exercise_name: str, message: str) -> Probe:
    """Fails a check whose calls reached a forbidden built-in."""

    def check(t: Trial) -> str | None:
        seen = _strings(t.outcome.forbidden)
        if not seen:
            return None
        return f"{message or 'uses a built-in that this exercise forbids'}\nseen: {', '.join(seen)}"

    return Probe(f"{exercise_name}.forbidden-built-in", check, "always", "forbidden")


def _sizes_detail(case: Case, arg_names: Sequence[str]) -> str:
    """The case's inputs, tensors by shape only (the long ones are too large to print)."""
    names = list(arg_names) + [f"arg {i}" for i in range(len(arg_names), len(case.args))]
    lines = [f"case '{case.label}'"]
    for name, value in [*zip(names, case.args, strict=False), *case.kwargs.items()]:
        if isinstance(value, torch.Tensor):
            lines.append(f"{name}: shape {tuple(value.shape)}, {value.dtype}")
        else:
            lines.append(f"{name} = {value!r}")
    return "\n".join(lines)


def finite_difference(value: Any, expected: Any) -> bool:
    """Whether ``value`` differs from ``expected`` somewhere with a finite value (another
    shape, type or dtype counts), not only by NaN or inf."""
    if value is _RAISED:
        return False
    if isinstance(expected, tuple | list):
        if not isinstance(value, tuple | list) or len(value) != len(expected):
            return True
        return any(finite_difference(v, e) for v, e in zip(value, expected, strict=True))
    if not isinstance(value, torch.Tensor) or not isinstance(expected, torch.Tensor):
        return True
    if value.shape != expected.shape or not value.is_floating_point():
        return not same(value, expected, check_dtype=False)
    value, expected = value.double(), expected.double()
    close = torch.isclose(value, expected, rtol=1e-3, atol=1e-4, equal_nan=True)
    return bool((torch.isfinite(value) & ~close).any())


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


def run_probe(probe: Probe, t: Trial) -> Any:
    """What ``probe`` says on ``t``; None where it raises (on code that returned something
    odd: the check goes on without it), unless ``probe_errors_raised`` is on."""
    try:
        return probe.check(t)
    except Exception:
        if _RAISE_PROBE_ERRORS.get():
            raise
        return None


_RAISE_PROBE_ERRORS = contextvars.ContextVar("raise_probe_errors", default=False)


@contextlib.contextmanager
def probe_errors_raised() -> Iterator[None]:
    """Inside the block, a probe that raises makes ``judge`` raise instead of going on
    without it: a test on right code shows a broken probe, which a check would hide."""
    token = _RAISE_PROBE_ERRORS.set(True)
    try:
        yield
    finally:
        _RAISE_PROBE_ERRORS.reset(token)


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
