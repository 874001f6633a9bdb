"""Assignment 06 (lessons 13 and 14): rotary embeddings, grouped-query attention, and greedy
generation with a KV cache.

A case can hand the learner's code only tensors and numbers, never a cache object, so the cache
path of ``GroupedQueryAttention`` is checked through ``GreedyDecoder``: a module built with
given weights whose forward generates over the notebook's ``TinyLanguageModel``, whose layers
are the learner's ``GroupedQueryAttention``. Its mistakes are those of the loop and those of the
cache path; and once its tokens are right, it must have used the caches (its torch ops make,
in all, far fewer elements than the scores of re-reading the whole sequence at every step).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from attn_course import reference
from attn_course.checks.a01 import randn
from attn_course.checks.a05 import outside_torch
from attn_course.checks.core import Case, measured, one_thread
from attn_course.checks.exercise import (
    Derivation,
    Exercise,
    Mistake,
    Probe,
    Trial,
    catalogue,
    hint,
    reference_output,
    same,
)
from attn_course.checks.probes import finite

ASSIGNMENT = "06_rotary_and_grouped_query_attention"


# --- apply_rotary(x, positions) ----------------------------------------------------------------


def rotate(
    x: torch.Tensor,
    positions: torch.Tensor,
    pairing: str = "halves",
    sign: float = 1.0,
    exponent: str = "2j/Dh",
    angle_dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """RoPE written out (angles in ``angle_dtype``), with one knob per known mistake.

    ``pairing``: "halves" (feature j with j + Dh/2, right) or "interleaved" (2j with 2j + 1);
    ``sign``: -1 turns the other way; ``exponent`` of base in theta_j: "2j/Dh" (right: theta_j
    = base^(-2j/Dh)), "j/Dh", or "+2j/Dh" (theta_j = base^(+2j/Dh), growing with j).
    """
    Dh = x.size(-1)
    j = torch.arange(Dh // 2, dtype=angle_dtype)
    power = {"2j/Dh": -2 * j / Dh, "j/Dh": -j / Dh, "+2j/Dh": 2 * j / Dh}[exponent]
    angles = sign * positions.to(angle_dtype).unsqueeze(-1) * 10000.0**power  # (T, Dh/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    if pairing == "interleaved":
        x1, x2 = x[..., 0::2], x[..., 1::2]  # (..., T, Dh/2)
        return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)
    x1, x2 = x[..., : Dh // 2], x[..., Dh // 2 :]  # (..., T, Dh/2)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (..., T, Dh)


def _positions(g: torch.Generator, T: int, high: int) -> torch.Tensor:
    return torch.randint(0, high, (T,), generator=g)


def _rotary_cases(g: torch.Generator) -> list[Case]:
    return [
        Case("x (T=4, Dh=6), positions 0..3", (randn(g, 4, 6), torch.arange(4))),
        Case("x (B=2, H=3, T=5, Dh=8), positions 0..4", (randn(g, 2, 3, 5, 8), torch.arange(5))),
        Case("positions 7..10, continuing a cache", (randn(g, 2, 4, 8), torch.arange(7, 11))),
        Case("unsorted positions", (randn(g, 3, 4, 4), torch.tensor([9, 2, 30, 0]))),
        Case("one pair, Dh=2", (randn(g, 2, 5, 2), _positions(g, 5, 50))),
        Case("one token at position 100", (randn(g, 2, 1, 16), torch.tensor([100]))),
        Case("Dh=32, random positions below 500", (randn(g, 6, 32), _positions(g, 6, 500))),
        Case(
            "float64, positions below 5000",
            (randn(g, 2, 7, 12, dtype=torch.float64), _positions(g, 7, 5000)),
        ),
    ]


def _rotary_probe(t: Trial) -> str | tuple[str, str] | None:
    """Reads RoPE's behaviour: x unchanged; turned by positions off by a constant; float32
    angles on a float64 x (right to float32's rounding of p·θ_j, not to float64's)."""
    x, positions = t.case.args
    output = t.output
    if not (isinstance(output, torch.Tensor) and output.shape == x.shape):
        return None
    if same(output, x, check_dtype=False) and not same(t.expected, x, check_dtype=False):
        return (
            "apply_rotary.identity",
            "returns x unchanged: nothing is rotated. Turn each pair (x[j], x[j + Dh/2]) by "
            "the angle positions[t] · θ_j.",
        )
    for offset in (1, -1, 2, -2):
        if same(output, rotate(x, positions + offset), check_dtype=False):
            return (
                "apply_rotary.position-offset",
                f"turned by the positions {offset:+d}: each row must be turned by its own "
                "position, positions[t] (no +1 or −1).",
            )
    if x.dtype == torch.float64 and finite(output):
        error = float((output - t.expected).abs().max())
        # float32 rounds p·θ_j to about 6e-8 of its size, a few roundings deep
        bound = 8 * 2**-24 * float(positions.abs().max() + 1) * float(x.abs().max())
        if 1e-9 < error <= bound:
            return ("apply_rotary.float32-angles", FLOAT32_ANGLES)
    return None


FLOAT32_ANGLES = (
    "the angles of a float64 x are computed in float32: at positions in the thousands "
    "p·θ_j is then off in the fourth decimal, far beyond float64's precision. Compute "
    "them in float64 for a float64 x (float32 is enough for a float32 x), e.g. "
    "positions.to(torch.promote_types(x.dtype, torch.float32)), and cast their cos and "
    "sin to x.dtype."
)


apply_rotary = Exercise(
    name="apply_rotary",
    arg_names=("x", "positions"),
    assignment=ASSIGNMENT,
    points=3,
    cases=_rotary_cases,
    expected=lambda case: reference.apply_rotary(*case.args),
    mistakes=catalogue(
        "apply_rotary",
        "interleaved wrong-direction interleaved-wrong-direction positions-ignored "
        "frequency-j-over-Dh frequencies-grow float32-angles",
        Mistake(
            "interleaved pairing: features 2j and 2j+1 are rotated together. This course pairs "
            "the halves, as GPT-NeoX and Llama do: feature j with feature j + Dh/2.",
            lambda case: rotate(*case.args, pairing="interleaved"),
        ),
        Mistake(
            "rotated the wrong way: the angles have the wrong sign. Pair j turns by +p·θ_j: "
            "out[j] = x[j]·cos − x[j + Dh/2]·sin, out[j + Dh/2] = x[j]·sin + x[j + Dh/2]·cos.",
            lambda case: rotate(*case.args, sign=-1.0),
        ),
        Mistake(
            "interleaved pairing, turned the wrong way as well: pair feature j with j + Dh/2, "
            "and turn by +p·θ_j",
            lambda case: rotate(*case.args, pairing="interleaved", sign=-1.0),
        ),
        Mistake(
            "the given positions are ignored: row t is turned by t, as if the positions were "
            "always 0 .. T−1. Use `positions[t]` (they continue after a cache, and need not "
            "be sorted).",
            lambda case: rotate(case.args[0], torch.arange(case.args[0].size(-2))),
        ),
        Mistake(
            "θ_j = 10000^(−j / Dh): the exponent uses the pair index j where it needs 2j "
            "(θ_j = 10000^(−2j / Dh): the last pair turns about 10000 times slower than pair 0)",
            lambda case: rotate(*case.args, exponent="j/Dh"),
        ),
        Mistake(
            "θ_j = 10000^(+2j / Dh): the frequencies grow with j. They must fall: θ_j = "
            "1 / 10000^(2j / Dh), one radian per position for pair 0.",
            lambda case: rotate(*case.args, exponent="+2j/Dh"),
        ),
        Mistake(FLOAT32_ANGLES, lambda case: rotate(*case.args, angle_dtype=torch.float32)),
    ),
    probes=(Probe("rope", _rotary_probe),),
)


# --- GroupedQueryAttention(d_model, num_heads, num_kv_heads) -----------------------------------


def _gqa_state(g: torch.Generator, D: int, H: int, G: int, prefix: str = "") -> dict:
    width = {"w_q": D, "w_k": G * D // H, "w_v": G * D // H, "w_o": D}
    state = {}
    for name, out_features in width.items():
        state[f"{prefix}{name}.weight"] = randn(g, out_features, D) * 1.5 / math.sqrt(D)
        state[f"{prefix}{name}.bias"] = randn(g, out_features) * 0.1
    return state


def _gqa_case(g: torch.Generator, label: str, B: int, T: int, D: int, H: int, G: int) -> Case:
    return Case(label, (randn(g, B, T, D),), init_args=(D, H, G), state_dict=_gqa_state(g, D, H, G))


def _gqa_cases(g: torch.Generator) -> list[Case]:
    return [
        _gqa_case(g, "multi-head, H = G = 2: B=2, T=5, D=8", 2, 5, 8, 2, 2),
        _gqa_case(g, "grouped, H=4, G=2: B=2, T=6, D=16", 2, 6, 16, 4, 2),
        _gqa_case(g, "grouped, H=6, G=3: B=1, T=7, D=24", 1, 7, 24, 6, 3),
        _gqa_case(g, "multi-query, H=4, G=1: B=2, T=5, D=16", 2, 5, 16, 4, 1),
        _gqa_case(g, "one token, T=1, H=4, G=2", 3, 1, 16, 4, 2),
        _gqa_case(g, "T=40, H=2, G=1, D=8", 1, 40, 8, 2, 1),
    ]


def attention(
    state: dict[str, torch.Tensor],
    x: torch.Tensor,
    num_heads: int,
    num_kv_heads: int,
    cache: dict | None = None,
    *,
    rotated: str = "qk",
    pairing: str = "halves",
    repeat: str = "interleave",
    causal: bool = True,
    scale_by: str = "Dh",
    positions: str = "continue",
    cache_rotated_keys: bool = True,
    split: str = "transpose",
    query_offset: int = 0,
    tril_slip: int = 0,
    chunk_causal: bool = True,
) -> torch.Tensor:
    """Grouped-query attention written out from weights, with one knob per known mistake.

    ``cache``: None, or a dict whose "key" and "value" grow like a ``KVCache``. ``rotated``:
    which of q, k, v are turned; ``repeat``: "interleave" (right, query head h reads key/value
    head h // r) or "tile" (h % G); ``positions``: "continue" (right: L .. L+T-1 after L cached
    tokens), "restart" (0 .. T-1 for q and k), "query restarts" (0 .. T-1 for q only);
    ``cache_rotated_keys`` False: raw keys are cached, and all keys are turned after appending
    by the new tokens' positions (broadcast, as a learner's code would); ``split`` "view":
    heads split by a `view` to (B, heads, T, Dh) without a transpose; ``query_offset``: the
    queries turned by positions off by that much; ``tril_slip``: the causal mask's diagonal
    moved by that much; ``chunk_causal`` False: no causal mask on a chunk of several tokens
    when a cache is given.
    """
    B, T, D = x.shape
    Dh = D // num_heads

    def project(name: str, heads: int) -> torch.Tensor:
        h = F.linear(x, state[f"{name}.weight"], state[f"{name}.bias"])  # (B, T, heads*Dh)
        if split == "view":
            return h.reshape(B, heads, T, Dh)  # (B, heads, T, Dh), tokens scrambled
        return h.view(B, T, heads, Dh).transpose(1, 2)  # (B, heads, T, Dh)

    q, k, v = project("w_q", num_heads), project("w_k", num_kv_heads), project("w_v", num_kv_heads)
    past = 0 if cache is None or cache.get("key") is None else cache["key"].size(-2)
    key_pos = torch.arange(T) if positions == "restart" else torch.arange(past, past + T)
    query_pos = torch.arange(T) if positions != "continue" else key_pos
    query_pos = query_pos + query_offset
    if "q" in rotated:
        q = rotate(q, query_pos, pairing)
    if "k" in rotated and cache_rotated_keys:
        k = rotate(k, key_pos, pairing)
    if "v" in rotated:
        v = rotate(v, key_pos, pairing)
    if cache is not None:
        if cache.get("key") is not None:
            k = torch.cat((cache["key"], k), dim=-2)  # (B, G, S, Dh)
            v = torch.cat((cache["value"], v), dim=-2)  # (B, G, S, Dh)
        cache["key"], cache["value"] = k, v
    if "k" in rotated and not cache_rotated_keys:
        k = rotate(k, key_pos, pairing)  # every key turned by the new positions
    r = num_heads // num_kv_heads
    if repeat == "tile":
        k, v = k.repeat(1, r, 1, 1), v.repeat(1, r, 1, 1)  # (B, H, S, Dh)
    else:
        k, v = k.repeat_interleave(r, dim=1), v.repeat_interleave(r, dim=1)  # (B, H, S, Dh)
    S = k.size(-2)
    width = Dh if scale_by == "Dh" else D
    attn_scores = q @ k.transpose(-2, -1) / math.sqrt(width)  # (B, H, T, S)
    if causal and (chunk_causal or cache is None or T == 1):
        allowed = torch.ones(T, S, dtype=torch.bool).tril(past + tril_slip)  # (T, S)
        attn_scores = attn_scores.masked_fill(~allowed, float("-inf"))
    context = torch.softmax(attn_scores, dim=-1) @ v  # (B, H, T, Dh)
    merged = context.transpose(1, 2).reshape(B, T, D)  # (B, T, D)
    return F.linear(merged, state["w_o.weight"], state["w_o.bias"])  # (B, T, D)


def _gqa_mistake(case: Case, **knobs) -> torch.Tensor:
    _, H, G = case.init_args
    return attention(case.state_dict, case.args[0], H, G, **knobs)


def _heads_permuted(case: Case) -> Case | None:
    """The case with query heads 0 and 1 swapped (their rows of w_q, their columns of w_o):
    both read key/value head 0, so the right output does not change."""
    D, H, G = case.init_args
    if H // G < 2 or G < 2:
        return None
    Dh = D // H
    order = torch.arange(H * Dh).view(H, Dh)
    order[[0, 1]] = order[[1, 0]]
    order = order.flatten()
    state = dict(case.state_dict)
    state["w_q.weight"], state["w_q.bias"] = state["w_q.weight"][order], state["w_q.bias"][order]
    state["w_o.weight"] = state["w_o.weight"][:, order]
    return Case("", case.args, case.kwargs, case.init_args, state)


def _gqa_probe(t: Trial) -> str | tuple[str, str] | None:
    """Swapping two query heads of one group must not change the output; a query turned by
    another position than its key's is read off by the offset that explains the output."""
    pair = t.partner("heads permuted within their groups")
    mixed = pair is not None and pair[1].error is None and finite(t.output)
    if mixed and not same(pair[1].output, t.output, check_dtype=False):
        return (
            "GroupedQueryAttention.heads-mixed",
            "swapping two query heads of one group (with their rows of w_q and columns "
            "of w_o) changes your output, which it must not: your heads are not the "
            "contiguous Dh-wide slices of each token (a `view` or `reshape` to "
            "(B, H, T, Dh) without a transpose), or query head h does not read key/value "
            "head h // (H/G) (the K/V heads repeated in the wrong order).",
        )
    for offset in (1, -1, 2, -2):
        if same(t.output, _gqa_mistake(t.case, query_offset=offset), check_dtype=False):
            return (
                "GroupedQueryAttention.query-position",
                f"the queries are turned by positions {offset:+d} from their keys': query i "
                "and key i sit at the same position i, so turn q and k by the same positions "
                "(the score must depend only on the offset between them).",
            )
    return None


