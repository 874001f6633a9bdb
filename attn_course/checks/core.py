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

import functools
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

    ``largest``: the number of elements of the largest tensor any torch op made or wrote (with
    ``out=`` or in place) during the call (views made no new memory and are not counted).
    ``widest_reduction``: the most input elements one result of an op other than a pointwise
    one or data movement can depend on (a max or sum over a row, a sort, a matmul, ...).
    Both are measured by ``record_sizes`` around the call alone (0 when nothing was recorded):
    building a module and loading its weights are not counted. ``exported``: the most elements
    of one tensor copied out of torch (to numpy or a Python list), where neither is measured.
    ``allocated``: the elements of all the tensors torch ops made or wrote during the call,
    summed (what a decoder that re-reads its whole sequence at every step pays).

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
    exported: int = 0
    allocated: int = 0
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
    # a stable id of the named mistake (``softmax.no-max-shift``); "" when none was named
    mistake: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


class _DispatchRecorder(TorchDispatchMode):
    """A dispatch mode that only looks at the ops it passes on. torch wraps a mode's
    ``__torch_dispatch__`` so that ``torch.compile`` never traces into it, at the cost of
    importing ``torch._dynamo`` (seconds, at a check's first op) and a Python frame hook at
    every op (about a third of a recorded call's time). A recorder runs only eager code,
    which needs neither."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False


class _ForbiddenOpRecorder(_DispatchRecorder):
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


# Ways out of torch: what is computed from their results (in numpy, in Python) no recorder sees.
EXPORTS = frozenset({"numpy", "__array__", "tolist", "__dlpack__"})


class _ExportRecorder(TorchFunctionMode):
    """Records the most elements of one tensor copied out of torch (``Tensor.numpy``,
    ``np.asarray(tensor)``, ``tolist``, DLPack) into ``sizes["exported"]``."""

    def __init__(self, sizes: dict[str, int]) -> None:
        super().__init__()
        self.sizes = sizes

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in EXPORTS and args and torch.is_tensor(args[0]):
            self.sizes["exported"] = max(self.sizes["exported"], args[0].numel())
        return func(*args, **(kwargs or {}))


# Ops that only move, copy or make data: each element of their result comes from one element
# of an input (or from none), so they fold nothing together, however long the row they touch.
MOVEMENT = frozenset(
    {"cat", "stack", "copy", "copy_", "clone", "_to_copy", "lift_fresh_copy", "contiguous"}
    | {"index", "index_select", "gather", "take", "index_put", "index_put_", "index_copy"}
    | {"index_copy_", "index_fill", "index_fill_", "scatter", "scatter_", "slice_scatter"}
    | {"select_scatter", "diagonal_scatter", "masked_scatter", "masked_select", "fill", "fill_"}
    | {"zero_", "zeros", "zeros_like", "ones", "ones_like", "empty", "empty_like", "full"}
    | {"full_like", "new_zeros", "new_ones", "new_empty", "new_full", "empty_strided", "arange"}
    | {"scalar_tensor", "repeat", "flip", "roll", "constant_pad_nd", "tril", "triu", "narrow_copy"}
    | {"unfold_copy", "view_copy", "expand_copy", "permute_copy", "transpose_copy", "detach_copy"}
    | {"_unsafe_view", "set_", "resize_", "split_with_sizes_copy", "unbind_copy", "nonzero"}
)


class _SizeRecorder(_DispatchRecorder):
    """Records how large the tensors that ATen ops make or write are, and how many elements
    one of their results can depend on.

    Seen at the dispatcher level, so every route to an op counts alike (``@``, ``einsum``,
    ``torch.ones``, ``Tensor.expand(...).contiguous()``, a result written with ``out=`` or in
    place into a buffer made earlier, ...).
    """

    def __init__(self, sizes: dict[str, int]) -> None:
        super().__init__()
        self.sizes = sizes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        outputs = [t for t in _leaves(result) if isinstance(t, torch.Tensor)]
        makes, folds = _op_kind(func)
        if outputs and makes:
            largest = max(t.numel() for t in outputs)
            self.sizes["largest"] = max(self.sizes["largest"], largest)
            if "allocated" in self.sizes:  # run_case's count (record_sizes keeps none)
                self.sizes["allocated"] += sum(t.numel() for t in outputs)
        if outputs and folds:
            width = _fan_in(folds, [*args, *(kwargs or {}).values()], outputs[0])
            self.sizes["widest_reduction"] = max(self.sizes["widest_reduction"], width)
        return result


# matrix products: a result element depends on one row of the first matrix (``addmm``'s and
# ``baddbmm``'s first input is the term added) and one column of the second
MATRIX_PRODUCTS = frozenset({"mm", "bmm", "mv", "dot", "vdot", "addmm", "baddbmm", "addbmm"})


@functools.cache
def _op_kind(func: Any) -> tuple[bool, str]:
    """Whether ``func`` makes or writes memory (its results are not views), and how it may
    fold its inputs: "" (pointwise, data movement or a view), "matrix product", "reduction"
    or "other". Read once per op from its schema and tags."""
    returns = func._schema.returns
    makes = all(r.alias_info is None or r.alias_info.is_write for r in returns)
    name = func.__name__.split(".")[0]
    if not makes or torch.Tag.pointwise in func.tags or name in MOVEMENT:
        return makes, ""
    if name in MATRIX_PRODUCTS:
        return makes, "add matrix product" if name.startswith("add") else "matrix product"
    return makes, "reduction" if torch.Tag.reduction in func.tags else "other"


def _fan_in(folds: str, inputs: Sequence[Any], output: torch.Tensor) -> int:
    """How many elements of one input one element of an op's result may depend on, at most
    (ops on masks, booleans, fold nothing that counts): for a reduction, how many input
    elements each result stands for; for a matrix product, the length of the summed
    dimension; for any other op (cumsum, sort, topk, a convolution, ...: listed or not) the
    longest dimension of its inputs."""
    tensors = [t for t in _leaves(list(inputs)) if isinstance(t, torch.Tensor)]
    tensors = [t for t in tensors if t.dtype != torch.bool]
    if not tensors:
        return 0
    if folds.endswith("matrix product"):
        first = tensors[1] if folds.startswith("add") and len(tensors) > 2 else tensors[0]
        return first.shape[-1] if first.dim() else 1
    if folds == "reduction":
        return tensors[0].numel() // max(output.numel(), 1)
    return max(max(t.shape, default=1) for t in tensors)


@contextmanager
def record_sizes() -> Iterator[dict[str, int]]:
    """Inside the block, keep in the dict ``largest`` (the elements of the largest tensor any
    torch op made or wrote; views are not new memory) and ``widest_reduction`` (the most input
    elements one result of an op other than a pointwise one or data movement can depend on:
    a max, a sum, a sort, a matmul over a whole row count its length)."""
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

    Every call of the learner's code happens inside one recorded window, and so does turning
    what it returned into plain values (``plain``: private copies, exact types only): nothing
    the learner wrote runs after the recorders close, and nothing it keeps can change the
    output that is judged.
    """
    with one_thread():
        return _run_case(obj, case, forbidden)


