"""The course as a static HTML site, for browsing before installing (``make site``).

Every notebook in ``notebooks/`` and ``exercises/`` becomes a page, rendered by nbconvert's
HTML exporter in JupyterLab's look from the outputs stored in the notebook: nothing is executed
and nothing is fetched while building. Figures are embedded in the pages. Links between course
notebooks point to their pages, and each page has links to the index and to its neighbours. An
interactive widget needs a running kernel, so the site shows a note in its place (the lessons
keep a static figure of each widget next to it). A page loads MathJax from its CDN when viewed
online, to typeset formulas; offline they show as TeX.

``python -m attn_course.site OUT [--course DIR]`` builds the site into OUT.
"""

from __future__ import annotations

import argparse
import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbformat import NotebookNode

from attn_course.lab import COURSE_FOLDERS, course_root

TEMPLATE = Path(__file__).with_name("site.html.j2")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = (
    '<p class="attn-course-widget-note"><em>An interactive widget is here: run this notebook '
    "in JupyterLab (<code>attn-course lab</code>) to use it.</em></p>"
)
# A Markdown link to a notebook of the course, relative to the page: ](NAME.ipynb) or
# ](../exercises/NAME.ipynb), optionally with #anchor.
NOTEBOOK_LINK = re.compile(r"\]\(((?:\.\./(?:notebooks|exercises)/)?[\w.-]+)\.ipynb(#[^)\s]*)?\)")


@dataclass(frozen=True)
class Page:
    """One notebook of the course and its page: ``relative`` is ``folder/NAME.ipynb``."""

    relative: str
    title: str

    @property
    def html(self) -> str:
        return self.relative.removesuffix(".ipynb") + ".html"


def title_of(notebook: NotebookNode, fallback: str) -> str:
    """The first Markdown heading of the notebook, without its ``#`` marks."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            heading = re.search(r"^#+\s+(.+)$", cell.source, flags=re.M)
            if heading:
                return heading.group(1).strip()
    return fallback


def course_pages(course: Path) -> list[Page]:
    """Every lesson, then every exercise, in file-name order; not the ``NAME.new.ipynb`` beside
    a learner's changed notebook (an update ``attn-course lab`` offered, not a page of its own)."""
    return [
        Page(f"{folder}/{path.name}", title_of(nbformat.read(path, as_version=4), path.stem))
        for folder in COURSE_FOLDERS
        for path in sorted((course / folder).glob("*.ipynb"))
        if not path.name.endswith(".new.ipynb")
    ]


def _link(page: Page, start: str) -> str:
    """A Markdown link to ``page`` from a page in folder ``start`` ("" for the site's root)."""
    target = page.html if not start else f"../{page.html}"
    return f"[{page.title}]({target})"


def navigation(pages: list[Page], index: int) -> str:
    """Markdown: the index, the previous and the next page of ``pages[index]``."""
    folder = pages[index].relative.split("/")[0]
    parts = ["[Course index](../index.html)"]
    if index > 0:
        parts.append("previous: " + _link(pages[index - 1], folder))
    if index + 1 < len(pages):
        parts.append("next: " + _link(pages[index + 1], folder))
    return " · ".join(parts)


def for_the_site(notebook: NotebookNode, nav: str) -> NotebookNode:
    """A copy ready to render: notebook links point to pages, widgets are replaced by a note,
    and the navigation stands at the top and the bottom."""
    notebook = copy.deepcopy(notebook)
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = NOTEBOOK_LINK.sub(r"](\1.html\2)", cell.source)
        for output in cell.get("outputs", []):
            if WIDGET_VIEW in output.get("data", {}):
                output.data = {"text/html": WIDGET_NOTE}
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell(nav))
    notebook.cells.append(nbformat.v4.new_markdown_cell(nav))
    return notebook


def index_notebook(pages: list[Page]) -> NotebookNode:
    """The site's front page, as a Markdown-only notebook rendered like the others."""
    lessons = [page for page in pages if page.relative.startswith("notebooks/")]
    exercises = [page for page in pages if page.relative.startswith("exercises/")]
    text = [
        "# attn-course: attention mechanisms in PyTorch",
        "The lessons and exercises with their stored outputs, as they look in JupyterLab. To run "
        "them, install the course (`pip install attn-course`) and start `attn-course lab`.",
        "## Lessons",
        "\n".join(f"- {_link(page, '')}" for page in lessons),
        "## Exercises",
        "\n".join(f"- {_link(page, '')}" for page in exercises),
    ]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("\n\n".join(text))]
    return notebook


def build_site(out: Path, course: Path | None = None) -> list[Path]:
    """Write ``out/index.html`` and one page per course notebook; return the files written."""
    course = course or course_root()
    exporter = HTMLExporter(
        template_name="lab",
        extra_template_paths=[str(TEMPLATE.parent)],
        template_file=TEMPLATE.name,
    )
    pages = course_pages(course)
    documents = [(Path("index.html"), index_notebook(pages), "attn-course")]
    for number, page in enumerate(pages):
        notebook = nbformat.read(course / page.relative, as_version=4)
        nav = navigation(pages, number)
        documents.append((Path(page.html), for_the_site(notebook, nav), page.title))
    written = []
    for relative, notebook, title in documents:
        notebook.metadata["title"] = title  # the page's <title>
        html, _ = exporter.from_notebook_node(notebook)
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attn_course.site", description=__doc__)
    parser.add_argument("out", type=Path, help="folder to write the site into")
    parser.add_argument(
        "--course",
        type=Path,
        default=None,
        help="course folder (default: the one around the current folder, else the installed one)",
    )
    args = parser.parse_args(argv)
    written = build_site(args.out, args.course)
    print(f"wrote {len(written)} pages into {args.out}; open {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
