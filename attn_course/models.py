"""Small models that put attention to work, and the loop that trains them (lessons 08, 11)."""

import torch
import torch.nn.functional as F
from torch import nn

from attn_course.data import PEOPLE, PLACES
from attn_course.reference import MultiHeadAttention, SimpleAttention


class AttentionClassifier(nn.Module):
    """The ``MyModel`` sketch completed: embedding -> attention pooling -> linear (lesson 08).

    tokens (B, T) int64 -> (logits (B, num_classes), attention weights (B, T)). The pooling is
    the sketch's attention module (``SimpleAttention``, a learned scorer
    ``nn.Linear(input_dim, 1)`` with a softmax over the sequence), so the weights say which
    tokens the prediction rests on.
    """

    def __init__(self, vocab_size: int, input_dim: int, num_classes: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, input_dim)
        self.attention = SimpleAttention(input_dim)
        self.classifier = nn.Linear(input_dim, num_classes)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embedding(tokens)  # (B, T, D)
        context, attn_weights = self.attention(x)  # (B, D), (B, T, 1)
        logits = self.classifier(context)  # (B, num_classes)
        return logits, attn_weights.squeeze(-1)  # (B, num_classes), (B, T)


class MeanPoolingClassifier(nn.Module):
    """The no-attention baseline: embedding -> mean over the sequence -> linear (lesson 08).

    tokens (B, T) int64 -> (logits (B, num_classes), weights (B, T)). It has the layers of
    ``AttentionClassifier`` without the scorer: every token gets the same weight 1/T, which is
    returned so that both models train and evaluate with the same code.
    """

    def __init__(self, vocab_size: int, input_dim: int, num_classes: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, input_dim)
        self.classifier = nn.Linear(input_dim, num_classes)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embedding(tokens)  # (B, T, D)
        logits = self.classifier(x.mean(dim=1))  # (B, num_classes)
        weights = torch.full(
            tokens.shape, 1 / tokens.size(1), dtype=x.dtype, device=x.device
        )  # (B, T)
        return logits, weights