def _run_case(obj: Callable, case: Case, forbidden: Sequence[str]) -> Outcome:
    sizes = {"largest": 0, "widest_reduction": 0, "exported": 0, "allocated": 0}
    foreign = _foreign_modes()
    calls = None
    with record_forbidden(forbidden) as seen, _ExportRecorder(sizes):
        stacks = _mode_stacks()
        try:
            if foreign:  # they would run before the recorders see an op, and on the copies
                raise CheckFailure(f"a torch mode was active when the check began: {foreign}")
            calls = _calls(obj, case, _SizeRecorder(sizes))
        except Exception as error:  # the learner's code may raise anything
            outcome = Outcome(error=describe(error))
        if _mode_stacks() != stacks:
            calls, outcome = None, Outcome(error="the call changed torch's mode stack")
    if calls is not None:  # compared outside the window: the grader's own ops, on copies
        output, again, given, unset, training_error = calls
        outcome = Outcome(
            output=output,
            modified=_modified(case, *given),
            unset=unset,
            unstable=not _identical(output, again),
            training_error=training_error,
        )
    outcome.forbidden = tuple(seen)
    outcome.largest, outcome.widest_reduction = sizes["largest"], sizes["widest_reduction"]
    outcome.exported, outcome.allocated = sizes["exported"], sizes["allocated"]
    return outcome


def _calls(obj: Callable, case: Case, recorder: _SizeRecorder) -> tuple:
    """The calls of one case, inside the recorders of forbidden ops and exports: the output
    and that of a second call (plain copies), the inputs the learner's code was given, the
    parameters the case's weights did not set, and what training raised (a module is trained
    only on a case with a float input: a decoder of token ids is never trained through its
    output). Sizes are measured (``recorder``) around the first call alone, the one whose
    output is judged: not what the grader does itself (building a module: tables and buffers
    made once in ``__init__`` are not the call's memory; copying the outputs), nor the second
    call and training, which repeat it (and a recorded op costs several times an op)."""
    args, kwargs = _copy(case.args), _copy(case.kwargs)
    module, unset = None, ()
    with torch.no_grad():
        if case.init_args is not None:
            module, unset = _build(obj, case)
        call = obj if module is None else module
        with recorder:
            output = call(*args, **kwargs)
        output = plain(output)
        # a module gives the same output twice (dropout off, no state kept between calls)
        again = output if module is None else plain(module(*_copy(case.args), **_copy(case.kwargs)))
    trains = any(torch.is_tensor(t) and t.is_floating_point() for t in case.args)
    training_error = None if module is None or not trains else _train(module, case)
    return output, again, (args, kwargs), unset, training_error


