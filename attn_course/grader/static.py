"""Forbidden code, found by reading the submission (in the grader's process).

The sandbox records forbidden torch calls as they happen (``record_forbidden``), but a student's
code runs in that process and could switch the recorder off. So the grader also reads the code:
for each exercise it collects what the graded name reaches (its own definition and, by name,
the top-level functions, classes, assignments and imports it uses, transitively) and looks
there for

- an attribute, an imported name or a ``getattr`` string containing a forbidden fragment
  (``torch.softmax``, ``F.softmax``, ``nn.Softmax``, ``from torch import softmax as sm``, ...);
- ``attn_course.reference``, imported or reached as an attribute;
- code run from strings or imported by name (``exec``, ``eval``, ``compile``, ``__import__``,
  ``importlib``, ``getattr`` on a module with a computed name), which could hide either of
  the above.

Top-level statements that are not definitions (a test comparing with ``torch.softmax`` in a
scratch cell) are not reached, so they are allowed.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Sequence

DYNAMIC = ("exec", "eval", "compile", "__import__", "importlib")
REFERENCE = "attn_course.reference"
# Ways into the sandbox's own machinery (its frames, its modules, the recorder): no notebook
# needs them, and any cell using them could change what the sandbox reports.
TAMPERING = (
    "_getframe",
    "f_globals",
    "f_locals",
    "f_back",
    "tb_frame",
    "gi_frame",
    "get_objects",
    "get_referrers",
    "meta_path",
    "record_forbidden",
    "run_case",
    "_attn_course_sandbox_core",
)


def tampering(trees: Sequence[ast.Module]) -> list[str]:
    """Uses, anywhere in the notebook, of the sandbox's machinery (``TAMPERING``) or of
    ``sys.modules``."""
    found = []
    for tree in trees:
        for node in ast.walk(tree):
            name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                name = node.value
            dotted = _dotted(node) if isinstance(node, ast.Attribute) else ""
            if (name in TAMPERING or dotted.endswith("sys.modules")) and name not in found:
                found.append(dotted or name)
    return found


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


def imported(bound: dict[str, list[ast.AST]]) -> set[str]:
    """The top-level names bound by an import (modules, mostly)."""
    return {
        name
        for name, statements in bound.items()
        if any(isinstance(s, ast.Import | ast.ImportFrom) for s in statements)
    }


def forbidden_uses(
    statements: Sequence[ast.AST], fragments: Sequence[str], modules: Collection[str] = ()
) -> list[str]:
    """What in ``statements`` is forbidden, as readable snippets (empty: nothing). ``modules``
    are the names whose attributes may not be looked up by a computed name (``imported``)."""
    found: list[str] = []

    def add(what: str) -> None:
        if what not in found:
            found.append(what)

    for statement in statements:
        for node in ast.walk(statement):
            if isinstance(node, ast.Attribute):
                dotted = _dotted(node)
                if _matches(node.attr, fragments) or REFERENCE in dotted:
                    add(dotted)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                module = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
                for alias in node.names:
                    full = f"{module}.{alias.name}" if module else alias.name
                    if _matches(alias.name, fragments) or full.startswith(REFERENCE):
                        add(f"import of {full}")
                    elif full.split(".")[0] == "importlib":
                        add("importlib")
            elif isinstance(node, ast.Name) and node.id in DYNAMIC:
                add(f"{node.id} (code run from a string)")
            elif isinstance(node, ast.Call) and _dotted(node.func) == "getattr":
                target, argument = [*node.args, None, None][:2]
                if argument is None:
                    continue
                if not isinstance(argument, ast.Constant):
                    if _dotted(target).split(".")[0] in modules:
                        add("getattr with a computed name (code run from a string)")
                elif _matches(argument.value, fragments):
                    add(f"getattr(..., {argument.value!r})")
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
