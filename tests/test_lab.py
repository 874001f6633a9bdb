"""``attn-course lab`` serves JupyterLab on 127.0.0.1, token on, course settings in place."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from attn_course.lab import (
    FIRST_NOTEBOOK,
    SHIPPED_FILE,
    STATE_DIR,
    course_root,
    installed_course,
    lab_command,
    lay_out_course,
    prepare_course,
    write_lab_config,
)


def status_code(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except urllib.error.URLError:
        return 0  # not listening yet


@pytest.fixture
def course(tmp_path: Path) -> Path:
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / FIRST_NOTEBOOK)
    return tmp_path


def test_lab_command_binds_loopback_and_leaves_the_learners_settings_alone(course: Path):
    argv = lab_command(course, port=9999, open_browser=False)
    assert "--ServerApp.ip=127.0.0.1" in argv
    assert "--ServerApp.port=9999" in argv and "--ServerApp.port_retries=0" in argv
    assert "--no-browser" in argv
    assert not any("token" in arg.lower() for arg in argv), "token authentication must stay on"
    assert not any("user_settings_dir" in arg for arg in argv)
    assert f"--LabApp.workspaces_dir={course / '.jupyter-course' / 'workspaces'}" in argv


def test_course_root_is_found_from_a_subfolder(course: Path):
    assert course_root(course / "notebooks") == course


def test_write_lab_config_hides_nbgrader_and_sets_defaults_below_the_learners(tmp_path: Path):
    env = write_lab_config(tmp_path, environ={})
    assert env == {"JUPYTER_CONFIG_PATH": str(tmp_path)}
    page = json.loads((tmp_path / "labconfig/page_config.json").read_text())
    assert page["disabledExtensions"] == {"@jupyter/nbgrader": True}
    server = json.loads((tmp_path / "jupyter_server_config.json").read_text())
    assert set(server["ServerApp"]["jpserver_extensions"].values()) == {False}
    defaults = json.loads((tmp_path / "labconfig/default_setting_overrides.json").read_text())
    assert defaults["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"


def test_write_lab_config_adds_to_the_learners_jupyter_config_path(tmp_path: Path):
    theirs = os.pathsep.join(["/their/config", "/more/config"])
    env = write_lab_config(tmp_path, environ={"JUPYTER_CONFIG_PATH": theirs})
    assert env["JUPYTER_CONFIG_PATH"].split(os.pathsep) == [
        "/their/config", "/more/config", str(tmp_path)
    ]  # fmt: skip


def shipped_notebooks() -> list[str]:
    source = installed_course()
    return sorted(
        str(path.relative_to(source))
        for folder in ("notebooks", "exercises")
        for path in (source / folder).glob("*.ipynb")
    )


def test_lay_out_course_copies_every_lesson_and_exercise_once(tmp_path: Path):
    update = lay_out_course(tmp_path / "course")
    copied = sorted(str(path.relative_to(tmp_path / "course")) for path in update.written)
    assert copied == shipped_notebooks() and FIRST_NOTEBOOK in copied
    assert (tmp_path / "course" / FIRST_NOTEBOOK).read_bytes() == (
        installed_course() / FIRST_NOTEBOOK
    ).read_bytes()
    again = lay_out_course(tmp_path / "course")
    assert again.written == [] and again.kept == {}


def fake_release(tmp_path: Path, text: str) -> Path:
    """A course source whose only lesson is 00, with ``text`` as its content."""
    source = tmp_path / f"release-{len(list(tmp_path.glob('release-*')))}"
    (source / "notebooks").mkdir(parents=True)
    (source / FIRST_NOTEBOOK).write_text(text)
    return source


def test_lay_out_course_updates_untouched_notebooks(tmp_path: Path):
    course = tmp_path / "course"
    lay_out_course(course, fake_release(tmp_path, "version 1"))
    update = lay_out_course(course, fake_release(tmp_path, "version 2"))
    assert update.written == [course / FIRST_NOTEBOOK] and update.kept == {}
    assert (course / FIRST_NOTEBOOK).read_text() == "version 2"


def test_lay_out_course_never_overwrites_a_learners_notebook(tmp_path: Path):
    course = tmp_path / "course"
    lay_out_course(course, fake_release(tmp_path, "version 1"))
    (course / FIRST_NOTEBOOK).write_text("my notes")
    update = lay_out_course(course, fake_release(tmp_path, "version 2"))
    beside = course / "notebooks" / "00_welcome.new.ipynb"
    assert update.written == [] and update.kept == {course / FIRST_NOTEBOOK: beside}
    assert (course / FIRST_NOTEBOOK).read_text() == "my notes"
    assert beside.read_text() == "version 2"
    # The learner's file stays theirs on later runs too, even once it equals no release.
    assert lay_out_course(course, fake_release(tmp_path, "version 2")).kept
    assert (course / FIRST_NOTEBOOK).read_text() == "my notes"


@pytest.mark.parametrize("marker", ["pyproject.toml", ".git"])
def test_prepare_course_serves_a_source_checkout_as_it_is(tmp_path: Path, marker: str, capsys):
    """A clone beside a non-editable install: its notebooks differ from the installed ones, yet
    nothing is laid out into the working tree (no NAME.new.ipynb, no .jupyter-course/)."""
    clone = tmp_path / "clone"
    (clone / "notebooks").mkdir(parents=True)
    (clone / FIRST_NOTEBOOK).write_text("the clone's own lesson 00")
    if marker == ".git":
        (clone / ".git").mkdir()
    else:
        (clone / "pyproject.toml").write_text('[project]\nname = "attn-course"\n')
    before = sorted(clone.rglob("*"))
    assert prepare_course(clone) == clone
    assert sorted(clone.rglob("*")) == before
    assert (clone / FIRST_NOTEBOOK).read_text() == "the clone's own lesson 00"
    assert "serving the source checkout" in capsys.readouterr().out


def test_prepare_course_still_updates_a_laid_out_course_the_learner_put_in_git(tmp_path: Path):
    course = tmp_path / "course"
    lay_out_course(course)
    (course / ".git").mkdir()  # the learner versions their work
    (course / "pyproject.toml").write_text('[project]\nname = "not-attn-course"\n')
    (course / FIRST_NOTEBOOK).write_text("my notes")
    assert (course / SHIPPED_FILE).is_file()
    assert prepare_course(course) == course.resolve()
    assert (course / "notebooks" / "00_welcome.new.ipynb").is_file()
    assert (course / FIRST_NOTEBOOK).read_text() == "my notes"


def test_prepare_course_lays_out_a_folder_with_an_unrelated_pyproject(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    prepare_course(tmp_path)
    assert (tmp_path / FIRST_NOTEBOOK).is_file() and (tmp_path / STATE_DIR).is_dir()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_attn_course_lab_lays_out_the_course_and_serves_it_with_the_learners_settings(
    tmp_path: Path, free_port
):
    course, home = tmp_path / "my course", tmp_path / "home"
    user_settings = home / ".jupyter" / "lab" / "user-settings" / "@jupyterlab"
    (user_settings / "apputils-extension").mkdir(parents=True)
    (user_settings / "apputils-extension" / "themes.jupyterlab-settings").write_text(
        json.dumps({"theme": "JupyterLab Dark"})
    )
    port, token = free_port(), "course-test-token"
    env = {
        **os.environ,
        "HOME": str(home),
        "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
        "JUPYTER_TOKEN": token,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    argv = [sys.executable, "-m", "attn_course", "lab", "--no-browser", "--port", str(port),
            "--dir", str(course)]  # fmt: skip
    server = subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while status_code(f"{base}/api/status?token={token}") != 200:
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "JupyterLab did not start within 90 s"
            time.sleep(0.5)
        assert status_code(f"{base}/api/status") == 403, "requests without the token must fail"
        lesson = get_json(f"{base}/api/contents/{FIRST_NOTEBOOK}?token={token}")
        assert lesson["type"] == "notebook" and lesson["content"]["cells"]
        lab_page = urllib.request.urlopen(f"{base}/lab?token={token}", timeout=10)
        config_json = re.search(
            r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
            lab_page.read().decode(),
            flags=re.S,
        )
        page_config = json.loads(config_json.group(1))
        assert "@jupyter/nbgrader" in page_config["disabledExtensions"], "hide nbgrader's UI"
        settings = f"{base}/lab/api/settings/@jupyterlab/apputils-extension"
        theme = get_json(f"{settings}:themes?token={token}")
        assert theme["settings"]["theme"] == "JupyterLab Dark", "the learner's theme is read"
        news = get_json(f"{settings}:notification?token={token}")
        # Course settings change defaults only; a learner's own value would still win.
        assert news["schema"]["properties"]["fetchNews"]["default"] == "false"
        assert news["schema"]["properties"]["checkForUpdates"]["default"] is False
    finally:
        server.send_signal(signal.SIGTERM)
        log, _ = server.communicate(timeout=30)
    assert f"copied {len(shipped_notebooks())} notebooks into {course}" in log
    assert f"http://127.0.0.1:{port}/lab/tree/{FIRST_NOTEBOOK}?token=" in log, "opens lesson 00"
    assert "nbgrader.server_extensions" not in log, "nbgrader's server extensions must not load"
