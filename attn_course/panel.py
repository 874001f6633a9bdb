"""A skeptic's panel: the models without attention that a trained attention model must beat
(lessons 08 and 11).

Every baseline reads the same input as the attention model it is compared with: token ids
(B, T) int64 (``tokens=True``: the first layer is an ``nn.Embedding``) or pieces (B, T, F)
float (``tokens=False``: the first layer is an ``nn.Linear``), and returns logits (B, C).
Glossary: B batch, T sequence length (tokens, patches, frames), D model width, C classes.

``train_panel`` trains each baseline at its best learning rate (``best_learning_rates``
sweeps ``LEARNING_RATES`` once; lessons read the stored result from ``panel_lrs.json``) and
``panel_table`` prints the accuracies next to the attention model's.
"""

import itertools
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

LEARNING_RATES = (1e-3, 3e-3, 1e-2, 3e-2)
STORED_LRS = Path(__file__).with_name("panel_lrs.json")


def first_layer(num_inputs: int, d_model: int, tokens: bool) -> nn.Module:
    """Token ids -> vectors (``nn.Embedding``) or features -> vectors (``nn.Linear``)."""
    return nn.Embedding(num_inputs, d_model) if tokens else nn.Linear(num_inputs, d_model)


def mlp(*sizes: int) -> nn.Sequential:
    """Linear layers of the given sizes with a ReLU between each two."""
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def reduce(x: torch.Tensor, how: str) -> torch.Tensor:
    """Pool x (B, T, D) over the sequence by "mean", "sum" or "max" -> (B, D)."""
    if how == "max":
        return x.max(dim=1).values  # (B, D)
    return x.mean(dim=1) if how == "mean" else x.sum(dim=1)  # (B, D)


