"""The grader's side of a sandbox: start it from the zygote, ask it, kill it, restart it.

``Zygote`` starts the zygote process (``zygote.py``), which has the sandbox module (and so
torch) imported once: each submission's sandbox is a fork of it, started in milliseconds.
``execute`` runs a prepared submission's cells, then its exercises, in sandboxes; a cell or
exercise that times out or kills its sandbox is left out and the others are replayed in a
fresh one, so it costs only the exercises it breaks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attn_course.grader import codec, confine
from attn_course.grader.sandbox import Limits

MAX_REPLY_BYTES = 256 << 20


class Zygote:
    """The grader's handle on the zygote process (``zygote.py``): fork a sandbox, learn how
    it exited. One per batch; use it as a context manager."""

    def __init__(self) -> None:
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        environment = confine.scrubbed_environment(Path(tempfile.gettempdir()))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "attn_course.grader.zygote", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        theirs.close()
        self._fork_lock = threading.Lock()
        self._changed = threading.Condition()
        self._pids: list[int] = []
        self._exits: dict[int, int] = {}
        self._ready = False
        self._alive = True
        threading.Thread(target=self._listen, name="zygote-listener", daemon=True).start()
        with self._changed:
            self._changed.wait_for(lambda: self._ready or not self._alive, timeout=120)
        if not self._ready:
            self.close()
            raise RuntimeError("the grader's zygote process failed to start")

    def _listen(self) -> None:
        while True:
            try:
                message = self._sock.recv(1 << 16)
            except OSError:
                message = b""
            with self._changed:
                if not message:
                    self._alive = False
                    self._changed.notify_all()
                    return
                event = json.loads(message)
                if "ready" in event:
                    self._ready = True
                elif "pid" in event:
                    self._pids.append(event["pid"])
                else:
                    self._exits[event["exit"]] = event["code"]
                self._changed.notify_all()

    def fork(self, read_fd: int, write_fd: int, home: Path, limits: Limits) -> int:
        """Start a sandbox reading requests from ``read_fd`` and writing replies to
        ``write_fd``; return its process id."""
        request = json.dumps({"home": str(home), "limits": dataclasses.asdict(limits)})
        with self._fork_lock, self._changed:
            if not self._alive:
                raise SandboxDied("the zygote is gone")
            socket.send_fds(self._sock, [request.encode()], [read_fd, write_fd])
            self._changed.wait_for(lambda: self._pids or not self._alive, timeout=60)
            if not self._pids:
                raise SandboxDied("the zygote did not fork a sandbox")
            return self._pids.pop()

    @property
    def alive(self) -> bool:
        return self._alive

    def exit_code(self, pid: int, timeout: float) -> int | None:
        """The exit code of sandbox ``pid`` (negative: the signal that killed it), or None if
        it has not exited within ``timeout`` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exits or not self._alive, timeout)
            return self._exits.pop(pid, None)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # wakes the listener; the zygote reads end of file
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SandboxTimeout(Exception):
    """The sandbox did not answer in time (it has been killed)."""


class SandboxDied(Exception):
    """The sandbox exited, was killed, or broke the protocol (it has been killed)."""


class Sandbox:
    """One running sandbox process with its own directory holding a copy of the notebook."""

    def __init__(self, zygote: Zygote, notebook: Path, limits: Limits) -> None:
        self.zygote, self.limits = zygote, limits
        self.home = Path(tempfile.mkdtemp(prefix="attn-course-sandbox-"))
        shutil.copy2(notebook, self.home / notebook.name)
        requests_r, self.requests = os.pipe()
        self.replies, replies_w = os.pipe()
        os.set_blocking(self.requests, False)
        self.pid: int | None = None
        self.exit_code: int | None = None
        try:
            self.pid = zygote.fork(requests_r, replies_w, self.home, limits)
        except SandboxDied:
            self.close()
            raise
        finally:
            os.close(requests_r)
            os.close(replies_w)

    def ask(self, request: dict, timeout: float, expect: dict[str, Any]) -> dict:
        """Send one request and return the reply, a dict with the keys and types of ``expect``;
        raise ``SandboxTimeout`` or ``SandboxDied``."""
        try:
            codec.write_message(self.requests, request, timeout)
            reply = codec.read_message(self.replies, timeout=timeout, max_bytes=MAX_REPLY_BYTES)
            if not _has_shape(reply, expect):
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
        if code < 0:
            name = signal.Signals(-code).name
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
        for fd in (self.requests, self.replies):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.requests = self.replies = -1
        shutil.rmtree(self.home, ignore_errors=True)