grouped_query_attention = Exercise(
    name="GroupedQueryAttention",
    arg_names=("x",),
    init_names=("d_model", "num_heads", "num_kv_heads"),
    uses=("apply_rotary",),
    assignment=ASSIGNMENT,
    points=4,
    cases=_gqa_cases,
    expected=lambda case: reference_output(reference.GroupedQueryAttention, case),
    forbidden=("scaled_dot_product",),
    forbidden_message=(
        "calls torch's F.scaled_dot_product_attention (under some name): compute the scores, "
        "the causal mask and the softmax yourself, with the key/value heads repeated"
    ),
    mistakes=catalogue(
        "GroupedQueryAttention",
        "keys-not-rotated queries-not-rotated no-rotation values-rotated kv-heads-tiled "
        "interleaved-pairing not-causal scale-by-D",
        Mistake(
            "the keys are not rotated, only the queries: RoPE turns both q and k by their "
            "positions, so that their dot product depends on the offset between them",
            lambda case: _gqa_mistake(case, rotated="q"),
        ),
        Mistake(
            "the queries are not rotated, only the keys: turn q by its positions too",
            lambda case: _gqa_mistake(case, rotated="k"),
        ),
        Mistake(
            "no rotation at all: turn q and k by their positions with apply_rotary",
            lambda case: _gqa_mistake(case, rotated=""),
        ),
        Mistake(
            "the values are rotated too: RoPE turns only the queries and the keys (the scores); "
            "the values are mixed as they are",
            lambda case: _gqa_mistake(case, rotated="qkv"),
        ),
        Mistake(
            "the K/V heads are repeated in the wrong order: tiling them (`repeat`) gives query "
            "head h the key/value head h % G. Query head h belongs to group h // (H/G): repeat "
            "each key/value head H/G times in place (`repeat_interleave` on the head dim).",
            lambda case: _gqa_mistake(case, repeat="tile"),
        ),
        Mistake(
            "interleaved pairing inside the attention: pair feature j with feature j + Dh/2",
            lambda case: _gqa_mistake(case, pairing="interleaved"),
        ),
        Mistake(
            "not causal: token i may attend only to tokens 0 .. i",
            lambda case: _gqa_mistake(case, causal=False),
        ),
        Mistake(
            "wrong scale: the scores are divided by √D (the model width); each head attends "
            "with its own width, so divide by √Dh = √(D / H)",
            lambda case: _gqa_mistake(case, scale_by="D"),
        ),
        Mistake(
            "`view` without `transpose` when splitting the heads: viewing (B, T, H·Dh) "
            "directly as (B, H, T, Dh) has the right shape but gives each head pieces of "
            "several tokens. View as (B, T, H, Dh), then transpose(1, 2).",
            lambda case: _gqa_mistake(case, split="view"),
            "GroupedQueryAttention.view-without-transpose",
        ),
    ),
    derived=(Derivation("heads permuted within their groups", _heads_permuted),),
    probes=(
        Probe("heads", _gqa_probe),
        hint(
            "state_dict",
            "keep the four projections as given: w_q (D → D), w_k and w_v (D → G·Dh), "
            "w_o (D → D), each an nn.Linear with bias; the check loads weights by these names",
        ),
    ),
)


