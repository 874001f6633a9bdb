"""Red team: attacks on the grader's verdicts from inside the notebook. The allow-list stops
each in the grader's process: every exercise forbidden, no points, no cell reported as run, and
nothing outside the sandbox written (the marker file the attack's cell starts with)."""

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
