"""JupyterLab in a real Chromium: one server and one browser per session, a fresh page per test.

The server is started the way ``attn-course lab`` starts it (``lab_command`` and
``write_lab_config``), on a free port of 127.0.0.1, serving a throw-away folder with its own
settings, workspaces and Jupyter/IPython folders. Notebooks under test are copied there with
their outputs and saved widget state removed, so nothing stored can stand in for a real run.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from attn_course.lab import course_root, lab_command, write_lab_config

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_S = 90
RUN_ALL_S = 240  # a lesson runs in under 30 s alone; the suite shares 2 cores with others
WIDGET_UPDATE_S = 60
VIEWPORT = {"width": 1280, "height": 900}
TALLEST_SCREENSHOT = 16_000  # pixels; Chromium cannot capture much taller pages

# A kernel is attached and waiting: the status bar reads "Python 3 (ipykernel) | Idle".
KERNEL_IDLE_JS = """() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]
    .some(item => item.textContent.trim().endsWith('| Idle'))"""

# Every listed code cell ran (a new execution count) and nothing is queued or running; or a cell
# failed, which stops the queue (the cells after it fall back to "[ ]").
CELLS_DONE_JS = """([indices, before]) => {
    const cells = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')];
    const prompts = cells.map(cell => cell.querySelector('.jp-InputPrompt')?.textContent.trim());
    if (prompts.some(prompt => prompt && prompt.includes('*'))) return false;
    const idle = [...document.querySelectorAll('.jp-StatusBar-TextItem')]
        .some(item => item.textContent.trim().endsWith('| Idle'));
    if (!idle) return false;
    const fresh = indices.map((i, n) =>
        /^\\[\\d+\\]:$/.test(prompts[i]) && prompts[i] !== before[n]);
    const failed = indices.some((i, n) => fresh[n] && cells[i].querySelector(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'));
    return fresh.every(Boolean) || failed;
}"""

# What the page shows for each output of each cell: static images (outside widgets), rendered
# widgets (with the controls in them), error/stderr text, and text that stands in for a picture
# or a widget that did not render. textContent, not innerText: JupyterLab skips rendering cells
# out of view (content-visibility), and their innerText is empty.
OUTPUTS_JS = """() => {
    const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
    return [...panel.querySelectorAll('.jp-Cell')].map(cell => {
        const outputs = [...cell.querySelectorAll('.jp-OutputArea-output')]
            .filter(output => !output.parentElement.closest('.jupyter-widgets'));
        const images = outputs.flatMap(output => [...output.querySelectorAll('img')])
            .filter(img => !img.closest('.jupyter-widgets'));
        const widgets = outputs.map(output => output.querySelector('.jupyter-widgets'))
            .filter(Boolean);
        return {
            images: images.map(img => [img.naturalWidth, img.naturalHeight]),
            widgets: widgets.map(w => w.querySelectorAll(
                '.widget-slider, .widget-dropdown, .widget-toggle-buttons, .widget-checkbox,'
                + ' .widget-button, .widget-radio, .widget-text, .widget-select').length),
            errors: outputs
                .filter(o => o.dataset.mimeType === 'application/vnd.jupyter.stderr')
                .map(o => o.textContent.slice(0, 2000)),
            texts: outputs.map(o => o.textContent),
        };
    });
}"""

# The part of a widget that its controls drive: pictures and text, without the controls.
WIDGET_STATE_JS = """(widget) => JSON.stringify({
    images: [...widget.querySelectorAll('img')].map(img => img.src),
    texts: [...widget.querySelectorAll('.widget-output, .widget-html, .widget-label')]
        .map(e => e.textContent),
})"""


# The height of a window that would show the open notebook from its top to its last cell.
NOTEBOOK_HEIGHT_JS = """() => {
    const scroller = document.querySelector(
        '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer');
    scroller.scrollTop = 0;
    const last = [...scroller.querySelectorAll('.jp-Cell')].pop();
    const content = last.getBoundingClientRect().bottom - scroller.getBoundingClientRect().top;
    return Math.ceil(content + window.innerHeight - scroller.clientHeight + 20);
}"""


@dataclass(frozen=True)
class Server:
    url: str
    token: str
    root: Path


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError):
        return False


def shut_down_kernels(server: Server) -> None:
    """End every kernel session, so one test's kernel does not slow the next test down."""
    headers = {"Authorization": f"token {server.token}"}
    with urllib.request.urlopen(
        urllib.request.Request(f"{server.url}/api/sessions", headers=headers), timeout=10
    ) as response:
        sessions = json.load(response)
    for session in sessions:
        request = urllib.request.Request(
            f"{server.url}/api/sessions/{session['id']}", headers=headers, method="DELETE"
        )
        urllib.request.urlopen(request, timeout=30).close()


def cleared(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy without outputs, execution counts or saved widget state."""
    notebook = nbformat.from_dict(notebook)
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return notebook


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        reason = "no Chromium (/usr/bin/chromium): `make chromium` installs Debian's package"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the browser tests")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def lab_server(
    tmp_path_factory: pytest.TempPathFactory, chromium: str, free_port: Callable[[], int]
) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("jupyterlab")
    root, settings, workspaces = home / "root", home / "settings", home / "workspaces"
    root.mkdir()
    token = secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_TOKEN": token,
        "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
        **write_lab_config(home / "course-config"),
    }
    port = free_port()
    argv = lab_command(
        root, port=port, open_browser=False, settings_dir=settings, workspaces_dir=workspaces
    )
    log_path = home / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not answers(f"{url}/api/status?token={token}"):
            assert server.poll() is None, f"JupyterLab exited:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"JupyterLab did not start:\n{log_path.read_text()}"
            time.sleep(0.3)
        yield Server(url, token, root)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_FLAGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


class Lab:
    """One JupyterLab page in a fresh browser context, driven like a learner drives it."""

    def __init__(self, page: Page, server: Server, screenshots: Path, test: pytest.Item) -> None:
        self.page = page
        self.server = server
        self.screenshots = screenshots
        self.test = test
        self.workspace = secrets.token_hex(4)  # a fresh JupyterLab layout: only this notebook
        self.cell_counts: dict[str, int] = {}

    def add(self, relative: str, notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
        """Put a cleared copy of ``notebook`` at ``relative`` in the served folder."""
        path = self.server.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(cleared(notebook), path)
        self.cell_counts[relative] = len(notebook.cells)
        return notebook

    def add_from_course(self, relative: str) -> nbformat.NotebookNode:
        """Copy a course notebook, outputs cleared, to the same place; return the stored one."""
        source = course_root() / relative
        return self.add(relative, nbformat.read(source, as_version=4))

    # -- driving ------------------------------------------------------------------------------
    def open(self, relative: str) -> None:
        """Open a notebook put there by ``add``, in a workspace of its own, and wait until all
        its cells are on the page and its kernel is idle."""
        self.page.goto(
            f"{self.server.url}/lab/workspaces/{self.workspace}/tree/{relative}"
            f"?token={self.server.token}"
        )
        expect(self.cells).to_have_count(self.cell_counts[relative])
        self.page.wait_for_function(KERNEL_IDLE_JS, timeout=RUN_ALL_S * 1000)

    @property
    def cells(self) -> Locator:
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")

    def prompts(self) -> list[str]:
        return [prompt.strip() for prompt in self.cells.evaluate_all(
            "cells => cells.map(c => c.querySelector('.jp-InputPrompt')?.textContent ?? '')"
        )]  # fmt: skip

    def code_cells(self) -> list[int]:
        kinds = self.cells.evaluate_all(
            "cells => cells.map(c => c.classList.contains('jp-CodeCell'))"
        )
        return [index for index, is_code in enumerate(kinds) if is_code]

    def _wait_for_cells(self, indices: list[int], before: list[str]) -> None:
        try:
            self.page.wait_for_function(
                CELLS_DONE_JS,
                arg=[indices, [before[i] for i in indices]],
                timeout=RUN_ALL_S * 1000,
            )
        except PlaywrightTimeoutError:
            raise AssertionError(
                f"cells {indices} did not finish in {RUN_ALL_S} s; prompts: {self.prompts()}"
            ) from None

    def run_all(self) -> None:
        """Run > Run All Cells, then wait until every cell ran (or one failed) and all is idle."""
        before = self.prompts()
        self.page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        self.page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
        self._wait_for_cells(self.code_cells(), before)

    def replace_source(self, index: int, source: str) -> None:
        """Click into cell ``index``, select all of its code and type ``source`` over it."""
        editor = self.cells.nth(index).locator(".cm-content")
        editor.click()
        self.page.keyboard.press("ControlOrMeta+a")
        self.page.keyboard.insert_text(source)
        expect(editor).to_contain_text(source.strip().splitlines()[0])

    def run_cell(self, index: int) -> None:
        """Click into cell ``index``, press Shift+Enter and wait until it ran."""
        before = self.prompts()
        self.cells.nth(index).locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Shift+Enter")
        self._wait_for_cells([index], before)

    def outputs(self) -> list[dict]:
        """Per cell: loaded image sizes, controls per widget, error texts, all output texts."""
        self.page.wait_for_function(
            "() => [...document.images].every(img => img.complete)", timeout=30_000
        )
        return self.page.evaluate(OUTPUTS_JS)

    def widget(self, index: int) -> Locator:
        """The ``index``-th widget shown as a cell output (not a widget nested in another)."""
        return self.page.locator(
            ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output > .jupyter-widgets"
        ).nth(index)

    def move(self, control: Locator) -> None:
        """Change a control the way a learner would: arrow keys on a slider (left when it is at its
        maximum), the next option of a dropdown, another toggle button, a click on a checkbox or
        a button."""
        control.scroll_into_view_if_needed()
        classes = control.get_attribute("class") or ""
        if "widget-slider" in classes:
            handle = control.locator(".noUi-handle").first
            at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
            handle.focus()
            for _ in range(3):
                handle.press("ArrowLeft" if at_max else "ArrowRight")
        elif "widget-dropdown" in classes:
            select = control.locator("select")
            options = select.locator("option").all_inner_texts()
            current = select.evaluate("s => s.options[s.selectedIndex].text")
            select.select_option(label=options[(options.index(current) + 1) % len(options)])
        elif "widget-toggle-buttons" in classes:
            control.locator("button:not(.mod-active)").first.click()
        elif "widget-checkbox" in classes:
            control.locator("input").click()
        else:
            control.click()

    def move_and_wait_for_change(self, widget: Locator, control: Locator) -> tuple[dict, dict]:
        """Move ``control``, wait until what ``widget`` shows besides its controls changes, and
        return that before and after (``images``: their sources; ``texts``: outputs and HTML)."""
        before = widget.evaluate(WIDGET_STATE_JS)
        self.move(control)
        try:
            self.page.wait_for_function(
                f"([widget, before]) => ({WIDGET_STATE_JS})(widget) !== before",
                arg=[widget.element_handle(), before],
                timeout=WIDGET_UPDATE_S * 1000,
            )
        except PlaywrightTimeoutError:
            raise AssertionError(
                f"moving {control} changed nothing in {WIDGET_UPDATE_S} s; the widget shows:\n"
                + widget.inner_text()
            ) from None
        return json.loads(before), json.loads(self.settled(widget))

    def settled(self, widget: Locator) -> str:
        """What ``widget`` shows once the kernel is idle and it stayed the same for a second
        (each arrow key press is a separate update that the kernel redraws in turn)."""
        deadline = time.monotonic() + WIDGET_UPDATE_S
        state = None
        while time.monotonic() < deadline:
            self.page.wait_for_function(KERNEL_IDLE_JS, timeout=WIDGET_UPDATE_S * 1000)
            previous, state = state, widget.evaluate(WIDGET_STATE_JS)
            if state == previous:
                return state
            self.page.wait_for_timeout(1000)
        raise AssertionError(f"the widget kept changing for {WIDGET_UPDATE_S} s")

    def screenshot(self, name: str, full: bool = False) -> Path:
        """Save what is on screen as ``name``.png; ``full`` grows the window to show the whole
        notebook (up to ``TALLEST_SCREENSHOT`` pixels) and then restores it."""
        path = self.screenshots / f"{name}.png"
        if full:
            # Cells off screen have estimated heights until shown: grow until the height holds.
            height = 0
            for _ in range(5):
                previous, height = height, self.page.evaluate(NOTEBOOK_HEIGHT_JS)
                if height == previous:
                    break
                size = {"width": VIEWPORT["width"], "height": min(height, TALLEST_SCREENSHOT)}
                self.page.set_viewport_size(size)
                self.page.wait_for_timeout(500)
        self.page.screenshot(path=path)
        if full:
            self.page.set_viewport_size(VIEWPORT)
        self.test.user_properties.append(("screenshot", str(path)))
        print(f"screenshot: {path}")
        return path


@pytest.fixture
def lab(
    browser: Browser, lab_server: Server, screenshots: Path, request: pytest.FixtureRequest
) -> Iterator[Lab]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    expect.set_options(timeout=30_000)
    try:
        yield Lab(page, lab_server, screenshots, request.node)
    finally:
        context.close()
        shut_down_kernels(lab_server)