def describe(error: BaseException) -> str:
    """``TypeError: message`` for an exception, whatever its ``__str__`` does."""
    try:
        return f"{type(error).__name__}: {error}"
    except BaseException:  # an exception whose message cannot be made
        return "an exception whose message could not be read"


def _foreign_modes() -> str:
    """The torch function and dispatch modes active now, other than torch's own default
    device (``torch.set_default_device``), by class name ("" when none)."""
    from torch.utils._device import DeviceContext
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    modes = [
        *torch.overrides._get_current_function_mode_stack(),
        *_get_current_dispatch_mode_stack(),
    ]
    return ", ".join(type(mode).__name__ for mode in modes if type(mode) is not DeviceContext)


def _mode_stacks() -> tuple[int, int]:
    """How many torch function modes and dispatch modes are active (the recorders among them)."""
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    return torch._C._len_torch_function_stack(), len(_get_current_dispatch_mode_stack())


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
        return describe(error)
    finally:
        module.eval()
    return None


def _modified(case: Case, args: tuple, kwargs: dict) -> tuple[str, ...]:
    """The names of the inputs that differ from the case's originals after the call."""
    named = [(f"arg {i}", a, b) for i, (a, b) in enumerate(zip(case.args, args, strict=True))]
    named += [(key, value, kwargs.get(key)) for key, value in case.kwargs.items()]
    return tuple(name for name, original, copy in named if not _identical(copy, original))


def _identical(actual: Any, expected: Any) -> bool:
    """Equal tensors (NaN equal to NaN, same shape and dtype), item by item in tuples; with
    torch's own C-level functions (``_equal``, ...), whatever the learner's code reassigned."""
    if type(expected) in (tuple, list):
        return (
            type(actual) in (tuple, list)
            and len(actual) == len(expected)
            and all(_identical(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if type(expected) is not torch.Tensor or type(actual) is not torch.Tensor:
        return type(actual) is not torch.Tensor and type(expected) is not torch.Tensor
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        return False
    if expected.is_floating_point():
        both_nan = _logical_and(_isnan(actual), _isnan(expected))
        return bool(_all(_logical_or(_eq(actual, expected), both_nan)))
    return _equal(actual, expected)


# torch's own methods, taken before any learner code runs (``torch.Tensor``'s attributes can
# be reassigned; those of its C base class cannot)
_detach, _cpu, _clone = (
    torch._C.TensorBase.detach,
    torch._C.TensorBase.cpu,
    torch._C.TensorBase.clone,
)
_eq, _isnan, _all = torch._C.TensorBase.eq, torch._C.TensorBase.isnan, torch._C.TensorBase.all
_logical_and, _logical_or = torch._C.TensorBase.logical_and, torch._C.TensorBase.logical_or
_equal = torch._C._VariableFunctions.equal
PLAIN_DEPTH = 8  # tuples and lists nested deeper are described, not kept


def plain(value: Any, depth: int = 0) -> Any:
    """A private copy of ``value`` made only of plain data: a tensor of exactly
    ``torch.Tensor`` (dense, detached, contiguous, on CPU), None, and exactly bool, int,
    float, str, tuple and list; anything else (a tensor subclass, whose methods are the
    learner's code, an int subclass, a lazy object) is described by its type's name, so it
    never runs past this point and never matches an expected value."""
    kind = type(value)
    if kind is torch.Tensor:
        if value.layout != torch.strided:
            return f"<{value.layout} tensor>"
        return _clone(_cpu(_detach(value)), memory_format=torch.contiguous_format)
    if kind in (tuple, list) and depth < PLAIN_DEPTH:
        return kind(plain(item, depth + 1) for item in value)
    if value is None or kind in (bool, int, float, str):
        return value
    return f"<{kind.__name__}>"


def _copy(value: Any) -> Any:
    """Clone the tensors inside tuples, lists and dicts; leave everything else as it is."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, tuple | list):
        return type(value)(_copy(v) for v in value)
    if isinstance(value, dict):
        return {key: _copy(v) for key, v in value.items()}
    return value
