"""The static course site (``make site``) in a real Chromium: every page renders with its title,
every figure stored in the notebook appears, and every link inside the site leads to a page.

The site is served from 127.0.0.1 and the browser may fetch nothing else: what the site needs
from outside (MathJax, for formulas) is optional, and the pages must work without it.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import nbformat
import pytest
from playwright.sync_api import Browser, Page, Route

from attn_course.lab import COURSE_FOLDERS, course_root
from attn_course.site import build_site

pytestmark = pytest.mark.browser


def stored_figures(notebook: nbformat.NotebookNode) -> int:
    """Outputs of the notebook that show a picture (PNG or SVG)."""
    return sum(
        1
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if {"image/png", "image/svg+xml"} & set(output.get("data", {}))
    )


@pytest.fixture(scope="module")
def site_url(
    tmp_path_factory: pytest.TempPathFactory, free_port: Callable[[], int]
) -> Iterator[str]:
    out = tmp_path_factory.mktemp("site")
    build_site(out)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def page(browser: Browser, site_url: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)

    def local_only(route: Route) -> None:
        if route.request.url.startswith(site_url):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", local_only)
    yield page
    context.close()


def pages_of_the_course() -> list[str]:
    root = course_root()
    return [f"{folder}/{path.name}" for folder in COURSE_FOLDERS
            for path in sorted((root / folder).glob("*.ipynb"))]  # fmt: skip


def internal_links(page: Page, site_url: str) -> set[str]:
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    return {urldefrag(href).url for href in hrefs if href.startswith(site_url)}


def test_the_index_links_every_lesson_and_exercise(page: Page, site_url: str):
    page.goto(site_url + "index.html")
    links = internal_links(page, site_url)
    for relative in pages_of_the_course():
        assert urljoin(site_url, relative.removesuffix(".ipynb") + ".html") in links


@pytest.mark.parametrize("relative", pages_of_the_course())
def test_page_renders_its_figures_and_its_links_resolve(
    page: Page, site_url: str, relative: str, tmp_path: Path, request: pytest.FixtureRequest
):
    notebook = nbformat.read(course_root() / relative, as_version=4)
    page.goto(urljoin(site_url, relative.removesuffix(".ipynb") + ".html"))
    heading = page.locator("h1").first
    assert heading.is_visible()
    first_markdown = next(c.source for c in notebook.cells if c.cell_type == "markdown")
    assert heading.inner_text().rstrip("¶").strip() in first_markdown
    page.wait_for_function("() => [...document.images].every(img => img.complete)")
    sizes = page.eval_on_selector_all(
        ".jp-OutputArea-output img", "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])"
    )
    assert len(sizes) == stored_figures(notebook)
    assert all(width > 0 and height > 0 for width, height in sizes), sizes
    for link in internal_links(page, site_url):
        assert page.request.get(link).status == 200, f"{relative}: broken link {link}"
    if relative == "notebooks/03_context_vectors.ipynb":  # one page to look at, listed at the end
        path = tmp_path / "site_03_context_vectors.png"
        page.screenshot(path=path, full_page=True)
        request.node.user_properties.append(("screenshot", str(path)))