# --- GreedyDecoder(vocab_size, d_model, num_heads, num_kv_heads, num_layers) -------------------


TOKEN_MARGIN = 1e-2  # the least gap between the two largest logits of every chosen token


CHUNK_NOT_CAUSAL = (
    "GroupedQueryAttention's cache path: a chunk of several tokens (the prompt) is not "
    "masked when a cache is given: its tokens see the later ones. The causal mask holds "
    "with a cache too: new token i attends to keys 0 .. L+i."
)


def _decoder_case(g, label, B, T0, new, V, D, H, G, layers, separates=()) -> Case:
    """Weights and a prompt drawn from ``g``, drawn again (from where ``g`` then is) until
    every token the reference chooses wins its argmax by ``TOKEN_MARGIN`` (a correct decoder
    that sums in another order then chooses the same tokens), and until the mistakes
    ``separates`` (knobs of ``decode``) each choose other tokens, other than each other's."""
    while True:
        state = {"embedding.weight": randn(g, V, D)}
        for i in range(layers):
            state |= _gqa_state(g, D, H, G, prefix=f"layers.{i}.")
        state |= {"head.weight": randn(g, V, D) / math.sqrt(D), "head.bias": randn(g, V) * 0.1}
        state = {f"model.{name}": value for name, value in state.items()}
        prompt = torch.randint(0, V, (B, T0), generator=g)
        case = Case(label, (prompt, new), init_args=(V, D, H, G, layers), state_dict=state)
        if smallest_token_margin(case) >= TOKEN_MARGIN and _separated(case, separates):
            return case


