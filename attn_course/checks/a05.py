"""Assignment 05 (lesson 12): online softmax and tiled attention.

Besides the values, these exercises have a rule about how they compute: the online softmax
reads each row ``block_size`` scores at a time, and tiled attention never holds the (T, S)
matrix. ``run_case`` measures both (``Outcome.widest_reduction``, ``Outcome.largest``);
a probe applies the rule once the values are right.
"""

from __future__ import annotations

import math

import torch

from attn_course import reference
from attn_course.checks.a01 import randn
from attn_course.checks.a02 import random_mask
from attn_course.checks.core import Case, measured
from attn_course.checks.exercise import Exercise, Mistake, Probe, Trial, catalogue
from attn_course.checks.probes import constant_factor, finite, fitted_scale, name_scale

ASSIGNMENT = "05_efficient_attention"


def outside_torch(elements: int, what: str) -> str:
    """The rule's message for data copied out of torch, where no recorder sees it."""
    return (
        f"copies a tensor of {elements:,} elements out of torch (to numpy or a Python list), "
        f"where {what} cannot be measured: keep the computation in torch"
    )


# --- online_softmax(scores, block_size) --------------------------------------------------------


def _softmax_cases(g: torch.Generator) -> list[Case]:
    rising = (randn(g, 2, 9) * 1e4).sort(dim=-1).values  # every block raises the maximum
    return [
        Case("one row of 10 scores, block_size 4", (randn(g, 10), 4)),
        Case("3 rows of 8 scores, block_size 4", (randn(g, 3, 8) * 3, 4)),
        Case("block_size 1", (randn(g, 2, 5), 1)),
        Case("block_size larger than the row", (randn(g, 2, 3), 8)),
        Case("leading dims (2, 3), 12 scores, block_size 5", (randn(g, 2, 3, 12) * 3, 5)),
        Case("scores up to ±1e4, rising along the row, block_size 3", (rising, 3)),
        Case("a row of 40 scores, block_size 8", (randn(g, 40) * 5, 8)),
        Case("float64, block_size 3", (randn(g, 3, 7, dtype=torch.float64) * 10, 3)),
        Case(
            "a row of only very negative scores (near -1e4), block_size 2",
            (torch.tensor([[-1e4, -1e4 - 3.0, -1e4 + 1.0, -1e4 - 2.0, -1e4 + 0.5]]), 2),
        ),
        Case(
            "rows far apart (±1e4) in one block, block_size 3",
            (
                torch.tensor(
                    [[1e4, 1e4 - 1.0, 1e4 + 2.0, 0.0], [-1e4, -1e4 + 2.0, -1e4 - 1.0, 1.0]]
                ),
                3,
            ),
        ),
    ]


def online(
    case: Case,
    rescale: bool = True,
    shift: bool = True,
    skip_partial: bool = False,
    per_block: bool = False,
    start: float | None = float("-inf"),
    inverse: bool = False,
    block_max_per_row: bool = True,
) -> torch.Tensor:
    """The online softmax written out, with one knob per known mistake.

    ``rescale``: multiply the running sum by exp(old max - new max) when the maximum grows
    (``inverse``: by exp(new max - old max)); ``shift``: subtract the running maximum at all;
    ``skip_partial``: leave out the last, shorter block; ``per_block``: normalise each block on
    its own; ``start``: the running maximum's first value (None: the first block's maximum, the
    start the course recommends besides -inf); ``block_max_per_row``: False takes
    one maximum over the whole block, all rows together.
    """
    scores, block_size = case.args
    S = scores.size(-1)
    stop = S - S % block_size if skip_partial and block_size < S else S
    if per_block:
        blocks = scores.split(block_size, dim=-1)
        return torch.cat([reference.softmax(block) for block in blocks], dim=-1)  # (..., S)
    if start is None:
        row_max = scores[..., :block_size].amax(dim=-1, keepdim=True)  # (..., 1)
    else:
        row_max = scores.new_full((*scores.shape[:-1], 1), start)  # (..., 1)
    row_sum = scores.new_zeros((*scores.shape[:-1], 1))  # (..., 1)
    for first in range(0, stop, block_size):
        block = scores[..., first : first + block_size]  # (..., Bk)
        block_max = block.amax(dim=-1, keepdim=True) if block_max_per_row else block.max()
        new_max = torch.maximum(row_max, block_max) if shift else torch.zeros_like(row_max)
        change = new_max - row_max if inverse else row_max - new_max  # (..., 1)
        correction = torch.exp(change) if rescale else torch.ones_like(row_sum)
        row_sum = row_sum * correction + torch.exp(block - new_max).sum(dim=-1, keepdim=True)
        row_max = new_max
    return torch.exp(scores - row_max) / row_sum  # (..., S)


