"""The static checks: the allow-list over every cell, and the forbidden built-ins an
exercise's definition reaches."""

from __future__ import annotations

import ast

import pytest

from attn_course.grader import static

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
