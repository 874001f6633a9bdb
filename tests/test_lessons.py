"""Every lesson has the shape docs/contract.md §1 asks for (nbval checks the outputs themselves)."""

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


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def shows_a_widget(cell) -> bool:
    return any(WIDGET_VIEW in out.get("data", {}) for out in cell.get("outputs", []))


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
        assert outputs(nb, WIDGET_VIEW), "an interactive widget"


@pytest.mark.parametrize("lesson", sorted(WIDGET_LESSONS))
def test_widget_cells_are_tagged_to_skip_output_comparison_not_marked_in_their_code(lesson):
    nb = nbformat.read(ROOT / "notebooks" / f"{lesson}.ipynb", as_version=4)
    widget_cells = [cell for cell in nb.cells if cell.cell_type == "code" and shows_a_widget(cell)]
    assert widget_cells
    for cell in widget_cells:
        assert "nbval-ignore-output" in cell.metadata.get("tags", []), cell.source
        assert "NBVAL_IGNORE_OUTPUT" not in cell.source, "a tag, not a comment learners see"


# The cells whose stored outputs nbval does not compare, per notebook, besides the widget cells:
# what they print depends on the machine, not on the code. 00: the versions installed and two
# checks' timings; 12 and 14: measured times; 08, 09 and 15: numbers after training that another
# CPU's rounding moves in the second decimal (runs here with ATen's AVX2 and AVX-512 kernels
# differ from the stored run in these cells; lesson 09's losses do once the SIMD kernels are off).
# Every other cell must print what it printed when stored.
MACHINE_DEPENDENT_CELLS = {
    "00_welcome": 3,
    "08_attention_in_a_model": 1,
    "09_cross_attention": 4,
    "12_efficient_attention": 1,
    "14_grouped_query_attention_and_kv_cache": 1,
    "15_induction_heads": 4,
}
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
    (ROOT / "solutions").glob("*.ipynb")
)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_only_widgets_and_machine_dependent_cells_skip_output_comparison(path):
    nb = nbformat.read(path, as_version=4)
    others = [
        cell
        for cell in nb.cells
        if cell.cell_type == "code"
        and "nbval-ignore-output" in cell.metadata.get("tags", [])
        and not shows_a_widget(cell)
    ]
    expected = MACHINE_DEPENDENT_CELLS.get(path.stem, 0) if path.parent.name == "notebooks" else 0
    assert len(others) == expected
    assert not [cell for cell in nb.cells if "NBVAL" in cell.source], "tags, not comments"


# Each trained task prints its score next to a no-attention baseline trained the same way, as
# "attention: 0.97 · mean-pooling baseline: 0.41" (the baseline's name is free text).
SCORE_LINE = re.compile(r"^attention: (\d+\.\d+) · (.+) baseline: (\d+\.\d+)$", re.MULTILINE)
TRAINED_TASKS = {  # lesson -> how many trained tasks it has that attention needs
    "08_attention_in_a_model": 1,  # the colour questions (the signal token's panel keeps up)
    "09_cross_attention": 1,
    "11_attention_beyond_text": 3,  # question images, facts, chords (the bright glyph: panel)
}
CLEAR_MARGIN = 0.15


def baseline_problems(nb, num_tasks: int) -> list[str]:
    """What is wrong with the stored score lines of a lesson with ``num_tasks`` trained tasks."""
    stdout = "".join(
        out.text
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.output_type == "stream" and out.name == "stdout"
    )
    scores = SCORE_LINE.findall(stdout)
    problems = [] if len(scores) == num_tasks else [f"{len(scores)} score lines, not {num_tasks}"]
    return problems + [
        f"attention {attention} not clearly ahead of the {name} baseline {baseline}"
        for attention, name, baseline in scores
        if float(attention) < float(baseline) + CLEAR_MARGIN
    ]


def notebook_printing(*texts: str):
    cells = [nbformat.v4.new_code_cell("print(...)") for _ in texts]
    for cell, text in zip(cells, texts, strict=True):
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return nbformat.v4.new_notebook(cells=cells)


@pytest.mark.parametrize(("lesson", "num_tasks"), TRAINED_TASKS.items())
def test_trained_lesson_shows_attention_clearly_ahead_of_its_baseline(lesson, num_tasks):
    nb = nbformat.read(ROOT / "notebooks" / f"{lesson}.ipynb", as_version=4)
    assert baseline_problems(nb, num_tasks) == []


def test_a_lesson_whose_attention_is_clearly_ahead_passes():
    nb = notebook_printing("loss 0.1\nattention: 0.97 · mean-pooling baseline: 0.41\n")
    assert baseline_problems(nb, 1) == []


def test_a_lesson_without_its_baseline_line_fails():
    nb = notebook_printing("test accuracy: 0.97\n", "attention: 0.97 · mean pooling: 0.41\n")
    assert baseline_problems(nb, 1) == ["0 score lines, not 1"]


def test_a_lesson_whose_baseline_keeps_up_fails():
    nb = notebook_printing(
        "attention: 1.00 · position-only baseline: 0.90\n",
        "attention: 1.00 · mean-pooling baseline: 0.20\n",
    )
    assert baseline_problems(nb, 2) == [
        "attention 1.00 not clearly ahead of the position-only baseline 0.90"
    ]


# --- lesson 09: cross-attention against the skeptic's panel (issue 21) ------------------------
# The lesson prints one row per model: name, learning rate, word and sentence accuracy on the
# test pairs after the same number of steps. Cross-attention must beat every other model by at
# least PANEL_GAP in words. (The same gap on three seeds: tests/test_translation.py.)