def _separated(case: Case, mistakes: tuple[dict, ...]) -> bool:
    """Whether the reference and each of ``mistakes`` (knobs of ``decode``) all choose
    different tokens on ``case``."""
    if not mistakes:
        return True
    with one_thread(), torch.no_grad():
        tokens = [_decoder_expected(case)] + [decode(case, **knobs) for knobs in mistakes]
    return all(not torch.equal(a, b) for i, a in enumerate(tokens) for b in tokens[i + 1 :])


# The causal mask's slips on the cache path change the tokens only through the prompt's keys
# in a second layer (a prompt token that sees later ones, or not itself), and a case does not
# always show that: the case meant for them is drawn until it does, so that they are named
# with every seed.
MASK_SLIPS = ({"chunk_causal": False}, {"tril_slip": 1}, {"tril_slip": -1})


def smallest_token_margin(case: Case) -> float:
    """The smallest gap between the largest and the second largest logit over the tokens the
    reference chooses on ``case`` (inf when it chooses none)."""
    model_input, max_new_tokens = case.args  # (B, T0)
    with torch.random.fork_rng(devices=[]):
        model = reference.TinyLanguageModel(*case.init_args)
    model.load_state_dict({k.removeprefix("model."): v for k, v in case.state_dict.items()})
    model.eval()
    caches = [reference.KVCache() for _ in range(model.num_layers)]
    margin = math.inf
    tokens = model_input
    with one_thread(), torch.no_grad():
        for _ in range(max_new_tokens):  # reference.generate's loop, keeping the logits
            logits = model(model_input, caches)[:, -1]  # (B, V)
            top2 = logits.topk(2, dim=-1).values  # (B, 2)
            margin = min(margin, (top2[:, 0] - top2[:, 1]).min().item())
            model_input = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            tokens = torch.cat((tokens, model_input), dim=1)  # (B, T0 + steps)
    _TOKENS[id(case.state_dict)] = (case.state_dict, tokens)
    while len(_TOKENS) > 64:
        _TOKENS.pop(next(iter(_TOKENS)))
    return margin


