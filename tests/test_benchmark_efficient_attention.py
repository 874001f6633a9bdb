"""The efficient-attention benchmark runs end to end (tiny sizes: a smoke test, not a timing)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "efficient_attention.py"


def test_benchmark_prints_a_row_per_length_and_judges_the_targets(tmp_path):
    plot = tmp_path / "cost.png"
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
