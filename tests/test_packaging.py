"""The package installs as documented: one dependency list, a working console script."""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

import attn_course.reference
from attn_course.assignments import installed_in_site_packages, usable_solutions
from attn_course.checks import ASSIGNMENTS
from attn_course.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def claimed_pythons() -> list[str]:
    """The Python versions pyproject.toml's classifiers claim, e.g. ["3.11", "3.12"]."""
    prefix = "Programming Language :: Python :: "
    return [c.removeprefix(prefix) for c in pyproject()["project"]["classifiers"]
            if c.startswith(prefix) and c.count(".") == 1]  # fmt: skip


def makefile_torch() -> str:
    return re.search(r"^TORCH\s*:=\s*(\S+)$", (ROOT / "Makefile").read_text(), flags=re.M)[1]


def test_claimed_pythons_are_the_ones_ci_tests_and_the_rest_agrees():
    claimed = claimed_pythons()
    assert claimed == ["3.11", "3.12", "3.13"]
    ci_versions = re.search(r'^CLAIMED="([^"]+)"', (ROOT / ".ci/run").read_text(), flags=re.M)[1]
    assert ci_versions.split() == claimed, ".ci/run must test every claimed version"
    assert pyproject()["project"]["requires-python"] == f">={claimed[0]}"
    environment = yaml_list(ROOT / "environment.yml", "dependencies")
    low, high = claimed[0], claimed[-1]
    assert f"python>={low},<3.{int(high.split('.')[1]) + 1}" in environment
    assert f"Python {low}–{high}" in (ROOT / "README.md").read_text()


def test_dependencies_declare_numpy_ipython_and_a_tested_torch_floor():
    runtime = pyproject()["project"]["dependencies"]
    assert {_name(r) for r in runtime} >= {"torch", "numpy", "ipython", "jupyterlab"}
    assert "nbclient" not in {_name(r) for r in runtime}, "only the benchmarks use nbclient"
    assert "nbclient" in {_name(r) for r in pyproject()["project"]["optional-dependencies"]["test"]}
    floor = next(r for r in runtime if _name(r) == "torch").removeprefix("torch>=")
    pinned = makefile_torch().removeprefix("torch==")
    assert pinned.startswith(floor + "."), "the floor is the version the tests run on"


def yaml_list(path: Path, key: str) -> list[str]:
    """The items of a top-level YAML list and of the lists nested in it, as plain strings
    (environment.yml is simple enough not to need a YAML parser)."""
    lines = path.read_text().splitlines()
    items, inside = [], False
    for line in lines:
        if not line.startswith(" "):
            inside = line.strip() == f"{key}:"
        elif inside and line.strip().startswith("- "):
            items.append(line.strip()[2:].rstrip(":"))
    return items


def test_environment_yml_gets_cpu_torch_and_the_package_from_pyproject():
    environment = yaml_list(ROOT / "environment.yml", "dependencies")
    install_torch = (ROOT / ".ci/install-torch").read_text()
    cpu_index = re.search(r"TORCH_CPU_INDEX:-(\S+)\}", install_torch)[1]
    assert environment[:2] == ["python>=3.11,<3.14", "pip"]
    assert environment[2:] == [
        "pip", f"--extra-index-url {cpu_index}", makefile_torch(), "-e ."
    ], "the course's other dependencies come from pyproject.toml through -e ."  # fmt: skip
    assert "channels:\n  - conda-forge\n" in (ROOT / "environment.yml").read_text()


def test_every_spec_name_imports_from_reference():
    spec_names = [
        "attention_scores", "softmax", "context_vector", "SimpleAttention",
        "scaled_dot_product_attention", "causal_mask", "padding_mask",
        "split_heads", "merge_heads", "MultiHeadAttention",
    ]  # fmt: skip
    missing = [n for n in spec_names if not hasattr(attn_course.reference, n)]
    assert missing == []
    assert set(attn_course.reference.__all__) <= set(dir(attn_course.reference))


def test_reference_modules_import_only_torch():
    for path in (ROOT / "attn_course" / "reference").glob("*.py"):
        imports = re.findall(r"^(?:from|import) (\w+)", path.read_text(), flags=re.M)
        assert set(imports) <= {"torch", "attn_course", "math", "__future__"}, path.name


def test_console_script_and_python_m_show_help():
    script = Path(sys.executable).with_name("attn-course")
    for argv in ([str(script), "--help"], [sys.executable, "-m", "attn_course", "--help"]):
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
        assert "lab" in done.stdout


