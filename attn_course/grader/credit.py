"""Fair partial credit: the reference code that stands in for an exercise's failed dependency.

An exercise that fails while it uses another exercise of the notebook that did not pass is run
again with the reference in place of that dependency (``pipeline.with_fixed_dependencies``).
What goes into that sandbox is the smallest piece of ``attn_course.reference`` that defines the
dependency: its own definition and, by name, the top-level statements it needs, followed across
the reference modules' imports of each other (plus those modules' imports of torch and the
standard library). If that piece would hold the exercise being judged, nothing is placed: the
exercise gets no credit that way, rather than a copy of its answer.

The sandbox runs the piece in a namespace of its own, with the built-ins it had before any
student code ran, and only then binds the dependency's names in the notebook
(``sandbox._run_exercise``): the reference's code finds none of the student's names.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

PACKAGE = "attn_course.reference"


@dataclass(frozen=True)
class ReferencePiece:
    """Source code defining ``names`` as ``attn_course.reference`` does."""

    names: tuple[str, ...]
    source: str


def reference_piece(names: Sequence[str], under_test: str) -> ReferencePiece | None:
    """The reference code that defines ``names``; None when it would define ``under_test``
    too, or when a name is not in the reference."""
    reference = importlib.import_module(PACKAGE)
    needed: dict[str, set[int]] = {}  # module -> indices of its top-level statements
    todo = []
    for name in names:
        if not hasattr(reference, name):
            return None
        todo.append((getattr(reference, name).__module__, name))
    seen: set[tuple[str, str]] = set()
    while todo:
        module, name = todo.pop()
        if (module, name) in seen:
            continue
        seen.add((module, name))
        statements, bound, imported = _module(module)
        if name in imported:  # from attn_course.reference.other import name
            todo.append((imported[name], name))
            continue
        for index in bound.get(name, ()):
            if index not in needed.setdefault(module, set()):
                needed[module].add(index)
                todo += [(module, used) for used in _names_used(statements[index])]
    defined = {
        name
        for module, indices in needed.items()
        for index in indices
        for name in _bound_names(_module(module)[0][index])
    }
    if under_test in defined:
        return None
    lines = []
    for module in _dependency_order(needed):
        statements = _module(module)[0]
        for index, statement in enumerate(statements):
            if index in needed[module] or _is_outside_import(statement):
                lines.append(ast.unparse(statement))
    return ReferencePiece(tuple(names), "\n".join(lines))


@functools.cache
def _module(name: str) -> tuple[list[ast.stmt], dict[str, list[int]], dict[str, str]]:
    """A reference module's top-level statements; name -> the statements binding it; names
    it imports from other reference modules -> that module."""
    tree = ast.parse(inspect.getsource(importlib.import_module(name)))
    bound: dict[str, list[int]] = {}
    imported: dict[str, str] = {}
    for index, statement in enumerate(tree.body):
        if isinstance(statement, ast.ImportFrom) and (statement.module or "").startswith(PACKAGE):
            for alias in statement.names:
                imported[alias.asname or alias.name] = statement.module
            continue
        for bound_name in _bound_names(statement):
            bound.setdefault(bound_name, []).append(index)
    return tree.body, bound, imported


def _bound_names(statement: ast.stmt) -> list[str]:
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [statement.name]
    if isinstance(statement, ast.Assign | ast.AnnAssign):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return []


def _names_used(statement: ast.stmt) -> set[str]:
    """Every name the statement reads (more than it needs, never less: a local variable
    named like a top-level one only adds that statement)."""
    return {
        node.id
        for node in ast.walk(statement)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }


def _is_outside_import(statement: ast.stmt) -> bool:
    """``import torch``, ``from torch import nn``: kept; the course's own and ``__future__``
    imports are not (the piece defines what it needs from the course itself)."""
    if isinstance(statement, ast.Import):
        return True
    if isinstance(statement, ast.ImportFrom):
        module = statement.module or ""
        return not module.startswith("attn_course") and module != "__future__"
    return False


def _dependency_order(modules: dict[str, set[int]]) -> list[str]:
    """The modules, each after the reference modules it imports from."""
    order: list[str] = []

    def visit(module: str) -> None:
        if module in order:
            return
        for other in sorted(set(_module(module)[2].values())):
            if other in modules:
                visit(other)
        order.append(module)

    for module in sorted(modules):
        visit(module)
    return order
