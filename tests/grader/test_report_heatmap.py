"""The heatmap of a failed attention exercise on the student's page: what ``capture`` keeps,
how the journal carries it, and the outlined cells of the SVG."""

from __future__ import annotations

import json
import re

import pytest
import torch

from attn_course import reference
from attn_course.checks import a01, a02
from attn_course.checks.core import Outcome
from attn_course.grader import static
from attn_course.grader.heatmap import CELL, MAX_SIDE, Heatmap, capture, from_record, heatmap_svg
from attn_course.grader.journal import Journal
from attn_course.grader.kernel import Execution, ExerciseRequest, ExerciseRun
from attn_course.grader.pipeline import ExerciseGrade, SubmissionGrade, _status
from attn_course.grader.report import clean, feedback_html
from attn_course.grader.sandbox import Limits


def causal_weights(T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(expected causal weights, the weights of the same scores without the mask), (T, T)."""
    scores = torch.randn(T, T, generator=torch.Generator().manual_seed(0))
    expected = reference.softmax(scores.masked_fill(~reference.causal_mask(T), float("-inf")))
    return expected, reference.softmax(scores)


def outlined(svg: str, grid: str = "yours", kind: str = "outline") -> set[tuple[int, int]]:
    """(row, column) of the cells of ``grid`` (yours or expected) drawn with an outline whose
    class is ``kind`` (outline: any, or "outline leak")."""
    part = svg.split(f'<g class="grid {grid}">')[1].split("</g>")[0]
    cells = re.findall(r'<rect (?:class="differs" )?x="(\d+)" y="(\d+)" width="22"', part)
    x0, y0 = min(int(x) for x, _ in cells), min(int(y) for _, y in cells)
    found = re.findall(r'<rect class="([a-z ]+)" x="(\d+)" y="(\d+)"', part)
    return {
        ((int(y) - y0) // CELL, (int(x) - x0) // CELL)
        for css, x, y in found
        if css.startswith("outline") and kind in css
    }


def test_a_leak_past_the_causal_mask_is_outlined_cell_by_cell():
    expected, leaky = causal_weights(5)
    heatmap = capture("scaled_dot_product_attention", "causal T=5", expected, leaky)
    assert heatmap is not None and heatmap.kind == "weights" and heatmap.shape == (5, 5)
    differs = {(r, c) for r in range(5) for c in range(5) if heatmap.differs[r][c]}
    above = {(r, c) for r in range(5) for c in range(5) if c > r}
    assert above <= differs  # every weight past the mask
    assert not any((4, c) in differs for c in range(5))  # the last row sees every key anyway
    assert all(heatmap.expected[r][c] == 0 and heatmap.actual[r][c] > 0 for r, c in above)
    svg = str(heatmap_svg(heatmap))
    assert svg.count('class="differs"') == 2 * len(differs)  # yours and expected
    assert outlined(svg, "yours") == outlined(svg, "expected") == differs
    assert outlined(svg, "yours", "leak") == above  # thick: weight where none is expected


def test_only_the_cells_that_differ_are_outlined():
    expected, _ = causal_weights(4)
    actual = expected.clone()
    actual[0, 3], actual[2, 1] = 0.25, actual[2, 1] + 1e-6  # a leak, and a rounding difference
    heatmap = capture("softmax", "c", expected, actual)
    assert [(r, c) for r in range(4) for c in range(4) if heatmap.differs[r][c]] == [(0, 3)]
    svg = str(heatmap_svg(heatmap))
    assert outlined(svg, "yours") == outlined(svg, "expected") == {(0, 3)}


def test_the_weights_are_found_inside_an_output_tuple_and_the_other_outputs_ignored():
    expected, leaky = causal_weights(4)
    values = torch.randn(4, 3)
    heatmap = capture(
        "scaled_dot_product_attention", "c", (expected @ values, expected), (leaky @ values, leaky)
    )
    assert heatmap is not None and heatmap.where == "weights" and heatmap.kind == "weights"


def test_outputs_that_are_neither_weights_scores_nor_masks_give_no_heatmap():
    x = torch.randn(2, 4, 6)
    assert capture("MultiHeadAttention", "c", x, x + 1) is None
    assert capture("softmax", "c", torch.ones(3) / 3, torch.ones(3)) is None  # 1-D
    assert capture("softmax", "c", torch.ones(2, 3) / 3, torch.ones(3, 2)) is None  # shapes
    assert capture("softmax", "c", torch.ones(2, 3) / 3, "not a tensor") is None


def test_a_large_output_keeps_a_capped_window_around_the_first_difference_of_its_worst_slice():
    expected = torch.full((2, 3, 40, 40), 1 / 40)
    actual = expected.clone()
    actual[1, 2, 30, 35] = 0.5  # the only slice that differs
    heatmap = capture("softmax", "big", expected, actual)
    assert heatmap.shape == (MAX_SIDE, MAX_SIDE)
    assert "output[1, 2]" in heatmap.where and "rows 24-39" in heatmap.where
    cells = [(r, c) for r in range(MAX_SIDE) for c in range(MAX_SIDE) if heatmap.differs[r][c]]
    assert len(cells) == 1
    r, c = cells[0]
    assert heatmap.actual[r][c] == 0.5 and heatmap.expected[r][c] == pytest.approx(0.025)


def test_a_mask_and_scores_count_too():
    mask = reference.causal_mask(4)
    heatmap = capture("causal_mask", "c", mask, torch.ones(4, 4, dtype=torch.bool))
    assert heatmap.kind == "mask" and sum(map(sum, heatmap.differs)) == 6
    scores = torch.randn(3, 4)
    assert capture("attention_scores", "c", scores, scores * 2).kind == "scores"


def test_status_carries_the_heatmap_of_the_verdicts_failing_case():
    exercise = a02.scaled_dot_product_attention
    cases = exercise.make_cases(torch.Generator().manual_seed(1))

    def unmasked(case):  # the learner ignores the mask
        query, key, value = case.args[:3]
        weights = reference.softmax(query @ key.transpose(-2, -1) / query.shape[-1] ** 0.5)
        return weights @ value, weights

    outcomes = [Outcome(output=unmasked(case)) for case in cases]
    execution = Execution([], {exercise.name: ExerciseRun(exercise.name, "ok", outcomes)})
    status, _, _, _, heatmap = _status(exercise, request_for(cases), execution, static.Analysis())
    assert status == "failed"
    assert heatmap is not None and heatmap.kind == "weights" and any(map(any, heatmap.differs))
    label = heatmap.case
    case = next(c for c in cases if c.label == label)
    assert "mask" in case.kwargs or len(case.args) > 3  # the failing case is a masked one


def request_for(cases):
    return ExerciseRequest("x", cases, ())


def test_a_passing_exercise_has_no_heatmap():
    exercise = a01.softmax
    cases = exercise.make_cases(torch.Generator().manual_seed(2))
    outcomes = [Outcome(output=exercise.expected(case)) for case in cases]
    execution = Execution([], {exercise.name: ExerciseRun(exercise.name, "ok", outcomes)})
    status, *_, heatmap = _status(exercise, request_for(cases), execution, static.Analysis())
    assert (status, heatmap) == ("passed", None)


def test_the_journal_carries_the_heatmap_and_refuses_a_forged_one(tmp_path):
    expected, leaky = causal_weights(3)
    heatmap = capture("softmax", "c", expected, leaky)
    row = ExerciseGrade("softmax", 0, 3, "failed", "leak", "detail", "softmax.x", heatmap=heatmap)
    with Journal.open(tmp_path, 1, Limits()) as journal:
        journal.record("abc", SubmissionGrade("s.ipynb", "01", (row,)))
    lines = (tmp_path / "journal.jsonl").read_text().splitlines()
    forged = json.loads(lines[1])
    forged["grade"]["submission"] = "t.ipynb"
    forged["grade"]["exercises"][0]["heatmap"]["expected"] = [[1.0] * 40] * 40  # too large
    (tmp_path / "journal.jsonl").write_text("\n".join([*lines, json.dumps(forged)]) + "\n")
    with Journal.open(tmp_path, 1, Limits()) as journal:
        kept = journal.done["s.ipynb"][1].exercises[0].heatmap
        assert kept == heatmap
        assert journal.done["t.ipynb"][1].exercises[0].heatmap is None


@pytest.mark.parametrize(
    "record",
    [
        None, "x", {"case": "c"},
        {"case": "c", "kind": "weights", "where": "", "expected": [[1.0]], "actual": [["a"]],
         "differs": [[False]]},
        {"case": "c", "kind": "weights", "where": "", "expected": [[1.0]], "actual": [[1.0]],
         "differs": [[1]]},
        {"case": 3, "kind": "weights", "where": "", "expected": [[1.0]], "actual": [[1.0]],
         "differs": [[True]]},
    ],
)  # fmt: skip
def test_from_record_refuses_what_is_not_a_heatmap(record):
    assert from_record(record) is None


def test_the_students_page_shows_the_heatmap_with_hostile_labels_escaped():
    expected, leaky = causal_weights(4)
    heatmap = capture("softmax", "<script>alert(1)</script>", expected, leaky)
    row = ExerciseGrade("softmax", 0, 3, "failed", "weight leaks", "expected ... got ...",
                        heatmap=heatmap)  # fmt: skip
    page = feedback_html(SubmissionGrade("s.ipynb", "01", (row,)))
    assert page.count('<svg class="heatmap"') == 1
    differing = sum(map(sum, heatmap.differs))
    assert differing >= 6 and page.count('class="outline') == 2 * differing
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_clean_caps_the_heatmaps_labels():
    heatmap = Heatmap("c" * 10_000, "weights", "w", ((1.0,),), ((0.0,),), ((True,),))
    row = ExerciseGrade("softmax", 0, 3, "failed", "f", heatmap=heatmap)
    cleaned = clean(SubmissionGrade("s.ipynb", "01", (row,))).exercises[0].heatmap
    assert len(cleaned.case) <= 300 and cleaned.differs == ((True,),)


def test_a_graded_notebook_carries_the_heatmap_and_time_to_the_students_page(
    submission_writer, tmp_path
):
    from attn_course.grader.pipeline import grade
    from attn_course.grader.report import write_reports

    source = (
        "def softmax(scores, dim=-1):\n"  # always over the last dim, whatever dim says
        "    exp = (scores - scores.amax(-1, keepdim=True)).exp()\n"
        "    return exp / exp.sum(-1, keepdim=True)\n"
    )
    submission_writer(tmp_path, "softmax-wrong-dim", "fail", replace={"softmax": source})
    batch = grade([tmp_path], Limits(timeout=60, budget=300), workers=1, seed=3)
    (submission,) = batch.submissions
    rows = {row.exercise: row for row in submission.exercises}
    assert rows["softmax"].status == "failed" and rows["softmax"].heatmap is not None
    assert any(map(any, rows["softmax"].heatmap.differs))
    assert rows["attention_scores"].heatmap is None  # passed
    assert all(row.seconds > 0 for row in rows.values())
    page = write_reports(batch, tmp_path / "out")["feedback"] / "test-softmax-wrong-dim-fail.html"
    text = page.read_text(encoding="utf-8")
    assert text.count('<svg class="heatmap"') == 1 and 'class="outline' in text