class PiecePoolingClassifier(nn.Module):
    """Attention pooling over pieces of any kind: linear -> attention pooling -> linear (lesson 11).

    pieces (B, S, F) float (patches, frames) -> (logits (B, num_classes), weights (B, S)). Lesson
    08's model with ``nn.Linear(feature_dim, d_model)`` in place of the embedding.
    """

    def __init__(self, feature_dim: int, d_model: int, num_classes: int) -> None:
        super().__init__()
        self.embed = nn.Linear(feature_dim, d_model)
        self.pool = SimpleAttention(d_model)
        self.classifier = nn.Linear(d_model, num_classes)

    def forward(self, pieces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embed(pieces)  # (B, S, D)
        context, attn_weights = self.pool(x)  # (B, D), (B, S, 1)
        return self.classifier(context), attn_weights.squeeze(-1)  # (B, classes), (B, S)


class CuedAttentionClassifier(nn.Module):
    """Cross-attention from the input's first piece (the cue) to the other pieces (lesson 11).

    pieces (B, 1 + S, F) float (patches, frames), the cue first -> (logits (B, num_classes),
    weights over the other S pieces (B, S)). Each piece becomes a D-vector by
    ``nn.Linear(feature_dim, d_model)``; the cue's vector is the one query, so what the model
    looks for changes with the cue (``FactReader`` with a piece for the question).
    """

    def __init__(self, feature_dim: int, d_model: int, num_classes: int) -> None:
        super().__init__()
        self.embed = nn.Linear(feature_dim, d_model)
        self.attention = MultiHeadAttention(d_model, num_heads=1)
        self.classifier = nn.Linear(d_model, num_classes)

    def forward(self, pieces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embed(pieces)  # (B, 1 + S, D)
        cue, others = x[:, :1], x[:, 1:]  # (B, 1, D), (B, S, D)
        context, weights = self.attention(cue, others, others, need_weights=True)
        # context (B, 1, D), weights (B, 1, 1, S)
        return self.classifier(context.squeeze(1)), weights[:, 0, 0]  # (B, classes), (B, S)


class FactReader(nn.Module):
    """A question attending to facts: cross-attention with T = 1 query (lesson 11).

    tokens (B, 1 + S) int64, ``FactStories.tokens`` (the question, then S fact tokens) ->
    (answer logits (B, len(PLACES)), weights over the facts (B, S)). Each fact's vector is its
    person's embedding plus its place's; the query is the asked person's embedding.
    """

    def __init__(self, d_model: int = 32) -> None:
        super().__init__()
        self.person = nn.Embedding(len(PEOPLE), d_model)
        self.place = nn.Embedding(len(PLACES), d_model)
        self.attention = MultiHeadAttention(d_model, num_heads=1)
        self.answer = nn.Linear(d_model, len(PLACES))

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        facts = tokens[:, 1:]  # (B, S)
        memory = self.person(facts // len(PLACES)) + self.place(facts % len(PLACES))  # (B, S, D)
        asked = tokens[:, 0] - len(PEOPLE) * len(PLACES)  # (B,) person ids
        query = self.person(asked).unsqueeze(1)  # (B, 1, D)
        context, weights = self.attention(query, memory, memory, need_weights=True)
        # context (B, 1, D), weights (B, 1, 1, S)
        return self.answer(context.squeeze(1)), weights[:, 0, 0]  # (B, places), (B, S)


class QueryAttentionClassifier(nn.Module):
    """Attention pooling whose scores depend on a question: the step up from ``MyModel``
    (lesson 08).

    tokens (B, 1 + T) int64, ``ColourQuestions.tokens`` (the question, then T coloured shapes)
    -> (logits (B, num_classes), weights (B, T)). A token's vector is its colour's embedding
    plus its shape's; the question's vector q is its colour's embedding. Each token's score is
    the scaled dot product q . x_t / sqrt(D) (lessons 01 and 04) instead of ``MyModel``'s
    ``nn.Linear(D, 1)`` of x_t alone; the softmax and the weighted sum are the same.
    """

    def __init__(self, num_colours: int, num_shapes: int, input_dim: int,
                 num_classes: int) -> None:
        super().__init__()
        self.num_colours, self.num_shapes = num_colours, num_shapes
        self.colour = nn.Embedding(num_colours, input_dim)
        self.shape = nn.Embedding(num_shapes, input_dim)
        self.classifier = nn.Linear(input_dim, num_classes)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        items, asked = tokens[:, 1:], tokens[:, 0] - self.num_colours * self.num_shapes
        x = self.colour(items // self.num_shapes) + self.shape(items % self.num_shapes)  # (B, T, D)
        query = self.colour(asked).unsqueeze(1)  # (B, 1, D)
        scores = (x * query).sum(dim=-1) / x.size(-1) ** 0.5  # (B, T)
        weights = torch.softmax(scores, dim=-1)  # (B, T)
        context = (weights.unsqueeze(-1) * x).sum(dim=1)  # (B, D)
        return self.classifier(context), weights  # (B, num_classes), (B, T)


def train_classifier(
    model: nn.Module,
    tokens: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int = 150,
    batch_size: int = 64,
    lr: float = 0.01,
    generator: torch.Generator,
) -> list[float]:
    """Train ``model`` (tokens -> (logits, weights)) with Adam on shuffled mini-batches (lesson 08).

    tokens (N, T), labels (N,). The batches are drawn with ``generator``, so the same model
    initialisation and generator give the same run. Returns the loss of every step.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        batch = torch.randint(len(tokens), (batch_size,), generator=generator)  # (batch_size,)
        logits, _ = model(tokens[batch])  # (batch_size, num_classes)
        loss = F.cross_entropy(logits, labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def accuracy(model: nn.Module, tokens: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of the N sequences in tokens (N, T) whose predicted class equals labels (N,)."""
    logits, _ = model(tokens)  # (N, num_classes)
    return (logits.argmax(dim=-1) == labels).float().mean().item()