# the reference's tokens on the cases drawn last, by their weights (kept with the weights, so
# an id is never taken for another dict's): judging a case does not decode it again
_TOKENS: dict[int, tuple[dict, torch.Tensor]] = {}


def _decoder_expected(case: Case) -> torch.Tensor:
    known = _TOKENS.get(id(case.state_dict))
    if known is not None and known[0] is case.state_dict:
        return known[1].clone()
    return reference_output(reference.GreedyDecoder, case)


def _decoder_cases(g: torch.Generator) -> list[Case]:
    return [
        _decoder_case(g, "multi-head, H = G = 2, one layer, 4 new tokens", 1, 3, 4, 16, 8, 2, 2, 1),
        _decoder_case(
            g, "grouped, H=4, G=2, two layers, B=2", 2, 4, 6, 20, 16, 4, 2, 2, MASK_SLIPS
        ),
        _decoder_case(g, "multi-query, H=4, G=1, two layers, B=2", 2, 3, 6, 20, 16, 4, 1, 2),
        _decoder_case(g, "a prompt of one token, two layers", 3, 1, 4, 12, 8, 2, 1, 2),
        _decoder_case(g, "no new tokens (max_new_tokens=0)", 2, 4, 0, 12, 8, 2, 1, 2),
        _decoder_case(g, "long: H=8, a 16-token prompt, 20 new tokens", 1, 16, 20, 24, 16, 8, 2, 1),
    ]