def _normalisation_probe(t: Trial) -> str | None:
    """Each row proportional to the right weights, but not summing to 1: the running sum
    mixes exponentials taken relative to different maxima (it was not rescaled)."""
    output, expected = t.output, t.expected
    if not (finite(output) and output.shape == expected.shape):
        return None
    ratio = output.double() / expected.double()  # (..., S), one constant per row if right
    rows = ratio / ratio[..., :1]
    if not torch.allclose(rows, torch.ones_like(rows), rtol=1e-3, atol=1e-6):
        return None
    return (
        "each row has the right shape but does not sum to 1: the terms of the running sum "
        "were taken relative to different maxima (each block's own maximum, or a running "
        "maximum that grew) and never brought onto one scale. When the maximum grows from m "
        "to m', multiply the sum so far by exp(m − m') before adding the new block's terms."
    )


def _reads_whole_rows(t: Trial) -> str | None:
    case, outcome = t.case, t.outcome
    scores, block_size = case.args
    S = scores.size(-1)
    if block_size < S and measured(outcome.exported) and outcome.exported >= S:
        return outside_torch(outcome.exported, "how it reads the rows")
    if not measured(outcome.widest_reduction) and not measured(outcome.largest):
        return "how the scores were read could not be measured (torch's op recording was off)"
    if 2 <= block_size < S and outcome.widest_reduction >= S:
        return (
            f"reads whole rows at once: a max or a sum ran over {outcome.widest_reduction} "
            f"scores together, while a row of S = {S} scores should be read {block_size} at a "
            "time. Keep a running maximum and a running sum, and update them block by block."
        )
    return None


online_softmax = Exercise(
    name="online_softmax",
    arg_names=("scores", "block_size"),
    assignment=ASSIGNMENT,
    points=4,
    cases=_softmax_cases,
    expected=lambda case: reference.softmax(case.args[0]),
    probes=(
        Probe("sum-not-rescaled", _normalisation_probe),
        Probe("reads-whole-rows", _reads_whole_rows, "right"),
    ),
    forbidden=("softmax",),
    forbidden_message=(
        "uses a built-in softmax (torch.softmax, F.softmax, Tensor.softmax, nn.Softmax or "
        "log_softmax): build it from a running max and a running sum of exponentials"
    ),
    mistakes=catalogue(
        "online_softmax",
        "sum-not-rescaled no-max-shift per-block-normalised last-block-skipped max-starts-at-0 "
        "inverse-rescale block-max-all-rows",
        Mistake(
            "the running sum is not rescaled when a block raises the maximum: the terms summed "
            "so far were exp(score − old max); multiply the sum by exp(old max − new max) "
            "before adding the new block's terms",
            lambda case: online(case, rescale=False),
        ),
        Mistake(
            "no max shift: exp of large scores overflows to inf and the weights become NaN. "
            "Subtract the running maximum before exp, and rescale the sum when it grows.",
            lambda case: online(case, shift=False),
        ),
        Mistake(
            "each block is normalised on its own, so the weights of every block sum to 1: the "
            "whole row must sum to 1. Keep one running maximum and one running sum per row "
            "across all blocks, and divide only at the end.",
            lambda case: online(case, per_block=True),
        ),
        Mistake(
            "the last, shorter block is left out: when block_size does not divide the row "
            "length, the scores after the last full block must be read too (the last block "
            "may be shorter; slicing past the end is fine)",
            lambda case: online(case, skip_partial=True),
        ),
        Mistake(
            "the running maximum starts at 0 instead of -inf: a row whose scores are all very "
            "negative is then shifted by 0, every exp underflows to 0 and the weights are 0/0 = "
            "NaN. Start it at -inf (or at the first block's maximum).",
            lambda case: online(case, start=0.0),
        ),
        Mistake(
            "the running sum is rescaled by the inverse factor, exp(new max − old max): when the "
            "maximum grows, the terms summed so far must shrink, so multiply by "
            "exp(old max − new max)",
            lambda case: online(case, inverse=True, start=None),  # from -inf: NaN everywhere
        ),
        Mistake(
            "one maximum over the whole block, all rows together: a row far below the others "
            "then underflows to 0/0 = NaN. Take the maximum of each row, "
            "amax(dim=-1, keepdim=True).",
            lambda case: online(case, block_max_per_row=False),
        ),
    ),
)


# --- tiled_attention(query, key, value, mask=None, *, block_size, is_causal=False) -------------