def test_cli_rejects_unknown_commands_with_exit_status_2():
    done = subprocess.run(
        [sys.executable, "-m", "attn_course", "no-such-command"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert build_parser().parse_args(["lab", "--port", "9999", "--no-browser"]).port == 9999


def test_release_refuses_a_missing_solutions_folder(tmp_path: Path, capsys):
    for argv in (["release"], ["release", "--check"]):
        assert main([*argv, "--solutions", str(tmp_path / "nope")]) == 2
        assert "no solutions folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["release", "--check", "--solutions", str(tmp_path / "empty")]) == 2
    assert "no solution notebooks" in capsys.readouterr().err


def test_this_checkout_is_an_editable_install_that_may_release():
    assert not installed_in_site_packages()
    usable_solutions(ROOT / "solutions", writing=True)


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist, and the wheel built from that sdist (so the sdist must be complete)."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_sdist_holds_the_course_its_tests_and_the_license(dists: Path):
    (sdist,) = dists.glob("attn_course-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()  # fmt: skip
    wanted = [name for name in tracked if name.split("/")[0] in
              {"notebooks", "exercises", "solutions", "tests", "attn_course", "docs"}]  # fmt: skip
    assert {"LICENSE", "README.md", "pyproject.toml", "tests/conftest.py"} <= names
    assert "tests/browser/conftest.py" in names and "tests/grader/conftest.py" in names
    assert [name for name in wanted if name not in names] == []


def test_wheel_ships_the_lessons_and_exercises_as_package_data(dists: Path):
    (wheel,) = dists.glob("attn_course-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for folder in ("notebooks", "exercises"):
        for path in (ROOT / folder).glob("*.ipynb"):
            assert f"attn_course/course/{folder}/{path.name}" in names
    assert {"attn_course/grader/cells.json", "attn_course/site.html.j2",
            "attn_course/efficient_attention.json"} <= names  # fmt: skip
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


@pytest.fixture(scope="module")
def wheel_venv(dists: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed. Its other packages (torch,
    JupyterLab, …) are this test environment's, added by a .pth file, to keep the test fast;
    the wheel's own attn_course comes first on sys.path."""
    venv = tmp_path_factory.mktemp("wheel") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    ours = sysconfig.get_paths()["purelib"]
    layer = f"import site; site.addsitedir({ours!r})\n"
    Path(site_packages, "test_environment.pth").write_text(layer)
    (wheel,) = dists.glob("attn_course-*.whl")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel],
                   check=True)  # fmt: skip
    where = subprocess.run([python, "-c", "import attn_course; print(attn_course.__file__)"],
                           cwd=venv, check=True, capture_output=True, text=True).stdout  # fmt: skip
    assert where.startswith(site_packages), where
    return venv


def test_the_wheel_alone_lays_out_and_serves_the_course(wheel_venv: Path, tmp_path: Path,
                                                         free_port):  # fmt: skip
    port, token = free_port(), "wheel-test-token"
    env = {**os.environ, "HOME": str(tmp_path / "home"), "JUPYTER_TOKEN": token,
           "JUPYTER_CONFIG_DIR": str(tmp_path / "home" / ".jupyter"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}  # fmt: skip
    course = tmp_path / "course"
    argv = [wheel_venv / "bin" / "attn-course", "lab", "--no-browser", "--port", str(port),
            "--dir", course]  # fmt: skip
    server = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}/api/contents/notebooks/00_welcome.ipynb?token={token}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "JupyterLab did not start within 90 s"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    lesson = json.load(response)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    assert lesson["type"] == "notebook"
    assert lesson["content"]["cells"][0]["source"].startswith("# Lesson 00")
    assert sorted(p.name for p in (course / "exercises").glob("*.ipynb")) == sorted(
        p.name for p in (ROOT / "exercises").glob("*.ipynb")
    )
    # Lesson 12 runs in the laid-out folder, far from the repository: the benchmark record it
    # prints is package data.
    lesson_12 = course / "notebooks" / "12_efficient_attention.ipynb"
    executed = tmp_path / "executed"
    argv = [wheel_venv / "bin" / "python", "-m", "nbconvert", "--to", "notebook", "--execute",
            "--ExecutePreprocessor.timeout=120", "--output-dir", executed, lesson_12]  # fmt: skip
    done = subprocess.run(argv, cwd=lesson_12.parent, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = (executed / lesson_12.name).read_text()
    date = json.loads((ROOT / "attn_course" / "efficient_attention.json").read_text())["date"]
    assert f"measured {date}, torch" in printed


def test_the_wheel_alone_grades_a_notebook(wheel_venv: Path, tmp_path: Path):
    submission = tmp_path / "01_scores_softmax_context.ipynb"
    shutil.copy(ROOT / "solutions" / submission.name, submission)
    out = tmp_path / "grades"
    subprocess.run([wheel_venv / "bin" / "attn-course", "grade", submission, "--out", out,
                    "--workers", "1"], cwd=tmp_path, check=True, capture_output=True)  # fmt: skip
    with open(out / "grades.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["exercise"] for row in rows] == list(ASSIGNMENTS["01_scores_softmax_context"])
    assert all(row["status"] == "passed" and row["points"] == row["max_points"] for row in rows)


def test_the_wheel_refuses_to_release_into_site_packages(wheel_venv: Path, tmp_path: Path):
    script = wheel_venv / "bin" / "attn-course"
    release = [script, "release", "--solutions", ROOT / "solutions", "--exercises", tmp_path]
    done = subprocess.run(release, capture_output=True, text=True)
    assert done.returncode == 2 and "site-packages" in done.stderr
    assert list(tmp_path.iterdir()) == []
    check = [script, "release", "--check", "--solutions", ROOT / "solutions",
             "--exercises", ROOT / "exercises"]  # fmt: skip
    assert subprocess.run(check, capture_output=True).returncode == 0, "--check only reads"
