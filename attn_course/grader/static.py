"""What a submission's code may contain, decided by reading it (in the grader's process).

A student's code runs in the sandbox, where it could switch off anything that records what it
does. So the primary rule is read here, where it cannot interfere:

- ``violations``: an allow-list over **all** code cells. Imports only from ``ALLOWED_MODULES``;
  no dunder names or attributes (``__init__`` aside), no private attributes except on ``self``
  and ``cls``; none of the built-ins that run strings or look things up by a computed name
  (``DENIED_NAMES``), as names or as attributes (``dataclasses.builtins.exec``), and none of
  the attributes that lead to files, processes, frames, torch's own machinery or other modules
  (``DENIED_ATTRIBUTES``, ``DENIED_MODULES``: ``torch.os``, ``typing.sys``). ``get_ipython``
  only in the calls that notebook magics and shell lines become, with constant arguments.
  One violation anywhere forfeits every exercise: such a cell could change what the sandbox
  reports for any of them.
- ``forbidden_uses``: for each exercise, the forbidden built-ins (``torch.softmax``,
  ``F.scaled_dot_product_attention``, ...) in what the graded name reaches: its own definition
  and, by name, the top-level functions, classes, assignments and imports it uses,
  transitively. A scratch cell comparing with ``torch.softmax`` is not reached, so it is allowed.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

ALLOWED_MODULES = frozenset(
    {"__future__", "math", "random", "itertools", "functools", "collections", "typing"}
    | {"dataclasses", "time", "torch", "torch.nn", "torch.nn.functional", "torch.nn.init"}
    | {"matplotlib", "matplotlib.pyplot", "attn_course.checks"}
)
DENIED_NAMES = frozenset(
    {"exec", "eval", "compile", "getattr", "setattr", "delattr", "vars", "globals", "locals"}
    | {"open", "breakpoint", "input", "help", "memoryview", "exit", "quit"}
)
DENIED_ATTRIBUTES = frozenset(
    # torch's machinery: loading code or pickles, compilers, dispatch and function modes
    {"hub", "jit", "library", "overrides", "ops", "package", "multiprocessing", "distributed"}
    | {"utils", "fx", "export", "serialization", "classes", "compile", "load", "from_file"}
    | {"get_type_hints", "record_forbidden", "record_sizes", "run_case"}
    # frames and code objects, the way from any function to its module's globals
    | {"f_globals", "f_locals", "f_back", "f_builtins", "f_code", "tb_frame", "tb_next"}
    | {"gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "co_code"}
)
# Allowed modules re-export others (``torch.os``, ``typing.sys``, ``dataclasses.builtins``): an
# attribute named like a module outside the allow-list is refused, on any receiver but ``self``
# and ``cls`` (a student's own object holds only what the student could already reach).
DENIED_MODULES = frozenset(
    {"os", "sys", "builtins", "inspect", "modules", "importlib", "subprocess", "system"}
    | {"get_ipython", "user_ns", "user_global_ns", "run_cell", "ex", "ev", "shell", "kernel"}
    | {"run_cell_magic", "run_line_magic", "getoutput"}
    | {
        name
        for name in sys.stdlib_module_names
        if not name.startswith("_") and name.split(".")[0] not in ALLOWED_MODULES
    }
) - {
    # method names of tensors and containers that honest code calls (x.chunk, d.copy, ...)
    "chunk",
    "copy",
    "select",
    "trace",
}
# ``model.eval()`` is everywhere in honest code; ``builtins`` (the way to the real one) is denied.
DENIED_NAME_ATTRIBUTES = DENIED_NAMES - {"eval"}
# What ``%magic``, ``%%magic`` and ``!command`` become (``notebook.python``): the only calls of
# ``get_ipython`` allowed, with constant strings only (the sandbox runs a few cell magics' bodies,
# which are checked like any cell).
SHELL_CALLS = frozenset({"run_cell_magic", "run_line_magic", "system", "getoutput"})
DEFINABLE_DUNDERS = frozenset(
    {"__init__", "__repr__", "__str__", "__len__", "__getitem__", "__iter__", "__call__"}
)
_DUNDER = re.compile(r"^__.*__$")


@dataclass(frozen=True)
class Violation:
    """One construct outside the allow-list: ``cell`` is the index of its code cell."""

    cell: int
    construct: str
    reason: str


def violations(cells: Sequence[tuple[int, str]]) -> list[Violation]:
    """Everything outside the allow-list in ``cells`` ((index, plain Python) pairs), in order;
    a cell that does not parse is left to the sandbox, which reports its SyntaxError."""
    found: list[Violation] = []
    for index, code in cells:
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError):
            continue
        for construct, reason in _walk(tree):
            violation = Violation(index, construct, reason)
            if violation not in found:
                found.append(violation)
    return found


def _walk(tree: ast.AST):
    shell = _shell_call_parts(tree)
    for node in ast.walk(tree):
        if id(node) in shell:
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield from _import(node)
        elif isinstance(node, ast.Name) and (
            node.id in DENIED_NAMES or node.id == "get_ipython" or _DUNDER.match(node.id)
        ):
            yield node.id, "it can run code from a string or reach the sandbox's internals"
        elif isinstance(node, ast.Attribute):
            yield from _attribute(node)
        elif _defines_dunder(node):
            yield f"def {node.name}", "it changes how Python or torch treats an object"
        if _is_cell_magic(node):  # %%time and friends: the body is code too
            try:
                yield from _walk(ast.parse(node.args[2].value))
            except (SyntaxError, ValueError):
                continue


def _import(node: ast.Import | ast.ImportFrom):
    if isinstance(node, ast.ImportFrom):
        module = "." * node.level + (node.module or "")
        if module not in ALLOWED_MODULES:
            yield f"from {module} import ...", _IMPORTS
            return
        for alias in node.names:
            if alias.name == "*":
                yield f"from {module} import *", "it hides which names it brings in"
            elif alias.name in DENIED_ATTRIBUTES or alias.name.startswith("_"):
                yield f"from {module} import {alias.name}", _ATTRIBUTES
            elif module == "attn_course.checks" and alias.name != "check":
                yield f"from {module} import {alias.name}", _IMPORTS
    else:
        for alias in node.names:
            if alias.name not in ALLOWED_MODULES:
                yield f"import {alias.name}", _IMPORTS


def _attribute(node: ast.Attribute):
    name = node.attr
    receiver = node.value.id if isinstance(node.value, ast.Name) else ""
    if _DUNDER.match(name) and name != "__init__":
        yield _dotted(node), "dunder attributes reach Python's internals"
    elif name.startswith("_") and not _DUNDER.match(name) and receiver not in ("self", "cls"):
        yield _dotted(node), "private attributes reach torch's or the sandbox's internals"
    elif name in DENIED_ATTRIBUTES or name in DENIED_NAME_ATTRIBUTES:
        yield _dotted(node), _ATTRIBUTES
    elif name in DENIED_MODULES and receiver not in ("self", "cls"):
        yield _dotted(node), "it reaches a module outside the allowed imports"


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
        and all(isinstance(arg, ast.Constant) and isinstance(arg.value, str) for arg in node.args)
    )


def _shell_call_parts(tree: ast.AST) -> set[int]:
    """The ids of the ``get_ipython`` name and the method attribute of every shell call."""
    parts: set[int] = set()
    for node in ast.walk(tree):
        if _is_shell_call(node):
            parts |= {id(node.func), id(node.func.value.func)}
    return parts


def _is_cell_magic(node: ast.AST) -> bool:
    return _is_shell_call(node) and node.func.attr == "run_cell_magic" and len(node.args) == 3


_IMPORTS = "imports are limited to " + ", ".join(sorted(ALLOWED_MODULES - {"__future__"}))
_ATTRIBUTES = "it leads to files, processes, compiled code or the sandbox's own machinery"


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
            node.id for target in targets for node in ast.walk(target) if isinstance(node, ast.Name)
        ]
    return []


def reached(name: str, bound: dict[str, list[ast.AST]]) -> list[ast.AST]:
    """The statements that ``name``'s definition reaches by name, itself included (a function's
    own parameters and local variables lead nowhere)."""
    seen_names, statements, todo = {name}, [], [name]
    while todo:
        for statement in bound.get(todo.pop(), []):
            if statement in statements:
                continue
            statements.append(statement)
            for free in sorted(_free_names(statement) - seen_names):
                seen_names.add(free)
                todo.append(free)
    return statements


def _free_names(statement: ast.AST) -> set[str]:
    """Names ``statement`` reads that it does not bind itself (approximately: any name it
    stores, any parameter and any nested definition counts as its own)."""
    loaded, own = set(), set()
    for node in ast.walk(statement):
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
    found: list[str] = []
    for statement in statements:
        for node in ast.walk(statement):
            what = ""
            if isinstance(node, ast.Attribute) and _matches(node.attr, fragments):
                what = _dotted(node)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                module = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
                names = [alias.name for alias in node.names if _matches(alias.name, fragments)]
                what = f"import of {module + '.' if module else ''}{names[0]}" if names else ""
            if what and what not in found:
                found.append(what)
    return found


def _matches(text: object, fragments: Sequence[str]) -> bool:
    return isinstance(text, str) and any(fragment in text.lower() for fragment in fragments)


def _dotted(node: ast.AST) -> str:
    """``torch.nn.functional.softmax`` for an attribute chain; ``...`` for what is not a name."""
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    return "..."