@dataclass(frozen=True)
class CellRun:
    """How one cell went: ``status`` is ok, error, timeout or died."""

    index: int
    name: str
    grade_id: str | None
    status: str
    message: str = ""
    output: str = ""


@dataclass(frozen=True)
class ExerciseRun:
    """How one exercise's hidden cases went: ``status`` is ok, missing, timeout or died."""

    name: str
    status: str
    outcomes: list = field(default_factory=list)
    message: str = ""


@dataclass(frozen=True)
class Execution:
    cells: list[CellRun]
    exercises: dict[str, ExerciseRun]


@dataclass(frozen=True)
class CellCode:
    index: int
    grade_id: str | None
    code: str

    @property
    def name(self) -> str:
        return f"<cell {self.index}>"


@dataclass(frozen=True)
class ExerciseRequest:
    name: str
    cases: Sequence[Any]
    forbidden: Sequence[str]


def execute(
    zygote: Zygote,
    notebook: Path,
    cells: Sequence[CellCode],
    exercises: Sequence[ExerciseRequest],
    limits: Limits,
) -> Execution:
    """Run ``cells`` in order, then each exercise's cases, each with ``limits.timeout``."""
    runner = _Runner(zygote, notebook, limits)
    try:
        cell_runs = [runner.run_cell(cell) for cell in cells]
        exercise_runs = {request.name: runner.run_exercise(request) for request in exercises}
    finally:
        runner.close()
    return Execution(cell_runs, exercise_runs)


class _Runner:
    """Keeps one sandbox alive with every good cell run in it; restarts it after a break."""

    def __init__(self, zygote: Zygote, notebook: Path, limits: Limits) -> None:
        self.zygote, self.notebook, self.limits = zygote, notebook, limits
        self.good: list[CellCode] = []
        self.sandbox: Sandbox | None = None

    def _ask(self, request: dict, expect: dict[str, Any]) -> dict:
        if self.sandbox is None:
            self._restart()
        try:
            return self.sandbox.ask(request, self.limits.timeout, expect)
        except (SandboxTimeout, SandboxDied):
            self.sandbox = None
            raise

    def _restart(self) -> None:
        """A fresh sandbox with the good cells replayed; a cell that breaks now is dropped."""
        while True:
            self.sandbox = Sandbox(self.zygote, self.notebook, self.limits)
            for cell in list(self.good):
                try:
                    self.sandbox.ask(_cell_request(cell), self.limits.timeout, CELL_REPLY)
                except (SandboxTimeout, SandboxDied):
                    self.good.remove(cell)
                    break
            else:
                return

    def run_cell(self, cell: CellCode) -> CellRun:
        try:
            reply = self._ask(_cell_request(cell), CELL_REPLY)
        except SandboxTimeout:
            message = f"did not finish within {self.limits.timeout:g} s"
            return CellRun(cell.index, cell.name, cell.grade_id, "timeout", message)
        except SandboxDied as died:
            return CellRun(cell.index, cell.name, cell.grade_id, "died", str(died))
        self.good.append(cell)
        status = "ok" if reply["ok"] else "error"
        return CellRun(
            cell.index, cell.name, cell.grade_id, status, reply["error"] or "", reply["output"]
        )

    def run_exercise(self, request: ExerciseRequest) -> ExerciseRun:
        message = {
            "op": "exercise",
            "name": request.name,
            "cases": list(request.cases),
            "forbidden": list(request.forbidden),
        }
        try:
            reply = self._ask(message, EXERCISE_REPLY)
        except SandboxTimeout:
            text = f"did not return within {self.limits.timeout:g} s on the hidden cases"
            return ExerciseRun(request.name, "timeout", message=text)
        except SandboxDied as died:
            return ExerciseRun(request.name, "died", message=str(died))
        if not reply["defined"]:
            return ExerciseRun(request.name, "missing")
        outcomes = reply["outcomes"]
        if len(outcomes) != len(request.cases):
            return ExerciseRun(request.name, "died", message="the sandbox broke the protocol")
        return ExerciseRun(request.name, "ok", outcomes)

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()


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
