"""How long grading takes per submission at course scale, and how much memory it holds.

    .venv/bin/python benchmarks/grading.py --submissions 1000 [--skip-nbgrader]

It writes ``--submissions`` notebooks of assignment 01 in a realistic mix (``MIX``: model
solutions and correct alternatives, known mistakes, unfinished work, a few hostile notebooks
that loop, flood or kill their kernel) into a temporary folder, then times ``attn-course grade``
end to end (start-up, sandboxes, judging, reports, similarity report) on them:

- with the local thread pool (``--workers``, default all cores) and on a Dask cluster of the
  same number of worker processes (``--scheduler local:N``);
- on the first 100 submissions and on all of them, to show how the time grows with the batch;
- and, on a sample of ``--sample`` notebooks, nbgrader's ``autograde`` (when installed) and plain
  sequential nbclient execution, for their time per notebook.

It prints seconds per submission and the peak resident memory of the grader process, of each
Dask worker and of each zygote. Not a test: timings depend on the machine and its load (the load
average is printed with them).
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "01_scores_softmax_context"
SOLUTION = ROOT / "solutions" / f"{ASSIGNMENT}.ipynb"
BIN = Path(sys.executable).parent

BUGS = {
    "no-max-shift": {
        "softmax": "def softmax(scores, dim=-1):\n"
        "    exp = scores.exp()\n"
        "    return exp / exp.sum(dim=dim, keepdim=True)\n"
    },
    "batch-broadcast": {
        "attention_scores": "def attention_scores(query, keys):\n"
        "    return query @ keys.transpose(-2, -1)\n"
    },
    "wrong-dim": {
        "softmax": "def softmax(scores, dim=-1):\n"
        "    exp = (scores - scores.amax(-1, keepdim=True)).exp()\n"
        "    return exp / exp.sum(-1, keepdim=True)\n"
    },
    "deleted-solution": {"context_vector": None},
}


CORRECT = {
    "attention_scores": "def attention_scores(query, keys):\n"
    "    return (query.unsqueeze(-2) * keys).sum(-1)\n",
    "context_vector": "def context_vector(weights, values):\n"
    "    return torch.einsum('...s,...sd->...d', weights, values)\n",
}
HOSTILE = {
    "infinite-loop": {"softmax": "while True:\n    pass\n"},
    "output-flood": {"context_vector": "while True:\n    print('x' * 10000)\n"},
    "kills-kernel": {  # SIGSEGV (C recursion) with nothing outside the allow-list
        "attention_scores": "import itertools\nit = iter([1])\nfor _ in range(1_000_000):\n"
        "    it = itertools.chain(it)\nnext(it)\n"
    },
    "memory-bomb": {"softmax": "hog = [bytearray(1 << 30) for _ in range(64)]\n"},
}
# kind -> (share of the batch, the variants to draw from)
MIX = {
    "correct": (0.60, [{}, CORRECT]),
    "buggy": (0.25, list(BUGS.values())),
    "unfinished": (0.12, [{"SimpleAttention": None}, {"context_vector": None, "softmax": None}]),
    "hostile": (0.03, list(HOSTILE.values())),
}


def write_submissions(folder: Path, count: int, seed: int = 0) -> list[str]:
    """``count`` notebooks drawn from ``MIX`` as ``student-NNNN.ipynb``; return the kind of
    each. An unfinished exercise keeps its stub (it raises NotImplementedError)."""
    solution = nbformat.read(SOLUTION, as_version=4)
    chance = random.Random(seed)
    kinds = chance.choices(list(MIX), weights=[share for share, _ in MIX.values()], k=count)
    for number, kind in enumerate(kinds):
        changes = chance.choice(MIX[kind][1])
        notebook = copy.deepcopy(solution)
        cells = []
        for cell in notebook.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in changes:
                stub = cell.source.partition("### BEGIN SOLUTION")[0]
                cell.source = changes[grade_id] or stub + "raise NotImplementedError()\n"
            if not (kind == "buggy" and grade_id in changes and changes[grade_id] is None):
                cells.append(cell)  # a buggy variant may delete a solution cell outright
        notebook.cells = cells
        nbformat.write(notebook, folder / f"student-{number:04d}.ipynb")
    return kinds


class PeakMemory:
    """Samples the resident memory of a process tree until stopped: the peak of the root
    (the grader), of each Dask worker process, of each zygote and of each sandbox, in MiB."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peaks: dict[tuple[str, int], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            for process in processes:
                try:
                    role = _role(process, self.root)
                    if role:
                        rss = process.memory_info().rss / 2**20
                        key = (role, process.pid)
                        self.peaks[key] = max(self.peaks.get(key, 0.0), rss)
                except psutil.Error:
                    continue

    def stop(self) -> dict[tuple[str, int], float]:
        self._stop.set()
        self._thread.join()
        return self.peaks


def _role(process: psutil.Process, root: psutil.Process) -> str:
    if process.pid == root.pid:
        return "grader"
    command = " ".join(process.cmdline())
    if "attn_course.grader.zygote" in command:  # a sandbox is a fork of a zygote
        parent = process.parent()
        forked = parent is not None and "attn_course.grader.zygote" in " ".join(parent.cmdline())
        return "sandbox" if forked else "zygote"
    if "spawn_main" in command and "resource_tracker" not in command:
        return "dask worker"
    return ""


