"""``make site``: every notebook of a course folder becomes a page, links lead to pages, widgets
give way to a note (tests/browser/test_static_site.py opens the real course's site in Chromium)."""

import base64
import re
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from attn_course.site import build_site

# The smallest PNG there is: one transparent pixel.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def write(path: Path, *cells) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=list(cells)), path)


def figure_cell() -> nbformat.NotebookNode:
    png = base64.b64encode(PIXEL).decode()
    return new_code_cell("plot()", outputs=[new_output("display_data", {"image/png": png})])


def widget_cell() -> nbformat.NotebookNode:
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    data = {"application/vnd.jupyter.widget-view+json": view, "text/plain": "VBox(...)"}
    return new_code_cell("explorer()", outputs=[new_output("display_data", data)])


def test_every_notebook_gets_a_page_with_links_to_pages_and_no_widget_state(tmp_path: Path):
    course, out = tmp_path / "course", tmp_path / "site"
    write(course / "notebooks/00_welcome.ipynb",
          new_markdown_cell("# Lesson 00 · Welcome\n\nNext: [lesson 13](13_new.ipynb#top)."),
          figure_cell())  # fmt: skip
    write(course / "notebooks/13_new.ipynb",
          new_markdown_cell("# Lesson 13 · New\n\nTry [the exercise](../exercises/06_new.ipynb)."),
          widget_cell())  # fmt: skip
    write(course / "exercises/06_new.ipynb", new_markdown_cell("# Assignment 06: new"))
    # An update `attn-course lab` offered beside a learner's changed notebook: not a page.
    write(course / "notebooks/00_welcome.new.ipynb", new_markdown_cell("# Lesson 00 · Welcome"))

    written = build_site(out, course)

    assert sorted(str(p.relative_to(out)) for p in written) == [
        "exercises/06_new.html", "index.html", "notebooks/00_welcome.html", "notebooks/13_new.html"
    ]  # fmt: skip
    index = (out / "index.html").read_text()
    for page, title in [("notebooks/13_new.html", "Lesson 13 · New"),
                        ("exercises/06_new.html", "Assignment 06: new")]:  # fmt: skip
        assert f'<a href="{page}">{title}</a>' in index
    welcome = (out / "notebooks/00_welcome.html").read_text()
    assert '<a href="13_new.html#top">lesson 13</a>' in welcome
    assert welcome.count('src="data:image/png;base64,') == 1
    assert 'next: <a href="../notebooks/13_new.html">Lesson 13 · New</a>' in welcome
    new = (out / "notebooks/13_new.html").read_text()
    assert '<a href="../exercises/06_new.html">the exercise</a>' in new
    assert "<title>Lesson 13 · New</title>" in new
    assert "An interactive widget is here" in new and "widget-view+json" not in new
    for html in (welcome, new, index):
        assert ".ipynb" not in re.sub(r"<style.*?</style>", "", html, flags=re.S)
        scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
        assert all("mathjax" in src for src in scripts), scripts  # no require.js, no widgets
