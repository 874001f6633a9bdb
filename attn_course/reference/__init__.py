"""Reference implementations of everything the course teaches, in pure PyTorch.

``from attn_course.reference import NAME`` works for every name in the course specification's
assignment table, with the same contract. Glossary: B batch, T queries, S keys/values,
D model width, H heads, Dh head width, G key/value heads (grouped-query attention).
Masks are boolean, True = may attend.
"""

from attn_course.reference.attention import scaled_dot_product_attention
from attn_course.reference.block import FeedForward, TransformerEncoderBlock
from attn_course.reference.context import SimpleAttention, context_vector
from attn_course.reference.efficient import (
    KVCache,
    cached_causal_attention,
    online_softmax,
    tiled_attention,
)
from attn_course.reference.gqa import (
    GreedyDecoder,
    GroupedQueryAttention,
    TinyLanguageModel,
    generate,
    repeat_kv,
)
from attn_course.reference.interop import to_torch_encoder_layer, to_torch_multihead_attention
from attn_course.reference.multihead import MultiHeadAttention, merge_heads, split_heads
from attn_course.reference.position import sinusoidal_positional_encoding
from attn_course.reference.rotary import apply_rotary, rotary_frequencies
from attn_course.reference.scores import (
    AdditiveScore,
    BilinearScore,
    attention_scores,
    scaled_dot_product_scores,
)
from attn_course.reference.softmax import causal_mask, masked_softmax, padding_mask, softmax

__all__ = [
    "AdditiveScore",
    "BilinearScore",
    "FeedForward",
    "GreedyDecoder",
    "GroupedQueryAttention",
    "KVCache",
    "MultiHeadAttention",
    "SimpleAttention",
    "TinyLanguageModel",
    "TransformerEncoderBlock",
    "apply_rotary",
    "attention_scores",
    "cached_causal_attention",
    "causal_mask",
    "context_vector",
    "generate",
    "masked_softmax",
    "merge_heads",
    "online_softmax",
    "padding_mask",
    "repeat_kv",
    "rotary_frequencies",
    "scaled_dot_product_attention",
    "scaled_dot_product_scores",
    "sinusoidal_positional_encoding",
    "softmax",
    "split_heads",
    "tiled_attention",
    "to_torch_encoder_layer",
    "to_torch_multihead_attention",
]
