"""The grader's side of a sandbox: start it from the zygote, ask it, kill it, restart it.

Each submission's sandbox is a fork of the zygote (``zygote.py``), which has the sandbox
module (and so torch) imported once, so it starts in milliseconds; its cgroups are made here
(``isolate.Cgroup``) and removed with it. ``execute`` runs a prepared submission's cells, then
its exercises, in sandboxes; a cell or exercise that times out or kills its sandbox is left
out and the others are replayed in a fresh one, so it costs only the exercises it breaks. All
of it, replays included, fits in the submission's time budget (``Limits.budget``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attn_course.grader import codec
from attn_course.grader.credit import ReferencePiece
from attn_course.grader.isolate import Cgroup
from attn_course.grader.sandbox import Limits
from attn_course.grader.zygote import SETUP_FAILED, Zygote, ZygoteGone

RUNTIME_MB = 1024  # what the pre-imported runtime may add to a sandbox's memory cgroup
MAX_REPLY_BYTES = 64 << 20  # tensors of the hidden cases' outputs, with room to spare
MAX_REPLY_JSON = 1 << 20  # the rest: messages (the sandbox caps them far lower) and structure


class SandboxTimeout(Exception):
    """The sandbox did not answer in time (it has been killed)."""


class BudgetSpent(SandboxTimeout):
    """The submission's whole time budget is used up (nothing more is run)."""


class SandboxDied(Exception):
    """The sandbox exited, was killed, or broke the protocol (it has been killed)."""


class Sandbox:
    """One running sandbox process with its own directory holding a copy of the notebook."""

    def __init__(self, zygote: Zygote, notebook: Path, limits: Limits) -> None:
        self.zygote, self.limits = zygote, limits
        self.home = Path(tempfile.mkdtemp(prefix="attn-course-sandbox-"))
        shutil.copy2(notebook, self.home / notebook.name)
        self.cgroup = Cgroup(self.home.name, limits.memory_mb + RUNTIME_MB, limits.processes)
        requests_r, self.requests = os.pipe()
        self.replies, replies_w = os.pipe()
        os.set_blocking(self.requests, False)
        self.pid: int | None = None
        self.exit_code: int | None = None
        try:
            cgroups = [str(path) for path in self.cgroup.paths]
            self.pid = zygote.fork(
                requests_r, replies_w, self.home, dataclasses.asdict(limits), cgroups
            )
        except ZygoteGone as error:
            self.close()
            raise SandboxDied(str(error)) from None
        except OSError as error:  # the socket to the zygote broke (BrokenPipeError, ...)
            self.close()
            raise SandboxDied(f"the sandbox could not be started ({error})") from None
        except BaseException:
            self.close()
            raise
        finally:
            os.close(requests_r)
            os.close(replies_w)

    def ask(self, request: dict, timeout: float, expect: dict[str, Any]) -> dict:
        """Send one request and return the reply, a dict with the keys and types of ``expect``;
        raise ``SandboxTimeout`` or ``SandboxDied``."""
        nonce = secrets.token_hex(16)  # a reply forged by an earlier cell cannot carry it
        try:
            codec.write_message(self.requests, {**request, "nonce": nonce}, timeout)
            reply = codec.read_message(
                self.replies, timeout=timeout, max_bytes=MAX_REPLY_BYTES, max_json=MAX_REPLY_JSON
            )
            if not _has_shape(reply, {**expect, "nonce": str}) or reply.pop("nonce") != nonce:
                raise codec.ProtocolError("a reply of the wrong shape")
            return reply
        except codec.Deadline:
            self.close()
            raise SandboxTimeout() from None
        except (codec.ProtocolError, OSError) as error:
            reason = self.exit_reason() or f"it broke the protocol ({error})"
            self.close()
            raise SandboxDied(reason) from None

    def exit_reason(self) -> str:
        """Why the process ended, in words ("" while it runs)."""
        if self.exit_code is None:
            self.exit_code = self.zygote.exit_code(self.pid, timeout=2)
        code = self.exit_code
        if code is None:
            return ""
        if code == SETUP_FAILED:
            return "the sandbox could not start (its set-up failed; a fault of the grader)"
        if 128 < code <= 128 + 64:  # the waiter could not re-raise the signal: 128 + signal
            code = 128 - code
        if code < 0:
            name = _signal_name(-code)
            hint = {
                "SIGKILL": " (memory exhausted, or killed)",
                "SIGXCPU": " (CPU time limit)",
                "SIGSEGV": " (crashed)",
                "SIGXFSZ": " (file size limit)",
            }.get(name, "")
            return f"the kernel died: {name}{hint}"
        return f"the kernel exited with status {code}"

    def close(self) -> None:
        """Kill the sandbox and everything it started; remove its directory."""
        if self.pid is not None and self.exit_code is None:
            for kill in (os.killpg, os.kill):
                try:
                    kill(self.pid, signal.SIGKILL)
                    break
                except (ProcessLookupError, PermissionError):
                    continue
            self.exit_code = self.zygote.exit_code(self.pid, timeout=5)  # gone before rmtree
        self.cgroup.kill()  # belt and braces: the PID namespace died with its first process
        self.cgroup.remove()
        for fd in (self.requests, self.replies):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.requests = self.replies = -1
        shutil.rmtree(self.home, ignore_errors=True)


