"""What trained heads do: an attention-only transformer, head scores, head ablation (lesson 15).

An *induction head* completes patterns: at a token A that appeared before, followed by B, it
attends to that earlier B and predicts B again ("... A B ... A -> B"). It needs a
*previous-token head* in an earlier layer, which writes into each position which token came
just before it, so that the induction head's key at B can say "I follow an A".
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from attn_course.reference import MultiHeadAttention, causal_mask


class AttentionOnlyTransformer(nn.Module):
    """Token and learned position embeddings, ``num_layers`` residual causal self-attention
    layers, a final layer norm and an unembedding; no feed-forward networks (lesson 15).

    tokens (B, T) int64 -> logits (B, T, V); with ``need_weights=True`` also the attention
    weights of every layer and head, (B, num_layers, H, T, T).
    """

    def __init__(
        self, vocab_size: int, d_model: int, num_heads: int, num_layers: int = 2, max_len: int = 64
    ) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(max_len, d_model)
        self.layers = nn.ModuleList(
            MultiHeadAttention(d_model, num_heads) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.unembed = nn.Linear(d_model, vocab_size)

    def forward(
        self, tokens: torch.Tensor, need_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        T = tokens.size(1)
        positions = torch.arange(T, device=tokens.device)  # (T,)
        x = self.token_embedding(tokens) + self.position_embedding(positions)  # (B, T, D)
        mask = causal_mask(T, device=tokens.device)  # (T, T)
        layer_weights = []
        for attn in self.layers:
            attn_out, attn_weights = attn(x, x, x, mask, need_weights=True)  # (B,T,D), (B,H,T,T)
            x = x + attn_out  # (B, T, D): each layer adds what its heads found
            layer_weights.append(attn_weights)
        logits = self.unembed(self.norm(x))  # (B, T, V)
        return (logits, torch.stack(layer_weights, dim=1)) if need_weights else logits


def previous_token_scores(attn_weights: torch.Tensor) -> torch.Tensor:
    """How much each head attends from every position to the one just before it (lesson 15).

    attn_weights (B, L, H, T, T) -> (L, H): the mean over the batch and over t >= 1 of the weight
    from query t to key t - 1. A perfect previous-token head scores 1.
    """
    return attn_weights.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, -1))  # (L, H)


def induction_scores(attn_weights: torch.Tensor, period: int) -> torch.Tensor:
    """How much each head attends to the token after the previous copy of the current one
    (lesson 15).

    attn_weights (B, L, H, T, T) over sequences that repeat with ``period`` -> (L, H): the mean
    over the batch and over t >= period of the weight from query t to key t - period + 1. A
    perfect induction head scores 1.
    """
    to_previous_copy = attn_weights.diagonal(
        offset=1 - period, dim1=-2, dim2=-1
    )  # (B, L, H, T - period + 1)
    return to_previous_copy[..., 1:].mean(dim=(0, -1))  # (L, H)


@contextmanager
def ablate_heads(
    model: AttentionOnlyTransformer, heads: Iterable[tuple[int, int]]
) -> Iterator[None]:
    """Inside the ``with`` block, the listed (layer, head) pairs of ``model`` contribute nothing
    (lesson 15).

    Zero ablation: the head's slice of the concatenated head outputs, the input of that layer's
    ``w_o``, is set to zero, so the head adds nothing to the residual stream (``w_o``'s bias
    still does). The weights are not changed; leaving the block restores the model.
    """
    hooks = []
    try:  # a bad (layer, head) raises here: the hooks registered before it are removed
        for layer, head in heads:
            attn = model.layers[layer]
            head_dim = attn.w_o.in_features // attn.num_heads
            columns = slice(head * head_dim, (head + 1) * head_dim)

            def zero_head(module, inputs, columns=columns):
                (merged,) = inputs  # (B, T, D): the H head outputs side by side
                index = torch.arange(columns.start, columns.stop, device=merged.device)
                return (merged.index_fill(-1, index, 0.0),)  # (B, T, D)

            hooks.append(attn.w_o.register_forward_pre_hook(zero_head))
        yield
    finally:
        for hook in hooks:
            hook.remove()