PANEL_ROW = re.compile(r"^(\S.*?)\s+(\d[\d.e-]*)\s+(\d\.\d{3})\s+(\d\.\d{3})$", re.MULTILINE)
PANEL_GAP = 0.2


def panel_rows(nb) -> dict[str, tuple[float, float]]:
    """The (words, sentences) per model of the printed panel table of a lesson."""
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            text = out.get("text", "") if out.output_type == "stream" else ""
            if text.startswith("model") and "sentences" in text.splitlines()[0]:
                return {
                    name: (float(words), float(sentences))
                    for name, _, words, sentences in PANEL_ROW.findall(text)
                }
    return {}


def panel_gap_problems(rows: dict[str, tuple[float, float]]) -> list[str]:
    if "cross-attention" not in rows or len(rows) < 7:
        return [f"a panel of {len(rows)} rows, not cross-attention and six baselines"]
    attention = rows["cross-attention"][0]
    return [
        f"{name} {words:.3f} is within {PANEL_GAP} of cross-attention {attention:.3f}"
        for name, (words, _) in rows.items()
        if name != "cross-attention" and words > attention - PANEL_GAP
    ]


def test_lesson_09_cross_attention_beats_every_skeptic_model_by_the_gap():
    nb = nbformat.read(ROOT / "notebooks" / "09_cross_attention.ipynb", as_version=4)
    assert panel_gap_problems(panel_rows(nb)) == []


def test_a_panel_where_one_skeptic_keeps_up_fails():
    table = "model   lr   words   sentences\n" + "\n".join(
        f"{name}   0.003   {words:.3f}   0.500"
        for name, words in [("cross-attention", 0.95), ("flat MLP", 0.80)]
        + [(f"baseline {i}", 0.40) for i in range(5)]
    )
    rows = panel_rows(notebook_printing(table))
    assert panel_gap_problems(rows) == ["flat MLP 0.800 is within 0.2 of cross-attention 0.950"]
# --- end of lesson 09's section ---------------------------------------------------------------


# === Lessons 08 and 11: attention against the skeptic's panel (attn_course.panel) ============
# Trains attention and the panel at the lessons' settings (data, steps, the stored learning
# rates). Where a lesson says attention is needed (11's question images, chords and facts),
# attention beats every baseline by at least PANEL_GAP on three seeds; where it says the panel
# keeps up (08's signal token, 11's bright glyph), the best baseline is within PANEL_CLOSE.

from attn_course import panel  # noqa: E402

PANEL_CLOSE = 0.1


# --- lesson 11: the question images, the chords and the facts need attention (issue 21) --------
LESSON_11_NEEDS_ATTENTION = ["11 images", "11 sound", "11 facts"]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", LESSON_11_NEEDS_ATTENTION)
def test_attention_beats_every_baseline_on_lesson_11s_trained_tasks(name, seed):
    task = panel.LESSON_TASKS[name]()
    attention = panel.train_attention(task, seed)
    scores = panel.train_panel(task.data, panel.stored_learning_rates(name),
                               steps=task.steps, seed=seed)
    behind = {name: score for name, score in scores.items() if attention - score < PANEL_GAP}
    assert behind == {}, f"attention {attention:.2f}"
# --- end of lesson 11's section ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["08 signal tokens", "11 bright glyph"])
def test_the_panel_keeps_up_where_the_lessons_say_so(name):
    task = panel.LESSON_TASKS[name]()
    attention = panel.train_attention(task)
    scores = panel.train_panel(task.data, panel.stored_learning_rates(name), steps=task.steps)
    assert max(scores.values()) >= attention - PANEL_CLOSE, (attention, scores)


def test_every_lesson_task_has_stored_learning_rates_from_the_sweep():
    for name in panel.LESSON_TASKS:
        assert set(panel.stored_learning_rates(name)) == set(panel.PANEL)
        assert set(panel.stored_learning_rates(name).values()) <= set(panel.LEARNING_RATES)
# === end of lessons 08 and 11 ================================================================


# --- lesson 08's colour questions against the skeptic's panel (issue 21) ----------------------
# Attention whose scores read the question beats every baseline by at least PANEL_GAP at the
# lesson's 200 steps, on three seeds, and the lesson prints the panel's table.


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_attention_beats_every_baseline_on_lesson_08_colour_questions(seed):
    task = panel.LESSON_TASKS["08 colour questions"]()
    attention = panel.train_attention(task, seed)
    scores = panel.train_panel(task.data, panel.stored_learning_rates("08 colour questions"),
                               steps=task.steps, seed=seed)
    behind = {name: score for name, score in scores.items() if attention - score < PANEL_GAP}
    assert behind == {}, f"attention {attention:.2f}"


def test_lesson_08_prints_the_panel_of_its_colour_questions():
    nb = nbformat.read(ROOT / "notebooks" / "08_attention_in_a_model.ipynb", as_version=4)
    tables = [out.text for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.output_type == "stream"
              and "attention ahead by" in out.text]
    assert len(tables) == 2, "the signal tokens' panel and the colour questions' panel"
    table = tables[1][tables[1].index("model") :].split("\n\n")[0]  # header to first blank
    rows = dict(re.findall(r"^(\S.*?)\s+(\d\.\d\d)(?:\s+-?\d\.\d\d)?$", table, re.MULTILINE))
    assert set(rows) == {"attention", *panel.PANEL}
    attention = float(rows.pop("attention"))
    assert all(attention - float(score) >= PANEL_GAP for score in rows.values()), rows
# --- end of lesson 08's colour questions -------------------------------------------------------