def _qkv(g: torch.Generator, *lead: int, T: int, S: int, D: int, Dv: int, scale: float = 1.0):
    return randn(g, *lead, T, D) * scale, randn(g, *lead, S, D) * scale, randn(g, *lead, S, Dv)


def _first_key_allowed(g: torch.Generator, *shape: int) -> torch.Tensor:
    """A random mask under which every query may attend to key 0 (so the running maximum of
    every query is finite from the first block on)."""
    mask = random_mask(g, *shape)
    mask[..., 0] = True
    return mask


def _attention_cases(g: torch.Generator) -> list[Case]:
    def case(label, qkv, block_size, mask=None, is_causal=False) -> Case:
        kwargs = {"block_size": block_size, "is_causal": is_causal}
        return Case(label, qkv, kwargs if mask is None else {"mask": mask, **kwargs})

    lengths = torch.tensor([1024, 300])
    return [
        case("T=3, S=5, D=4, Dv=2, block_size 2", _qkv(g, T=3, S=5, D=4, Dv=2), 2),
        case("batch B=2, T=4, S=8, D=6, Dv=3, block_size 4", _qkv(g, 2, T=4, S=8, D=6, Dv=3), 4),
        case(
            "leading dims (2, 3), T=5, S=7, D=4, Dv=5, block_size 3",
            _qkv(g, 2, 3, T=5, S=7, D=4, Dv=5),
            3,
        ),
        case("block_size 1", _qkv(g, 2, T=3, S=4, D=4, Dv=2), 1),
        case("block_size larger than S", _qkv(g, 2, T=3, S=5, D=4, Dv=2), 16),
        case(
            "large scores (inputs ×30), block_size 2", _qkv(g, 2, T=4, S=9, D=4, Dv=3, scale=30), 2
        ),
        case(
            "(T, S) mask, block_size 3",
            _qkv(g, 2, T=4, S=8, D=4, Dv=3),
            3,
            mask=_first_key_allowed(g, 4, 8),
        ),
        case(
            "(B, 1, S) padding mask, block_size 2",
            _qkv(g, 2, T=3, S=6, D=4, Dv=2),
            2,
            mask=reference.padding_mask(torch.tensor([6, 3]), 6).unsqueeze(1),
        ),
        case("is_causal, T=S=6, block_size 4", _qkv(g, 2, T=6, S=6, D=4, Dv=3), 4, is_causal=True),
        case(
            "is_causal, T=4, S=7, block_size 3", _qkv(g, 1, T=4, S=7, D=4, Dv=2), 3, is_causal=True
        ),
        case(
            "float64, block_size 3",
            tuple(t.double() for t in _qkv(g, 2, T=3, S=7, D=5, Dv=2)),
            3,
            mask=_first_key_allowed(g, 3, 7),
        ),
        case("long: T=256, S=2048, block_size 128", _qkv(g, 1, T=256, S=2048, D=16, Dv=16), 128),
        case(
            "long, is_causal: T=S=512, block_size 32",
            _qkv(g, 1, T=512, S=512, D=16, Dv=8),
            32,
            is_causal=True,
        ),
        case(
            "long, (B, 1, S) padding mask: B=2, T=128, S=1024, block_size 64",
            _qkv(g, 2, T=128, S=1024, D=8, Dv=8),
            64,
            mask=reference.padding_mask(lengths, 1024).unsqueeze(1),
        ),
    ]


def _full_mask(case: Case, causal: str = "global") -> torch.Tensor | None:
    """The case's mask as one boolean (..., T, S) tensor (None: every key allowed).

    ``causal``: how ``is_causal`` is applied, "global" (right: key j ≤ query i), "strict"
    (j < i), "local" (the key's index inside its block), "bottom-right" (j ≤ i + S − T),
    "ignored".
    """
    query, key, _ = case.args
    T, S = query.size(-2), key.size(-2)
    mask = case.kwargs.get("mask")
    if not case.kwargs.get("is_causal") or causal == "ignored":
        return mask
    query_pos = torch.arange(T).unsqueeze(-1)  # (T, 1)
    key_pos = torch.arange(S)  # (S,)
    if causal == "local":
        key_pos = key_pos % case.kwargs["block_size"]
    if causal == "bottom-right":
        query_pos = query_pos + S - T
    causal_mask = key_pos < query_pos if causal == "strict" else key_pos <= query_pos  # (T, S)
    return causal_mask if mask is None else mask & causal_mask


def _attention_expected(case: Case) -> torch.Tensor:
    output, _ = reference.scaled_dot_product_attention(*case.args, _full_mask(case))
    return output  # (..., T, Dv)


