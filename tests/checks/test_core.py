"""The shared check machinery: forbidden built-ins are seen however they are reached, the
learner's code cannot change the inputs, and check() prints and raises as nbgrader needs."""

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.functional import scaled_dot_product_attention as sdpa_alias

from attn_course import reference
from attn_course.checks import ASSIGNMENTS, EXERCISES, check, run_check
from attn_course.checks.core import Case, Outcome, record_forbidden, run_case

SOFTMAX_WAYS = {
    "torch.softmax": lambda s: torch.softmax(s, dim=-1),
    "Tensor.softmax": lambda s: s.softmax(-1),
    "F.softmax": lambda s: F.softmax(s, dim=-1),
    "nn.Softmax": lambda s: nn.Softmax(dim=-1)(s),
    "log_softmax().exp()": lambda s: F.log_softmax(s, dim=-1).exp(),
    "torch.special.softmax": lambda s: torch.special.softmax(s, -1),
    "alias": lambda s: (lambda f: f(s, -1))(torch.nn.functional.softmax),
}

ATTENTION_WAYS = {
    "F.scaled_dot_product_attention": lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
    "from-import alias": lambda q, k, v: sdpa_alias(q, k, v),
    "torch._C._nn": lambda q, k, v: torch._C._nn.scaled_dot_product_attention(q, k, v),
    "getattr": lambda q, k, v: getattr(F, "scaled_dot_" + "product_attention")(q, k, v),
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", EXERCISES)
def test_the_reference_passes_every_check(name, seed):
    verdict = run_check(name, getattr(reference, name), seed=seed)
    assert verdict.status == "passed", verdict


@pytest.mark.parametrize("way", SOFTMAX_WAYS.values(), ids=SOFTMAX_WAYS.keys())
def test_every_way_to_a_builtin_softmax_is_recorded_and_judged_forbidden(way):
    with record_forbidden(EXERCISES["softmax"].forbidden) as seen:
        way(torch.randn(2, 3))
    assert seen, "a built-in softmax went unnoticed"

    def softmax(scores, dim=-1):
        return way(scores.movedim(dim, -1)).movedim(-1, dim)

    verdict = run_check("softmax", softmax, seed=0)
    assert verdict.status == "forbidden"
    assert "built-in softmax" in verdict.message


@pytest.mark.parametrize("way", ATTENTION_WAYS.values(), ids=ATTENTION_WAYS.keys())
def test_every_way_to_torchs_attention_is_recorded_and_judged_forbidden(way):
    def scaled_dot_product_attention(query, key, value, mask=None):
        output = way(query, key, value)
        return output, output  # the forbidden call alone decides the verdict

    verdict = run_check("scaled_dot_product_attention", scaled_dot_product_attention, seed=0)
    assert verdict.status == "forbidden"
    assert "scaled_dot_product_attention" in verdict.detail


def test_attention_may_use_torch_softmax_and_softmax_may_not():
    assert EXERCISES["scaled_dot_product_attention"].forbidden == ("scaled_dot_product",)
    with record_forbidden(EXERCISES["scaled_dot_product_attention"].forbidden) as seen:
        torch.softmax(torch.randn(2, 3), dim=-1)
        reference.scaled_dot_product_attention(*torch.randn(3, 2, 4, 5))
    assert seen == []


def test_the_reference_softmax_uses_no_builtin_softmax():
    with record_forbidden(EXERCISES["softmax"].forbidden) as seen:
        reference.softmax(torch.randn(2, 3))
    assert seen == []


def test_run_case_gives_the_learner_copies_of_the_inputs_and_names_the_ones_it_changed():
    scores = torch.randn(2, 3)
    before = scores.clone()

    def softmax(s, dim=-1):
        s -= s.amax(dim=dim, keepdim=True)  # an in-place slip
        return s.exp() / s.exp().sum(dim=dim, keepdim=True)

    outcome = run_case(softmax, Case("in place", (scores,)))
    assert outcome.error is None
    assert torch.equal(scores, before)
    assert outcome.modified == ("arg 0",)
    verdict = run_check("softmax", softmax, seed=0)
    assert verdict.status == "failed"
    assert verdict.message.startswith("modifies its input `scores` in place")


def test_judge_ignores_extra_outcome_fields_of_the_wrong_type():
    """An outcome from the grader's sandbox may hold anything: only well-formed fields count."""
    exercise = EXERCISES["softmax"]
    cases = exercise.make_cases(torch.Generator().manual_seed(0))
    outcomes = [
        Outcome(exercise.expected(c), modified=5, unset=[1], unstable="yes", training_error=3)
        for c in cases
    ]
    assert exercise.judge(cases, outcomes).passed


def test_run_case_reports_errors_instead_of_raising():
    outcome = run_case(lambda s: s.no_such_method(), Case("c", (torch.zeros(1),)))
    assert outcome.error.startswith("AttributeError")


def test_a_forbidden_builtin_counts_even_when_the_code_then_raises():
    def softmax(scores, dim=-1):
        weights = torch.softmax(scores, dim=dim)
        return weights.no_such_method()

    outcome = run_case(softmax, Case("c", (torch.zeros(2, 3),)), EXERCISES["softmax"].forbidden)
    assert outcome.error.startswith("AttributeError")
    assert outcome.forbidden == ("softmax", "_softmax.default")
    assert run_check("softmax", softmax, seed=0).status == "forbidden"


def test_check_prints_one_verdict_and_raises_on_failure(capsys):
    check(reference.softmax)
    assert capsys.readouterr().out.startswith("✅ softmax: passed all")

    def softmax(scores, dim=-1):
        return scores.exp() / scores.exp().sum(dim=dim, keepdim=True)

    with pytest.raises(AssertionError, match="no max shift"):
        check(softmax)
    printed = capsys.readouterr().out
    assert printed.startswith("❌ softmax: no max shift")
    assert "expected:" in printed and "got:" in printed
    assert "amax" not in printed and "masked_fill" not in printed  # never the reference code


def test_check_by_name_and_unimplemented_exercises():
    def my_scores(query, keys):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="not implemented yet"):
        check("attention_scores", my_scores)
    with pytest.raises(ValueError, match="no exercise is called"):
        check(lambda x: x)


