"""Torch's own attention modules holding the weights of ours, to compare with (lessons 07, 10).

Careful with masks: torch's boolean ``attn_mask`` means True = *blocked*, the opposite of this
course's convention, so pass ``~mask``.
"""

import torch
from torch import nn


def to_torch_multihead_attention(mha: nn.Module, num_heads: int) -> nn.MultiheadAttention:
    """An ``nn.MultiheadAttention(D, num_heads, batch_first=True)`` with ``mha``'s weights.

    ``mha`` is any module with ``w_q``, ``w_k``, ``w_v``, ``w_o`` = ``nn.Linear(D, D)``, such as
    ``MultiHeadAttention`` (lesson 07): torch keeps the three input projections stacked in one
    (3D, D) ``in_proj_weight``.
    """
    d_model = mha.w_q.in_features
    theirs = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([mha.w_q.weight, mha.w_k.weight, mha.w_v.weight]))
        theirs.in_proj_bias.copy_(torch.cat([mha.w_q.bias, mha.w_k.bias, mha.w_v.bias]))
        theirs.out_proj.load_state_dict(mha.w_o.state_dict())
    return theirs


def to_torch_encoder_layer(block: nn.Module, num_heads: int) -> nn.TransformerEncoderLayer:
    """A pre-norm GELU ``nn.TransformerEncoderLayer`` with ``block``'s weights (lesson 10).

    ``block`` has the parameter names of ``TransformerEncoderBlock``: ``norm1``, ``attn``
    (``w_q``, ``w_k``, ``w_v``, ``w_o``), ``norm2``, ``ffn.up``, ``ffn.down``.
    """
    d_model, d_ff = block.ffn.up.in_features, block.ffn.up.out_features
    theirs = nn.TransformerEncoderLayer(
        d_model, num_heads, d_ff, dropout=0.0, activation="gelu", batch_first=True,
        norm_first=True,
    )  # fmt: skip
    theirs.self_attn = to_torch_multihead_attention(block.attn, num_heads)
    theirs.linear1.load_state_dict(block.ffn.up.state_dict())
    theirs.linear2.load_state_dict(block.ffn.down.state_dict())
    theirs.norm1.load_state_dict(block.norm1.state_dict())
    theirs.norm2.load_state_dict(block.norm2.state_dict())
    return theirs