def decode(case: Case, loop: str = "cached", pick: int = -1, **knobs) -> torch.Tensor:
    """Greedy decoding written out from the case's weights, with one knob per known mistake.

    ``loop``: "cached" (right), "shared cache" (one cache for all layers), "no caches" (only
    the newest token fed, without caches), "whole sequence" (the whole sequence fed again
    while the caches are also extended); ``pick``: the position whose logits choose the next
    token (-1, the last, is right); ``knobs`` go to ``attention``.
    """
    prompt, max_new_tokens = case.args
    _, _, H, G, num_layers = case.init_args
    state = {name.removeprefix("model."): value for name, value in case.state_dict.items()}
    layer_states = [
        {name.removeprefix(f"layers.{i}."): value for name, value in state.items()}
        for i in range(num_layers)
    ]
    shared: dict = {}
    caches = [shared if loop == "shared cache" else {} for _ in range(num_layers)]
    tokens = model_input = prompt  # (B, T0)
    for _ in range(max_new_tokens):
        x = F.embedding(model_input, state["embedding.weight"])  # (B, T, D)
        for layer_state, cache in zip(layer_states, caches, strict=True):
            cache = None if loop == "no caches" else cache
            x = x + attention(layer_state, x, H, G, cache, **knobs)  # (B, T, D)
        logits = F.linear(x, state["head.weight"], state["head.bias"])  # (B, T, V)
        next_token = logits[:, pick].argmax(dim=-1, keepdim=True)  # (B, 1)
        tokens = torch.cat((tokens, next_token), dim=1)  # (B, T + 1)
        model_input = tokens if loop == "whole sequence" else next_token
    return tokens  # (B, T0 + max_new_tokens)


