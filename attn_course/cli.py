"""The ``attn-course`` command: a thin shell over the package's functions."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def _lab(args: argparse.Namespace) -> int:
    from attn_course.lab import run_lab

    return run_lab(port=args.port, open_browser=not args.no_browser)


def _release(args: argparse.Namespace) -> int:
    from attn_course.assignments import release, stale_exercises

    if args.check:
        problems = stale_exercises(args.solutions, args.exercises)
        for problem in problems:
            print(f"stale: {problem}")
        if problems:
            print("run `attn-course release` to regenerate the exercises")
        return 1 if problems else 0
    for path in release(args.solutions, args.exercises):
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attn-course", description="A PyTorch course on attention mechanisms."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    lab = commands.add_parser("lab", help="start the course in JupyterLab (127.0.0.1)")
    lab.add_argument("--port", type=int, default=None, help="port (default: first free from 8888)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.set_defaults(func=_lab)

    release = commands.add_parser(
        "release", help="write the learners' exercises/ from the solutions/ notebooks"
    )
    release.add_argument("--check", action="store_true", help="only fail if exercises/ is stale")
    release.add_argument("--solutions", default="solutions", help="source folder (solutions)")
    release.add_argument("--exercises", default="exercises", help="target folder (exercises)")
    release.set_defaults(func=_release)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
