"""Start JupyterLab on the course: 127.0.0.1 only, token authentication on, lesson 00 open.

``attn-course lab`` (and ``make lab``) use ``lab_command``; the browser tests use it too, with
throw-away settings and workspace folders, so what they test is what learners get.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FIRST_NOTEBOOK = "notebooks/00_welcome.ipynb"

# JupyterLab settings for the course: no news pop-up, no update checks (we are offline).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def course_root(start: Path | None = None) -> Path:
    """The folder holding ``notebooks/``: ``start`` (default: the current folder) or one of its
    parents, else the checkout this package was installed from (an editable install)."""
    start = (start or Path.cwd()).resolve()
    candidates = [start, *start.parents, Path(__file__).resolve().parent.parent]
    for folder in candidates:
        if (folder / FIRST_NOTEBOOK).is_file():
            return folder
    raise FileNotFoundError(
        f"no {FIRST_NOTEBOOK} in {start} or its parents: run from the course folder"
    )


# Jupyter config for the learners' JupyterLab: nbgrader (installed for instructors and tests)
# keeps its menus, sidebars and server extensions out of the way.
NBGRADER_SERVER_EXTENSIONS = ("formgrader", "validate_assignment", "assignment_list", "course_list")
LAB_CONFIG = {
    "labconfig/page_config.json": {"disabledExtensions": {"@jupyter/nbgrader": True}},
    "jupyter_server_config.json": {
        "ServerApp": {
            "jpserver_extensions": {
                f"nbgrader.server_extensions.{name}": False for name in NBGRADER_SERVER_EXTENSIONS
            }
        }
    },
}


def write_lab_config(config_dir: Path) -> dict[str, str]:
    """Write the course's Jupyter config into ``config_dir``; return the environment variables
    that make JupyterLab read it (``JUPYTER_CONFIG_PATH``, ahead of the installation's)."""
    for relative, values in LAB_CONFIG.items():
        path = config_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2) + "\n")
    return {"JUPYTER_CONFIG_PATH": str(config_dir)}


def write_lab_settings(settings_dir: Path) -> None:
    """Write the course's JupyterLab user settings, keeping any file that is already there."""
    for relative, values in LAB_SETTINGS.items():
        path = settings_dir / relative
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values, indent=2) + "\n")


def lab_command(
    root: Path,
    port: int | None = None,
    open_browser: bool = True,
    settings_dir: Path | None = None,
    workspaces_dir: Path | None = None,
) -> list[str]:
    """The argv that serves JupyterLab on 127.0.0.1 from ``root`` with lesson 00 open.

    Token authentication stays on (JupyterLab prints the URL with its token). Settings and
    workspaces default to ``root/.jupyter-course/`` so the course's settings never touch the
    learner's own JupyterLab; call ``write_lab_settings`` on ``settings_dir`` first, and run it
    with the environment ``write_lab_config`` returns.
    """
    state = root / ".jupyter-course"
    argv = [
        sys.executable, "-m", "jupyter", "lab",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings_dir or state / 'settings'}",
        f"--LabApp.workspaces_dir={workspaces_dir or state / 'workspaces'}",
        f"--LabApp.default_url=/lab/tree/{FIRST_NOTEBOOK}",
        "--ServerApp.port_retries=0" if port else "--ServerApp.port_retries=50",
    ]  # fmt: skip
    if port:
        argv.append(f"--ServerApp.port={port}")
    if not open_browser:
        argv.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")
    return argv


def run_lab(port: int | None = None, open_browser: bool = True) -> int:
    """Start JupyterLab on the course in the foreground; returns its exit status.

    On POSIX the process becomes JupyterLab (``exec``), so Ctrl-C and SIGTERM reach it directly.
    """
    root = course_root()
    settings_dir = root / ".jupyter-course" / "settings"
    write_lab_settings(settings_dir)
    os.environ.update(write_lab_config(root / ".jupyter-course" / "config"))
    argv = lab_command(root, port=port, open_browser=open_browser, settings_dir=settings_dir)
    if os.name == "posix":
        os.chdir(root)
        os.execv(argv[0], argv)
    try:
        return subprocess.call(argv, cwd=root)
    except KeyboardInterrupt:
        return 0
