"""Red team: hostile text in a batch (a Latin-1 file name, lone surrogates and bidi overrides
in messages and names, NUL and other control characters, a 6 MB grade_id). None of it stops
the batch or its resume, and what reaches the journal, grades.csv, grades.json and the HTML is
capped and printable (``report.safe``, the one cleaning function)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from attn_course.grader.commands import grade_command
from attn_course.grader.journal import JOURNAL_NAME
from attn_course.grader.report import MAX_NAME, MAX_TEXT, safe

SEED = 11
RLO = "\u202e"
BIDI = ("\u202a", "\u202b", "\u202c", "\u202d", RLO, "\u2066", "\u2067", "\u2068", "\u2069")
HIDDEN = (*BIDI, "\u200e", "\u200f", "\u200b", "\ufeff", "\x00", "\x1b", "\x07", "\x7f", "\x85")


def test_safe_shows_what_would_hide_or_break_and_caps():
    text = "caf\udce9 \ud800" + "".join(HIDDEN) + "\nok\tok é ü 東京"
    cleaned = safe(text)
    assert "caf\\xe9" in cleaned  # the byte of a Latin-1 file name, shown
    assert "\\ud800" in cleaned and "\\u202e" in cleaned and "\\x00" in cleaned
    assert not any(char in cleaned for char in (*HIDDEN, "\udce9", "\ud800"))
    assert cleaned.endswith("\nok\tok é ü 東京")  # newlines, tabs and letters kept
    cleaned.encode("utf-8")  # no surrogate left
    assert safe(cleaned) == cleaned
    huge = safe("x" * 6_000_000, cap=MAX_NAME)
    assert len(huge) <= MAX_NAME and safe(huge, cap=MAX_NAME) == huge
    assert len(safe(RLO * 10_000)) <= MAX_TEXT  # escapes are longer: capped after them too


def _raising(message: str) -> dict:
    return {"softmax": f"def softmax(scores, dim=-1):\n    raise ValueError({message})\n"}


@pytest.fixture(scope="module")
def hostile_batch(tmp_path_factory, submission_writer):
    """An honest submission and four hostile ones."""
    folder = tmp_path_factory.mktemp("hostile")
    submission_writer(folder, "honest", "pass")
    latin1 = submission_writer(folder, "latin1", "pass")
    os.rename(os.fsencode(latin1), os.fsencode(folder) + b"/caf\xe9-pass.ipynb")
    message = "'caf' + chr(0xdce9) + chr(0xd800) + chr(0x202e) + 'txt.exe' + chr(0) + chr(27)"
    submission_writer(folder, "surrogate-message", "fail", replace=_raising(message))
    bidi = submission_writer(folder, "bidi", "pass")
    bidi.rename(folder / f"bidi-{RLO}bnypi.ipynb")
    huge = submission_writer(folder, "huge-grade-id", "fail", add=("raise RuntimeError('boom')",))
    notebook = nbformat.read(huge, as_version=4)
    scratch = next(c for c in notebook.cells if c.source == "raise RuntimeError('boom')")
    scratch.metadata["nbgrader"] = {"grade_id": "g" * 3_000_000 + RLO + "g" * 3_000_000}
    nbformat.write(notebook, huge)
    return folder


def _reports(out: Path) -> dict[str, bytes]:
    files = [out / "grades.csv", out / "grades.json", out / JOURNAL_NAME]
    files += sorted((out / "feedback").glob("*.html"))
    return {path.name: path.read_bytes() for path in files}


def test_hostile_text_never_breaks_a_batch_nor_its_resume(hostile_batch, tmp_path, capsys):
    out = tmp_path / "out"
    status = grade_command([str(hostile_batch)], str(out), 20.0, 2, 1024, seed=SEED)
    assert status == 0
    first = _reports(out)
    assert len([name for name in first if name.endswith(".html")]) == 5
    for name, data in first.items():
        text = data.decode("utf-8-sig")  # every report is UTF-8 (grades.csv with a BOM)
        assert not any(char in text for char in HIDDEN), name
        assert len(data) < 200_000, name  # the 6 MB grade_id is not copied whole
    document = json.loads(first["grades.json"])
    points = {s["submission"]: s["points"] for s in document["submissions"]}
    assert points["test-honest-pass.ipynb"] == 10
    assert points["caf\\xe9-pass.ipynb"] == 10
    assert points["bidi-\\u202ebnypi.ipynb"] == 10
    assert points["test-surrogate-message-fail.ipynb"] == 7
    assert points["test-huge-grade-id-fail.ipynb"] == 10  # a scratch cell raised: noted only
    (huge,) = [s for s in document["submissions"] if s["submission"].startswith("test-huge")]
    (problem,) = huge["cell_problems"]
    assert len(problem["grade_id"]) <= MAX_NAME and "\\u202e" not in problem["grade_id"]
    capsys.readouterr()

    assert grade_command([str(hostile_batch)], str(out), 20.0, 2, 1024, seed=SEED) == 0
    assert "5 from the journal" in capsys.readouterr().out
    again = _reports(out)
    assert again["grades.csv"] == first["grades.csv"]
    assert again["grades.json"] == first["grades.json"]