def rereading_cost(case: Case) -> int:
    """The elements of the attention scores alone of a decoder that feeds the whole sequence
    at every step, over all its steps and layers: sum over t of B·H·t²."""
    prompt, max_new_tokens = case.args
    _, _, H, _, layers = case.init_args
    B, T0 = prompt.shape
    return layers * sum(B * H * t * t for t in range(T0, T0 + max_new_tokens))


def _uses_the_caches(t: Trial) -> str | None:
    """A long case fails when the decoder's torch ops made, in all, as many elements as the
    scores of attention over the whole sequence at every step: what reaches the model is the
    whole sequence again, not the newest token. Judged by total allocation, so attention
    computed one head or one query at a time counts the same."""
    case, outcome = t.case, t.outcome
    prompt, max_new_tokens = case.args
    if max_new_tokens < LONG_STEPS:
        return None  # a short case: re-reading costs hardly more than caching
    _, D, *_ = case.init_args
    if measured(outcome.exported) and outcome.exported >= prompt.size(1) * D:
        return outside_torch(outcome.exported, "its memory")
    if not measured(outcome.allocated):
        return "its memory could not be measured (torch's op recording was off)"
    limit = REREADING_FACTOR * rereading_cost(case)
    if outcome.allocated >= limit:
        S = prompt.size(1) + max_new_tokens - 1
        return (
            f"the tokens are right, but the caches are not used: over {max_new_tokens} steps "
            f"its torch ops made {outcome.allocated:,} elements in all, as many as re-reading "
            f"the whole sequence (up to {S} tokens) at every step makes for its attention "
            f"scores and their softmax alone ({limit:,}). With a KV cache per layer, feed the "
            "prompt once, then only the newest token at each step: after the prompt, the "
            "model should see a (B, 1) input."
        )
    return None


