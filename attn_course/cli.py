"""The ``attn-course`` command: a thin shell over the package's functions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _lab(args: argparse.Namespace) -> int:
    from attn_course.lab import run_lab

    return run_lab(port=args.port, open_browser=not args.no_browser, directory=args.dir)


def _release(args: argparse.Namespace) -> int:
    from attn_course.assignments import ReleaseError, release, stale_exercises, usable_solutions
    from attn_course.grader.catalog import CELLS_FILE, catalog_is_stale, write_catalog

    try:
        usable_solutions(args.solutions, writing=not args.check)
    except ReleaseError as error:
        print(f"attn-course release: error: {error}", file=sys.stderr)
        return 2
    if args.check:
        problems = stale_exercises(args.solutions, args.exercises)
        if catalog_is_stale(args.solutions):
            problems.append(f"{CELLS_FILE.name}: the grader's cells differ from {args.solutions}")
        for problem in problems:
            print(f"stale: {problem}")
        if problems:
            print("run `attn-course release` to regenerate the exercises")
        return 1 if problems else 0
    for path in [*release(args.solutions, args.exercises), write_catalog(args.solutions)]:
        print(f"wrote {path}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from attn_course.grader.commands import grade_command

    return grade_command(
        args.submissions, args.out, args.timeout, args.workers, args.memory_limit,
        args.scheduler, args.seed, args.restart, args.similarity_threshold,
        args.budget, args.allow_weak_sandbox, tuple(args.allow_import),
        args.roster, args.student_field, args.assignment,
    )  # fmt: skip


def _export(args: argparse.Namespace) -> int:
    from attn_course.grader.export import export_command

    return export_command(args.dir, args.to, args.output)


def _similar(args: argparse.Namespace) -> int:
    from attn_course.grader.commands import similar_command

    return similar_command(args.submissions, args.out, args.similarity_threshold)


def _check(args: argparse.Namespace) -> int:
    from attn_course.grader.commands import check_command

    return check_command(args.notebook, args.timeout, args.memory_limit, args.budget)


def _report(args: argparse.Namespace) -> int:
    from attn_course.grader.classreport import rebuild_reports

    try:
        paths, problems = rebuild_reports(Path(args.dir), lessons_url=args.lessons_url)
    except FileNotFoundError as error:
        print(f"attn-course report: error: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"attn-course report: warning: {problem}", file=sys.stderr)
    print("wrote " + ", ".join(str(paths[kind]) for kind in ("csv", "json", "class"))
          + f" and {paths['feedback']}/")
    return 0


def _positive(kind: type) -> callable:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text}")
        return value

    return parse


def _scheduler(text: str) -> str:
    try:
        from attn_course.grader.distributed import parse_scheduler
    except ImportError:
        raise argparse.ArgumentTypeError(
            "needs Dask: pip install 'attn-course[cluster]'"
        ) from None
    try:
        return parse_scheduler(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _share(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1]: {text}")
    return value


def _add_similarity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--similarity-threshold", type=_share, default=None, metavar="SHARE",
        help="report a pair when this share of either's code is found in the other (default 0.8)",
    )


def _module_name(text: str) -> str:
    if not all(part.isidentifier() for part in text.split(".")):
        raise argparse.ArgumentTypeError(f"not a module name: {text}")
    return text


def _add_limits(parser: argparse.ArgumentParser) -> None:
    from attn_course.grader import DEFAULT_BUDGET

    parser.add_argument(
        "--timeout", type=_positive(float), default=30.0, metavar="SECONDS",
        help="time limit per cell and per exercise's hidden cases (default 30)",
    )
    parser.add_argument(
        "--memory-limit", type=_positive(int), default=4096, metavar="MB",
        help="memory a submission may allocate beyond the grader's runtime (default 4096)",
    )
    parser.add_argument(
        "--budget", type=_positive(float), default=DEFAULT_BUDGET, metavar="SECONDS",
        help="time the static analysis and all of a submission's cells and exercises may take "
        f"together (default {DEFAULT_BUDGET:g})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attn-course", description="A PyTorch course on attention mechanisms."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    lab = commands.add_parser("lab", help="start the course in JupyterLab (127.0.0.1)")
    lab.add_argument("--port", type=int, default=None, help="port (default: first free from 8888)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.add_argument(
        "--dir", type=Path, default=None, metavar="DIR",
        help="course folder: lessons and exercises are copied there on first run and updated "
        "later without overwriting your changes (default: the course folder you are in, "
        "else ~/attn-course)",
    )  # fmt: skip
    lab.set_defaults(func=_lab)

    release = commands.add_parser(
        "release", help="write the learners' exercises/ from the solutions/ notebooks"
    )
    release.add_argument(
        "--check",
        action="store_true",
        help="write nothing; fail if exercises/ or the grader's cells are stale",
    )
    release.add_argument("--solutions", default="solutions", help="source folder (solutions)")
    release.add_argument("--exercises", default="exercises", help="target folder (exercises)")
    release.set_defaults(func=_release)

    grade = commands.add_parser(
        "grade", help="grade submitted notebooks in sandboxes; write grades.csv, .json, feedback"
    )
    grade.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                       help=".ipynb files or folders of them")
    grade.add_argument("--out", default="grades", metavar="DIR", help="report folder (grades)")
    grade.add_argument("--workers", type=_positive(int), default=None, metavar="N",
                       help="submissions graded at once (default: all cores)")
    grade.add_argument("--scheduler", type=_scheduler, default=None, metavar="ADDRESS",
                       help="grade on a Dask cluster: its scheduler (tcp://HOST:8786), or local:N "
                       "for N worker processes here (default: a thread pool here)")
    grade.add_argument("--seed", type=int, default=None, metavar="N",
                       help="seed of the hidden cases (default: the journal's, or random)")
    grade.add_argument("--restart", action="store_true",
                       help="grade every submission again, ignoring DIR's journal")
    grade.add_argument("--allow-import", action="append", type=_module_name, default=[],
                       metavar="MODULE",
                       help="let notebooks import MODULE too (repeatable; recorded in the "
                       "reports; a module that re-exports os, sys or builtins opens a way out)")
    grade.add_argument("--roster", default=None, metavar="CSV",
                       help="the class list: id, name, email, section (optional: login, "
                       "canvas_id, files); see docs/instructors.md")
    grade.add_argument("--student-field", default=None, metavar="KEY",
                       help="notebook metadata field holding the student's id or e-mail "
                       "(dotted, e.g. attn_course.student), looked up in the roster")
    grade.add_argument("--assignment", default=None, metavar="NAME",
                       help="the assignment of notebooks that do not name theirs (metadata lost)")
    grade.add_argument("--allow-weak-sandbox", action="store_true",
                       help="grade even where an isolation layer is missing (recorded in the "
                       "reports)")
    _add_limits(grade)
    _add_similarity(grade)
    grade.set_defaults(func=_grade)

    similar = commands.add_parser(
        "similar", help="write only the similarity report (near copies, closeness to reference)"
    )
    similar.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                         help=".ipynb files or folders of them")
    similar.add_argument("--out", default="grades", metavar="DIR", help="report folder (grades)")
    _add_similarity(similar)
    similar.set_defaults(func=_similar)

    export = commands.add_parser(
        "export", help="write a gradebook (one row per student) from a graded folder"
    )
    export.add_argument("dir", metavar="DIR", help="the folder `attn-course grade --out` wrote")
    export.add_argument("--to", required=True, choices=("csv", "canvas", "moodle", "nbgrader"),
                        help="the gradebook's layout")
    export.add_argument("--output", default=None, metavar="FILE",
                        help="where to write it (default DIR/gradebook-<layout>.csv)")
    export.set_defaults(func=_export)

    report = commands.add_parser(
        "report", help="write every report of a graded folder again from its journal (and "
        "overrides.csv), without grading: grades.csv, .json, feedback pages, class.html",
    )
    report.add_argument("dir", metavar="DIR", help="the --out folder of `attn-course grade`")
    report.add_argument("--lessons-url", default=None, metavar="URL",
                        help="the course's static site (make site), to link each mistake to "
                        "the lesson that teaches it")
    report.set_defaults(func=_report)

    check = commands.add_parser("check", help="grade your own notebook and print the verdicts")
    check.add_argument("notebook", metavar="NOTEBOOK", help="your .ipynb")
    _add_limits(check)
    check.set_defaults(func=_check)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
