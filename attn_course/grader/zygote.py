"""The zygote: a process that imports torch once and forks one sandbox per request.

``Zygote`` (the grader's side) runs ``python -m attn_course.grader.zygote FD``, FD one end of a
``SOCK_SEQPACKET`` socket pair. Each request is a JSON message ``{"home": str, "limits": {...}}``
carrying two file descriptors (the sandbox's request and reply pipes); the answer is
``{"pid": int}``. When a sandbox ends, the zygote reports ``{"exit": pid, "code": int}``
(negative: killed by that signal; ``SETUP_FAILED``: the sandbox raised instead of serving).
The zygote exits when the grader closes the socket, and its sandboxes die with it. It never
runs a student's code itself: only its forks do.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from attn_course.grader import confine

SETUP_FAILED = 70  # a sandbox's exit status when it failed before or between requests

class ZygoteGone(Exception):
    """The zygote process died or never became ready."""


class Zygote:
    """The grader's handle on the zygote process: fork a sandbox, learn how it exited. One per
    batch; use it as a context manager. The process starts importing torch at once, in
    parallel with the grader; ``fork`` waits until it is ready."""

    def __init__(self, python: str | None = None) -> None:
        """``python``: the interpreter to run the zygote with (default: this process's)."""
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        environment = confine.scrubbed_environment(Path(tempfile.gettempdir()))
        command = [python or sys.executable, "-I", "-m", "attn_course.grader.zygote"]
        self._process = subprocess.Popen(  # -I: nothing from the working directory or the env
            [*command, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            env=environment,
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        theirs.close()
        self._fork_lock = threading.Lock()
        self._changed = threading.Condition()
        self._pids: list[int] = []
        self._exits: dict[int, int] = {}
        self._ready = False
        self._missing: tuple[str, ...] = ()
        self._alive = True
        threading.Thread(target=self._listen, name="zygote-listener", daemon=True).start()

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
                    self._ready, self._missing = True, tuple(event["missing"])
                elif "pid" in event:
                    self._pids.append(event["pid"])
                else:
                    self._exits[event["exit"]] = event["code"]
                self._changed.notify_all()

    def fork(
        self, read_fd: int, write_fd: int, home: Path, limits: dict, cgroups: list[str]
    ) -> int:
        """Start a sandbox reading requests from ``read_fd`` and writing replies to
        ``write_fd``, with ``limits`` (a ``sandbox.Limits`` as a dict), in ``cgroups``;
        return its pid."""
        request = json.dumps({"home": str(home), "limits": limits, "cgroups": cgroups})
        with self._fork_lock, self._changed:
            self._changed.wait_for(lambda: self._ready or not self._alive, timeout=300)
            if not (self._alive and self._ready):
                raise ZygoteGone("the grader's zygote process is gone or never started")
            socket.send_fds(self._sock, [request.encode()], [read_fd, write_fd])
            self._changed.wait_for(lambda: self._pids or not self._alive, timeout=60)
            if not self._pids:
                raise ZygoteGone("the zygote did not fork a sandbox")
            return self._pids.pop()

    def missing_layers(self) -> tuple[str, ...]:
        """The isolation layers (``isolate.LAYERS``) this machine cannot give a sandbox;
        waits until the zygote is ready."""
        with self._changed:
            self._changed.wait_for(lambda: self._ready or not self._alive, timeout=300)
            if not self._ready:
                raise ZygoteGone("the grader's zygote process is gone or never started")
            return self._missing

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


def serve(sock: socket.socket) -> None:
    """The zygote process's loop (this module runs as a script; only here torch is imported)."""
    from attn_course.grader import isolate, sandbox

    sandbox.warm_up()
    for path in confine.runtime_roots():  # each sandbox then only mounts (``isolate.expose``)
        isolate.closed_folder_above(path)
    missing = isolate.probe()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    sock.send(json.dumps({"ready": True, "missing": missing}).encode())
    while True:
        for fd, _ in poller.poll():
            if fd == wake_r:
                os.read(wake_r, 4096)
                _reap(sock)
                continue
            message, fds, _, _ = socket.recv_fds(sock, 1 << 16, 2)
            if not message:
                return
            request = json.loads(message)
            pid = os.fork()
            if pid == 0:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                for fd_to_close in (wake_r, wake_w, sock.fileno()):
                    os.close(fd_to_close)
                try:
                    limits = sandbox.Limits(**request["limits"])
                    sandbox.serve(
                        fds[0], fds[1], request["home"], limits, request["cgroups"], missing
                    )
                except BaseException:
                    os._exit(SETUP_FAILED)
                os._exit(0)
            for fd_to_close in fds:
                os.close(fd_to_close)
            sock.send(json.dumps({"pid": pid}).encode())


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        sock.send(json.dumps({"exit": pid, "code": code}).encode())


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
    os._exit(0)  # no interpreter teardown: the grader waits for this exit