def time_attn_course(
    folder: Path, out: Path, options: list[str]
) -> tuple[float, dict[tuple[str, int], float]]:
    """Seconds for ``attn-course grade folder`` with ``options``, and the peak memory."""
    command = [str(BIN / "attn-course"), "grade", str(folder), "--out", str(out), *options]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    memory = PeakMemory(process.pid)
    _, errors = process.communicate()
    seconds = time.perf_counter() - start
    peaks = memory.stop()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{errors.decode()}")
    return seconds, peaks


def _memory(peaks: dict[tuple[str, int], float]) -> str:
    parts = []
    for role in ("grader", "dask worker", "zygote"):
        values = sorted((mib for (name, _), mib in peaks.items() if name == role), reverse=True)
        if values:
            parts.append(f"{role} " + ", ".join(f"{mib:.0f}" for mib in values))
    sandboxes = [mib for (name, _), mib in peaks.items() if name == "sandbox"]
    if sandboxes:  # shared with the zygote until written to; a memory bomb shows here
        parts.append(f"largest sandbox {max(sandboxes):.0f}")
    return "; ".join(parts) + " MiB"


def time_nbclient(paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        client = NotebookClient(
            notebook,
            timeout=120,
            kernel_name="python3",
            allow_errors=True,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
    return time.perf_counter() - start


def time_nbgrader(paths: list[Path], course: Path) -> float | None:
    """Seconds for ``nbgrader autograde`` of all ``paths`` (None without nbgrader)."""
    nbgrader = BIN / "nbgrader"
    if not nbgrader.exists():
        return None
    course.mkdir()
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\n"
        "c.ExecutePreprocessor.timeout = 120\n"
    )
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(SOLUTION, course / "source" / ASSIGNMENT)
    for path in paths:
        submitted = course / "submitted" / path.stem / ASSIGNMENT
        submitted.mkdir(parents=True)
        shutil.copy(path, submitted / f"{ASSIGNMENT}.ipynb")
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTER_CONFIG_DIR": str(course / ".jupyter"),
    }

    def run(*args: str) -> None:
        subprocess.run([str(nbgrader), *args], cwd=course, env=env, check=True, capture_output=True)

    run("generate_assignment", ASSIGNMENT, "--create")
    start = time.perf_counter()
    run("autograde", ASSIGNMENT, "--create")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=100, help="batch size (default 100)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="thread pool and N")
    parser.add_argument("--timeout", type=float, default=5.0, help="per cell (default 5 s)")
    parser.add_argument("--sample", type=int, default=10, help="notebooks for nbgrader/nbclient")
    parser.add_argument("--skip-nbgrader", action="store_true")
    args = parser.parse_args()
    os.environ["JUPYTER_PLATFORM_DIRS"] = "1"
    sizes = sorted({min(100, args.submissions), args.submissions})
    modes = {
        "thread pool": ["--workers", str(args.workers)],
        f"local:{args.workers}": ["--scheduler", f"local:{args.workers}"],
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="grading-benchmark-") as tmp:
        tmp = Path(tmp)
        for size in sizes:
            (tmp / f"batch-{size}").mkdir()
            kinds = write_submissions(tmp / f"batch-{size}", size)
        for size in sizes:
            for mode, options in modes.items():
                out = tmp / f"grades-{size}-{mode.replace(':', '')}"
                seconds, peaks = time_attn_course(
                    tmp / f"batch-{size}", out, [*options, "--timeout", str(args.timeout)]
                )
                rows.append((mode, size, seconds, _memory(peaks)))
                print(f"{mode:<12} {size:5d} submissions  {seconds / size:6.3f} s/submission  "
                      f"({seconds:7.1f} s)  peak {rows[-1][3]}", flush=True)  # fmt: skip
        paths = sorted((tmp / f"batch-{sizes[-1]}").glob("*.ipynb"))
        sample = [path for path, kind in zip(paths, kinds, strict=True) if kind != "hostile"]
        sample = sample[: args.sample]  # a notebook that loops would stall nbclient for minutes
        others = {"nbclient, sequential": time_nbclient(sample)}
        if not args.skip_nbgrader:
            nbgrader = time_nbgrader(sample, tmp / "course")
            if nbgrader is not None:
                others["nbgrader autograde"] = nbgrader
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"\nassignment {ASSIGNMENT}, mix of {sizes[-1]}: "
        + ", ".join(f"{kinds.count(kind)} {kind}" for kind in MIX)
        + f"; {os.cpu_count()} "
        f"cores, --timeout {args.timeout:g}; load average {load}"
    )
    for mode in modes:
        times = [(size, seconds) for name, size, seconds, _ in rows if name == mode]
        (small, t_small), (large, t_large) = times[0], times[-1]
        growth = f"; {small} -> {large}: time x{t_large / t_small:.1f} for x{large / small:g}"
        print(f"{mode:<22} {t_large / large:6.3f} s/submission" + (growth if large > small else ""))
    for name, total in others.items():
        print(f"{name:<22} {total / len(sample):6.3f} s/submission  (on {len(sample)} notebooks)")


if __name__ == "__main__":
    main()