LONG_STEPS = 20  # a case with this many new tokens or more is judged for its caches
# the scores and the weights: what one re-reading step makes at least per score (a fused
# softmax makes no exp of its own); on the long case a cached decoder makes 0.06 to 0.09 M
# elements in all, one that re-reads 0.7 to 1.0 M, and the limit is 0.22 M
REREADING_FACTOR = 2


greedy_decoder = Exercise(
    name="GreedyDecoder",
    arg_names=("prompt", "max_new_tokens"),
    init_names=("vocab_size", "d_model", "num_heads", "num_kv_heads", "num_layers"),
    uses=("GroupedQueryAttention",),
    assignment=ASSIGNMENT,
    points=3,
    cases=_decoder_cases,
    expected=_decoder_expected,
    mistakes=catalogue(
        "GreedyDecoder",
        "shared-cache no-caches whole-sequence-with-cache first-position positions-restart "
        "query-position keys-rotated-after-caching",
        Mistake(
            "one cache shared by all the layers (`[KVCache()] * num_layers` makes one cache, "
            "listed num_layers times): every layer needs its own keys and values, so make a "
            "new KVCache per layer",
            lambda case: decode(case, loop="shared cache"),
        ),
        Mistake(
            "after the prompt, only the newest token is fed and no caches are handed to the "
            "model (or new, empty ones at every step): the model then sees one token alone. "
            "Make the caches once, before the loop, and pass the same ones at every step.",
            lambda case: decode(case, loop="no caches"),
        ),
        Mistake(
            "the whole sequence is fed at every step while the caches already hold its keys: "
            "they are appended again. With caches, feed the prompt once, then only the newest "
            "token.",
            lambda case: decode(case, loop="whole sequence"),
        ),
        Mistake(
            "the next token is chosen from the logits of the first position: it is the argmax "
            "of the logits of the last position, logits[:, -1]",
            lambda case: decode(case, pick=0),
        ),
        Mistake(
            "GroupedQueryAttention's cache path: positions restart at 0 for each new token. "
            "After L cached tokens the new tokens sit at positions L, L+1, …: use len(cache) "
            "(read before appending) as the first position, for q and for k.",
            lambda case: decode(case, positions="restart"),
        ),
        Mistake(
            "GroupedQueryAttention's cache path: the query takes the wrong position. The keys "
            "are turned by their positions L, L+1, …, but the queries by 0, 1, …: a new "
            "query's position is that of its own key, L + i.",
            lambda case: decode(case, positions="query restarts"),
        ),
        Mistake(
            "GroupedQueryAttention's cache path: the keys are appended to the cache before "
            "they are rotated, and then every cached key is turned by the new token's "
            "position. Rotate the new keys by their own positions first, then append them: "
            "the cache holds rotated keys.",
            lambda case: decode(case, cache_rotated_keys=False),
        ),
        Mistake(
            CHUNK_NOT_CAUSAL,
            lambda case: decode(case, chunk_causal=False),
            "GreedyDecoder.chunk-not-causal",
        ),
        *(
            Mistake(
                "GroupedQueryAttention's cache path: the causal mask's diagonal is off by "
                "one: after L cached tokens, new token i may attend to keys 0 .. L+i, "
                "`tril(L)` of a (T, L+T) mask (L read before appending).",
                lambda case, slip=slip: decode(case, tril_slip=slip),
                "GreedyDecoder.causal-offset",
            )
            for slip in (-1, 1)
        ),
    ),
    probes=(
        Probe("no-cache", _uses_the_caches, "right"),
        hint(
            "Sizes of tensors must match",
            "the cache must grow along the sequence axis: hand it keys and values of shape "
            "(B, G, T, Dh) (heads before tokens), so that appending adds rows along S, the "
            "axis -2",
        ),
        hint(
            "state_dict",
            "keep `self.model = TinyLanguageModel(...)` as given: the check loads the weights "
            "by that name",
        ),
    ),
)

EXERCISES = (apply_rotary, grouped_query_attention, greedy_decoder)
