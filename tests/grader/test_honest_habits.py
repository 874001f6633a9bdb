"""Honest habits never cost a point: the model solution of assignment 01 with one everyday habit
each (an import the course does not need, a dunder that is plain data, a name looked up with a
known prefix, the course's own advice pasted into a cell) gets full points from the grader."""

from __future__ import annotations

import importlib.util

import pytest

from attn_course.grader.pipeline import grade
from attn_course.grader.sandbox import Limits

SCALED_SCORES = (
    "import numpy as np\n\n"
    "def attention_scores(query, keys):\n"
    "    scale = float(np.sqrt(1.0))  # numpy inside a graded function\n"
    "    return (keys @ query.unsqueeze(-1)).squeeze(-1) * scale\n"
)
NAMED_ERROR = (
    "def softmax(scores, dim=-1):\n"
    "    if not isinstance(scores, torch.Tensor):\n"
    '        raise TypeError(f"expected a tensor, got {type(scores).__name__}")\n'
    "    shifted = scores - scores.amax(dim=dim, keepdim=True)\n"
    "    exp = shifted.exp()\n"
    "    return exp / exp.sum(dim=dim, keepdim=True)\n"
)
LAYERS_BY_NAME = (
    "class Stack(nn.Module):\n"
    "    def __init__(self, n):\n"
    "        super().__init__()\n"
    "        self.n = n\n"
    "        for i in range(n):\n"
    '            setattr(self, f"w_{i}", nn.Linear(2, 2))\n'
    "    def forward(self, x):\n"
    "        for i in range(self.n):\n"
    '            x = getattr(self, f"w_{i}")(x)\n'
    "        return x\n"
    "    def __repr__(self):\n"
    '        return f"Stack({self.n})"\n'
    "print(Stack(2)(torch.ones(1, 2)), repr(Stack(3)))\n"
)

HABITS = {
    "numpy-unused": {"add": ("import numpy as np\n",)},
    "numpy-in-a-graded-function": {"replace": {"attention_scores": SCALED_SCORES}},
    "numpy-sqrt-and-triu": {
        "add": (
            "import numpy as np\n"
            "d = 4\n"
            "q, k = torch.randn(d), torch.randn(5, d)\n"
            "scores = attention_scores(q, k) / np.sqrt(d)\n"
            "mask = torch.from_numpy(np.triu(np.ones((5, 5), dtype=bool), k=1))\n"
            "masked = torch.zeros(5, 5).masked_fill(mask, float('-inf'))\n",
        )
    },
    "ipython-display": {"add": ("from IPython.display import display\ndisplay(torch.ones(2))\n",)},
    "warnings": {"add": ("import warnings\nwarnings.warn('shapes are small here')\n",)},
    "copy": {"add": ("import copy\nlayer = nn.Linear(2, 2)\ntwin = copy.deepcopy(layer)\n",)},
    "operator": {
        "add": (
            "import functools\nimport operator\n"
            "size = functools.reduce(operator.mul, (2, 3, 4))\n",
        )
    },
    "main-guard": {"add": ('if __name__ == "__main__":\n    print("running as a script")\n',)},
    "dunder-all": {"add": ('__all__ = ["attention_scores", "softmax"]\n',)},
    "type-name-in-an-error": {"replace": {"softmax": NAMED_ERROR}},
    "getattr-setattr-with-a-prefix-and-repr": {"add": (LAYERS_BY_NAME,)},
    "rebuild-case-from-the-advice": {
        "add": (
            "from attn_course.checks import rebuild_case\n"
            "case = rebuild_case('softmax', seed=1, label='small')\n",
        )
    },
    "text-modules": {
        "add": (
            "import re, string, textwrap, enum, abc\n"
            "class Mode(enum.Enum):\n    TRAIN = 1\n"
            "class Base(abc.ABC):\n    pass\n"
            "print(textwrap.dedent('  x'), re.sub('a', 'b', string.ascii_lowercase))\n",
        )
    },
}
if importlib.util.find_spec("tqdm") is not None:
    HABITS["tqdm-progress-bar"] = {
        "add": ("from tqdm.auto import tqdm\nfor step in tqdm(range(3)):\n    pass\n",)
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory, submission_writer):
    """Every habit's notebook, graded in one batch."""
    folder = tmp_path_factory.mktemp("habits")
    for name, change in HABITS.items():
        submission_writer(folder, name, "pass", **change)
    batch = grade([folder], Limits(timeout=20, memory_mb=1024), workers=2)
    return {s.submission: s for s in batch.submissions}


@pytest.mark.parametrize("habit", list(HABITS))
def test_an_honest_habit_gets_full_points(graded, habit):
    submission = graded[f"test-{habit}-pass.ipynb"]
    assert [g.status for g in submission.exercises] == ["passed"] * 4, submission.exercises
    assert submission.points == submission.max_points == 10
