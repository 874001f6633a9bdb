"""Hints on demand for the assignments' exercises, and how hard and long each one is.

Every exercise of ``attn_course.checks.EXERCISES`` has one ``ExerciseHints``: a difficulty, the
minutes a learner who has read its lessons usually needs, and three hints that give away more
and more without giving the solution:

1. the idea (what the function computes, which lesson shows it);
2. the shapes (what each step turns into what);
3. the line that usually goes wrong (the slip the check most often names).

``check(fn, hint=2)`` prints hints 1 and 2 under the verdict; ``hint("softmax", level=3)``
prints them without running the check. The solution notebooks state the same difficulty and
time under each task (``difficulty_line``), and a test holds the two together.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

DIFFICULTIES = ("easy", "medium", "hard")
LEVELS = (1, 2, 3)
LEVEL_NAMES = {1: "the idea", 2: "the shapes", 3: "the line that usually goes wrong"}
WIDTH = 92  # a notebook's output wraps long lines anywhere, even inside a word


@dataclass(frozen=True)
class ExerciseHints:
    """How hard exercise ``exercise`` is, how long it takes, and its hints, idea first."""

    exercise: str
    difficulty: str
    minutes: int
    idea: str
    shapes: str
    pitfall: str

    def __post_init__(self) -> None:
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(f"{self.exercise}: difficulty {self.difficulty!r}")

    def hint(self, level: int) -> str:
        """Hint number ``level`` (1, 2 or 3)."""
        if level not in LEVELS:
            raise ValueError(f"hint levels are 1, 2 and 3, not {level!r}")
        return (self.idea, self.shapes, self.pitfall)[level - 1]


def difficulty_line(hints: ExerciseHints) -> str:
    """The line under a task's heading in its notebook: ``*Difficulty: easy · about 10
    minutes*``."""
    return f"*Difficulty: {hints.difficulty} · about {hints.minutes} minutes*"


def format_hints(hints: ExerciseHints, level: int) -> str:
    """Hints 1 to ``level`` of an exercise, each with its number and what it is about."""
    if level not in LEVELS:
        raise ValueError(f"hint levels are 1, 2 and 3, not {level!r}")
    lines = [f"💡 {hints.exercise} ({hints.difficulty}, about {hints.minutes} minutes)"]
    for number in range(1, level + 1):
        text = f"hint {number}/3, {LEVEL_NAMES[number]}: {hints.hint(number)}"
        lines.append(textwrap.fill(text, WIDTH, subsequent_indent="  ", break_on_hyphens=False))
    if level < LEVELS[-1]:
        lines.append(f"(level={level + 1} gives the next hint)")
    return "\n".join(lines)


_ALL = (
    # --- assignment 01 -------------------------------------------------------------------------
    ExerciseHints(
        exercise="attention_scores",
        difficulty="easy",
        minutes=10,
        idea="A score is a dot product: multiply the query and one key feature by feature and "
        "add up. Do that for every key at once (lesson 01, 'Dot-product score').",
        shapes="query (..., D) and keys (..., S, D) share their leading dims. Make the query a "
        "column (..., D, 1) so that keys @ column is (..., S, 1), then drop the trailing 1.",
        pitfall="`query @ keys.transpose(-2, -1)` runs but, with a batch, scores every query "
        "against every batch element's keys. Check the shape on a batch of 2: it must be (2, S).",
    ),
    ExerciseHints(
        exercise="softmax",
        difficulty="easy",
        minutes=15,
        idea="exp makes the scores positive, dividing by their sum makes them add up to 1. "
        "Subtracting the same number from every score changes nothing, so subtract the largest "
        "one first and exp can no longer overflow (lesson 02, 'the max-shift fix').",
        shapes="The max and the sum are taken along `dim` with keepdim=True: they keep a "
        "size-1 axis there, so they broadcast back over the scores, and the result has the "
        "scores' shape.",
        pitfall="The max (or the sum) without `dim=dim, keepdim=True`: `scores.max()` is the "
        "maximum of the whole tensor, and a sum without keepdim divides each row by another "
        "row's total. Try it on `torch.tensor([[1e4, 0.], [-1e4, -1e4 + 1]])`.",
    ),
    ExerciseHints(
        exercise="context_vector",
        difficulty="easy",
        minutes=10,
        idea="The context is the weighted sum of the values: each value row times its weight, "
        "added over the S values (lesson 03, 'The weighted sum').",
        shapes="weights (..., S) against values (..., S, Dv): give the weights a row axis, "
        "(..., 1, S) @ (..., S, Dv) is (..., 1, Dv); or weights[..., None] * values summed "
        "over dim -2. The answer is (..., Dv).",
        pitfall="`weights @ values` mixes batch elements when there is a batch, and a bare "
        "`.squeeze()` also drops a batch or value axis of size 1: squeeze only the axis you "
        "added.",
    ),
    ExerciseHints(
        exercise="SimpleAttention",
        difficulty="easy",
        minutes=15,
        idea="Three steps in forward: score every token with self.attention, softmax the "
        "scores over the sequence, weight the tokens and add them up (lesson 03, the "
        "`SimpleAttention` example).",
        shapes="x (B, T, input_dim) -> scores (B, T, 1) -> weights (B, T, 1) -> weights * x is "
        "(B, T, input_dim) -> sum over T gives (B, input_dim). Return the weights as "
        "(B, T, 1).",
        pitfall="The softmax's dim: the scores are (B, T, 1), so dim=-1 normalises over the "
        "size-1 axis (every weight becomes 1). The sequence is dim=1.",
    ),
    # --- assignment 02 -------------------------------------------------------------------------
    ExerciseHints(
        exercise="scaled_dot_product_attention",
        difficulty="medium",
        minutes=25,
        idea="Scores Q Kᵀ, divided by √D, masked, softmaxed over the keys, then a weighted "
        "sum of the values: lessons 01-03 in one function, with the scale of lesson 04 and "
        "the mask of lesson 05.",
        shapes="query (..., T, D) @ key transposed (..., D, S) = scores (..., T, S); the "
        "weights keep that shape; weights @ value (..., S, Dv) = output (..., T, Dv). D is "
        "query.size(-1).",
        pitfall="The mask goes on the scores before the softmax, as -inf where it is False "
        "(`masked_fill(~mask, float('-inf'))`): zeroing the weights after the softmax leaves "
        "rows that no longer sum to 1.",
    ),
    ExerciseHints(
        exercise="causal_mask",
        difficulty="easy",
        minutes=5,
        idea="Query t may look at keys 0 … t: the allowed cells are the diagonal and "
        "everything below it (lesson 05).",
        shapes="A (size, size) boolean tensor; row = query, column = key; True = may attend.",
        pitfall="The wrong triangle (`triu` keeps the future) or the wrong diagonal offset "
        "(`tril(-1)` forbids a token to see itself). Print causal_mask(3) and read row 0: "
        "only its first entry is True.",
    ),
    ExerciseHints(
        exercise="padding_mask",
        difficulty="easy",
        minutes=10,
        idea="Position s of sequence b is real when s < lengths[b]: compare a row of "
        "positions with each length (lesson 05).",
        shapes="positions (max_len,) against lengths (B,) as a column (B, 1): the comparison "
        "broadcasts to (B, max_len).",
        pitfall="`<=` instead of `<` (one padding token too many let through), or the "
        "comparison without the column, which compares position b with length b only.",
    ),
    # --- assignment 03 -------------------------------------------------------------------------
    ExerciseHints(
        exercise="split_heads",
        difficulty="medium",
        minutes=15,
        idea="Cut each token's D features into H consecutive pieces of Dh = D / H, then put "
        "the head axis in front of the token axis (lesson 07).",
        shapes="(B, T, D) -> view (B, T, H, Dh) -> transpose(1, 2) -> (B, H, T, Dh).",
        pitfall="`x.view(B, H, T, Dh)` straight away has the right shape but cuts the tokens, "
        "not the features: head 0 gets the first tokens. View as (B, T, H, Dh) first, then "
        "transpose.",
    ),
    ExerciseHints(
        exercise="merge_heads",
        difficulty="easy",
        minutes=10,
        idea="Undo split_heads: tokens back in front of the heads, then each token's heads "
        "side by side (lesson 07).",
        shapes="(B, H, T, Dh) -> transpose(1, 2) -> (B, T, H, Dh) -> reshape (B, T, H·Dh).",
        pitfall="Reshaping before the transpose gives the right shape and scrambled values; "
        "and `view` after a transpose fails (not contiguous): use `reshape`.",
    ),
    ExerciseHints(
        exercise="MultiHeadAttention",
        difficulty="medium",
        minutes=30,
        idea="Project the inputs with w_q, w_k, w_v, split each into heads, run scaled "
        "dot-product attention in every head at once, merge the heads, project with w_o "
        "(lesson 07).",
        shapes="(B, T, D) -> q (B, H, T, Dh), k and v (B, H, S, Dh) -> scores (B, H, T, S) -> "
        "per-head context (B, H, T, Dh) -> merged (B, T, D) -> w_o -> (B, T, D).",
        pitfall="The scale is 1/√Dh, the head width, not 1/√D; and the mask (B, T, S) needs a "
        "head axis, `mask.unsqueeze(-3)`, to broadcast over (B, H, T, S).",
    ),
    # --- assignment 04 -------------------------------------------------------------------------
    ExerciseHints(
        exercise="sinusoidal_positional_encoding",
        difficulty="medium",
        minutes=20,
        idea="Each pair of columns is a clock that turns at its own speed ω_i: sin in the even "
        "column, cos in the odd one, at angle pos · ω_i (lesson 10).",
        shapes="positions (seq_len, 1) times frequencies (d_model/2,) = angles "
        "(seq_len, d_model/2); write sin into columns 0::2 and cos into 1::2 of a "
        "(seq_len, d_model) tensor.",
        pitfall="The exponent of ω_i uses the even column index 2i over d_model: "
        "`arange(0, d_model, 2) / d_model`, not `arange(d_model) / d_model`; and sin and cos "
        "interleave, they are not two halves.",
    ),
    ExerciseHints(
        exercise="FeedForward",
        difficulty="easy",
        minutes=5,
        idea="Two linear layers with a GELU between them, applied to every token on its own "
        "(lesson 10).",
        shapes="(..., D) -> up -> (..., d_ff) -> GELU -> down -> (..., D).",
        pitfall="The exact GELU (`F.gelu(h)`, no `approximate='tanh'`), and use the given "
        "`self.up` and `self.down`: a layer of your own keeps random weights.",
    ),
    ExerciseHints(
        exercise="TransformerEncoderBlock",
        difficulty="medium",
        minutes=20,
        idea="Pre-norm: each sub-layer reads a normalised copy of x and adds its result to x "
        "itself, attention first, then the feed-forward network (lesson 10).",
        shapes="Everything stays (B, T, D): h = norm1(x); x = x + attn(h, h, h, mask); then "
        "the same with norm2 and ffn.",
        pitfall="Adding the result to the normalised copy (`h + attn(h, …)`) instead of to x, "
        "or normalising after the addition (post-norm): the residual must carry x unchanged.",
    ),
    # --- assignment 05 -------------------------------------------------------------------------
    ExerciseHints(
        exercise="online_softmax",
        difficulty="hard",
        minutes=35,
        idea="Walk along each row one block at a time, keeping the largest score so far (m) "
        "and the sum of exp(score − m) so far (l). When m grows, the old sum was measured "
        "against the old maximum: rescale it (lesson 12).",
        shapes="m and l are (..., 1), one per row, starting at -inf and 0; a block is "
        "scores[..., start:start + block_size]; at the end exp(scores − m) / l is (..., S).",
        pitfall="The rescale: `l = l * exp(m_old − m_new) + block_sum`, with block_sum "
        "computed against m_new. Shifting each block by its own maximum and adding the sums "
        "unscaled gives wrong weights without any NaN.",
    ),
    ExerciseHints(
        exercise="tiled_attention",
        difficulty="hard",
        minutes=45,
        idea="The online softmax of assignment 05's first task, applied to the scores of one "
        "block of keys at a time, with an output that is rescaled by the same correction as "
        "the running sum (lesson 12).",
        shapes="Per block: scores (..., T, Bk), running max and sum (..., T, 1), output "
        "(..., T, Dv); the block's mask is mask[..., start:stop]; divide by the sum at the "
        "end.",
        pitfall="The correction exp(m_old − m_new) must multiply both the running sum and the "
        "running output before the block's terms are added; and the causal rule compares "
        "global positions (start + column) with the query's row, not positions inside the "
        "block.",
    ),
    # --- assignment 06 -------------------------------------------------------------------------
    ExerciseHints(
        exercise="apply_rotary",
        difficulty="medium",
        minutes=25,
        idea="Treat features j and j + Dh/2 as the two coordinates of a point in a plane and "
        "turn it by the angle position · θ_j (lesson 13).",
        shapes="angles = positions (T, 1) times θ (Dh/2,) = (T, Dh/2), which broadcasts over "
        "the halves x[..., :Dh/2] and x[..., Dh/2:], each (..., T, Dh/2); concatenate the two "
        "turned halves back to (..., T, Dh).",
        pitfall="Pairing features 2j and 2j + 1 (the other convention), or computing the angles "
        "in float32: build them in float64 and cast cos and sin to x.dtype.",
    ),
    ExerciseHints(
        exercise="GroupedQueryAttention",
        difficulty="hard",
        minutes=45,
        idea="Multi-head attention in which H query heads share G key/value heads, with RoPE "
        "on q and k and a causal mask that knows how many tokens the cache already holds "
        "(lesson 14).",
        shapes="q (B, H, T, Dh), k and v (B, G, T, Dh) -> after the cache (B, G, S, Dh) -> "
        "repeat_interleave(H // G, dim=1) to (B, H, S, Dh) -> scores (B, H, T, S).",
        pitfall="Positions start at len(cache), read before appending; and `repeat` orders the "
        "heads 0, 1, 0, 1, … where query head h needs key/value head h // (H/G): "
        "`repeat_interleave`.",
    ),
    ExerciseHints(
        exercise="GreedyDecoder",
        difficulty="medium",
        minutes=25,
        idea="Feed the prompt once, then one token per step: the caches remember everything "
        "the model has seen, so it never needs the whole sequence again (lesson 14).",
        shapes="prompt (B, T0) -> logits (B, T0, V); the next token is logits[:, -1].argmax "
        "(B, 1); append it to the tokens (B, T + 1) and feed only it, (B, 1), next.",
        pitfall="`[KVCache()] * n` is one cache listed n times: build one per layer with a "
        "loop, once, before generating; and feed only the newest token after the first step.",
    ),
)

HINTS: dict[str, ExerciseHints] = {hints.exercise: hints for hints in _ALL}
