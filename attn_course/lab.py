"""Start JupyterLab on the course: 127.0.0.1 only, token authentication on, lesson 00 open.

The course folder is ``--dir`` if given; else the course folder the command runs in (a clone of
the repository, or one laid out before); else ``~/attn-course``. Unless it is the very folder
the lessons are installed from (a clone with an editable install) or another source checkout
of the course never laid out before (a clone beside a non-editable install), ``lay_out_course``
first copies the installed lessons and exercises into it and brings them up to date on later
runs, never overwriting a notebook the learner changed.

``attn-course lab`` (and ``make lab``) use ``lab_command``; the browser tests use it too, with
throw-away settings and workspace folders, so what they test is what learners get.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

FIRST_NOTEBOOK = "notebooks/00_welcome.ipynb"
COURSE_FOLDERS = ("notebooks", "exercises")
DEFAULT_DIR = Path.home() / "attn-course"
STATE_DIR = ".jupyter-course"  # the course's own JupyterLab state, inside the course folder
SHIPPED_FILE = f"{STATE_DIR}/shipped.json"  # sha256 of each file as the course last copied it

# Course defaults for JupyterLab settings: no news pop-up, no update checks (we are offline).
# They are defaults only (a ``default_setting_overrides`` layer): the learner's own JupyterLab
# settings, a dark theme say, still win.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension:notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}

# Jupyter config for the learners' JupyterLab: nbgrader (installed for instructors and tests)
# keeps its menus, sidebars and server extensions out of the way.
NBGRADER_SERVER_EXTENSIONS = ("formgrader", "validate_assignment", "assignment_list", "course_list")
LAB_CONFIG = {
    "labconfig/page_config.json": {"disabledExtensions": {"@jupyter/nbgrader": True}},
    "labconfig/default_setting_overrides.json": LAB_SETTINGS,
    "jupyter_server_config.json": {
        "ServerApp": {
            "jpserver_extensions": {
                f"nbgrader.server_extensions.{name}": False for name in NBGRADER_SERVER_EXTENSIONS
            }
        }
    },
}


def installed_course() -> Path:
    """The folder this installation's lessons and exercises come from: the package's ``course``
    data in a wheel, the repository itself in an editable install."""
    package = Path(__file__).resolve().parent
    for folder in (package / "course", package.parent):
        if (folder / FIRST_NOTEBOOK).is_file():
            return folder
    raise FileNotFoundError(f"this attn-course installation has no {FIRST_NOTEBOOK}: reinstall it")


def enclosing_course(start: Path) -> Path | None:
    """``start`` or the first of its parents that holds ``notebooks/00_welcome.ipynb``."""
    start = start.resolve()
    return next((f for f in (start, *start.parents) if (f / FIRST_NOTEBOOK).is_file()), None)


def course_root(start: Path | None = None) -> Path:
    """The course folder around ``start`` (default: the current folder), else the installed
    course."""
    return enclosing_course(start or Path.cwd()) or installed_course()


def is_source_checkout(folder: Path) -> bool:
    """Whether ``folder`` is a copy of the course's repository (its ``pyproject.toml`` names
    attn-course, or it is a git working tree) rather than a course folder laid out for a
    learner."""
    if (folder / ".git").exists():
        return True
    try:
        project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return project.get("project", {}).get("name") == "attn-course"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class CourseUpdate:
    """What ``lay_out_course`` did: files written (new or updated), and learner-changed
    notebooks kept as they are, each with the path its new version was written to."""

    written: list[Path] = field(default_factory=list)
    kept: dict[Path, Path] = field(default_factory=dict)


def lay_out_course(target: Path, source: Path | None = None) -> CourseUpdate:
    """Copy the course's notebooks and exercises from ``source`` (default: the installed ones)
    into ``target``, creating it if needed.

    A file missing in ``target`` is copied; one still as a previous run copied it is replaced
    by the new version; one the learner changed is left alone and the new version goes beside
    it, as ``NAME.new.ipynb``. The hashes of what was copied are kept in ``SHIPPED_FILE``.
    """
    source = source or installed_course()
    record_path = target / SHIPPED_FILE
    shipped = json.loads(record_path.read_text()) if record_path.is_file() else {}
    update = CourseUpdate()
    for folder in COURSE_FOLDERS:
        for new in sorted((source / folder).glob("*.ipynb")):
            relative = f"{folder}/{new.name}"
            current, new_hash = target / relative, _sha256(new)
            current_hash = _sha256(current) if current.is_file() else None
            if current_hash == new_hash:
                shipped[relative] = new_hash
                continue
            if current_hash is not None and current_hash != shipped.get(relative):
                beside = current.with_suffix(".new.ipynb")
                if not beside.is_file() or _sha256(beside) != new_hash:
                    beside.write_bytes(new.read_bytes())
                update.kept[current] = beside
                continue
            current.parent.mkdir(parents=True, exist_ok=True)
            current.write_bytes(new.read_bytes())
            shipped[relative] = new_hash
            update.written.append(current)
    record_path.parent.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps(dict(sorted(shipped.items())), indent=1) + "\n")
    return update


def write_lab_config(config_dir: Path, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Write the course's Jupyter config into ``config_dir``; return the environment variables
    that make JupyterLab read it: ``JUPYTER_CONFIG_PATH`` as in ``environ``, with ``config_dir``
    added last.

    ``jupyter_core.paths.jupyter_config_path`` puts ``JUPYTER_CONFIG_PATH`` first, and the first
    folder wins: ``config_dir`` ranks below the folders the learner named in
    ``JUPYTER_CONFIG_PATH`` but above ``~/.jupyter`` (``JUPYTER_CONFIG_DIR``) and the
    environment's and system's folders. So for the few keys it sets (nbgrader's lab extension
    and server extensions off) the course's values win over the learner's ``~/.jupyter``. The
    JupyterLab settings in ``LAB_SETTINGS`` are unaffected: they are a
    ``default_setting_overrides`` layer, defaults that the learner's own settings still
    override."""
    for relative, values in LAB_CONFIG.items():
        path = config_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2) + "\n")
    paths = [p for p in environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p]
    return {"JUPYTER_CONFIG_PATH": os.pathsep.join([*paths, str(config_dir)])}


