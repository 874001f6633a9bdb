"""Every lesson has the shape course-spec.md §1 asks for (nbval checks the outputs themselves)."""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSONS = [
    "00_welcome",
    "01_attention_scores",
    "02_softmax",
    "03_context_vectors",
    "04_scaled_dot_product_attention",
    "05_masks",
    "06_self_attention",
    "07_multi_head_attention",
    "08_attention_in_a_model",
    "09_cross_attention",
    "10_position_and_transformer_block",
    "11_attention_beyond_text",
    "12_efficient_attention",
    "13_rotary_position_embeddings",
    "14_grouped_query_attention_and_kv_cache",
    "15_induction_heads",
]
WIDGET_LESSONS = {"02_softmax", "03_context_vectors", "05_masks", "07_multi_head_attention"}
EXERCISE_OF = {
    "01_attention_scores": "01_scores_softmax_context",
    "02_softmax": "01_scores_softmax_context",
    "03_context_vectors": "01_scores_softmax_context",
    "04_scaled_dot_product_attention": "02_scaled_dot_product_attention",
    "05_masks": "02_scaled_dot_product_attention",
    "06_self_attention": "03_multi_head_attention",
    "07_multi_head_attention": "03_multi_head_attention",
    "10_position_and_transformer_block": "04_positional_encoding_and_block",
    "12_efficient_attention": "05_efficient_attention",
    "13_rotary_position_embeddings": "06_rotary_and_grouped_query_attention",
    "14_grouped_query_attention_and_kv_cache": "06_rotary_and_grouped_query_attention",
}


def outputs(nb, key):
    return [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if key in out.get("data", {})
    ]


def test_the_lessons_folder_holds_exactly_the_spec_lessons():
    assert sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb")) == LESSONS


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_has_objectives_recap_pictures_and_pointers(lesson):
    nb = nbformat.read(ROOT / "notebooks" / f"{lesson}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert re.search(r"you (will|can)", nb.cells[0].source), "objectives at the top"
    assert "## Recap" in markdown
    assert outputs(nb, "image/png"), "at least one stored figure"
    first_code = next(c.source for c in nb.cells if c.cell_type == "code")
    assert "torch.set_printoptions(" in first_code
    code_outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in code_outputs if o.output_type == "error"], "stored from a clean run"
    for link in re.findall(r"\]\(([^)#]+\.ipynb)\)", markdown):
        assert (ROOT / "notebooks" / link).resolve().is_file(), f"broken link {link}"
    if lesson in EXERCISE_OF:
        assert f"../exercises/{EXERCISE_OF[lesson]}.ipynb" in markdown, "try-it pointer"
    if lesson in WIDGET_LESSONS:
        assert outputs(nb, "application/vnd.jupyter.widget-view+json"), "an interactive widget"