def tiled(
    case: Case,
    causal: str = "global",
    use_mask: bool = True,
    scale: bool | float = True,
    rescale_sum: bool = True,
    rescale_output: bool = True,
    shift: bool = True,
    skip_partial: bool = False,
    per_block: str = "",
) -> torch.Tensor:
    """Tiled attention written out, with one knob per known mistake (``causal`` as in
    ``_full_mask``; ``per_block``: "sum" or "mean" of each block's own normalised output)."""
    query, key, value = case.args
    block_size = case.kwargs["block_size"]
    mask = _full_mask(case, causal)
    if not use_mask:
        mask = _full_mask(Case("", case.args, {**case.kwargs, "mask": None}), causal)
    T, S = query.size(-2), key.size(-2)
    attn_scores = query @ key.transpose(-2, -1)  # (..., T, S): fine here, the judge's side
    if scale is True:
        attn_scores = attn_scores / math.sqrt(query.size(-1))
    elif scale is not False:
        attn_scores = attn_scores * scale
    if mask is not None:
        attn_scores = attn_scores.masked_fill(~mask, float("-inf"))
    stop = S - S % block_size if skip_partial and block_size < S else S
    if per_block:
        outputs = [
            reference.softmax(attn_scores[..., i : i + block_size])
            @ value[..., i : i + block_size, :]
            for i in range(0, stop, block_size)
        ]
        total = torch.stack(outputs).sum(0)  # (..., T, Dv)
        return total / len(outputs) if per_block == "mean" else total
    lead = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    row_max = query.new_full((*lead, T, 1), float("-inf"))  # (..., T, 1)
    row_sum = query.new_zeros((*lead, T, 1))  # (..., T, 1)
    output = query.new_zeros((*lead, T, value.size(-1)))  # (..., T, Dv)
    for start in range(0, stop, block_size):
        block = attn_scores[..., start : start + block_size]  # (..., T, Bk)
        new_max = torch.maximum(row_max, block.amax(dim=-1, keepdim=True))  # (..., T, 1)
        new_max = new_max if shift else torch.zeros_like(new_max)
        correction = torch.exp(row_max - new_max).nan_to_num(0.0)  # (..., T, 1)
        exp_scores = torch.exp(block - new_max)  # (..., T, Bk)
        row_sum = row_sum * (correction if rescale_sum else 1) + exp_scores.sum(-1, keepdim=True)
        output = output * (correction if rescale_output else 1)
        output = output + exp_scores @ value[..., start : start + block_size, :]
        row_max = new_max
    return output / row_sum  # (..., T, Dv)


def _tiled_scale_probe(t: Trial) -> str | tuple[str, str] | None:
    """Reads the scale off the output: a constant factor on the right output is a scale
    applied after the softmax; otherwise the s for which the scores s · Q Kᵀ give it."""
    query, key, value = t.case.args
    D, Dv = query.size(-1), value.size(-1)
    widths = {"D": D, "Dv": Dv, "S": key.size(-2), "T": query.size(-2)}
    k = constant_factor(t.output, t.expected)
    if k is not None:
        return (
            "tiled_attention.scale-after-softmax",
            f"your output is the right one times {name_scale(k, widths)}: a scale applied "
            "after the softmax (or to the output). Scale the scores (or the queries, once) "
            "by 1/√D before exp.",
        )
    if query.numel() > 4096:
        return None  # a long case: the search would take too long
    right = 1 / math.sqrt(D)
    tries = [1 / math.sqrt(Dv), 1 / D, math.sqrt(D)]
    s = fitted_scale(t.output, lambda s: tiled(t.case, scale=s), right, tries)
    if s is None:
        return None
    return (
        "tiled_attention.wrong-scale",
        f"wrong scale: your scores are multiplied by {name_scale(s, widths)}, where they must "
        f"be multiplied by 1/√D = {right:.4f} (D = query.size(-1), the width of the queries "
        "and keys, not that of the values)",
    )


