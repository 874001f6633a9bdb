"""What a submission's code may contain, decided by reading it (in the grader's process).

A student's code runs in the sandbox, where it could switch off anything that records what it
does. So a first rule is read here, where it cannot interfere (the sandbox and the judging do
not rest on it: it only removes routes that no honest notebook takes):

- ``violations``: over **all** code cells. Imports only from ``allowed_modules()`` (and from
  ``attn_course.checks`` only the learner's API, ``attn_course.checks.LEARNER_API``); no
  dunder attributes but the harmless ones (``__name__``, ``__doc__``, ``__init__``, the
  methods a class may define), no private attributes except on ``self`` and ``cls``; none of
  the built-ins that run strings or hand out namespaces (``DENIED_NAMES``); ``getattr``,
  ``setattr`` and ``delattr`` only with a name that is a constant, or that starts with a
  constant no refused name starts with; none of the attributes that lead to files, processes,
  frames, torch's machinery, other modules, or code run from strings (``DENIED_ATTRIBUTES``,
  ``denied_modules()``); no dunder names reached through data (``match`` class patterns,
  three-argument ``type``, format strings, string annotations, functional ``TypedDict``,
  ``NamedTuple`` and ``Enum``). ``get_ipython`` only in the calls that notebook magics and
  shell lines become, with constant arguments. One violation anywhere refuses the notebook:
  such a cell could change what the sandbox reports for any exercise.
- ``analyse``: one parse per cell gives the ``Analysis``: the violations, and for each
  exercise the top-level statements its definition reaches by name (transitively), the
  forbidden built-ins among them (``torch.softmax``, ...) and the other exercises it uses. A
  scratch cell comparing with ``torch.softmax`` is not reached, so it is allowed.

Everything here is linear in the size of the code and iterative (no recursion over the tree):
a cell too deeply nested for Python's own parser to build its tree is refused with a note.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import gc
import importlib.util
import re
import string
import sys
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

BASE_MODULES = frozenset(
    {"__future__", "math", "random", "itertools", "functools", "collections", "typing"}
    | {"dataclasses", "time", "torch", "torch.nn", "torch.nn.functional", "torch.nn.init"}
    | {"matplotlib", "matplotlib.pyplot", "attn_course.checks"}
    | {"warnings", "copy", "operator", "enum", "abc", "string", "re", "textwrap"}
    | {"collections.abc"}
)
# allowed where the grader's runtime (and so the sandbox's) has them installed
OPTIONAL_MODULES = {
    "numpy": ("numpy", "numpy.linalg", "numpy.random"),
    "einops": ("einops", "einops.layers.torch"),
    "tqdm": ("tqdm", "tqdm.auto", "tqdm.notebook"),
    "IPython": ("IPython.display",),
    "ipywidgets": ("ipywidgets",),
}
DENIED_NAMES = frozenset(
    {"exec", "eval", "compile", "vars", "globals", "locals", "open", "breakpoint", "input"}
    | {"memoryview", "exit", "quit"}
)
# getattr and friends: allowed when the name they are given is known (see ``_name_argument``)
NAME_FUNCTIONS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
# what may only be called directly (so that the rule sees the name or class it is given)
NAME_CALLS = NAME_FUNCTIONS - {"hasattr"} | {"attrgetter", "methodcaller"}
DENIED_ATTRIBUTES = frozenset(
    # torch's machinery: loading code or pickles, compilers, dispatch and function modes
    {"hub", "jit", "library", "overrides", "ops", "package", "multiprocessing", "distributed"}
    | {"utils", "fx", "export", "serialization", "classes", "compile", "load", "from_file"}
    | {"record_forbidden", "record_sizes", "run_case"}
    # frames and code objects, the way from any function to its module's globals
    | {"f_globals", "f_locals", "f_back", "f_builtins", "f_code", "tb_frame", "tb_next"}
    | {"gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "co_code"}
    # strings evaluated as code: annotations (typing, functools), generated source (dataclasses)
    | {"get_type_hints", "ForwardRef", "singledispatch", "singledispatchmethod"}
    | {"make_dataclass"}
    # attributes read from a name held as data (format strings); functions called from a table
    | {"Formatter", "dispatch_table", "showwarning", "formatwarning"}
    # numpy: unpickling, raw memory, compilers, file readers that unpickle, its test runner
    | {"fromfile", "memmap", "ctypeslib", "ctypes", "lib", "f2py", "distutils"}
    | {"DataSource", "core", "compat"}
    # tqdm's monitor thread, thread and process pools, command line; ipywidgets' traitlets
    # import classes by name (``Instance("pkg.Class")``), and its comm channel
    | {"contrib", "cli", "TMonitor", "monitor_interval"}
    | {"traitlets", "trait_types", "import_item", "InstanceDict", "comm"}
    | {"ForwardDeclaredInstance", "ForwardDeclaredType"}
    # matplotlib imports a backend module by name (``matplotlib.use`` too, but ``use`` is
    # also the honest ``plt.style.use("ggplot")``, and an import by name hands out no module)
    | {"switch_backend"}
)
# Allowed modules re-export others (``torch.os``, ``typing.sys``, ``dataclasses.builtins``): an
# attribute named like a module outside the allow-list is refused, on any receiver but ``self``
# and ``cls`` (a student's own object holds only what the student could already reach).
_SHELL_NAMES = frozenset(
    {"get_ipython", "user_ns", "user_global_ns", "run_cell", "ex", "ev", "shell", "kernel"}
    | {"run_cell_magic", "run_line_magic", "getoutput", "system", "modules", "builtins"}
)
# method names of tensors and containers that honest code calls (x.chunk, d.copy, ...)
_METHOD_NAMES = frozenset({"chunk", "copy", "select", "trace"})
# ``model.eval()`` is everywhere in honest code; ``builtins`` (the way to the real one) is denied.
DENIED_NAME_ATTRIBUTES = DENIED_NAMES - {"eval"}
# What ``%magic``, ``%%magic`` and ``!command`` become (``notebook.python``): the only calls of
# ``get_ipython`` allowed, with constant strings only (the sandbox runs a few cell magics' bodies,
# which are checked like any cell).
SHELL_CALLS = frozenset({"run_cell_magic", "run_line_magic", "system", "getoutput"})
# the special methods a class may define and call: none changes how torch or Python's import,
# attribute look-up, pickling or garbage collection treat the object
DEFINABLE_DUNDERS = frozenset(
    {"__init__", "__post_init__", "__repr__", "__str__", "__len__", "__getitem__", "__iter__"}
    | {"__setitem__", "__contains__", "__next__", "__call__", "__eq__", "__ne__", "__lt__"}
    | {"__le__", "__gt__", "__ge__", "__hash__", "__bool__", "__enter__", "__exit__"}
    | {"__add__", "__sub__", "__mul__", "__truediv__", "__matmul__", "__neg__", "__radd__"}
    | {"__rmul__"}
)
# dunders that are plain data: read anywhere, and names a notebook may use
READABLE_DUNDERS = frozenset({"__name__", "__qualname__", "__doc__", "__module__"})
DUNDER_NAMES = frozenset({"__name__", "__doc__", "__all__", "__slots__"})
# functional forms whose field or member names become attributes (or generated source)
FUNCTIONAL_CLASSES = frozenset(
    {"TypedDict", "NamedTuple", "Enum", "IntEnum", "StrEnum", "Flag", "IntFlag"}
)
METACLASSES = frozenset({"ABCMeta", "EnumMeta", "EnumType"})
_DUNDER = re.compile(r"^__.*__$")
# the nodes the rule looks at (the others, most of a tree, are skipped at once)
_CHECKED = frozenset(
    {ast.Name, ast.Attribute, ast.Call, ast.Constant, ast.Import, ast.ImportFrom}
    | {ast.MatchClass, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef}
)


@functools.cache
def allowed_modules() -> frozenset[str]:
    """``BASE_MODULES`` and the ``OPTIONAL_MODULES`` this runtime has installed (the sandbox
    runs on the same runtime, and its zygote imports them all: ``sandbox.warm_up``)."""
    installed = {
        module
        for package, modules in OPTIONAL_MODULES.items()
        if importlib.util.find_spec(package) is not None
        for module in modules
    }
    return BASE_MODULES | installed


@functools.cache
def denied_modules() -> frozenset[str]:
    """Attribute names that lead to a module a notebook may not import (``torch.os``)."""
    allowed_roots = {name.split(".")[0] for name in allowed_modules()}
    stdlib = {name for name in sys.stdlib_module_names if not name.startswith("_")}
    return frozenset((stdlib - allowed_roots) | _SHELL_NAMES) - _METHOD_NAMES


@functools.cache
def _refused_names() -> tuple[str, ...]:
    return tuple(sorted(DENIED_ATTRIBUTES | DENIED_NAME_ATTRIBUTES | denied_modules()))


def learner_api() -> tuple[str, ...]:
    """The names a notebook may import from ``attn_course.checks`` (read lazily: this module
    is imported by the zygote, which must not load the course's checks)."""
    from attn_course.checks import LEARNER_API

    return LEARNER_API


@dataclass(frozen=True)
class Violation:
    """One construct outside the allow-list: ``cell`` is the index of its code cell, ``line``
    its line in that cell (1-based; 0: the whole cell)."""

    cell: int
    construct: str
    reason: str
    line: int = 0


@dataclass(frozen=True)
class Analysis:
    """Everything the grader reads from a submission's code, from one parse of each cell.

    ``violations``: constructs outside the allow-list, in order; ``bound``: top-level name ->
    the statements binding it; ``reached``: exercise -> the statements its definition reaches
    (empty if the notebook does not define it); ``forbidden``: exercise -> the forbidden
    built-ins among them, as snippets; ``dependencies``: exercise -> the other exercises it
    reaches without going through a third (what ``Exercise.uses`` declares)."""

    violations: tuple[Violation, ...] = ()
    bound: Mapping[str, tuple[ast.AST, ...]] = field(default_factory=dict)
    reached: Mapping[str, tuple[ast.AST, ...]] = field(default_factory=dict)
    forbidden: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def reaches(self, exercise: str, other: str) -> bool:
        """Whether ``exercise``'s definition reaches a statement binding ``other``."""
        mine = {id(statement) for statement in self.reached.get(exercise, ())}
        return any(id(statement) in mine for statement in self.bound.get(other, ()))


def analyse(
    cells: Sequence[tuple[int, str]],
    exercises: Mapping[str, Sequence[str]] | None = None,
    allowed_imports: Collection[str] = (),
) -> Analysis:
    """The ``Analysis`` of ``cells`` ((index, plain Python) pairs) for ``exercises`` (name ->
    fragments of its forbidden built-ins); ``allowed_imports``: modules an instructor allows
    on top of ``allowed_modules()``."""
    with _collector_paused():
        return _analyse(cells, exercises or {}, allowed_imports)


_pauses = {"count": 0, "enabled": False}
_pauses_lock = threading.Lock()


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused (syntax trees hold no cycles, and a large
    cell's millions of nodes would make it run again and again: three times slower); shared
    by the grader's threads, the collector runs again when the last analysis ends."""
    with _pauses_lock:
        if _pauses["count"] == 0:
            _pauses["enabled"] = gc.isenabled()
            gc.disable()
        _pauses["count"] += 1
    try:
        yield
    finally:
        with _pauses_lock:
            _pauses["count"] -= 1
            if _pauses["count"] == 0 and _pauses["enabled"]:
                gc.enable()


def _analyse(
    cells: Sequence[tuple[int, str]],
    exercises: Mapping[str, Sequence[str]],
    allowed_imports: Collection[str],
) -> Analysis:
    trees, found, free = [], {}, _FreeNames()
    allowed = allowed_modules() | frozenset(allowed_imports)
    for index, code in cells:
        tree, problem = _parse(code)
        if problem is not None:
            found.setdefault(Violation(index, *problem), None)
        if tree is None:
            continue
        trees.append(tree)
        for statement in tree.body:  # one walk of each statement serves both rules
            nodes = _nodes(statement)
            free[id(statement)] = (statement, _free_names(statement, nodes))
            for violation in _violations(nodes, index, allowed):
                found.setdefault(violation, None)
    bound = definitions(trees)
    reached_by = {name: tuple(reached(name, bound, free)) for name in exercises}
    forbidden = {
        name: tuple(forbidden_uses(reached_by[name], fragments))
        for name, fragments in exercises.items()
    }
    dependencies = {
        name: _dependencies(name, set(exercises), bound, free) for name in exercises
    }
    return Analysis(tuple(found), bound, reached_by, forbidden, dependencies)


def violations(
    cells: Sequence[tuple[int, str]], allowed_imports: Collection[str] = ()
) -> list[Violation]:
    """Everything outside the allow-list in ``cells`` ((index, plain Python) pairs), in order;
    a cell that does not parse is left to the sandbox, which reports its SyntaxError."""
    return list(analyse(cells, allowed_imports=allowed_imports).violations)


def _parse(code: str) -> tuple[ast.Module | None, tuple[str, str] | None]:
    try:
        return ast.parse(code), None
    except (SyntaxError, ValueError):
        return None, None  # it cannot run either: the sandbox reports it
    except (RecursionError, MemoryError):
        return None, ("(a cell too deeply nested to read)", _NESTED)


def _nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree``, ``tree`` first (as ``ast.walk``, without its generators)."""
    nodes, position = [tree], 0
    while position < len(nodes):
        node = nodes[position]
        position += 1
        for name in node._fields:
            value = getattr(node, name, None)
            if name == "ctx":
                continue  # Load, Store, Del: shared, and nothing to read
            if isinstance(value, ast.AST):
                nodes.append(value)
            elif isinstance(value, list):
                nodes += [item for item in value if isinstance(item, ast.AST)]
    return nodes


def _violations(nodes: list[ast.AST], index: int, allowed: frozenset[str]) -> Iterator[Violation]:
    """The violations among ``nodes`` (a statement's), and in the code they hold as strings
    (cell magics' bodies, string annotations)."""
    todo: list[tuple[list[ast.AST], int, bool]] = [(nodes, 0, False)]
    while todo:
        nodes, offset, annotation = todo.pop()
        rule = _Rule(allowed)
        for node, construct, reason in rule.walk(nodes, annotation):
            yield Violation(index, construct, reason, offset + getattr(node, "lineno", 0))
        for line, body in rule.bodies:
            parsed, problem = _parse(body)
            if problem is not None:
                yield Violation(index, *problem, offset + line)
            if parsed is not None:
                todo.append((_nodes(parsed), offset + line, False))
        for line, text in rule.annotations:  # what ``typing.get_type_hints`` would evaluate
            try:
                parsed = ast.parse(text, mode="eval")
                todo.append((_nodes(parsed), offset + line - 1, True))
            except (SyntaxError, ValueError):
                continue  # evaluating it fails the same way: no code runs
            except (RecursionError, MemoryError):
                yield Violation(index, "(an annotation too deeply nested to read)", _NESTED)


class _Rule:
    """The allow-list over one tree (``walk``); ``bodies``: the cell magics' bodies found,
    as (line, code), to be checked like cells."""

    def __init__(self, allowed: frozenset[str]) -> None:
        self.allowed = allowed
        self.bodies: list[tuple[int, str]] = []
        self.annotations: list[tuple[int, str]] = []
        self.metaclasses: set[int] = set()

    def walk(
        self, nodes: list[ast.AST], annotation: bool
    ) -> Iterator[tuple[ast.AST, str, str]]:
        """``nodes``: all of a tree's; ``annotation``: the tree is a string annotation, whose
        strings are annotations too."""
        shell, called, annotations = set(), set(), set()
        for node in nodes:
            kind = type(node)
            if kind is ast.Call:
                called.add(id(node.func))
                if _is_shell_call(node):
                    shell |= {id(node.func), id(node.func.value.func)}
            elif kind is ast.ClassDef:
                self.metaclasses |= {id(k.value) for k in node.keywords if k.arg == "metaclass"}
            elif kind in (ast.arg, ast.AnnAssign) and node.annotation is not None:
                annotations |= _strings_in(node.annotation)
            elif kind in (ast.FunctionDef, ast.AsyncFunctionDef) and node.returns:
                annotations |= _strings_in(node.returns)
            elif annotation and _is_str(node):
                annotations.add(id(node))
        for node in nodes:
            kind = type(node)
            if kind not in _CHECKED or id(node) in shell:
                continue
            if kind is ast.Constant and id(node) in annotations:
                self.annotations.append((node.lineno, node.value))
            for construct, reason in self._node(node, kind, id(node) in called):
                yield node, construct, reason

    def _node(self, node: ast.AST, kind: type, called: bool) -> Iterator[tuple[str, str]]:
        if kind is ast.Name or kind is ast.Attribute:
            name = node.id if kind is ast.Name else node.attr
            if name in NAME_CALLS and not called:
                yield name, "only called directly, with a name that is not computed"
            elif name in METACLASSES and id(node) not in self.metaclasses:
                yield name, "only as a metaclass: called, it builds a class from data"
            elif kind is ast.Name:
                yield from _name(node)
            else:
                yield from _attribute(node)
        elif kind is ast.Call:
            yield from _call(node)
            if _is_cell_magic(node):  # %%time and friends: the body is code too
                self.bodies.append((node.lineno, node.args[2].value))
        elif kind is ast.Constant:
            if isinstance(node.value, str):
                yield from _string(node.value)
        elif kind is ast.Import or kind is ast.ImportFrom:
            yield from self._import(node)
        elif kind is ast.MatchClass:
            for name in node.kwd_attrs:
                if _attribute_refused(name):
                    yield f"case ...({name}=...)", _DUNDERS
        else:
            if kind is ast.ClassDef:
                yield from _class(node)
            if _defines_dunder(node):
                yield f"def {node.name}", "it changes how Python or torch treats an object"

    def _import(self, node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str]]:
        if isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if module not in self.allowed:
                yield f"from {module} import ...", _imports(self.allowed)
                return
            for alias in node.names:
                if alias.name == "*":
                    yield f"from {module} import *", "it hides which names it brings in"
                elif module == "attn_course.checks" and alias.name not in learner_api():
                    yield f"from {module} import {alias.name}", _learner_api()
                elif _attribute_refused(alias.name) and alias.name not in self.allowed:
                    yield f"from {module} import {alias.name}", _ATTRIBUTES
                elif alias.name in ("attrgetter", "methodcaller") and alias.asname:
                    yield f"from {module} import {alias.name} as ...", _COMPUTED
        else:
            for alias in node.names:
                root = alias.name.split(".")[0]
                if alias.name not in self.allowed:
                    yield f"import {alias.name}", _imports(self.allowed)
                elif alias.asname is None and root not in self.allowed and "." in alias.name:
                    # binds the package, whose other modules are not allowed
                    yield f"import {alias.name}", f"write `import {alias.name} as ...`"


def _name(node: ast.Name) -> Iterator[tuple[str, str]]:
    name = node.id
    if name[0] != "_" and name not in DENIED_NAMES and name != "get_ipython":
        return
    if name in DENIED_NAMES or name == "get_ipython":
        yield name, "it can run code from a string or reach the sandbox's internals"
    elif (
        _DUNDER.match(name)
        and name not in DUNDER_NAMES
        and not (isinstance(node.ctx, ast.Store) and name in DEFINABLE_DUNDERS)  # __hash__ = None
    ):
        yield name, _DUNDERS


def _attribute(node: ast.Attribute) -> Iterator[tuple[str, str]]:
    name = node.attr
    receiver = node.value.id if isinstance(node.value, ast.Name) else ""
    if name in ("format", "format_map") and not _is_str(node.value):
        yield _dotted(node), "a format string held as data can read any attribute"
    elif receiver in ("self", "cls") and not _DUNDER.match(name):
        if name in DENIED_ATTRIBUTES or name in DENIED_NAME_ATTRIBUTES:  # self = torch ...
            yield _dotted(node), _ATTRIBUTES
    elif _attribute_refused(name):
        yield _dotted(node), _reason(name)


def _call(node: ast.Call) -> Iterator[tuple[str, str]]:
    called = _called_name(node.func)
    if called in NAME_FUNCTIONS and called != "hasattr":
        if len(node.args) < 2 or not _name_argument(node.args[1]):
            yield f"{called}(..., <computed name>)", _COMPUTED
    elif called in ("attrgetter", "methodcaller"):
        names = node.args if called == "attrgetter" else node.args[:1]
        constant = [arg.value for arg in names if _is_str(arg)]
        parts = [part for name in constant for part in name.split(".")]
        if not names or len(constant) < len(names) or any(map(_attribute_refused, parts)):
            yield f"{called}(<computed or refused name>)", _COMPUTED
    elif called == "type" and (len(node.args) != 1 or node.keywords):
        yield "type(name, bases, namespace)", "it builds a class from a dictionary of data"
    elif isinstance(node.func, ast.Call) and _called_name(node.func.func) == "type":
        yield "type(...)(...)", "it can build a class from a dictionary of data"
    elif (
        called in FUNCTIONAL_CLASSES
        and (len(node.args) > 1 or node.keywords)
        and not _constant_fields(node)
    ):
        yield f"{called}(name, <fields>)", "its field names become attributes or code"
    if (
        called in ("format", "format_map")
        and _is_str(node.func.value)
        and _format_refused(node.func.value.value)
    ):
        yield "'...'.format(...)", "the format string reads a refused attribute"


def _class(node: ast.ClassDef) -> Iterator[tuple[str, str]]:
    for keyword in node.keywords:
        value = keyword.value
        name = value.id if isinstance(value, ast.Name) else getattr(value, "attr", "")
        if keyword.arg == "metaclass" and name not in METACLASSES:
            yield f"class {node.name}(metaclass=...)", "a metaclass runs code on the class body"


def _string(text: str) -> Iterator[tuple[str, str]]:
    if _DUNDER.match(text) and text != "__main__" and text not in READABLE_DUNDERS:
        yield repr(text[:40]), "a dunder name held as data reaches Python's internals"


def _strings_in(annotation: ast.AST) -> set[int]:
    """The ids of the string constants in an annotation (what ``get_type_hints`` evaluates)."""
    return {id(node) for node in _nodes(annotation) if _is_str(node)}


def _attribute_refused(name: str) -> bool:
    if _DUNDER.match(name):
        return name not in READABLE_DUNDERS and name not in DEFINABLE_DUNDERS
    return (
        name.startswith("_")
        or name in DENIED_ATTRIBUTES
        or name in DENIED_NAME_ATTRIBUTES
        or name in denied_modules()
    )


def _reason(name: str) -> str:
    if _DUNDER.match(name):
        return _DUNDERS
    if name.startswith("_"):
        return "private attributes reach torch's or the sandbox's internals"
    if name in denied_modules():
        return "it reaches a module outside the allowed imports"
    return _ATTRIBUTES


def _name_argument(node: ast.AST) -> bool:
    """A name given to ``getattr`` that is known enough: a constant that is not refused, or
    an f-string or ``+`` that starts with a constant no refused name starts with."""
    prefix, whole = _constant_text(node)
    if whole:
        return not _attribute_refused(prefix)
    if not prefix or prefix.startswith("_"):
        return False
    return not any(name.startswith(prefix) for name in _refused_names())


def _constant_text(node: ast.AST) -> tuple[str, bool]:
    """The constant text a string expression starts with, and whether that is all of it
    (``'soft' + 'max'``, ``f"w_{n}"``, ``"a" + b + "c"``); iterative over long sums."""
    parts: list[ast.AST] = []
    todo = [node]
    while todo:
        current = todo.pop()
        if isinstance(current, ast.BinOp) and isinstance(current.op, ast.Add):
            todo += [current.right, current.left]
        elif isinstance(current, ast.JoinedStr):
            todo += reversed(current.values)
        else:
            parts.append(current)
    prefix = ""
    for part in parts:
        if not _is_str(part):
            return prefix, False
        prefix += part.value
    return prefix, True


def _constant_fields(node: ast.Call) -> bool:
    """A functional ``TypedDict``/``NamedTuple``/``Enum`` whose field names are all constant
    identifiers that are not private: the same as a class statement."""
    names: list[ast.AST] = []
    for value in [*node.args[1:], *(keyword.value for keyword in node.keywords)]:
        if isinstance(value, ast.Dict):
            names += value.keys
        elif isinstance(value, ast.List | ast.Tuple):
            for item in value.elts:
                names.append(item.elts[0] if isinstance(item, ast.Tuple) and item.elts else item)
        elif _is_str(value):
            names += [ast.Constant(part) for part in value.value.replace(",", " ").split()]
        elif not isinstance(value, ast.Constant):
            return False
    return all(
        _is_str(name) and name.value.isidentifier() and not name.value.startswith("_")
        for name in names
    )


def _format_refused(template: str) -> bool:
    """Whether a format string reads an attribute or item that the allow-list refuses (in its
    fields, or in the fields nested in their format specs: ``{:{0.__class__}}``)."""
    try:
        parsed = list(string.Formatter().parse(template))
        parsed += [
            item for _, _, spec, _ in parsed if spec for item in string.Formatter().parse(spec)
        ]
    except ValueError:
        return False  # str.format raises the same: nothing is read
    parts = [part for _, name, _, _ in parsed if name for part in re.split(r"[.\[\]]", name)]
    return any(_attribute_refused(part) for part in parts if part and not part.isdigit())


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _called_name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else ""


def _defines_dunder(node: ast.AST) -> bool:
    definition = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    return definition and bool(_DUNDER.match(node.name)) and node.name not in DEFINABLE_DUNDERS


def _is_shell_call(node: ast.AST) -> bool:
    """``get_ipython().run_cell_magic('time', '', '...')`` and the like, every argument a
    constant string: what the grader's own translation of a magic or shell line produces."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in SHELL_CALLS
        and isinstance(node.func.value, ast.Call)
        and isinstance(node.func.value.func, ast.Name)
        and node.func.value.func.id == "get_ipython"
        and not node.func.value.args
        and not node.func.value.keywords
        and not node.keywords
        and all(_is_str(arg) for arg in node.args)
    )


def _is_cell_magic(node: ast.AST) -> bool:
    return _is_shell_call(node) and node.func.attr == "run_cell_magic" and len(node.args) == 3


def _imports(allowed: Collection[str]) -> str:
    return "imports are limited to " + ", ".join(sorted(set(allowed) - {"__future__"}))


def _learner_api() -> str:
    return "from attn_course.checks only " + ", ".join(learner_api()) + " may be imported"


_ATTRIBUTES = "it leads to files, processes, compiled code or the sandbox's own machinery"
_DUNDERS = "dunder attributes reach Python's internals"
_COMPUTED = "an attribute looked up by a computed name can reach Python's internals"
_NESTED = "nested too deeply for the grader to read (and for any honest code)"


def definitions(trees: Sequence[ast.Module]) -> dict[str, list[ast.AST]]:
    """Top-level name -> the statements that bind it (functions, classes, assignments, imports)
    across all cells."""
    bound: dict[str, list[ast.AST]] = {}
    for tree in trees:
        for statement in tree.body:
            for name in _bound_names(statement):
                bound.setdefault(name, []).append(statement)
    return bound


def _bound_names(statement: ast.AST) -> list[str]:
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [statement.name]
    if isinstance(statement, ast.Import | ast.ImportFrom):
        return [(alias.asname or alias.name).split(".")[0] for alias in statement.names]
    if isinstance(statement, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        return [
            node.id for target in targets for node in _nodes(target) if isinstance(node, ast.Name)
        ]
    return []


class _FreeNames(dict):
    """``_free_names`` of each statement, computed once (keyed by the statement's id)."""

    def of(self, statement: ast.AST) -> set[str]:
        key = id(statement)
        if key not in self:
            self[key] = (statement, _free_names(statement))  # keeps the statement alive
        return self[key][1]


def reached(
    name: str, bound: Mapping[str, Sequence[ast.AST]], free: _FreeNames | None = None
) -> list[ast.AST]:
    """The statements that ``name``'s definition reaches by name, itself included (a function's
    own parameters and local variables lead nowhere). Linear in the statements reached."""
    free = _FreeNames() if free is None else free
    seen_names, seen, statements, todo = {name}, set(), [], [name]
    while todo:
        for statement in bound.get(todo.pop(), ()):
            if id(statement) in seen:
                continue
            seen.add(id(statement))
            statements.append(statement)
            for loaded in sorted(free.of(statement) - seen_names):
                seen_names.add(loaded)
                todo.append(loaded)
    return statements


def _dependencies(
    name: str, exercises: set[str], bound: Mapping[str, Sequence[ast.AST]], free: _FreeNames
) -> tuple[str, ...]:
    """The other exercises ``name`` reaches by name without going through a third one."""
    found: list[str] = []
    seen_names, seen, todo = {name}, set(), [name]
    while todo:
        current = todo.pop()
        if current != name and current in exercises:
            found.append(current)
            continue  # what that exercise uses is its own dependency
        for statement in bound.get(current, ()):
            if id(statement) in seen:
                continue
            seen.add(id(statement))
            for loaded in sorted(free.of(statement) - seen_names):
                seen_names.add(loaded)
                todo.append(loaded)
    return tuple(sorted(found))


def _free_names(statement: ast.AST, nodes: Sequence[ast.AST] | None = None) -> set[str]:
    """Names ``statement`` reads that it does not bind itself (approximately: any name it
    stores, any parameter and any nested definition counts as its own); ``nodes``: all of
    its nodes, if already listed."""
    loaded, own = set(), set()
    for node in _nodes(statement) if nodes is None else nodes:
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else own).add(node.id)
        elif isinstance(node, ast.arg):
            own.add(node.arg)
        elif node is not statement and isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
        ):
            own.add(node.name)
    return loaded - own


def forbidden_uses(statements: Sequence[ast.AST], fragments: Sequence[str]) -> list[str]:
    """The forbidden built-ins named in ``statements``, as readable snippets (empty: none)."""
    found: dict[str, None] = {}
    if not fragments:
        return []
    for statement in statements:
        for node in ast.walk(statement):
            what = ""
            if isinstance(node, ast.Attribute) and _matches(node.attr, fragments):
                what = _dotted(node)
            elif (
                isinstance(node, ast.Call)
                and _called_name(node.func) in NAME_FUNCTIONS
                and len(node.args) > 1
                and _matches(_constant_text(node.args[1])[0], fragments)
            ):
                what = f"{_dotted(node.args[0])}.{_constant_text(node.args[1])[0]}"
            elif isinstance(node, ast.Import | ast.ImportFrom):
                module = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
                names = [alias.name for alias in node.names if _matches(alias.name, fragments)]
                what = f"import of {module + '.' if module else ''}{names[0]}" if names else ""
            if what:
                found.setdefault(what, None)
    return list(found)


def _matches(text: object, fragments: Sequence[str]) -> bool:
    return isinstance(text, str) and any(fragment in text.lower() for fragment in fragments)


def _dotted(node: ast.AST) -> str:
    """``torch.nn.functional.softmax`` for an attribute chain; ``...`` for what is not a name
    (iterative: a chain may be thousands of attributes long)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    parts.append(node.id if isinstance(node, ast.Name) else "...")
    dotted = ".".join(reversed(parts))
    return dotted if len(dotted) <= 80 else "..." + dotted[-77:]
