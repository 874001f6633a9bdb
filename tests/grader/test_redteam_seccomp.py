"""Red team at the seccomp layer: the filter itself, loaded in a throwaway fork, refuses the
kernel interfaces a sandbox escape would use, and still lets torch fork and run threads."""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import sys

import pytest

from attn_course.grader import isolate

_libc = ctypes.CDLL(None, use_errno=True)
_NR = {"io_uring_setup": 425, "bpf": 321, "keyctl": 250, "perf_event_open": 298}
_NR |= {"userfaultfd": 323, "clone3": 435, "setns": 308}


def in_filtered_child(action) -> int:
    """The exit code of a fork that loads the filter and runs ``action`` (it returns 0 when
    the filter did what it should)."""
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            isolate.forbid_syscalls()
            code = action()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def refused(number: int, expected: int = errno.EPERM) -> int:
    result = _libc.syscall(number, 0, 0, 0, 0, 0)
    return 0 if result == -1 and ctypes.get_errno() == expected else 1


@pytest.fixture(autouse=True)
def x86_64_with_seccomp():
    if os.uname().machine != "x86_64" or isolate.pyseccomp is None:
        pytest.skip("the syscall numbers are x86_64's; needs pyseccomp")


@pytest.mark.parametrize("name", ["io_uring_setup", "bpf", "keyctl", "perf_event_open"])
def test_kernel_interfaces_are_refused(name):
    assert in_filtered_child(lambda: refused(_NR[name])) == 0


def test_new_namespaces_are_refused():
    def unshare() -> int:
        return 0 if _libc.unshare(0x10000000) == -1 and ctypes.get_errno() == errno.EPERM else 1

    assert in_filtered_child(unshare) == 0
    assert in_filtered_child(lambda: refused(_NR["setns"])) == 0


# Run in a fresh interpreter: a fork of the test process would inherit torch's OpenMP pool
# from whatever tests ran before it in this worker, and OpenMP does not survive a fork (the
# child's first parallel matmul can wait forever). The zygote is a fresh process too.
CLONE3_THEN_FORK_AND_THREADS = f"""
import ctypes, errno, os, sys
import torch
from attn_course.grader import isolate
libc = ctypes.CDLL(None, use_errno=True)
isolate.forbid_syscalls()
if libc.syscall({_NR["clone3"]}, 0, 0, 0, 0, 0) != -1 or ctypes.get_errno() != errno.ENOSYS:
    sys.exit("clone3 was not refused with ENOSYS")
pid = os.fork()
if pid == 0:
    os._exit(0)
if os.waitpid(pid, 0)[1] != 0:
    sys.exit("fork failed under the filter")
torch.set_num_threads(2)
if (torch.ones(256, 256) @ torch.ones(256, 256))[0, 0].item() != 256:
    sys.exit("a two-thread matmul gave a wrong value under the filter")
"""


def test_clone3_falls_back_and_fork_and_threads_still_work():
    done = subprocess.run(
        [sys.executable, "-c", CLONE3_THEN_FORK_AND_THREADS],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