def _holds_the_score_matrix(t: Trial) -> str | None:
    case, outcome = t.case, t.outcome
    """A long case fails when some tensor has at least half as many elements as the whole
    (..., T, S) score matrix, while tiles, inputs and outputs are all far smaller."""
    query, key, value = case.args
    block_size = case.kwargs["block_size"]
    lead = math.prod(torch.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2]))
    T, S, D, Dv = query.size(-2), key.size(-2), query.size(-1), value.size(-1)
    limit = lead * T * S // 2
    tiled_sizes = lead * max(T * min(block_size, S), T * max(D, Dv), S * max(D, Dv))
    if limit <= 4 * tiled_sizes:
        return None  # a short case: a tile is about as large as the whole matrix
    if measured(outcome.exported) and outcome.exported >= S:
        return outside_torch(outcome.exported, "its memory")
    if not measured(outcome.largest):
        return "its memory could not be measured (torch's op recording was off)"
    if outcome.largest >= limit:
        return (
            f"holds the whole score matrix (or half of it): its largest tensor has "
            f"{outcome.largest:,} elements, and the (…, T, S) scores have {lead * T * S:,}. "
            f"Tiled attention keeps only a (…, T, block_size) tile at a time "
            f"({lead * T * min(block_size, S):,} elements here); masks too are read one "
            "block of keys at a time, without expanding them to (…, T, S)."
        )
    return None


tiled_attention = Exercise(
    name="tiled_attention",
    arg_names=("query", "key", "value"),
    assignment=ASSIGNMENT,
    points=6,
    cases=_attention_cases,
    expected=_attention_expected,
    probes=(
        Probe("wrong-scale", _tiled_scale_probe),
        Probe("holds-score-matrix", _holds_the_score_matrix, "right"),
    ),
    forbidden=("scaled_dot_product",),
    forbidden_message=(
        "calls torch's F.scaled_dot_product_attention (under some name): write the loop over "
        "blocks of keys yourself"
    ),
    mistakes=catalogue(
        "tiled_attention",
        "not-rescaled output-not-rescaled sum-not-rescaled no-max-shift per-block-summed "
        "per-block-averaged last-block-skipped no-scale causal-diagonal causal-block-local "
        "causal-bottom-right causal-ignored mask-ignored",
        Mistake(
            "the running sum and the output are not rescaled when a block raises the maximum: "
            "both hold terms exp(score − old max), so multiply both by exp(old max − new max) "
            "before adding the new block",
            lambda case: tiled(case, rescale_sum=False, rescale_output=False),
        ),
        Mistake(
            "the unnormalised output is not rescaled when a block raises the maximum (the "
            "running sum is): multiply the output by exp(old max − new max) too",
            lambda case: tiled(case, rescale_output=False),
        ),
        Mistake(
            "the running sum is not rescaled when a block raises the maximum (the output is): "
            "multiply the sum by exp(old max − new max) too",
            lambda case: tiled(case, rescale_sum=False),
        ),
        Mistake(
            "no max shift: exp of large scores overflows to inf and the output becomes NaN. "
            "Subtract the running maximum before exp.",
            lambda case: tiled(case, shift=False),
        ),
        Mistake(
            "each block is normalised on its own and the blocks' outputs are added up: one "
            "running maximum and one running sum per query must span all blocks, with a "
            "single division at the end",
            lambda case: tiled(case, per_block="sum"),
        ),
        Mistake(
            "each block is normalised on its own and the blocks' outputs are averaged: blocks "
            "with larger scores must weigh more. Keep one running maximum and sum across "
            "all blocks.",
            lambda case: tiled(case, per_block="mean"),
        ),
        Mistake(
            "the last, shorter block is left out: when block_size does not divide S, the keys "
            "after the last full block must be read too",
            lambda case: tiled(case, skip_partial=True),
        ),
        Mistake(
            "missing 1/√D: scale the scores (or the queries, once) by 1/√D, D = query.size(-1)",
            lambda case: tiled(case, scale=False),
        ),
        Mistake(
            "causal slip: the diagonal is masked, so a query cannot attend to its own "
            "position. Query i may attend key j when j ≤ i.",
            lambda case: tiled(case, causal="strict"),
        ),
        Mistake(
            "causal pattern built from positions inside the block: key j of the block starting "
            "at `start` is the key at position start + j. Compare that with the query's "
            "position.",
            lambda case: tiled(case, causal="local"),
        ),
        Mistake(
            "the causal mask is aligned bottom-right (query i sees keys j ≤ i + S − T, so the "
            "last query sees every key): here it is aligned top-left, as torch's is_causal "
            "does, so query i may attend keys j ≤ i also when T ≠ S",
            lambda case: tiled(case, causal="bottom-right"),
        ),
        Mistake(
            "is_causal is ignored: with is_causal=True, query i may attend only keys j ≤ i",
            lambda case: tiled(case, causal="ignored"),
        ),
        Mistake(
            "the mask is ignored: keys where it is False must get weight 0 (read the mask's "
            "columns of each block, mask[..., start:stop])",
            lambda case: tiled(case, use_mask=False),
        ),
    ),
)

EXERCISES = (online_softmax, tiled_attention)
