"""The similarity report on a small class of assignment 01: two students who copied (one
renamed every variable, one reformatted and commented the code) are caught; students who
solved it independently, each in their own style, are not; a pasted copy of the reference is
reported as close to it; the HTML escapes student code."""

from __future__ import annotations

import csv

import nbformat
import pytest

from attn_course.cli import main
from attn_course.grader.catalog import course_assignments
from attn_course.grader.notebook import cell_grade_id
from attn_course.grader.pipeline import find_notebooks
from attn_course.grader.similarity import (
    MAX_CODE,
    REFERENCE,
    normalise,
    own_code,
    similarity,
    write_similarity,
)
from attn_course.lab import installed_course

# The copied student's work: a solution of their own, in an unusual style.
ORIGINAL = {
    "attention_scores": "def attention_scores(query, keys):\n"
    "    products = keys * query.unsqueeze(-2)\n"
    "    totals = products.sum(dim=-1)\n"
    "    return totals\n",
    "softmax": "def softmax(scores, dim=-1):\n"
    "    biggest = torch.max(scores, dim=dim, keepdim=True).values\n"
    "    raised = torch.exp(scores - biggest)\n"
    "    norm = torch.sum(raised, dim=dim, keepdim=True)\n"
    "    result = raised / norm\n"
    "    return result\n",
    "context_vector": "def context_vector(weights, values):\n"
    "    expanded = weights.unsqueeze(-1)\n"
    "    weighted = expanded * values\n"
    "    return weighted.sum(dim=-2)\n",
    "SimpleAttention": "class SimpleAttention(nn.Module):\n"
    "    def __init__(self, input_dim):\n"
    "        super().__init__()\n"
    "        self.attention = nn.Linear(input_dim, 1)\n"
    "\n"
    "    def forward(self, x):\n"
    "        raw = self.attention(x)\n"
    "        probs = softmax(raw, dim=1)\n"
    "        pooled = torch.sum(probs * x, dim=1)\n"
    "        return pooled, probs\n",
}
RENAMED = {
    grade_id: source.replace("products", "p").replace("totals", "t").replace("biggest", "m")
    .replace("raised", "e").replace("norm", "z").replace("result", "out")
    .replace("expanded", "w").replace("weighted", "wv").replace("raw", "s")
    .replace("probs", "a").replace("pooled", "c")
    for grade_id, source in ORIGINAL.items()
}  # fmt: skip
REFORMATTED = {
    "attention_scores": "def attention_scores(query, keys):\n"
    "    # multiply every key by the query, then add up\n"
    "    products = keys*query.unsqueeze( -2 )\n"
    "\n"
    "    totals = products.sum(\n"
    "        dim = -1,\n"
    "    )\n"
    "    return (totals)  # (..., S)\n",
    "softmax": 'def softmax(scores, dim=-1):\n    """My softmax."""\n'
    + ORIGINAL["softmax"].split(":\n", 1)[1].replace(" = ", "=").replace(", ", ","),
    "context_vector": ORIGINAL["context_vector"].replace("    ", "\t") + "\n# done!\n",
    "SimpleAttention": ORIGINAL["SimpleAttention"].replace("\n\n", "\n\n\n")
    .replace("torch.sum(probs * x, dim=1)", "torch.sum(probs*x,dim=1)  # weighted sum"),
}  # fmt: skip
# Independent solutions, each in a style of its own (the model solution is a fourth).
EINSUM = {
    "attention_scores": "def attention_scores(query, keys):\n"
    "    return torch.einsum('...d,...sd->...s', query, keys)\n",
    "softmax": "def softmax(scores, dim=-1):\n"
    "    e = (scores - scores.amax(dim, keepdim=True)).exp()\n"
    "    return e / e.sum(dim, keepdim=True)\n",
    "context_vector": "def context_vector(weights, values):\n"
    "    return torch.einsum('...s,...sd->...d', weights, values)\n",
    "SimpleAttention": "class SimpleAttention(nn.Module):\n"
    "    def __init__(self, input_dim):\n"
    "        super().__init__()\n"
    "        self.attention = nn.Linear(input_dim, 1)\n"
    "\n"
    "    def forward(self, x):\n"
    "        w = softmax(self.attention(x), dim=1)\n"
    "        return torch.einsum('bto,btd->bd', w, x), w\n",
}
MATMUL = {
    "attention_scores": "def attention_scores(query, keys):\n"
    "    q = query.unsqueeze(-1)\n"
    "    return torch.matmul(keys, q).squeeze(-1)\n",
    "softmax": "def softmax(scores, dim=-1):\n"
    "    shifted = scores - scores.max(dim=dim, keepdim=True)[0]\n"
    "    numerator = shifted.exp()\n"
    "    denominator = numerator.sum(dim=dim, keepdim=True)\n"
    "    return numerator / denominator\n",
    "context_vector": "def context_vector(weights, values):\n"
    "    return torch.matmul(weights.unsqueeze(-2), values).squeeze(-2)\n",
    "SimpleAttention": "class SimpleAttention(nn.Module):\n"
    "    def __init__(self, input_dim):\n"
    "        super().__init__()\n"
    "        self.attention = nn.Linear(input_dim, 1)\n"
    "\n"
    "    def forward(self, x):\n"
    "        scores = self.attention(x).squeeze(-1)\n"
    "        weights = softmax(scores, dim=-1).unsqueeze(-1)\n"
    "        context = (weights.transpose(1, 2) @ x).squeeze(1)\n"
    "        return context, weights\n",
}
LOOPS = {
    "attention_scores": "def attention_scores(query, keys):\n"
    "    out = []\n"
    "    for s in range(keys.shape[-2]):\n"
    "        out.append((keys[..., s, :] * query).sum(-1))\n"
    "    return torch.stack(out, dim=-1)\n",
    "softmax": "def softmax(scores, dim=-1):\n"
    "    moved = scores.transpose(dim, -1)\n"
    "    top = moved.max(-1, keepdim=True).values\n"
    "    ex = (moved - top).exp()\n"
    "    return (ex / ex.sum(-1, keepdim=True)).transpose(dim, -1)\n",
    "context_vector": "def context_vector(weights, values):\n"
    "    total = 0\n"
    "    for s in range(values.shape[-2]):\n"
    "        total = total + weights[..., s, None] * values[..., s, :]\n"
    "    return total\n",
    "SimpleAttention": "class SimpleAttention(nn.Module):\n"
    "    def __init__(self, input_dim):\n"
    "        super().__init__()\n"
    "        self.attention = nn.Linear(input_dim, 1)\n"
    "\n"
    "    def forward(self, x):\n"
    "        a = softmax(self.attention(x), 1)\n"
    "        return (a * x).sum(1), a\n",
}
PASTED_REFERENCE = {
    "softmax": "def masked_softmax(scores, mask=None, dim=-1):\n"
    "    if mask is not None:\n"
    "        scores = scores.masked_fill(~mask, float('-inf'))\n"
    "    row_max = scores.amax(dim=dim, keepdim=True)\n"
    "    row_max = row_max.masked_fill(torch.isinf(row_max), 0.0)\n"
    "    exp = torch.exp(scores - row_max)\n"
    "    total = exp.sum(dim=dim, keepdim=True)\n"
    "    return exp / total.clamp_min(torch.finfo(exp.dtype).tiny)\n"
    "\n"
    "def softmax(scores, dim=-1):\n"
    "    return masked_softmax(scores, None, dim=dim)\n",
}
HOSTILE = {"attention_scores": "def attention_scores(query, keys):\n"
           "    note = '</pre><script>alert(1)</script>'\n"
           "    return (keys @ query.unsqueeze(-1)).squeeze(-1)\n"}  # fmt: skip