def test_fresh_cases_differ_from_call_to_call():
    exercise = EXERCISES["softmax"]
    first = exercise.make_cases(torch.Generator().manual_seed(1))
    second = exercise.make_cases(torch.Generator().manual_seed(2))
    assert not torch.equal(first[1].args[0], second[1].args[0])


def test_registry_lists_every_spec_name_once_with_points():
    assert ASSIGNMENTS == {
        "01_scores_softmax_context": (
            "attention_scores", "softmax", "context_vector", "SimpleAttention",
        ),
        "02_scaled_dot_product_attention": (
            "scaled_dot_product_attention", "causal_mask", "padding_mask",
        ),
        "03_multi_head_attention": ("split_heads", "merge_heads", "MultiHeadAttention"),
        "04_positional_encoding_and_block": (
            "sinusoidal_positional_encoding", "FeedForward", "TransformerEncoderBlock",
        ),
        "05_efficient_attention": ("online_softmax", "tiled_attention"),
        "06_rotary_and_grouped_query_attention": (
            "apply_rotary", "GroupedQueryAttention", "GreedyDecoder",
        ),
    }  # fmt: skip
    for assignment, names in ASSIGNMENTS.items():
        assert all(EXERCISES[name].assignment == assignment for name in names)
        assert all(EXERCISES[name].points > 0 for name in names)


def test_check_warns_about_what_the_grader_would_refuse(ipython, capsys):
    softmax = (
        "def softmax(scores, dim=-1):\n"
        "    shifted = scores - scores.amax(dim=dim, keepdim=True)\n"
        "    return shifted.exp() / shifted.exp().sum(dim=dim, keepdim=True)\n"
    )
    ipython.run_cell("import torch\nx = 1\nimport os", store_history=True)
    cell = f"from attn_course.checks import check\n{softmax}check(softmax)"
    result = ipython.run_cell(cell, store_history=True)
    out = capsys.readouterr().out
    assert result.success  # a warning, never a failed check
    assert "✅ softmax" in out
    (warning,) = [line for line in out.splitlines() if line.startswith("⚠️")]
    assert "`import os` in In [1], line 3" in warning


def test_check_prints_no_warning_for_an_allowed_notebook(ipython, capsys):
    cells = [
        "import numpy as np\nimport torch\nfrom attn_course.checks import check",
        "def softmax(s, dim=-1):\n    return s\ntry:\n    check(softmax)\n"
        "except AssertionError:\n    pass",
    ]
    for cell in cells:
        ipython.run_cell(cell, store_history=True)
    out = capsys.readouterr().out
    assert "❌ softmax" in out and "⚠️" not in out


FRESH_KERNEL = """
import sys
from attn_course import reference
from attn_course.checks import EXERCISES, run_check
for name in EXERCISES:
    assert run_check(name, getattr(reference, name), seed=0).passed, name
print("torch._dynamo" in sys.modules)
"""


def test_checks_do_not_import_torch_compile():
    """torch._dynamo takes a second or more to import: a check in a fresh kernel must not
    pay for it (a dispatch mode of torch's would import it at its first op)."""
    result = subprocess.run(
        [sys.executable, "-c", FRESH_KERNEL], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False", result.stderr
