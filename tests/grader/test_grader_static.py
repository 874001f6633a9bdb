"""The static checks: the allow-list over every cell, and the forbidden built-ins an
exercise's definition reaches."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from attn_course.checks import EXERCISES, advice
from attn_course.grader import static
from attn_course.grader.catalog import course_assignments
from attn_course.grader.notebook import analysed, assignment_of, prepare, read

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"

SETUP = "import torch\nimport torch.nn.functional as F\nfrom torch import nn"


def uses(cells: list[str], name: str, fragments=("softmax",)) -> list[str]:
    bound = static.definitions([ast.parse(cell) for cell in [SETUP, *cells]])
    return static.forbidden_uses(static.reached(name, bound), fragments)


def constructs(*cells: str) -> list[str]:
    return [v.construct for v in static.violations(list(enumerate([SETUP, *cells], start=1)))]


@pytest.mark.parametrize(
    "code",
    [
        "def softmax(s, dim=-1):\n    return torch.softmax(s, dim)",
        "def softmax(s, dim=-1):\n    return s.softmax(dim)",
        "def softmax(s, dim=-1):\n    return nn.Softmax(dim)(s)",
        "def softmax(s, dim=-1):\n    return F.log_softmax(s, dim).exp()",
        "from torch.nn.functional import softmax as sm\n"
        "def softmax(s, dim=-1):\n    return sm(s, dim)",
        "helper = torch.softmax\ndef softmax(s, dim=-1):\n    return helper(s, dim)",
    ],
)
def test_builtin_reached_from_the_solution(code):
    assert uses([code], "softmax")
    assert constructs(code) == []  # allowed by the allow-list: only the exercise is forbidden


def test_builtin_through_a_helper_in_another_cell():
    cells = [
        "def normalise(s, dim):\n    return torch.softmax(s, dim)",
        "def softmax(s, dim=-1):\n    return normalise(s, dim)",
    ]
    assert uses(cells, "softmax") == ["torch.softmax"]


@pytest.mark.parametrize(
    "cells",
    [
        # a scratch comparison with the built-in is allowed: the solution does not reach it
        [
            "def softmax(s, dim=-1):\n    e = (s - s.amax(dim, keepdim=True)).exp()\n"
            "    return e / e.sum(dim, keepdim=True)",
            "x = torch.randn(3)\nprint(torch.allclose(softmax(x), torch.softmax(x, -1)))",
        ],
        # the learner's own helpers may have softmax in their names
        [
            "def stable_softmax(s, dim):\n    e = (s - s.amax(dim, keepdim=True)).exp()\n"
            "    return e / e.sum(dim, keepdim=True)",
            "def softmax(s, dim=-1):\n    '''My softmax, no torch.softmax here.'''\n"
            "    return stable_softmax(s, dim)",
        ],
        # a local variable named like a scratch global does not lead to that global
        [
            "reference_weights = torch.softmax(torch.randn(3), -1)",
            "def softmax(s, dim=-1):\n"
            "    reference_weights = (s - s.amax(dim, keepdim=True)).exp()\n"
            "    return reference_weights / reference_weights.sum(dim, keepdim=True)",
        ],
    ],
)
def test_allowed_code(cells):
    assert uses(cells, "softmax") == []
    assert constructs(*cells) == []


def test_no_fragments_means_nothing_is_forbidden_to_the_exercise():
    code = (
        "class SimpleAttention(nn.Module):\n"
        "    def forward(self, x):\n        return torch.softmax(x, 1)"
    )
    assert uses([code], "SimpleAttention", fragments=()) == []


@pytest.mark.parametrize(
    "code",
    [
        "import math, random\nfrom typing import Optional\nimport matplotlib.pyplot as plt",
        "from attn_course.checks import check\ncheck(print)",
        "class Block(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self._cache = None\n    def __repr__(self):\n        return 'Block'",
        "get_ipython().run_cell_magic('time', '', 'x = torch.ones(3)\\n')",
        "x = [torch.ones(2) for _ in range(3)]",
    ],
)
def test_what_learners_write_is_allowed(code):
    assert constructs(code) == []


@pytest.mark.parametrize(
    ("code", "construct"),
    [
        ("import os", "import os"),
        ("import importlib", "import importlib"),
        ("from attn_course.reference import softmax", "from attn_course.reference import ..."),
        ("from attn_course.checks import core", "from attn_course.checks import core"),
        ("from torch import *", "from torch import *"),
        ("from torch import hub", "from torch import hub"),
        ("f = getattr(torch, '_' + 'C')", "getattr(..., <computed name>)"),
        ("f = getattr(torch, 'j' + name)", "getattr(..., <computed name>)"),
        ("table = vars(F)", "vars"),
        ("exec('x = 1')", "exec"),
        ("m = __import__('os')", "__import__"),
        ("b = __builtins__", "__builtins__"),
        ("d = F.__dict__", "F.__dict__"),
        ("g = softmax.__globals__", "softmax.__globals__"),
        ("c = torch._C", "torch._C"),
        ("torch.overrides.handle_torch_function", "torch.overrides"),
        ("torch.ops.aten.softmax", "torch.ops"),
        ("m = torch.utils", "torch.utils"),
        ("torch.load('x.pt')", "torch.load"),
        ("f = torch.jit", "torch.jit"),
        ("open('/etc/passwd')", "open"),
        (
            "class T(torch.Tensor):\n    def __torch_function__(cls, *a):\n        pass",
            "def __torch_function__",
        ),
        (
            "try:\n    1 / 0\nexcept Exception as e:\n    f = e.__traceback__.tb_frame.f_globals",
            "e.__traceback__",
        ),
        ("get_ipython().run_cell_magic('time', '', 'import os\\n')", "import os"),
    ],
)
def test_outside_the_allow_list(code, construct):
    assert construct in constructs(code)


def test_violations_name_their_cell():
    (violation,) = static.violations([(1, SETUP), (2, "x = 1"), (3, "import sys")])
    assert (violation.cell, violation.construct) == (3, "import sys")
    assert violation.reason


def test_a_cell_that_does_not_parse_is_left_to_the_sandbox():
    assert static.violations([(1, "def f(:\n    import os")]) == []


@pytest.mark.parametrize(
    "code",
    [
        "import numpy as np\nmask = torch.from_numpy(np.triu(np.ones((3, 3)), k=1))",
        "from IPython.display import display, HTML\nimport IPython.display as ipd",
        "import warnings\nwarnings.warn('small')\nwith warnings.catch_warnings():\n    pass",
        "import copy, operator, enum, abc, string, re, textwrap",
        "import operator\nget = operator.attrgetter('weight', 'bias.data')\n"
        "call = operator.methodcaller('sum', dim=1)",
        'if __name__ == "__main__":\n    print(__doc__)',
        '__all__ = ["softmax"]',
        "message = f'got {type(x).__name__}, {softmax.__name__}'",
        "class A:\n    def __repr__(self):\n        return 'A'\n    def __call__(self):\n"
        "        return 1\n    def __len__(self):\n        return 0\n"
        "    def __getitem__(self, i):\n        return i\n    def __eq__(self, other):\n"
        "        return True\n    __hash__ = None\n",
        "@dataclasses.dataclass\nclass Config:\n    d: 'int' = 4\n"
        "    def __post_init__(self):\n        super().__init__()",
        "setattr(self, f'w_{n}', 1)\nw = getattr(self, f'w_{n}')\nok = hasattr(x, name)",
        "w = getattr(model, 'weight')\nlayer = getattr(model, 'layer' + str(i))",
        "max = scores.max()\nsum = 0",
        "class Base(abc.ABC):\n    pass\nclass Meta(metaclass=abc.ABCMeta):\n    pass",
        "Point = typing.NamedTuple('Point', [('x', int), ('y', int)])",
        "print('{:.3f} {0} {name}'.format(1.0, name='x'))",
        "def f(x: 'torch.Tensor') -> 'list[int]':\n    return []",
        "def f(x: 'a tensor of shape (B, T)'):\n    pass",  # not code: evaluating it fails
        "torch.testing.assert_close(mine, torch.softmax(scores, -1))",
        "plt.style.use('ggplot')",
        "help(softmax)",
    ],
)
def test_honest_habits_are_allowed(code):
    assert constructs(code) == []


@pytest.mark.parametrize(
    ("code", "construct"),
    [
        ("match f:\n    case object(__globals__=g):\n        pass", "case ...(__globals__=...)"),
        ("T = type('T', (), {})", "type(name, bases, namespace)"),
        ("T = type(int)('T', (), {})", "type(...)(...)"),
        ("M = abc.ABCMeta('M', (), {})", "ABCMeta"),
        ("class A(metaclass=meta):\n    pass", "class A(metaclass=...)"),
        ("def f(x: \"__import__('os')\"):\n    pass", "__import__"),
        ("y: \"list['eval(1)']\" = []", "eval"),
        ("from functools import singledispatch", "from functools import singledispatch"),
        ("from typing import get_type_hints", "from typing import get_type_hints"),
        ("f = typing.ForwardRef('x')", "typing.ForwardRef"),
        ("C = dataclasses.make_dataclass('C', ['x'])", "dataclasses.make_dataclass"),
        ("T = typing.TypedDict('T', {'x=1': int})", "TypedDict(name, <fields>)"),
        ("E = enum.Enum('E', names)", "Enum(name, <fields>)"),
        ("from typing import sys", "from typing import sys"),
        ("from numpy import ctypeslib", "from numpy import ctypeslib"),
        ("import numpy.ctypeslib", "import numpy.ctypeslib"),
        ("import IPython.display", "import IPython.display"),
        ("f = np.lib.format", "np.lib"),
        ("a = np.load('x')", "np.load"),
        ("a = np.fromfile('x')", "np.fromfile"),
        ("a = np.memmap('x')", "np.memmap"),
        ("f = np.f2py", "np.f2py"),
        ("p = np.ones(3).ctypes", "....ctypes"),
        ("'{0.__globals__}'.format(f)", "'...'.format(...)"),
        ("'{0[__builtins__]}'.format(d)", "'...'.format(...)"),
        ("'{:{0.__class__}}'.format(f)", "'...'.format(...)"),
        ("template.format(f)", "template.format"),
        ("f = str.format", "str.format"),
        ("f = string.Formatter()", "string.Formatter"),
        ("x = getattr(torch, f'_{n}')", "getattr(..., <computed name>)"),
        ("x = getattr(torch, 'l' + n)", "getattr(..., <computed name>)"),
        ("x = getattr(torch, name)", "getattr(..., <computed name>)"),
        ("x = getattr(f, '__globals__')", "getattr(..., <computed name>)"),
        ("setattr(torch, 'jit', 1)", "setattr(..., <computed name>)"),
        ("look = getattr", "getattr"),
        ("g = operator.attrgetter(name)", "attrgetter(<computed or refused name>)"),
        ("g = operator.attrgetter('__globals__')", "attrgetter(<computed or refused name>)"),
        ("g = operator.methodcaller('__reduce__')", "methodcaller(<computed or refused name>)"),
        ("from operator import attrgetter as a", "from operator import attrgetter as ..."),
        ("copy.dispatch_table[int] = print", "copy.dispatch_table"),
        ("warnings.showwarning = print", "warnings.showwarning"),
        ("ns['__annotations__'] = {}", "'__annotations__'"),
        ("def __del__(self):\n    pass", "def __del__"),
        ("c = x.__class__", "x.__class__"),
        ("m = t.__mro__", "t.__mro__"),
        ("s = object.__subclasses__()", "object.__subclasses__"),
        ("from tqdm.contrib import concurrent", "from tqdm.contrib import ..."),
        ("plt.switch_backend('module://x')", "plt.switch_backend"),
    ],
)
def test_what_has_no_honest_use_is_refused(code, construct):
    assert construct in constructs(code)


def test_a_violation_names_its_line():
    (violation,) = static.violations([(4, "x = 1\ny = 2\nimport os\n")])
    assert (violation.cell, violation.line, violation.construct) == (4, 3, "import os")


def test_a_cell_magic_body_is_checked_with_its_lines():
    code = "get_ipython().run_cell_magic('time', '', 'x = 1\\nimport os\\n')"
    (violation,) = static.violations([(2, code)])
    assert (violation.construct, violation.line) == ("import os", 3)


def test_an_instructor_can_allow_more_imports():
    assert static.violations([(1, "import scipy.special as special")]) != []
    assert static.violations([(1, "import scipy.special as sp")], ["scipy.special"]) == []


@pytest.mark.parametrize(
    "code",
    [
        "x = " + "-" * 5000 + "1",  # the parser's own limit: refused, not a crash
        "x = a" + ".b" * 5000,
    ],
)
def test_deep_nesting_is_refused_with_a_note_or_analysed(code):
    """Python 3.11 and 3.12's parser give up on these (RecursionError), 3.13's builds the
    tree: refused with a note where the grader cannot read the cell, analysed where it can,
    never a crash."""
    try:
        ast.parse(code)
    except (RecursionError, MemoryError):
        (violation,) = static.violations([(1, code)])
        assert "deeply nested" in violation.construct
    else:
        assert static.violations([(1, code)]) == []


@pytest.mark.parametrize(
    "code",
    [
        "x = " + " + ".join(["1"] * 800),
        "x = " + "(" * 150 + "1" + ")" * 150,
        "def f(a):\n    return a" + "[0]" * 900,
    ],
)
def test_long_expressions_are_analysed_without_recursion(code):
    analysis = static.analyse([(1, SETUP), (2, code)], {"x": ("softmax",), "f": ()})
    assert analysis.violations == ()


def test_the_analysis_is_linear_in_the_size_of_the_code(monkeypatch):
    """Each statement is walked once for the rule and its free names, and each exercise's
    reach visits each statement once, however the names chain (``x = x + 1``, ``a1 = a0``)."""
    listed = []
    walk = static._nodes
    monkeypatch.setattr(static, "_nodes", lambda tree: listed.append(1) or walk(tree))
    free = []
    names = static._free_names
    monkeypatch.setattr(static, "_free_names", lambda *a: free.append(1) or names(*a))
    lines = 5000
    chain = "a0 = 1\n" + "".join(f"a{i} = a{i - 1} + 1\n" for i in range(1, lines))
    same = "x = 0\n" + "x = x + 1\n" * lines
    use = "def softmax(s):\n    return s + a4999 + x\n"
    exercises = {"softmax": ("softmax",), "context_vector": (), "attention_scores": ()}
    analysis = static.analyse([(1, chain), (2, same), (3, use)], exercises)
    statements = 2 * lines + 2
    assert len(analysis.reached["softmax"]) == statements
    assert len(free) == statements
    assert len(listed) <= 2 * statements  # each statement, and each assignment's targets


def test_the_dependencies_are_the_exercises_reached_directly():
    cells = [
        "def split(x):\n    return x",
        "def merge(x):\n    return x",
        "def helper(x):\n    return split(x)",
        "class Attention:\n    def forward(self, x):\n        return merge(helper(x))",
        "class Block:\n    def forward(self, x):\n        return Attention().forward(x)",
    ]
    names = ("split", "merge", "Attention", "Block")
    analysis = static.analyse(list(enumerate(cells, 1)), dict.fromkeys(names, ()))
    assert analysis.dependencies["Attention"] == ("merge", "split")
    assert analysis.dependencies["Block"] == ("Attention",)
    assert analysis.reaches("Block", "split")  # fair credit follows the whole reach


@pytest.mark.parametrize("name", list(EXERCISES))
def test_the_code_a_failed_check_suggests_is_allowed(name):
    exercise = EXERCISES[name]
    label = exercise.make_cases(torch.Generator().manual_seed(0))[0].label
    hint = advice.rebuild_hint(exercise, 0, label)
    code = hint.split("\n", 1)[1]  # after "rebuild this case:"
    assert "from attn_course.checks import rebuild_case" in code
    assert static.violations([(1, SETUP), (2, code)]) == []


@pytest.mark.parametrize("path", sorted(SOLUTIONS.glob("*.ipynb")), ids=lambda path: path.stem)
def test_the_exercises_a_solution_calls_are_declared_in_uses(path):
    """Dependencies between exercises come from the code (``Analysis.dependencies``, the AST
    reach); ``Exercise.uses`` declares those a learner's version may call (the in-notebook
    check's blame): a model solution never calls one it does not declare."""
    notebook = read(path)
    assignment = assignment_of(notebook, path, course_assignments())
    submission = analysed(prepare(notebook, path.name, path, assignment))
    assert submission.analysis.violations == ()
    for exercise in assignment.exercises:
        assert set(submission.analysis.dependencies[exercise.name]) <= set(exercise.uses)
        assert set(exercise.uses) <= set(EXERCISES)


def test_the_budget_counts_from_before_the_analysis(monkeypatch, tmp_path):
    """The static analysis is part of the submission's ``--budget``: its deadline is set first."""
    from attn_course.grader import pipeline
    from attn_course.grader.sandbox import Limits

    order = []
    deadline, analysed_ = pipeline.budget_deadline, pipeline.analysed

    def budget_deadline(*args):
        order.append("budget")
        return deadline(*args)

    monkeypatch.setattr(pipeline, "budget_deadline", budget_deadline)

    def analysis_then_stop(*args):
        order.append("analysis")
        analysed_(*args)
        raise RuntimeError("stop before the sandbox")

    monkeypatch.setattr(pipeline, "analysed", analysis_then_stop)
    path = SOLUTIONS / "01_scores_softmax_context.ipynb"
    grade = pipeline.grade_notebook("s", path, course_assignments(), Limits(budget=5), None, None)
    assert order == ["budget", "analysis"]
    assert grade.infrastructure  # the stop above, reported as the grader's own fault
