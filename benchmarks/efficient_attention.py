"""Time and peak memory of naive, tiled and fused attention over growing T, on the CPU.

    .venv/bin/python benchmarks/efficient_attention.py            # T = 512 ... 8192, 1 thread
    .venv/bin/python benchmarks/efficient_attention.py --threads 2
    .venv/bin/python benchmarks/efficient_attention.py --seq-lens 256 1024 --plot /tmp/cost.png
    .venv/bin/python benchmarks/efficient_attention.py --json   # replaces the package's record

Inputs: self-attention, (B, H, T, Dh) = (1, 1, T, 64), float32. Versions: "naive" is the
course's reference ``scaled_dot_product_attention`` (it builds the (T, S) scores and weights),
"tiled" is ``tiled_attention`` from lesson 12 (key blocks of --block-size), "F.sdpa" is
PyTorch's fused ``F.scaled_dot_product_attention``.

Method (see ``attn_course.measure``): time = the fastest of --repeats calls after one warm-up,
the versions taking turns call by call; peak memory = the peak of PyTorch's CPU allocations
during one more call, replayed from ``torch.profiler`` with ``profile_memory=True`` (inputs
made before the call are not counted).
Times are taken on one thread by default (--threads): on a machine shared with other work,
every multi-threaded operation waits until all its threads get a core, and the tiled loop,
with a dozen operations per block, suffers far more from that than one fused call; the
figures then measure the machine's load. Memory does not vary from run to run, except F.sdpa's,
which keeps a scratch buffer per thread.

The lesson's targets, checked at the largest T: tiled peak memory <= 10% of naive's, tiled
time <= 2x F.sdpa's. The exit status is 1 when a target is missed.

With --json the figures are also written to a file, by default the package's
``attn_course/efficient_attention.json``: the one record of the measured figures, which lesson 12
prints (``attn_course.measure.benchmark_record``), the README quotes and the wheel ships. Replace
it from a clone with an editable install, not from an installed wheel.
"""

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

import torch

from attn_course import measure, plots
from attn_course.measure import measure_attention

MEMORY_TARGET = 0.10  # tiled peak memory / naive peak memory
TIME_TARGET = 2.0  # tiled time / F.sdpa time
# The record lesson 12 prints: package data, beside attn_course/measure.py.
RECORD = Path(measure.__file__).with_name(measure.RECORD)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-lens", type=int, nargs="+", default=[512, 1024, 2048, 4096, 8192])
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1; 0: torch's own choice)"
    )
    parser.add_argument("--plot", help="also save the figure of lesson 12 to this PNG file")
    parser.add_argument(
        "--json",
        nargs="?",
        const=str(RECORD),
        help=f"also write the measured figures to this JSON file (no file: {RECORD})",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"(B, H, T, Dh) = (1, 1, T, {args.head_dim}), float32, block size {args.block_size}"
    )
    print(
        "| T | naive ms | tiled ms | F.sdpa ms | naive MiB | tiled MiB | F.sdpa MiB "
        "| tiled/naive memory | tiled/F.sdpa time |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    costs = []
    for seq_len in args.seq_lens:
        cost = measure_attention(
            seq_len, args.head_dim, block_size=args.block_size, repeats=args.repeats
        )
        costs.append(cost)
        ms = {name: 1e3 * seconds for name, seconds in cost.seconds.items()}
        mib = {name: nbytes / 2**20 for name, nbytes in cost.peak_bytes.items()}
        print(
            f"| {seq_len} | {ms['naive']:.1f} | {ms['tiled']:.1f} | {ms['F.sdpa']:.1f} "
            f"| {mib['naive']:.1f} | {mib['tiled']:.1f} | {mib['F.sdpa']:.1f} "
            f"| {mib['tiled'] / mib['naive']:.3f} | {ms['tiled'] / ms['F.sdpa']:.2f} |",
            flush=True,
        )

    last = costs[-1]
    memory_ratio = last.peak_bytes["tiled"] / last.peak_bytes["naive"]
    time_ratio = last.seconds["tiled"] / last.seconds["F.sdpa"]
    memory_ok, time_ok = memory_ratio <= MEMORY_TARGET, time_ratio <= TIME_TARGET
    print(
        f"T = {last.seq_len}: tiled memory {memory_ratio:.1%} of naive "
        f"(target <= {MEMORY_TARGET:.0%}): {'met' if memory_ok else 'MISSED'}"
    )
    print(
        f"T = {last.seq_len}: tiled time {time_ratio:.2f}x F.sdpa "
        f"(target <= {TIME_TARGET:.0f}x): {'met' if time_ok else 'MISSED'}"
    )

    if args.json:
        record = {
            "date": datetime.date.today().isoformat(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "load_average_1min": round(os.getloadavg()[0], 2),
            "nice": os.nice(0),
            "head_dim": args.head_dim,
            "block_size": args.block_size,
            "repeats": args.repeats,
            "rows": [
                {
                    "seq_len": cost.seq_len,
                    "ms": {name: round(1e3 * sec, 2) for name, sec in cost.seconds.items()},
                    "mib": {name: round(b / 2**20, 2) for name, b in cost.peak_bytes.items()},
                }
                for cost in costs
            ],
        }
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(record, file, indent=2)
            file.write("\n")
        print(f"figures written to {args.json}")

    if args.plot:
        seq_lens = [cost.seq_len for cost in costs]
        names = list(last.seconds)
        figure = plots.scaling_figure(
            seq_lens,
            {name: [cost.seconds[name] for cost in costs] for name in names},
            {name: [cost.peak_bytes[name] for cost in costs] for name in names},
        )
        figure.savefig(args.plot, dpi=100)
        print(f"figure saved to {args.plot}")
    return 0 if memory_ok and time_ok else 1


if __name__ == "__main__":
    sys.exit(main())
