"""The static check: what an exercise's definition reaches, and what in it is forbidden."""

from __future__ import annotations

import ast

import pytest

from attn_course.grader import static

SETUP = "import torch\nimport torch.nn.functional as F\nfrom torch import nn"


def uses(cells: list[str], name: str, fragments=("softmax",)) -> list[str]:
    bound = static.definitions([ast.parse(cell) for cell in [SETUP, *cells]])
    return static.forbidden_uses(static.reached(name, bound), fragments, static.imported(bound))


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
        "def softmax(s, dim=-1):\n    return getattr(torch, 'softmax')(s, dim)",
    ],
)
def test_builtin_reached_from_the_solution(code):
    assert uses([code], "softmax")


def test_builtin_through_a_helper_in_another_cell():
    cells = [
        "def _normalise(s, dim):\n    return torch.softmax(s, dim)",
        "def softmax(s, dim=-1):\n    return _normalise(s, dim)",
    ]
    assert uses(cells, "softmax") == ["torch.softmax"]


@pytest.mark.parametrize(
    "code",
    [
        "from attn_course.reference import softmax",
        "from attn_course import reference\n"
        "def softmax(s, dim=-1):\n    return reference.softmax(s)",
        "import attn_course.reference as r\ndef softmax(s, dim=-1):\n    return r.softmax(s)",
        "def softmax(s, dim=-1):\n    return eval('torch.soft' + 'max')(s, dim)",
        "def softmax(s, dim=-1):\n    return getattr(torch, 'soft' + 'max')(s, dim)",
        "import importlib\ndef softmax(s, dim=-1):\n    return importlib.import_module('x').f(s)",
    ],
)
def test_reference_and_hidden_code_are_forbidden_everywhere(code):
    assert uses([code], "softmax", fragments=())


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
        # attributes of the learner's own objects may be looked up by a computed name
        [
            "class MultiHeadAttention(nn.Module):\n    def forward(self, x):\n"
            "        return [getattr(self, f'w_{n}')(x) for n in 'qkv']",
            "def softmax(s, dim=-1):\n    return MultiHeadAttention()(s)",
        ],
    ],
)
def test_allowed_code(cells):
    assert uses(cells, "softmax") == []


def test_no_fragments_means_only_reference_and_hidden_code_are_checked():
    code = (
        "class SimpleAttention(nn.Module):\n"
        "    def forward(self, x):\n        return torch.softmax(x, 1)"
    )
    assert uses([code], "SimpleAttention", fragments=()) == []


@pytest.mark.parametrize(
    "code",
    [
        "import sys\nsys.modules['_attn_course_sandbox_core'].run_case = None",
        "import sys\nframe = sys._getframe(1)\nframe.f_globals['core'] = None",
        "import gc\nobjects = gc.get_objects()",
    ],
)
def test_reaching_into_the_sandbox_is_tampering(code):
    assert static.tampering([ast.parse(code)])


def test_ordinary_notebook_code_is_not_tampering():
    code = "import torch, sys\nprint(sys.version)\nx = torch.randn(3)\nrun = 1"
    assert static.tampering([ast.parse(SETUP), ast.parse(code)]) == []
