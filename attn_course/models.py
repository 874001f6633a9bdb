"""Small models that put attention to work, and the loop that trains them (lesson 08)."""

import torch
import torch.nn.functional as F
from torch import nn

from attn_course.reference import SimpleAttention


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
