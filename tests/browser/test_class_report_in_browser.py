"""The class report and a student's page with a heatmap, opened from disk in a real Chromium
the way an instructor opens them (or an e-mail client shows them): nothing may be fetched,
every figure is embedded, the links between the pages work, and a long file name wraps."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from playwright.sync_api import Browser, Page, Route, expect

from attn_course import reference
from attn_course.grader.heatmap import capture
from attn_course.grader.pipeline import BatchGrade, ExerciseGrade, SubmissionGrade
from attn_course.grader.report import page_names, write_reports

pytestmark = pytest.mark.browser

LONG_NAME = "abarachidi_40100_900000_02_scaled_dot_product_attention_" * 3 + "final.ipynb"
LEAK = "sdpa.mask-ignored"


def leaky_batch() -> BatchGrade:
    """Three students of assignment 02: two let weight leak past the causal mask (one with a
    very long file name), one passes."""
    scores = torch.randn(6, 6, generator=torch.Generator().manual_seed(0))
    expected = reference.softmax(scores.masked_fill(~reference.causal_mask(6), float("-inf")))
    heatmap = capture(
        "scaled_dot_product_attention", "causal T=6", expected, reference.softmax(scores)
    )
    failed = ExerciseGrade(
        "scaled_dot_product_attention", 0, 4, "failed",
        "weight reaches keys the mask hides: apply the mask to the scores before the softmax",
        "case 'causal T=6' ...", LEAK, seconds=0.4, heatmap=heatmap,
    )  # fmt: skip
    passed = ExerciseGrade("scaled_dot_product_attention", 4, 4, "passed", "passed", seconds=0.3)
    mask = ExerciseGrade("causal_mask", 2, 2, "passed", "passed", seconds=0.1)
    return BatchGrade(
        (
            SubmissionGrade(LONG_NAME, "02_scaled_dot_product_attention", (failed, mask)),
            SubmissionGrade("bob.ipynb", "02_scaled_dot_product_attention", (failed, mask)),
            SubmissionGrade("carol.ipynb", "02_scaled_dot_product_attention", (passed, mask)),
        ),
        seed=1,
    )


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    fetched: list[str] = []

    def files_only(route: Route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            fetched.append(route.request.url)
            route.abort()

    page.route("**/*", files_only)
    yield page
    context.close()
    assert not fetched, f"the reports fetched {fetched}"


def keep(page: Page, path: Path, request: pytest.FixtureRequest) -> None:
    """A full-page screenshot, listed with the test (and copied to $ATTN_SCREENSHOTS if set)."""
    page.screenshot(path=path, full_page=True)
    request.node.user_properties.append(("screenshot", str(path)))
    if os.environ.get("ATTN_SCREENSHOTS"):
        shutil.copy(path, Path(os.environ["ATTN_SCREENSHOTS"]) / path.name)


def test_class_report_and_a_students_heatmap_in_chromium(
    page: Page, tmp_path: Path, request: pytest.FixtureRequest
):
    out = tmp_path / "grades"
    write_reports(leaky_batch(), out)
    page.goto((out / "class.html").as_uri())
    mistake = page.locator(f'.mistake[data-mistake="{LEAK}"]')
    expect(mistake).to_contain_text("67 %")
    expect(mistake).to_contain_text("(2 of 3)")
    expect(page.locator("tr#exercise-scaled_dot_product_attention .pass-rate")).to_contain_text(
        "33 %"
    )
    page.wait_for_function("() => [...document.images].every(img => img.complete)")
    sizes = page.eval_on_selector_all("img.figure", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(sizes) == 3 and all(width > 0 for width in sizes)  # totals + one per exercise
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    keep(page, tmp_path / "class_report.png", request)

    mistake.locator("a", has_text="bob.ipynb").click()
    page.wait_for_url("**/feedback/bob.html#scaled_dot_product_attention")
    heatmap = page.locator("svg.heatmap")
    expect(heatmap).to_be_visible()
    box = heatmap.bounding_box()
    assert box["width"] > 200 and box["height"] > 100
    outlines = page.locator("svg.heatmap rect.outline")
    assert outlines.count() == 2 * page.locator("svg.heatmap .yours rect.differs").count() > 0
    assert page.locator("svg.heatmap .yours rect.leak").count() == 15  # above the diagonal
    keep(page, tmp_path / "student_heatmap.png", request)

    page.goto((out / "feedback" / page_names([LONG_NAME])[LONG_NAME]).as_uri())
    title = page.locator("h1")
    expect(title).to_be_visible()
    assert title.evaluate("h => h.scrollWidth <= h.clientWidth")  # wrapped, not cut off
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    keep(page, tmp_path / "long_name.png", request)
