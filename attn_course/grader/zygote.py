"""The zygote: a process that imports torch once and forks one sandbox per request.

Run as ``python -m attn_course.grader.zygote FD`` by ``kernel.Zygote``, with FD one end of a
``SOCK_SEQPACKET`` socket pair. Each request is a JSON message ``{"home": str, "limits": {...}}``
carrying two file descriptors (the sandbox's request and reply pipes); the answer is
``{"pid": int}``. When a sandbox ends, the zygote reports ``{"exit": pid, "code": int}``
(negative: killed by that signal). The zygote exits when the grader closes the socket, and its
sandboxes die with it. It never runs a student's code itself: only its forks do.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys

from attn_course.grader import sandbox


def serve(sock: socket.socket) -> None:
    sandbox.warm_up()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    sock.send(json.dumps({"ready": True}).encode())
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
                    sandbox.serve(fds[0], fds[1], request["home"], limits)
                finally:
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
