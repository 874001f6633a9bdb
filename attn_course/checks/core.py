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

STATUSES = (
    "passed", "failed", "error", "timeout", "missing", "forbidden", "refused", "invalid"
)  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One call of the learner's code on fixed inputs.

    For a function: ``obj(*args, **kwargs)``. For a class (``init_args`` not None):
    ``module = obj(*init_args)``, then the weights of ``state_dict`` when given (loaded by name;
    parameters and buffers of the module's own beyond them are left alone), ``module.eval()``,
    then ``module(*args, **kwargs)``.
    """

    label: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    init_args: tuple | None = None
    state_dict: dict[str, torch.Tensor] | None = None


@dataclass
class Outcome:
    """What one call gave: its output, or the error it raised, and the forbidden ops it reached.

    ``largest``: the number of elements of the largest tensor any torch op made during the call
    (views and in-place results made no new memory and are not counted). ``widest_reduction``:
    the most elements a reduction (max, sum, logsumexp, ...) folded into one of its results.
    Both are measured by ``record_sizes`` around the call alone (0 when nothing was recorded):
    building a module and loading its weights are not counted.

    Class cases only: ``unset`` names the module's parameters that the case's weights did not
    set (they keep their random initial values); ``unstable`` is True when a second call on the
    same inputs, in eval mode, gave another output; ``training_error`` is what a forward and
    ``backward()`` in training mode raised. ``modified`` names the inputs (``"arg 0"``, ...,
    or a keyword) that the call changed in place.
    """

    output: Any = None
    error: str | None = None
    forbidden: tuple[str, ...] = ()
    largest: int = 0
    widest_reduction: int = 0
    modified: tuple[str, ...] = ()
    unset: tuple[str, ...] = ()
    unstable: bool = False
    training_error: str | None = None


@dataclass
class Verdict:
    """The judgement of one exercise. ``status`` is one of ``STATUSES``; ``message`` names the
    mistake in words; ``detail`` shows expected against actual on a small case."""

    exercise: str
    status: str
    message: str
    detail: str = ""
    case: str = ""  # the label of the case the detail shows ("" when none)

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


REDUCTIONS = frozenset(  # the ATen ops that fold many elements into one
    {"amax", "amin", "max", "min", "aminmax", "argmax", "argmin", "sum", "nansum", "mean"}
    | {"nanmean", "prod", "logsumexp", "norm", "linalg_vector_norm", "std", "var"}
)


class _SizeRecorder(TorchDispatchMode):
    """Records how large the tensors that ATen ops make are, and how wide their reductions.

    Seen at the dispatcher level, so every route to an op counts alike (``@``, ``einsum``,
    ``torch.ones``, ``Tensor.expand(...).contiguous()``, ...).
    """

    def __init__(self, sizes: dict[str, int]) -> None:
        super().__init__()
        self.sizes = sizes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        outputs = [t for t in _leaves(result) if isinstance(t, torch.Tensor)]
        if outputs and all(ret.alias_info is None for ret in func._schema.returns):
            largest = max(t.numel() for t in outputs)  # new memory: not a view, not in place
            self.sizes["largest"] = max(self.sizes["largest"], largest)
        reduced = args[0] if args else None
        if func.__name__.split(".")[0] in REDUCTIONS and outputs and torch.is_tensor(reduced):
            width = reduced.numel() // max(outputs[0].numel(), 1)
            self.sizes["widest_reduction"] = max(self.sizes["widest_reduction"], width)
        return result


@contextmanager
def record_sizes() -> Iterator[dict[str, int]]:
    """Inside the block, keep in the dict ``largest`` (the elements of the largest tensor any
    torch op made; views and in-place results are not new memory) and ``widest_reduction``
    (the most elements a reduction such as ``amax`` or ``sum`` folded into one result)."""
    sizes = {"largest": 0, "widest_reduction": 0}
    with _SizeRecorder(sizes):
        yield sizes


def measured(value: object) -> bool:
    """Whether ``value``, an ``Outcome.largest`` or ``widest_reduction`` (from a sandbox it
    may be anything), is a size that was measured: a positive int, not a bool."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, tuple | list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch ops on one thread inside the block: the cases are small, and on a busy
    machine waking more threads for each small op costs more than the op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class CheckFailure(Exception):
    """Raised by the check itself (not the learner's code), with a message for the learner."""


def run_case(obj: Callable, case: Case, forbidden: Sequence[str] = ()) -> Outcome:
    """Call the learner's ``obj`` on ``case`` and return what happened (never raises).

    The learner's code gets copies of the case's tensors, so an in-place slip cannot change
    the inputs that ``judge`` later recomputes the expected output from; the copies are
    compared with the originals afterwards (``Outcome.modified``). A class is built, given the
    case's weights, put in eval mode (dropout off) and called twice; then it runs once more in
    training mode with a backward pass, as it will when it is trained.
    """
    with one_thread():
        return _run_case(obj, case, forbidden)


def _run_case(obj: Callable, case: Case, forbidden: Sequence[str]) -> Outcome:
    args, kwargs = _copy(case.args), _copy(case.kwargs)
    seen: list[str] = []  # kept when the call raises: a forbidden built-in still counts
    module, unset = None, ()
    try:
        with record_forbidden(forbidden) as seen, torch.no_grad():
            if case.init_args is not None:  # built outside record_sizes: tables and buffers
                module, unset = _build(obj, case)  # made once in __init__ are not the call's
            with record_sizes() as sizes:
                output = (obj if module is None else module)(*args, **kwargs)
        with torch.no_grad():  # a module must give the same output twice (dropout off)
            again = output if module is None else module(*_copy(case.args), **_copy(case.kwargs))
        outcome = Outcome(
            output=_plain(output),
            forbidden=tuple(seen),
            modified=_modified(case, args, kwargs),
            unset=unset,
            unstable=not _identical(output, again),
            **sizes,
        )
    except Exception as error:  # the learner's code may raise anything
        return Outcome(error=f"{type(error).__name__}: {error}", forbidden=tuple(seen))
    if module is not None:
        outcome.training_error = _train(module, case)
    return outcome


def _build(obj: Callable, case: Case) -> tuple[torch.nn.Module, tuple[str, ...]]:
    """The learner's module with the case's weights, in eval mode, and the names of its
    parameters that those weights did not set."""
    module = obj(*case.init_args)
    unset: tuple[str, ...] = ()
    if case.state_dict is not None:
        result = module.load_state_dict(_copy(case.state_dict), strict=False)
        if result.unexpected_keys:
            raise CheckFailure(_unloadable(module, case, result.unexpected_keys))
        own = module.state_dict(keep_vars=True)
        loaded = {id(t) for name, t in own.items() if name not in result.missing_keys}
        parameters = dict(module.named_parameters(remove_duplicate=False))
        unset = tuple(
            name
            for name in result.missing_keys
            if name in parameters and id(parameters[name]) not in loaded
        )
    return module.eval(), unset


def _unloadable(module: torch.nn.Module, case: Case, names: Sequence[str]) -> str:
    theirs = [name for name in module.state_dict() if name not in case.state_dict]
    text = (
        f"the check gives the weights by the exercise's names, and the module has no "
        f"parameter called {names_list(names)}"
    )
    if theirs:
        text += f" (it has {names_list(theirs)} instead)"
    return (
        f"{text}. Keep the layers' names as the exercise gives them, or convert the given "
        "weights to your layout in a load_state_dict pre-hook "
        "(module._register_load_state_dict_pre_hook)."
    )


def names_list(names: Sequence[str], most: int = 6) -> str:
    """The names in backticks, comma-separated; past ``most``, how many more."""
    shown = ", ".join(f"`{name}`" for name in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _train(module: torch.nn.Module, case: Case) -> str | None:
    """Run the module once in training mode and backpropagate; what it raised, if anything."""
    args = tuple(
        t.detach().clone().requires_grad_() if torch.is_tensor(t) and t.is_floating_point() else t
        for t in _copy(case.args)
    )
    try:
        with torch.enable_grad():
            module.train()
            outputs = [
                t for t in _leaves(module(*args, **_copy(case.kwargs))) if torch.is_tensor(t)
            ]
            loss = sum(t.float().sum() for t in outputs if t.requires_grad)
            if torch.is_tensor(loss):
                loss.backward()
    except Exception as error:  # the learner's code may raise anything
        return f"{type(error).__name__}: {error}"
    finally:
        module.eval()
    return None


def _modified(case: Case, args: tuple, kwargs: dict) -> tuple[str, ...]:
    """The names of the inputs that differ from the case's originals after the call."""
    named = [(f"arg {i}", a, b) for i, (a, b) in enumerate(zip(case.args, args, strict=True))]
    named += [(key, value, kwargs.get(key)) for key, value in case.kwargs.items()]
    return tuple(name for name, original, copy in named if not _identical(copy, original))


def _identical(actual: Any, expected: Any) -> bool:
    """Equal tensors (NaN equal to NaN, same shape and dtype), item by item in tuples."""
    if isinstance(expected, tuple | list):
        return (
            isinstance(actual, tuple | list)
            and len(actual) == len(expected)
            and all(_identical(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if not torch.is_tensor(expected):
        return not torch.is_tensor(actual)
    if not torch.is_tensor(actual) or actual.shape != expected.shape:
        return False
    if actual.dtype != expected.dtype:
        return False
    if expected.is_floating_point():
        return bool(((actual == expected) | (actual.isnan() & expected.isnan())).all())
    return torch.equal(actual, expected)


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
