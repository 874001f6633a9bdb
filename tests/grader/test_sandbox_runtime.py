"""The same grade wherever the course is installed: a sandbox reads the runtime it needs even
when a folder above it is private (mode 700, as ``mktemp -d`` makes it, as many homes are), and
the grader refuses to start where the sandbox's user still could not read it."""

from __future__ import annotations

import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from attn_course.grader import isolate
from attn_course.grader.confine import landlock_abi
from attn_course.grader.kernel import CellCode, execute
from attn_course.grader.sandbox import Limits
from attn_course.grader.zygote import Zygote

PRIVATE_MODULE = "private_runtime_module"


@pytest.fixture(scope="module")
def private_runtime(tmp_path_factory):
    """``(python, notes)``: a virtual environment made in a folder of mode 700 with a module of
    its own (``PRIVATE_MODULE``, only there), that sees this environment's packages (a ``.pth``
    adds them as a site folder), and ``notes``, a file beside it in the private folder."""
    private = tmp_path_factory.mktemp("private")
    private.chmod(0o700)
    venv = private / "clone" / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    query = "import sysconfig; print(sysconfig.get_path('purelib'))"
    own_site = Path(subprocess.run([python, "-c", query], capture_output=True, text=True,
                                   check=True).stdout.strip())
    assert own_site != Path(sysconfig.get_path("purelib"))
    lines = [f"import site; site.addsitedir({folder!r})\n" for folder in site.getsitepackages()]
    (own_site / "course.pth").write_text("".join(lines))
    (own_site / f"{PRIVATE_MODULE}.py").write_text("VALUE = 42\n")
    notes = private / "clone" / "notes.txt"
    notes.write_text("private notes")
    return python, notes


def test_a_runtime_in_a_private_folder_is_read_by_the_sandbox(private_runtime, tmp_path):
    python, notes = private_runtime
    notebook = tmp_path / "submission.ipynb"
    notebook.write_text("{}")
    cells = [
        f"import {PRIVATE_MODULE}\nprint({PRIVATE_MODULE}.VALUE)",  # imported lazily
        f"print(open({str(notes)!r}).read())",  # beside the runtime: stays out of reach
    ]
    code = [CellCode(index, None, source) for index, source in enumerate(cells, start=1)]
    with Zygote(python=str(python)) as zygote:
        result = execute(zygote, notebook, code, [], Limits(timeout=20.0, memory_mb=512))
    imported, read = result.cells
    assert (imported.status, imported.output.strip()) == ("ok", "42")
    assert read.status == "error"
    assert "private notes" not in read.output


@pytest.mark.skipif(landlock_abi() == 0, reason="the kernel has no Landlock")
def test_the_grader_refuses_a_runtime_its_sandbox_cannot_read(
    private_runtime, submission_writer, tmp_path
):
    """torch lies outside the environment's own folders here (the ``.pth`` adds it), which
    Landlock keeps from the sandbox: each module torch imports lazily would fail."""
    python, _ = private_runtime
    submission_writer(tmp_path, "correct", "pass")
    out = tmp_path / "out"
    command = [str(python), "-m", "attn_course", "grade", str(tmp_path), "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 3
    assert "missing runtime" in result.stderr
    assert not out.exists()


def test_the_probe_checks_the_runtime_past_a_private_folder(tmp_path, monkeypatch):
    environment = tmp_path / "home" / "env"
    (environment / "site").mkdir(parents=True)
    (tmp_path / "home").chmod(0o700)
    module = environment / "site" / "runtime_probe_module.py"
    module.write_text("VALUE = 1\n")
    monkeypatch.setattr(sys, "prefix", str(environment))
    monkeypatch.syspath_prepend(str(environment / "site"))
    monkeypatch.setattr(isolate, "RUNTIME_MODULES", ("runtime_probe_module",))
    assert "runtime" not in isolate.probe()  # reached past the folder of mode 700
    module.chmod(0o600)  # as umask 077 leaves a file: no mount makes it readable to others
    assert "runtime" in isolate.probe()