def lab_command(
    root: Path,
    port: int | None = None,
    open_browser: bool = True,
    settings_dir: Path | None = None,
    workspaces_dir: Path | None = None,
) -> list[str]:
    """The argv that serves JupyterLab on 127.0.0.1 from ``root`` with lesson 00 open.

    Token authentication stays on (JupyterLab prints the URL with its token). The learner's own
    JupyterLab settings apply unless ``settings_dir`` replaces them (the tests do); workspaces
    default to ``root/.jupyter-course/workspaces``, so the course's layout stays with the course.
    Run it with the environment ``write_lab_config`` returns.
    """
    argv = [
        sys.executable, "-m", "jupyterlab",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.workspaces_dir={workspaces_dir or root / STATE_DIR / 'workspaces'}",
        f"--LabApp.default_url=/lab/tree/{FIRST_NOTEBOOK}",
        "--ServerApp.port_retries=0" if port else "--ServerApp.port_retries=50",
    ]  # fmt: skip
    if settings_dir:
        argv.append(f"--LabApp.user_settings_dir={settings_dir}")
    if port:
        argv.append(f"--ServerApp.port={port}")
    if not open_browser:
        argv.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")
    return argv


def prepare_course(directory: Path | None = None) -> Path:
    """The course folder ``attn-course lab`` serves (see the module docstring), laid out and up
    to date; says what it copied and which changed notebooks it kept."""
    root = (directory or enclosing_course(Path.cwd()) or DEFAULT_DIR).resolve()
    if (root / FIRST_NOTEBOOK).is_file() and root == installed_course():
        return root
    if (
        (root / FIRST_NOTEBOOK).is_file()
        and not (root / SHIPPED_FILE).is_file()
        and is_source_checkout(root)
    ):
        # A clone of the repository (beside a non-editable install, or at ~/attn-course): its
        # notebooks are its own, not the learner's changes to the installed ones.
        print(f"attn-course: serving the source checkout {root} as it is")
        return root
    update = lay_out_course(root)
    if update.written:
        print(f"attn-course: copied {len(update.written)} notebooks into {root}")
    for kept, beside in update.kept.items():
        print(f"attn-course: kept your {kept.relative_to(root)}; its new version is {beside.name}")
    return root


def run_lab(
    port: int | None = None, open_browser: bool = True, directory: Path | None = None
) -> int:
    """Start JupyterLab on the course in the foreground; returns its exit status.

    On POSIX the process becomes JupyterLab (``exec``), so Ctrl-C and SIGTERM reach it directly.
    """
    root = prepare_course(directory)
    os.environ.update(write_lab_config(root / STATE_DIR / "config"))
    argv = lab_command(root, port=port, open_browser=open_browser)
    if os.name == "posix":
        os.chdir(root)
        sys.stdout.flush()  # execv drops Python's buffers
        os.execv(argv[0], argv)
    try:
        return subprocess.call(argv, cwd=root)
    except KeyboardInterrupt:
        return 0
