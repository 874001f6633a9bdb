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
    course_root,
    lab_command,
    write_lab_config,
    write_lab_settings,
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


def test_lab_command_binds_loopback_and_keeps_settings_apart(course: Path):
    argv = lab_command(course, port=9999, open_browser=False)
    assert "--ServerApp.ip=127.0.0.1" in argv
    assert "--ServerApp.port=9999" in argv and "--ServerApp.port_retries=0" in argv
    assert "--no-browser" in argv
    assert not any("token" in arg.lower() for arg in argv), "token authentication must stay on"
    assert f"--LabApp.user_settings_dir={course / '.jupyter-course' / 'settings'}" in argv


def test_course_root_is_found_from_a_subfolder(course: Path):
    assert course_root(course / "notebooks") == course


def test_write_lab_settings_turns_off_news_and_keeps_existing_files(tmp_path: Path):
    write_lab_settings(tmp_path)
    path = tmp_path / "@jupyterlab/apputils-extension/notification.jupyterlab-settings"
    assert json.loads(path.read_text())["fetchNews"] == "false"
    path.write_text("{}")
    write_lab_settings(tmp_path)
    assert path.read_text() == "{}"


def test_write_lab_config_hides_nbgrader_from_learners(tmp_path: Path):
    env = write_lab_config(tmp_path)
    assert env == {"JUPYTER_CONFIG_PATH": str(tmp_path)}
    page = json.loads((tmp_path / "labconfig/page_config.json").read_text())
    assert page["disabledExtensions"] == {"@jupyter/nbgrader": True}
    server = json.loads((tmp_path / "jupyter_server_config.json").read_text())
    assert set(server["ServerApp"]["jpserver_extensions"].values()) == {False}


def test_attn_course_lab_serves_on_loopback_with_token_auth(course: Path, free_port):
    port = free_port()
    env = {
        **os.environ,
        "JUPYTER_TOKEN": "course-test-token",
        "JUPYTER_RUNTIME_DIR": str(course / "runtime"),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "attn_course", "lab", "--no-browser", "--port", str(port)],
        cwd=course, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while status_code(f"{base}/api/status?token=course-test-token") != 200:
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "JupyterLab did not start within 60 s"
            time.sleep(0.5)
        assert status_code(f"{base}/api/status") == 403, "requests without the token must fail"
        opened = f"{base}/api/contents/{FIRST_NOTEBOOK}?token=course-test-token&content=0"
        assert status_code(opened) == 200
        lab_page = urllib.request.urlopen(f"{base}/lab?token=course-test-token", timeout=5)
        config_json = re.search(
            r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
            lab_page.read().decode(),
            flags=re.S,
        )
        page_config = json.loads(config_json.group(1))
        assert "@jupyter/nbgrader" in page_config["disabledExtensions"], "hide nbgrader's UI"
    finally:
        server.send_signal(signal.SIGTERM)
        log, _ = server.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/lab/tree/{FIRST_NOTEBOOK}?token=" in log, "opens lesson 00"
    assert "nbgrader.server_extensions" not in log, "nbgrader's server extensions must not load"
    assert (course / ".jupyter-course" / "settings").is_dir()
