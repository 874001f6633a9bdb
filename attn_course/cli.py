"""The ``attn-course`` command: a thin shell over the package's functions."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def _lab(args: argparse.Namespace) -> int:
    from attn_course.lab import run_lab

    return run_lab(port=args.port, open_browser=not args.no_browser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attn-course", description="A PyTorch course on attention mechanisms."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    lab = commands.add_parser("lab", help="start the course in JupyterLab (127.0.0.1)")
    lab.add_argument("--port", type=int, default=None, help="port (default: first free from 8888)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.set_defaults(func=_lab)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
