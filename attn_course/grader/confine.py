"""Confining a sandbox process before it runs a student's code (Linux).

- resource limits: address space (the memory limit), size of any file written, no core dumps,
  CPU seconds as a backstop to the grader's own per-cell timeout;
- a scrubbed environment and a private working and home directory;
- Landlock (kernel 5.13+, no root needed): the process and everything it starts may write only
  inside its own directory, may not connect or bind TCP sockets, and may not signal processes
  outside its domain. Where Landlock is missing the other limits still hold
  (``landlock_abi() == 0``).
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys
from pathlib import Path

MiB = 1 << 20

# Landlock's syscall numbers are the same on every architecture that has it (asm-generic).
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS, _PR_SET_PDEATHSIG = 38, 1

# Filesystem rights that change something (Landlock ABI 1, 2 and 3).
_WRITE_FILE = 1 << 1
_FS_WRITE_ABI1 = _WRITE_FILE | sum(1 << bit for bit in range(4, 13))  # remove, make anything
_FS_REFER, _FS_TRUNCATE = 1 << 13, 1 << 14
_NET_TCP = (1 << 0) | (1 << 1)  # bind, connect (ABI 4)
_SCOPE = (1 << 0) | (1 << 1)  # abstract unix sockets, signals (ABI 6)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def landlock_abi() -> int:
    """The Landlock ABI version the kernel offers (0: none)."""
    if not sys.platform.startswith("linux"):
        return 0
    version = _libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return max(int(version), 0)


def restrict_writes(writable: list[Path]) -> int:
    """Allow writing only beneath ``writable`` (reading stays allowed), forbid TCP and signals
    outside the domain; return the ABI used (0 when Landlock is not available)."""
    abi = landlock_abi()
    if abi == 0:
        return 0
    fs_write = _FS_WRITE_ABI1 | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    attr = _RulesetAttr(
        handled_access_fs=fs_write,
        handled_access_net=_NET_TCP if abi >= 4 else 0,
        scoped=_SCOPE if abi >= 6 else 0,
    )
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = _libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for path in writable:
            file_write = _WRITE_FILE | (_FS_TRUNCATE if abi >= 3 else 0)
            _allow(ruleset, path, fs_write if path.is_dir() else file_write)
        if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if _libc.syscall(_RESTRICT_SELF, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


def _allow(ruleset: int, path: Path, access: int) -> None:
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        rule = _PathBeneathAttr(allowed_access=access, parent_fd=fd)
        if _libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
    finally:
        os.close(fd)


def die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent (the zygote) exits."""
    if sys.platform.startswith("linux"):
        _libc.prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0)


def set_limits(memory_mb: int, file_mb: int, cpu_seconds: int) -> None:
    """Resource limits for this process and its children. The address-space limit is the
    memory the process already maps (the pre-imported runtime) plus ``memory_mb``."""
    mapped = os.sysconf("SC_PAGE_SIZE") * int(Path("/proc/self/statm").read_text().split()[0])
    _lower(resource.RLIMIT_AS, mapped + memory_mb * MiB)
    _lower(resource.RLIMIT_FSIZE, file_mb * MiB)
    _lower(resource.RLIMIT_CORE, 0)
    _lower(resource.RLIMIT_CPU, cpu_seconds)


def _lower(limit: int, value: int) -> None:
    _, hard = resource.getrlimit(limit)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(limit, (value, hard if limit != resource.RLIMIT_CPU else value + 1))


def scrubbed_environment(home: Path) -> dict[str, str]:
    """The only environment a student's code sees: no tokens, no proxies, a private home."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(home / ".matplotlib"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
