"""The same grade wherever the course is installed: a sandbox reads the runtime it needs even
when a folder above it is private (mode 700, as ``mktemp -d`` makes it, as many homes are), and
the grader refuses to start where the sandbox's user still could not read it."""

from __future__ import annotations

import csv
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from attn_course.grader import confine, isolate
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


def test_packages_a_pth_file_adds_are_read_and_the_grade_is_full(
    private_runtime, submission_writer, tmp_path
):
    """torch lies outside the environment's own folders here (the ``.pth`` adds it, as in a
    wheel installed beside another environment's packages): its lazy imports work in the
    sandbox, and the model solution gets every point."""
    python, _ = private_runtime
    submission_writer(tmp_path, "correct", "pass")
    out = tmp_path / "out"
    command = [str(python), "-m", "attn_course", "grade", str(tmp_path), "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    with (out / "grades.csv").open(encoding="utf-8-sig", newline="") as file:
        rows = list(csv.DictReader(file))
    assert rows and all(row["status"] == "passed" for row in rows), rows


def test_the_course_source_tree_stays_unreadable_when_it_is_on_sys_path():
    """An editable install puts the repository on ``sys.path``; its folders (solutions/) must
    not become readable with the packages a ``.pth`` adds."""
    course = Path(confine.__file__).resolve().parents[1]
    solutions = course.parent / "solutions"  # in a clone; in an installed wheel, nothing
    readable = confine.readable_paths(course)
    assert not any(path == solutions or path in solutions.parents for path in readable)
    assert not any(path == course or path in course.parents for path in readable)


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
