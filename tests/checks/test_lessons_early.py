"""The tasks of lessons 01-03: the answer shown in the lesson passes, each known mistake is
named, and the lesson stores the task as a learner meets it (not implemented yet)."""

from __future__ import annotations

import inspect
from pathlib import Path

import nbformat
import pytest
import torch

from attn_course import reference
from attn_course.checks import EXERCISES, check, run_check
from attn_course.checks.lessons import TASKS, l01, l02, l03

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
SEEDS = range(5)


# The answers, as the lessons show them one click away (a test below holds the two together).
def most_similar_key(query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Index of the key with the highest dot-product score: query (D,), keys (S, D) -> ()."""
    scores = keys @ query  # (S, D) @ (D,) -> (S,)
    return scores.argmax()  # (): the index of the largest score


def temperature_softmax(scores: torch.Tensor, tau: float) -> torch.Tensor:
    """softmax(scores / tau) over the last dim, the keys: (..., S) -> (..., S)."""
    return reference.softmax(scores / tau, dim=-1)  # (..., S): each row sums to 1


def kernel_estimate(
    queries: torch.Tensor, x_train: torch.Tensor, y_train: torch.Tensor, sigma: float
) -> torch.Tensor:
    """Gaussian kernel regression: queries (T,), x_train and y_train (S,) -> estimates (T,)."""
    differences = queries[:, None] - x_train[None, :]  # (T, 1) - (1, S) -> (T, S)
    weights = reference.softmax(-(differences**2) / (2 * sigma**2), dim=-1)  # (T, S)
    return weights @ y_train  # (T, S) @ (S,) -> (T,)


ANSWERS = {  # task -> (its lesson module, the answer)
    "most_similar_key": (l01, most_similar_key),
    "temperature_softmax": (l02, temperature_softmax),
    "kernel_estimate": (l03, kernel_estimate),
}


# Wrong answers written the way a learner would, one per registered mistake, in task order.
def key_by_lowest_score(query, keys):
    return (keys @ query).argmin()


def nearest_key(query, keys):
    return torch.cdist(query[None], keys)[0].argmin()


def key_summed_over_keys(query, keys):
    return (query * keys).sum(0).argmax()


def tau_multiplies(scores, tau):
    return torch.softmax(scores * tau, dim=-1)


def tau_after_softmax(scores, tau):
    return torch.softmax(scores, dim=-1) / tau


def tau_without_max_shift(scores, tau):
    exp = torch.exp(scores / tau)
    return exp / exp.sum(-1, keepdim=True)


def tau_softmax_over_rows(scores, tau):
    return torch.softmax(scores / tau, dim=0)


def _distances(queries, x_train):
    return (queries.unsqueeze(1) - x_train) ** 2  # (T, S)


def kernel_without_minus(queries, x_train, y_train, sigma):
    return torch.softmax(_distances(queries, x_train) / (2 * sigma**2), -1) @ y_train


def kernel_not_normalised(queries, x_train, y_train, sigma):
    return (torch.exp(-_distances(queries, x_train) / (2 * sigma**2)) * y_train).sum(-1)


def kernel_over_queries(queries, x_train, y_train, sigma):
    return torch.softmax(-_distances(queries, x_train) / (2 * sigma**2), 0) @ y_train


def kernel_sigma_squared(queries, x_train, y_train, sigma):
    return torch.softmax(-_distances(queries, x_train) / sigma**2, -1) @ y_train


def kernel_sigma(queries, x_train, y_train, sigma):
    return torch.softmax(-_distances(queries, x_train) / (2 * sigma), -1) @ y_train


def kernel_average(queries, x_train, y_train, sigma):
    return y_train.mean() * torch.ones_like(queries)


WRONG = {
    "most_similar_key": [key_by_lowest_score, nearest_key, key_summed_over_keys],
    "temperature_softmax": [
        tau_multiplies, tau_after_softmax, tau_without_max_shift, tau_softmax_over_rows,
    ],
    "kernel_estimate": [
        kernel_without_minus, kernel_not_normalised, kernel_over_queries,
        kernel_sigma_squared, kernel_sigma, kernel_average,
    ],
}  # fmt: skip


def test_each_early_lesson_has_a_task_apart_from_the_assignments():
    for name, (module, _) in ANSWERS.items():
        (task,) = module.TASKS
        assert task.name == name and TASKS[name] is task
        assert task.points == 0 and name not in EXERCISES
        assert (NOTEBOOKS / f"{task.assignment}.ipynb").is_file()


@pytest.mark.parametrize("name", ANSWERS)
@pytest.mark.parametrize("seed", SEEDS)
def test_the_lessons_answer_passes(name, seed):
    verdict = run_check(name, ANSWERS[name][1], seed=seed)
    assert verdict.passed, verdict


@pytest.mark.parametrize(
    ("name", "index"), [(name, i) for name, wrongs in WRONG.items() for i in range(len(wrongs))]
)
@pytest.mark.parametrize("seed", SEEDS)
def test_each_registered_mistake_is_named(name, index, seed):
    task = TASKS[name]
    assert len(WRONG[name]) == len(task.mistakes), "one wrong answer per registered mistake"
    verdict = run_check(name, WRONG[name][index], seed=seed)
    assert not verdict.passed
    assert verdict.message == task.mistakes[index].message, (WRONG[name][index].__name__, verdict)


def task_cells(name: str) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    """The code cell that checks task ``name`` in its lesson, and the markdown cell after it."""
    lesson = nbformat.read(NOTEBOOKS / f"{TASKS[name].assignment}.ipynb", as_version=4)
    (index,) = [
        i for i, cell in enumerate(lesson.cells)
        if cell.cell_type == "code" and f"check({name})" in cell.source
    ]  # fmt: skip
    return lesson.cells[index], lesson.cells[index + 1]


@pytest.mark.parametrize("name", ANSWERS)
def test_the_lesson_stores_the_task_unsolved_and_its_answer_one_click_away(name):
    task, answer = task_cells(name)
    assert "raise NotImplementedError" in task.source
    printed = "".join(out.get("text", "") for out in task.outputs)
    assert printed.startswith(f"❌ {name}: not implemented yet")
    assert not [out for out in task.outputs if out.output_type == "error"]
    assert answer.cell_type == "markdown"
    assert answer.source.startswith("<details><summary>Answer</summary>")
    assert inspect.getsource(ANSWERS[name][1]).strip() in answer.source


def test_a_lesson_task_that_fails_does_not_stop_the_lesson(capsys):
    check("most_similar_key", key_by_lowest_score)
    assert capsys.readouterr().out.startswith("❌ most_similar_key")