class Pooling(nn.Module):
    """Embed, pool by mean, sum or max (no scorer), linear read-out (lessons 08, 11)."""

    def __init__(self, num_inputs: int, seq_len: int, num_classes: int, *, tokens: bool,
                 how: str, d_model: int = 32) -> None:
        super().__init__()
        self.embed, self.how = first_layer(num_inputs, d_model, tokens), how
        self.classifier = nn.Linear(d_model, num_classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self.embed(inputs)  # (B, T, D)
        return self.classifier(reduce(x, self.how))  # (B, C)


class BagOfWords(nn.Module):
    """Counts of each token id (or the sum of the pieces' features) -> linear (lessons 08, 11)."""

    def __init__(self, num_inputs: int, seq_len: int, num_classes: int, *, tokens: bool) -> None:
        super().__init__()
        self.num_inputs, self.tokens = num_inputs, tokens
        self.classifier = nn.Linear(num_inputs, num_classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.tokens:
            inputs = F.one_hot(inputs, self.num_inputs).float()  # (B, T, V)
        return self.classifier(inputs.sum(dim=1))  # (B, C)


class DeepSets(nn.Module):
    """An MLP on each token, a sum or max over the set, an MLP on the result (lessons 08, 11)."""

    def __init__(self, num_inputs: int, seq_len: int, num_classes: int, *, tokens: bool,
                 how: str, d_model: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.embed, self.how = first_layer(num_inputs, d_model, tokens), how
        self.per_token = nn.Sequential(nn.ReLU(), mlp(d_model, hidden, hidden), nn.ReLU())
        self.readout = mlp(hidden, hidden, num_classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self.per_token(self.embed(inputs))  # (B, T, hidden)
        return self.readout(reduce(x, self.how))  # (B, C)


class ConvMax(nn.Module):
    """A 1D convolution (width 3) over the sequence, ReLU, global max, linear (lessons 08, 11)."""

    def __init__(self, num_inputs: int, seq_len: int, num_classes: int, *, tokens: bool,
                 d_model: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.embed = first_layer(num_inputs, d_model, tokens)
        self.conv = nn.Conv1d(d_model, hidden, kernel_size=3, padding=1)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self.embed(inputs).transpose(1, 2)  # (B, D, T)
        features = torch.relu(self.conv(x)).max(dim=-1).values  # (B, hidden)
        return self.classifier(features)  # (B, C)


class FlatMLP(nn.Module):
    """All T embedded tokens side by side (B, T * D) -> MLP (lessons 08, 11)."""

    def __init__(self, num_inputs: int, seq_len: int, num_classes: int, *, tokens: bool,
                 d_model: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.embed = first_layer(num_inputs, d_model, tokens)
        self.readout = mlp(seq_len * d_model, hidden, num_classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.readout(self.embed(inputs).flatten(1))  # (B, T * D) -> (B, C)


def _with(cls: type[nn.Module], **fixed) -> Callable[..., nn.Module]:
    return lambda *args, **kwargs: cls(*args, **fixed, **kwargs)


# name -> constructor (num_inputs, seq_len, num_classes, *, tokens) -> model
PANEL: dict[str, Callable[..., nn.Module]] = {
    "mean pooling": _with(Pooling, how="mean"),
    "sum pooling": _with(Pooling, how="sum"),
    "max pooling": _with(Pooling, how="max"),
    "bag of words -> linear": BagOfWords,
    "DeepSets (sum)": _with(DeepSets, how="sum"),
    "DeepSets (max)": _with(DeepSets, how="max"),
    "1D CNN + global max": ConvMax,
    "flat MLP": FlatMLP,
}


@dataclass(frozen=True)
class TaskData:
    """One classification task's tensors: inputs (N, T) or (N, T, F), labels (N,)."""

    train_inputs: torch.Tensor
    train_labels: torch.Tensor
    test_inputs: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int

    @property
    def tokens(self) -> bool:
        return not self.train_inputs.is_floating_point()

    @property
    def num_inputs(self) -> int:
        """The vocabulary size (tokens) or the features per piece."""
        if self.tokens:
            return int(max(self.train_inputs.max(), self.test_inputs.max())) + 1
        return self.train_inputs.size(-1)


def logits_of(output: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """A model's logits, whether it returns them alone or as (logits, weights)."""
    return output[0] if isinstance(output, tuple) else output


def train_model(model: nn.Module, task: TaskData, *, steps: int, lr: float,
                batch_size: int = 64, seed: int = 0) -> float:
    """Adam on mini-batches drawn with ``seed``; returns the test accuracy (lessons 08, 11)."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        batch = torch.randint(len(task.train_labels), (batch_size,), generator=generator)
        loss = F.cross_entropy(logits_of(model(task.train_inputs[batch])), task.train_labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = logits_of(model(task.test_inputs)).argmax(dim=-1)  # (N,)
    return (predicted == task.test_labels).float().mean().item()


def build(name: str, task: TaskData, seed: int = 0) -> nn.Module:
    """The panel's model ``name`` for ``task``, initialised from ``seed``."""
    torch.manual_seed(seed)
    return PANEL[name](task.num_inputs, task.train_inputs.size(1), task.num_classes,
                       tokens=task.tokens)


def best_learning_rates(task: TaskData, *, steps: int, seed: int = 0) -> dict[str, float]:
    """Each baseline's learning rate from ``LEARNING_RATES`` with the best test accuracy
    (the sweep that ``panel_lrs.json`` stores; lessons 08, 11)."""
    best = {}
    for name in PANEL:
        scores = {lr: train_model(build(name, task, seed), task, steps=steps, lr=lr, seed=seed)
                  for lr in LEARNING_RATES}
        best[name] = max(scores, key=scores.get)
    return best


def stored_learning_rates(task_name: str) -> dict[str, float]:
    """The learning rates ``sweep`` stored for ``task_name`` (``python -m attn_course.panel``)."""
    return json.loads(STORED_LRS.read_text())[task_name]


def train_panel(task: TaskData, learning_rates: dict[str, float], *, steps: int,
                seed: int = 0) -> dict[str, float]:
    """Train every baseline at its learning rate; returns name -> test accuracy."""
    return {name: train_model(build(name, task, seed), task, steps=steps,
                              lr=learning_rates[name], seed=seed)
            for name in PANEL}


def panel_table(attention: float, panel: dict[str, float]) -> str:
    """A text table: the attention model's accuracy, then each baseline's and its gap."""
    lines = [f"{'model':<24}{'accuracy':>9}{'attention ahead by':>20}",
             f"{'attention':<24}{attention:>9.2f}"]
    lines += [f"{name:<24}{score:>9.2f}{attention - score:>20.2f}"
              for name, score in panel.items()]
    return "\n".join(lines)


@dataclass(frozen=True)
class LessonTask:
    """A trained task of a lesson, as the lesson sets it up (lessons 08, 11)."""

    data: TaskData
    make_attention: Callable[[], nn.Module]
    steps: int
    attention_lr: float = 0.01


def _signal_tokens() -> LessonTask:
    from attn_course.data import signal_token_task
    from attn_course.models import AttentionClassifier

    train = signal_token_task(2000, seq_len=64, generator=torch.Generator().manual_seed(0))
    test = signal_token_task(500, seq_len=64, generator=torch.Generator().manual_seed(1))
    data = TaskData(train.tokens, train.labels, test.tokens, test.labels, num_classes=4)
    return LessonTask(data, lambda: AttentionClassifier(20, 16, 4), steps=150)


def _patches(images) -> torch.Tensor:
    """(N, 16, 16) images -> (N, S, 16): 4 x 4 patches, row-major (a question's cue first)."""
    return F.unfold(images.images.unsqueeze(1), kernel_size=4, stride=4).transpose(1, 2)


def _spectra(clips) -> torch.Tensor:
    """(N, 512) clips -> (N, S, 17): rfft magnitudes of 16 frames of 32 samples."""
    return torch.fft.rfft(clips.signals.unflatten(-1, (-1, 32))).abs()


def _pieces(make, to_pieces, num_classes: int, model, **settings) -> LessonTask:
    """A lesson-11 task of pieces (patches, frames): 3,000 training and 500 test examples,
    ``model(features, 32, num_classes)`` trained for 200 steps."""
    generator = torch.Generator().manual_seed(0)
    train, test = make(3000, generator=generator), make(500, generator=generator)
    data = TaskData(to_pieces(train), train.labels, to_pieces(test), test.labels, num_classes)
    return LessonTask(data, lambda: model(data.num_inputs, 32, num_classes), steps=200,
                      **settings)


def _bright_glyph() -> LessonTask:
    from attn_course.data import GLYPHS, shape_image_task
    from attn_course.models import PiecePoolingClassifier

    return _pieces(shape_image_task, _patches, len(GLYPHS), PiecePoolingClassifier)


def _images() -> LessonTask:
    from attn_course.data import BRIGHTNESS_LEVELS, shape_question_task
    from attn_course.models import CuedAttentionClassifier

    return _pieces(shape_question_task, _patches, len(BRIGHTNESS_LEVELS),
                   CuedAttentionClassifier, attention_lr=0.003)


def _sound() -> LessonTask:
    from attn_course.data import HIGH_NOTES, chord_clip_task
    from attn_course.models import CuedAttentionClassifier

    return _pieces(chord_clip_task, _spectra, len(HIGH_NOTES), CuedAttentionClassifier,
                   attention_lr=0.003)


def _facts() -> LessonTask:
    from attn_course.data import PLACES, fact_lookup_task
    from attn_course.models import FactReader

    generator = torch.Generator().manual_seed(0)
    train = fact_lookup_task(3000, generator=generator)
    test = fact_lookup_task(500, generator=generator)
    data = TaskData(train.tokens, train.answer, test.tokens, test.answer, len(PLACES))
    return LessonTask(data, FactReader, steps=200)


# --- lesson 08's question-dependent task (issue 21) ---
def _colour_questions() -> LessonTask:
    from attn_course.data import colour_question_task
    from attn_course.models import QueryAttentionClassifier

    generator = torch.Generator().manual_seed(0)
    train = colour_question_task(3000, generator=generator)
    test = colour_question_task(500, generator=generator)
    data = TaskData(train.tokens, train.labels, test.tokens, test.labels, train.num_shapes)
    return LessonTask(data, lambda: QueryAttentionClassifier(8, 4, 32, 4), steps=200)
# --- end of lesson 08's question-dependent task ---


# name -> the task as lesson 08 or 11 trains it
LESSON_TASKS: dict[str, Callable[[], LessonTask]] = {
    "08 signal tokens": _signal_tokens,
    "08 colour questions": _colour_questions,
    # lesson 11: the bright glyph is the panel-keeps-up example; the question images, the
    # chords and the facts need attention (issue 21)
    "11 bright glyph": _bright_glyph,
    "11 images": _images,
    "11 sound": _sound,
    "11 facts": _facts,
}


def train_attention(task: LessonTask, seed: int = 0) -> float:
    """The attention model of ``task`` trained from ``seed``; returns its test accuracy."""
    torch.manual_seed(seed)
    return train_model(task.make_attention(), task.data, steps=task.steps,
                       lr=task.attention_lr, seed=seed)


def sweep(path: Path = STORED_LRS, names: Sequence[str] = ()) -> dict[str, dict[str, float]]:
    """Sweep the baselines of the lesson tasks ``names`` (all when empty) over
    ``LEARNING_RATES`` and store the best in ``path``, keeping the other tasks' stored rates
    (run once: ``python -m attn_course.panel [TASK ...]``)."""
    best = json.loads(path.read_text()) if path.exists() else {}
    for name, make in LESSON_TASKS.items():
        if names and name not in names:
            continue
        task = make()
        best[name] = best_learning_rates(task.data, steps=task.steps)
    path.write_text(json.dumps(best, indent=2) + "\n")
    return best


if __name__ == "__main__":
    torch.set_num_threads(1)
    sweep(names=sys.argv[1:])