@dataclass(frozen=True)
class CellRun:
    """How one cell went: ``status`` is ok, error, timeout or died; ``task`` as in
    ``CellCode``."""

    index: int
    name: str
    grade_id: str | None
    status: str
    message: str = ""
    output: str = ""
    task: str | None = None

    @property
    def where(self) -> str:
        return _where(self.index, self.grade_id, self.task)


@dataclass(frozen=True)
class ExerciseRun:
    """How one exercise's hidden cases went: ``status`` is ok, missing, timeout or died."""

    name: str
    status: str
    outcomes: list = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0  # the round trip of the request, a restart and replay included


@dataclass(frozen=True)
class Execution:
    cells: list[CellRun]
    exercises: dict[str, ExerciseRun]


@dataclass(frozen=True)
class CellCode:
    """One code cell to run: ``task`` names it for people (its grade_id, or the heading of
    the section it is in); ``where`` says it in words."""

    index: int
    grade_id: str | None
    code: str
    task: str | None = None

    @property
    def name(self) -> str:
        return f"<cell {self.index}>"

    @property
    def where(self) -> str:
        return _where(self.index, self.grade_id, self.task)


def _where(index: int, grade_id: str | None, task: str | None) -> str:
    """``cell 6 (task softmax)``, ``cell 3 (under "Task 1: ...")`` or ``cell 9``."""
    if grade_id:
        return f"cell {index} (task {grade_id})"
    return f'cell {index} (under "{task}")' if task else f"cell {index}"


@dataclass(frozen=True)
class ExerciseRequest:
    """An exercise to judge on ``cases``; ``reference``: the reference code the sandbox places
    in the notebook first, for fair credit (``credit.reference_piece``)."""

    name: str
    cases: Sequence[Any]
    forbidden: Sequence[str]
    reference: ReferencePiece | None = None


def execute(
    zygote: Zygote,
    notebook: Path,
    cells: Sequence[CellCode],
    exercises: Sequence[ExerciseRequest],
    limits: Limits,
    deadline: float | None = None,
) -> Execution:
    """Run ``cells`` in order, then each exercise's cases, each with ``limits.timeout``, all
    before ``deadline`` (a ``time.monotonic()`` instant; None: ``limits.budget`` from now)."""
    runner = _Runner(zygote, notebook, limits, deadline)
    try:
        cell_runs = [runner.run_cell(cell) for cell in cells]
        exercise_runs = {request.name: runner.run_exercise(request) for request in exercises}
    finally:
        runner.close()
    return Execution(cell_runs, exercise_runs)


