"""Red team: attacks on the grader's verdicts from inside the notebook. The static rule stops
each in the grader's process: every exercise refused, no points, no cell reported as run, and
nothing outside the sandbox written (the marker file the attack's cell starts with). Among
them, routes to dunder attributes and to code in strings that are not attribute nodes."""

from __future__ import annotations

import pytest

from attn_course.grader.pipeline import grade
from attn_course.grader.sandbox import Limits

EXERCISES = ("attention_scores", "softmax", "context_vector", "SimpleAttention")

ATTACKS = {
    "dispatch-mode-stack": "from torch.utils._python_dispatch import _pop_mode\n_pop_mode()\n",
    "handle-torch-function": "from torch.overrides import handle_torch_function\n",
    "string-pieces": "f = vars(torch.nn.functional)['soft' + 'max']\n",
    "module-dict": "f = torch.nn.functional.__dict__['softmax']\n",
    "runpy-reference": "import runpy\nrunpy.run_module('attn_course.reference')\n",
    "top-level-exec": "exec('import attn_course.reference')\n",
    "meta-path": "import sys\nsys.meta_path.clear()\n",
    "ctypes": "import ctypes\nctypes.CDLL(None)\n",
    "subclasses": "classes = ().__class__.__base__.__subclasses__()\n",
    "torch-ops": "f = torch.ops.aten._softmax\n",
    "cell-magic-body": "%%time\nimport os\n",
    # modules that allowed modules re-export
    "torch-os": "torch.os.system('true')\n",
    "torch-sys-modules": "m = torch.sys.modules['attn_course']\n",
    "typing-sys-modules": "import typing\nm = typing.sys.modules\n",
    "builtins-exec": "import dataclasses\ndataclasses.builtins.exec('x = 1')\n",
    "builtins-getattr": "import dataclasses\nf = dataclasses.builtins.getattr(F, 'soft' + 'max')\n",
    "inspect-stack": "import dataclasses\nframes = dataclasses.inspect.stack()\n",
    # the notebook shell: a computed cell-magic body, the namespace's own built-ins
    "shell-computed-body": (
        "body = 'import o' + 's'\nget_ipython().run_cell_magic('time', '', body)\n"
    ),
    "shell-user-ns": "run = get_ipython().user_ns['__builtins__']['eval']\n",
    # dunder attributes and code from strings by routes that are not attribute nodes
    "match-class-pattern": (
        "def f():\n    pass\nmatch f:\n    case object(__globals__=g):\n        g.clear()\n"
    ),
    "three-argument-type": "T = type('T', (torch.Tensor,), {})\n",
    "type-of-a-class-called": "T = type(int)('T', (), {})\n",
    "metaclass-function": (
        "def meta(*parts):\n    return parts\nclass A(metaclass=meta):\n    pass\n"
    ),
    "string-annotation-get-type-hints": (
        "import typing\ndef f(x: \"__import__('os').getcwd()\"):\n    pass\n"
        "typing.get_type_hints(f)\n"
    ),
    "nested-string-annotation": "def f(x: \"list['eval(1)']\"):\n    pass\n",
    "singledispatch-annotation": (
        "import functools\n@functools.singledispatch\ndef f(x):\n    pass\n"
        "kind = 'int'\n@f.register\ndef _(x: kind):\n    pass\n"
    ),
    "typeddict-field-names": (
        "import typing\nT = typing.TypedDict('T', {'x=print(1)': int})\n"
    ),
    "make-dataclass": "import dataclasses\nC = dataclasses.make_dataclass('C', [('x', int)])\n",
    "typing-reexports-sys": "from typing import sys\n",
    "typing-reexports-types": "from typing import types\n",
    "numpy-ctypeslib-from": "from numpy import ctypeslib\n",
    "numpy-ctypeslib-import": "import numpy.ctypeslib\n",
    "numpy-load": "import numpy as np\narray = np.load('x.npy', allow_pickle=True)\n",
    "numpy-lib-format": "import numpy as np\nformat_module = np.lib.format\n",
    "numpy-memmap": "import numpy as np\nm = np.memmap('x.bin')\n",
    "numpy-array-ctypes": "import numpy as np\np = np.ones(3).ctypes\n",
    "format-string-attribute": "def f():\n    pass\nleak = '{0.__globals__}'.format(f)\n",
    "format-string-held-as-data": (
        "template = '{0.__glo' + 'bals__}'\nleak = template.format(len)\n"
    ),
    "string-formatter": "import string\nleak = string.Formatter().format('{0}', len)\n",
    "getattr-computed-private": "name = 'C'\nc = getattr(torch, f'_{name}')\n",
    "getattr-computed-denied-prefix": "rest = 'it'\nj = getattr(torch, 'j' + rest)\n",
    "getattr-passed-around": "look = getattr\nc = look(torch, 'jit')\n",
    "attrgetter-computed": (
        "import operator\nname = '__glob' + 'als__'\ng = operator.attrgetter(name)(len)\n"
    ),
    "copy-dispatch-table": "import copy\ncopy.dispatch_table[int] = print\n",
    "dunder-key-as-data": "namespace = {}\nnamespace['__builtins__'] = None\n",
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, submission_writer):
    folder = tmp_path_factory.mktemp("allowlist")
    marker = folder / "ran.txt"
    first = f"torch.save(torch.ones(1), {str(marker)!r})\n"  # allowed: it would run first
    for name, attack in ATTACKS.items():
        source = attack if attack.startswith("%%") else first + attack
        submission_writer(folder, name, "refused", add=(source,))
    batch = grade([folder], Limits(timeout=10, memory_mb=512), workers=1)
    return {s.submission: s for s in batch.submissions}, marker


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_forfeits_every_exercise(graded, name):
    by_name, marker = graded
    submission = by_name[f"test-{name}-refused.ipynb"]
    assert [g.status for g in submission.exercises] == ["refused"] * len(EXERCISES)
    assert submission.points == 0 and submission.problems == ()
    assert "cell" in submission.exercises[0].feedback  # names where it is
    assert not marker.exists()
