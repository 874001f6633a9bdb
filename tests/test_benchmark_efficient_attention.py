"""The efficient-attention benchmark runs end to end (tiny sizes: a smoke test, not a timing),
and the README quotes the figures it recorded, the same ones lesson 12 prints."""

import json
import re
import subprocess
import sys
from pathlib import Path

from attn_course.measure import benchmark_record

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "efficient_attention.py"
RECORD = ROOT / "attn_course" / "efficient_attention.json"


def test_benchmark_prints_a_row_per_length_and_judges_the_targets(tmp_path):
    plot = tmp_path / "cost.png"
    record = tmp_path / "cost.json"
    run = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--seq-lens",
            "64",
            "128",
            "--repeats",
            "1",
            "--block-size",
            "32",
            "--plot",
            str(plot),
            "--json",
            str(record),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    rows = [
        line
        for line in run.stdout.splitlines()
        if line.startswith("| 64 ") or line.startswith("| 128 ")
    ]
    assert len(rows) == 2 and len(rows[1].split("|")) == 11  # T and 9 figures
    assert "T = 128: tiled memory" in run.stdout and "T = 128: tiled time" in run.stdout
    missed = "MISSED" in run.stdout
    assert run.returncode == (1 if missed else 0), run.stderr
    assert plot.stat().st_size > 0
    rows = json.loads(record.read_text())["rows"]
    assert [row["seq_len"] for row in rows] == [64, 128]
    assert all(set(row["ms"]) == set(row["mib"]) == {"naive", "tiled", "F.sdpa"} for row in rows)


def test_the_readme_quotes_the_recorded_figures_at_the_largest_length():
    record = json.loads(RECORD.read_text())
    assert benchmark_record() == record, "lesson 12 prints the package's record"
    last = record["rows"][-1]
    ms, mib = last["ms"], last["mib"]
    readme = (ROOT / "README.md").read_text()
    (quote,) = [item for item in readme.split("\n- ") if "efficient_attention.json" in item]
    quote = re.sub(r"\s+", " ", quote)
    assert f"T = {last['seq_len']}" in quote
    for figure in (
        f"{mib['tiled']:.1f} MiB",
        f"{mib['naive']:.1f} MiB",
        f"{ms['tiled']:.0f} ms",
        f"{ms['F.sdpa']:.0f} ms",
        f"{ms['naive']:.0f} ms",
        f"({ms['tiled'] / ms['F.sdpa']:.2f}×",
        record["date"],
    ):
        assert figure in quote, figure