class _Runner:
    """Keeps one sandbox alive with every good cell run in it; restarts it after a break."""

    def __init__(
        self, zygote: Zygote, notebook: Path, limits: Limits, deadline: float | None = None
    ) -> None:
        self.zygote, self.notebook, self.limits = zygote, notebook, limits
        self.good: list[CellCode] = []
        self.sandbox: Sandbox | None = None
        self.deadline = budget_deadline(limits) if deadline is None else deadline

    def _timeout(self) -> float:
        """The per-cell timeout, or what is left of the budget if that is less."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            if self.sandbox is not None:
                self.sandbox.close()
                self.sandbox = None
            raise BudgetSpent()
        return min(self.limits.timeout, left)

    def _ask(self, request: dict, expect: dict[str, Any]) -> dict:
        self._timeout()  # budget spent: BudgetSpent before any sandbox is started
        if self.sandbox is None:
            self._restart()
        try:
            return self.sandbox.ask(request, self._timeout(), expect)
        except (SandboxTimeout, SandboxDied):
            self.sandbox = None
            raise

    def _restart(self) -> None:
        """A fresh sandbox with the good cells replayed (their time counts against the
        budget); a cell that breaks now is dropped."""
        while True:
            self.sandbox = Sandbox(self.zygote, self.notebook, self.limits)
            for cell in list(self.good):
                try:
                    self.sandbox.ask(_cell_request(cell), self._timeout(), CELL_REPLY)
                except BudgetSpent:
                    raise
                except (SandboxTimeout, SandboxDied):
                    self.good.remove(cell)
                    break
            else:
                return

    def run_cell(self, cell: CellCode) -> CellRun:
        try:
            reply = self._ask(_cell_request(cell), CELL_REPLY)
        except BudgetSpent:
            message = (
                f"not run: the submission's time budget of {self.limits.budget:g} s is used up"
            )
            return CellRun(cell.index, cell.name, cell.grade_id, "timeout", message, task=cell.task)
        except SandboxTimeout:
            message = f"did not finish within {self.limits.timeout:g} s"
            return CellRun(cell.index, cell.name, cell.grade_id, "timeout", message, task=cell.task)
        except SandboxDied as died:
            return CellRun(cell.index, cell.name, cell.grade_id, "died", str(died), task=cell.task)
        self.good.append(cell)
        status = "ok" if reply["ok"] else "error"
        message, output = reply["error"] or "", reply["output"]
        return CellRun(cell.index, cell.name, cell.grade_id, status, message, output, cell.task)

    def run_exercise(self, request: ExerciseRequest) -> ExerciseRun:
        message = {
            "op": "exercise",
            "name": request.name,
            "cases": list(request.cases),
            "forbidden": list(request.forbidden),
            "reference": dataclasses.asdict(request.reference) if request.reference else None,
        }
        started = time.monotonic()
        try:
            reply = self._ask(message, EXERCISE_REPLY)
        except BudgetSpent:
            text = (
                f"was not run: the submission's time budget of {self.limits.budget:g} s is used up"
            )
            return ExerciseRun(request.name, "timeout", message=text)
        except SandboxTimeout:
            text = f"did not return within {self.limits.timeout:g} s on the hidden cases"
            return ExerciseRun(request.name, "timeout", message=text, seconds=_since(started))
        except SandboxDied as died:
            return ExerciseRun(request.name, "died", message=str(died), seconds=_since(started))
        seconds = _since(started)
        if not reply["defined"]:
            return ExerciseRun(request.name, "missing")
        outcomes = reply["outcomes"]
        if len(outcomes) != len(request.cases):
            return ExerciseRun(request.name, "died", message="the sandbox broke the protocol")
        return ExerciseRun(request.name, "ok", outcomes, seconds=seconds)

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()


def _since(started: float) -> float:
    return time.monotonic() - started


def budget_deadline(limits: Limits) -> float:
    """The ``time.monotonic()`` instant a submission's budget runs out from now (inf: none)."""
    return time.monotonic() + limits.budget if limits.budget else math.inf


def _signal_name(number: int) -> str:
    """``SIGKILL``; ``signal 40`` for a signal without a name (a real-time one)."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _cell_request(cell: CellCode) -> dict:
    return {"op": "cell", "code": cell.code, "name": cell.name}


CELL_REPLY = {"ok": bool, "error": (str, type(None)), "output": str}
EXERCISE_REPLY = {"defined": bool, "outcomes": list}


def _has_shape(reply: Any, expect: dict[str, Any]) -> bool:
    """Whether ``reply`` is a dict with exactly ``expect``'s keys, each of the given type;
    outcomes must be ``Outcome``s whose error and forbidden names are strings."""
    if not (isinstance(reply, dict) and set(reply) == set(expect)):
        return False
    if not all(isinstance(reply[key], kind) for key, kind in expect.items()):
        return False
    from attn_course.checks.core import Outcome

    return all(
        isinstance(outcome, Outcome)
        and isinstance(outcome.error, str | None)
        and isinstance(outcome.forbidden, tuple | list)
        and all(isinstance(name, str) for name in outcome.forbidden)
        for outcome in reply.get("outcomes", [])
    )