CLASS = {
    "original": ORIGINAL,
    "renamed": RENAMED,
    "reformatted": REFORMATTED,
    "einsum": EINSUM,
    "matmul": MATMUL,
    "loops": LOOPS,
    "model": {},
    "pasted-reference": PASTED_REFERENCE,
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory, submission_writer):
    folder = tmp_path_factory.mktemp("class")
    return [
        (name, submission_writer(folder, name, "similar", replace=code))
        for name, code in CLASS.items()
    ]


def test_normalise_forgets_layout_comments_docstrings_and_hints():
    plain = "def f(x):\n    return x * 2\n"
    fancy = 'def f(x: int) -> int:\n    """Twice x."""\n    # twice\n    return (x*2)  # here\n'
    assert normalise(fancy) == normalise(plain)
    assert normalise("def (") == "def ("  # code that does not parse is compared as it is


def test_renamed_and_reformatted_copies_are_caught(batch):
    found = similarity(batch, threshold=0.8)
    pairs = {frozenset((m.submission, m.other)) for m in found.pairs}
    assert frozenset(("original", "renamed")) in pairs
    assert frozenset(("original", "reformatted")) in pairs
    assert frozenset(("renamed", "reformatted")) in pairs
    for match in found.pairs:
        assert max(match.share, match.other_share) >= 0.8
        assert any(matched for _, matched in match.code)


