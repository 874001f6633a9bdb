"""attn_course.panel: the baselines' shapes, the training helper, the sweep and the table."""

import json

import pytest
import torch

from attn_course import panel


def tokens_task(n=64, seq_len=6, vocab=5):
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(vocab, (n, seq_len), generator=g)
    labels = (tokens == 0).any(dim=-1).long()  # is token 0 present?
    return panel.TaskData(tokens, labels, tokens, labels, num_classes=2)


def pieces_task(n=64, seq_len=5, features=3):
    g = torch.Generator().manual_seed(0)
    pieces = torch.randn(n, seq_len, features, generator=g)
    labels = (pieces[..., 0].max(dim=-1).values > 1).long()
    return panel.TaskData(pieces, labels, pieces, labels, num_classes=2)


@pytest.mark.parametrize("name", list(panel.PANEL))
@pytest.mark.parametrize("make", [tokens_task, pieces_task])
def test_every_baseline_maps_a_batch_to_logits(name, make):
    task = make()
    model = panel.build(name, task)
    assert model(task.train_inputs[:4]).shape == (4, 2)


def test_pooling_reduces_as_named():
    x = torch.tensor([[[1.0, -2.0], [3.0, 4.0]]])  # (1, 2, 2)
    assert torch.equal(panel.reduce(x, "mean"), torch.tensor([[2.0, 1.0]]))
    assert torch.equal(panel.reduce(x, "sum"), torch.tensor([[4.0, 2.0]]))
    assert torch.equal(panel.reduce(x, "max"), torch.tensor([[3.0, 4.0]]))


def test_bag_of_words_counts_the_token_ids():
    model = panel.BagOfWords(3, 4, 2, tokens=True)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.eye(2, 3))
        model.classifier.bias.zero_()
    logits = model(torch.tensor([[0, 0, 1, 2]]))
    assert torch.equal(logits, torch.tensor([[2.0, 1.0]]))


def test_training_is_reproducible_and_learns_an_easy_task():
    task = tokens_task()
    runs = [panel.train_model(panel.build("max pooling", task), task, steps=60, lr=0.03)
            for _ in range(2)]
    assert runs[0] == runs[1] and runs[0] > 0.9


def test_the_sweep_picks_a_rate_of_the_four(monkeypatch):
    monkeypatch.setattr(panel, "PANEL", {"max pooling": panel.PANEL["max pooling"]})
    best = panel.best_learning_rates(tokens_task(), steps=20)
    assert set(best) == {"max pooling"} and best["max pooling"] in panel.LEARNING_RATES


def test_sweep_stores_the_best_rates_as_json(monkeypatch, tmp_path):
    monkeypatch.setattr(panel, "LESSON_TASKS", {"toy": lambda: panel.LessonTask(
        tokens_task(), lambda: panel.build("mean pooling", tokens_task()), steps=5)})
    monkeypatch.setattr(panel, "PANEL", {"sum pooling": panel.PANEL["sum pooling"]})
    best = panel.sweep(tmp_path / "lrs.json")
    assert json.loads((tmp_path / "lrs.json").read_text()) == best
    assert set(best["toy"]) == {"sum pooling"}


def test_the_table_names_every_model_and_its_gap():
    table = panel.panel_table(0.9, {"mean pooling": 0.5, "flat MLP": 0.8})
    lines = table.splitlines()
    assert lines[1].split() == ["attention", "0.90"]
    assert lines[2].split()[-2:] == ["0.50", "0.40"]
    assert lines[3].split()[-2:] == ["0.80", "0.10"]


def test_sweep_of_named_tasks_keeps_the_other_stored_rates(monkeypatch, tmp_path):
    path = tmp_path / "lrs.json"
    path.write_text(json.dumps({"other": {"sum pooling": 0.03}}))
    toy = panel.LessonTask(tokens_task(), lambda: panel.build("mean pooling", tokens_task()), 5)
    monkeypatch.setattr(panel, "LESSON_TASKS", {"toy": lambda: toy, "skipped": None})
    monkeypatch.setattr(panel, "PANEL", {"sum pooling": panel.PANEL["sum pooling"]})
    best = panel.sweep(path, names=["toy"])
    assert set(best) == {"other", "toy"} and best["other"] == {"sum pooling": 0.03}
    assert json.loads(path.read_text()) == best