def test_independent_solutions_in_different_styles_are_not_flagged(batch):
    found = similarity(batch, threshold=0.8)
    independent = {"einsum", "matmul", "loops", "model", "pasted-reference"}
    flagged = {name for m in found.pairs for name in (m.submission, m.other)}
    assert flagged == {"original", "renamed", "reformatted"}
    assert not flagged & independent
    assert found.compared == len(CLASS)


def test_a_pasted_reference_is_close_to_the_reference(batch):
    found = similarity(batch, threshold=0.8)
    assert [m.submission for m in found.reference] == ["pasted-reference"]
    assert found.reference[0].other == REFERENCE


def test_reports_escape_student_code(batch, tmp_path, submission_writer):
    hostile = [
        (name, submission_writer(tmp_path, case, "similar", replace=HOSTILE))
        for name, case in (("=cmd|' /C calc'!A0", "formula"), ("copy", "copy"))
    ]
    found = write_similarity(hostile, tmp_path / "out", threshold=0.5)
    assert len(found.pairs) == 1
    page = (tmp_path / "out" / "similarity.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    with (tmp_path / "out" / "similarity.csv").open(newline="") as stream:
        rows = [row for row in csv.DictReader(stream) if row["other"] != REFERENCE]
    assert len(rows) == 1
    assert {rows[0]["submission"], rows[0]["other"]} == {"'=cmd|' /C calc'!A0", "copy"}


def test_attn_course_similar_writes_the_report_without_grading(batch, tmp_path):
    status = main(["similar", str(batch[0][1].parent), "--out", str(tmp_path)])
    assert status == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["similarity.csv", "similarity.html"]
    with (tmp_path / "similarity.csv").open(newline="") as stream:
        pairs = [row for row in csv.DictReader(stream) if row["other"] != REFERENCE]
    assert len(pairs) == 3  # original, renamed and reformatted, two by two


def test_hostile_metadata_and_names_do_not_break_the_report(tmp_path, solution_01):
    """nbgrader metadata that is not a dict, a grade_id that is a list, an assignment that is
    a list: the report is written, and a name starting with a tab or a formula is inert."""
    folder = tmp_path / "class"
    folder.mkdir()
    odd = solution_01()
    odd.cells[0].metadata["nbgrader"] = "x"
    odd.cells[1].metadata["nbgrader"] = {"grade_id": ["softmax"]}
    nbformat.write(odd, folder / "\t=1+1.ipynb")
    nbformat.write(solution_01(), folder / "\r@copy.ipynb")
    listed = solution_01()
    listed.metadata["attn_course"]["assignment"] = ["01_scores_softmax_context"]
    nbformat.write(listed, folder / "listed.ipynb")
    found = write_similarity(find_notebooks([folder]), tmp_path / "out", threshold=0.5)
    assert len(found.pairs) == 1
    text = (tmp_path / "out" / "similarity.csv").read_text()
    for row in csv.DictReader(text.splitlines()):
        for cell in (row["submission"], row["other"]):
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert main(["similar", str(folder), "--out", str(tmp_path / "again")]) == 0


def released_exercise(folder, name: str, add_to: dict[str, str] | None = None):
    """``folder/name``: a copy of the released exercise 03, with ``add_to`` (grade_id ->
    a line) typed into the stub of those solution cells, before its ``raise``."""
    released = installed_course() / "exercises" / "03_multi_head_attention.ipynb"
    notebook = nbformat.read(released, as_version=4)
    for cell in notebook.cells:
        line = (add_to or {}).get(cell_grade_id(cell))
        if line is not None:
            stub = "    raise NotImplementedError()"
            cell.source = cell.source.replace(stub, f"    {line}\n{stub}")
    path = folder / name
    nbformat.write(notebook, path)
    return name, path


def test_untouched_and_barely_started_exercises_are_not_pairs(tmp_path):
    """The released code is subtracted (MOSS's base file): two untouched copies of exercise 03
    are no pair, nor two that each added the same obvious line (in their own names)."""
    started = {"split_heads": "batch, length, width = x.shape"}
    renamed = {"split_heads": "b, t, d = x.shape"}
    notebooks = [
        released_exercise(tmp_path, "untouched-1.ipynb"),
        released_exercise(tmp_path, "untouched-2.ipynb"),
        released_exercise(tmp_path, "started-1.ipynb", started),
        released_exercise(tmp_path, "started-2.ipynb", renamed),
    ]
    found = write_similarity(notebooks, tmp_path / "out")
    assert found.pairs == ()
    assert found.compared == 2  # the untouched ones have no code of their own
    with (tmp_path / "out" / "similarity.csv").open(newline="") as stream:
        assert list(csv.DictReader(stream)) == []


def test_a_copy_hidden_in_scratch_cells_is_caught(batch, tmp_path, submission_writer):
    """Every code cell counts: the copy moved out of the solution cells (left as they were
    released) into scratch cells is found."""
    stubs = {grade_id: "" for grade_id in ORIGINAL}
    hidden = submission_writer(tmp_path, "hidden", "similar", replace=stubs,
                               add=tuple(RENAMED.values()))  # fmt: skip
    found = similarity([*batch, ("hidden", hidden)], threshold=0.8)
    pairs = {frozenset((m.submission, m.other)) for m in found.pairs}
    assert frozenset(("original", "hidden")) in pairs
    assert frozenset(("renamed", "hidden")) in pairs


def test_huge_and_deeply_nested_cells_leave_a_report(batch, tmp_path, submission_writer):
    """An 800-term sum and 5,000-deep nesting (which ``ast`` cannot print back) are compared
    like any code; the report is written, and the other submissions are still compared."""
    monsters = {
        "long-sum": "x = " + " + ".join(["a"] * 800),
        "deep-not": "x = " + "not " * 5000 + "a",
        "deep-minus": "x = " + "-" * 5000 + "a",
        "deep-attribute": "x = a" + ".b" * 5000,
        "deep-calls": "x = f" + "()" * 5000,
        "deep-parentheses": "x = " + "(" * 5000 + "1" + ")" * 5000,
    }
    folder = batch[0][1].parent
    for case, cell in monsters.items():
        submission_writer(folder, case, "similar", add=(cell,))
    try:
        assert main(["similar", str(folder), "--out", str(tmp_path)]) == 0
    finally:
        for case in monsters:
            (folder / f"test-{case}-similar.ipynb").unlink()
    with (tmp_path / "similarity.csv").open(newline="") as stream:
        pairs = {frozenset((row["submission"], row["other"])) for row in csv.DictReader(stream)}
    original, renamed = "test-original-similar.ipynb", "test-renamed-similar.ipynb"
    assert frozenset((original, renamed)) in pairs
    assert normalise(monsters["long-sum"]) == monsters["long-sum"]


def test_a_large_submission_is_cut_with_a_note(tmp_path, submission_writer):
    """At most ``MAX_CODE`` characters of a submission are read and normalised, whatever its
    size; the report says whose code was cut."""
    line = "value = torch.zeros(3) + 1.0  # a comment\n"
    big = submission_writer(tmp_path, "big", "similar", add=(line * 60_000,))  # 2.5 MB
    small = submission_writer(tmp_path, "small", "similar")
    _, code, cut = own_code(big, course_assignments())
    assert cut and len(code) <= MAX_CODE
    assert own_code(small, course_assignments())[2] is False
    found = write_similarity([("big", big), ("small", small)], tmp_path / "out")
    assert found.notes == (f"big: only its first {MAX_CODE:,} characters of code were compared",)
    assert found.notes[0] in (tmp_path / "out" / "similarity.html").read_text()
