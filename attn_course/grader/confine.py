"""Confining a sandbox process before it runs a student's code (Linux).

- resource limits: address space (the memory limit), size of any file written, no core dumps,
  CPU seconds as a backstop to the grader's own per-cell timeout;
- a scrubbed environment and a private working and home directory;
- Landlock (kernel 5.13+, no root needed): the process and everything it starts may read only
  what running a notebook needs (``readable_paths``: the Python runtime and its packages, the
  course package excepted) and write only inside its own directory, may not connect or bind
  TCP sockets, and may not signal processes outside its domain. Where Landlock is missing the
  other limits still hold (``landlock_abi() == 0``), and ``attn-course grade`` refuses to grade
  unless told otherwise (``isolate.probe``).
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

# Filesystem rights that read (Landlock ABI 1) and that change something (ABI 1, 2 and 3).
_EXECUTE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 2, 1 << 3
_FS_READ = _EXECUTE | _READ_FILE | _READ_DIR
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


def restrict(readable: list[Path], writable: list[Path]) -> int:
    """Allow reading only beneath ``readable`` and ``writable``, writing only beneath
    ``writable``; forbid TCP and signals outside the domain; return the ABI used (0 when
    Landlock is not available). Paths that do not exist are skipped."""
    abi = landlock_abi()
    if abi == 0:
        return 0
    fs_write = _FS_WRITE_ABI1 | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    attr = _RulesetAttr(
        handled_access_fs=_FS_READ | fs_write,
        handled_access_net=_NET_TCP if abi >= 4 else 0,
        scoped=_SCOPE if abi >= 6 else 0,
    )
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = _libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for path, access in [(p, _FS_READ) for p in readable] + [
            (p, _FS_READ | fs_write) for p in writable
        ]:
            if path.exists():
                file_access = _READ_FILE | _EXECUTE | (access & (_WRITE_FILE | _FS_TRUNCATE))
                _allow(ruleset, path, access if path.is_dir() else file_access)
        if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if _libc.syscall(_RESTRICT_SELF, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


def readable_paths(hidden: Path) -> list[Path]:
    """What a sandbox may read: the Python runtime, its packages and the system's shared
    libraries, with the folder ``hidden`` (the course package) left out wherever it lies
    below one of them (its siblings are allowed one by one, up to the allowed folder).

    Landlock follows symbolic links, so every root and sibling is resolved first, and one
    whose target holds ``hidden`` is split again (a venv's ``lib64 -> lib``, ``/lib ->
    usr/lib`` on merged-/usr systems): allowing the link would allow all it points to."""
    return _without(set(runtime_roots()), hidden.resolve())


def runtime_roots() -> list[Path]:
    """The folders and files a notebook's run reads, before the course package is taken out
    of them (``readable_paths``): the Python runtime, its packages and the system's shared
    libraries. ``isolate.expose`` makes them reachable by the sandbox's user."""
    roots = {Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    roots |= {Path(p) for p in ("/usr", "/lib", "/lib64", "/bin", "/sys/devices/system/cpu")}
    roots |= {Path(p) for p in ("/etc/ld.so.cache", "/etc/localtime", "/proc")}
    roots |= {Path(p) for p in ("/dev/null", "/dev/zero", "/dev/urandom")}
    return sorted(roots | set(_package_folders()))


def _package_folders() -> list[Path]:
    """The folders on ``sys.path`` outside the prefixes (site folders a ``.pth`` file adds,
    such as another environment's packages), except one that holds the course package: an
    editable install puts the course's source tree there, with its solutions beside it."""
    course = Path(__file__).resolve().parents[1]
    folders = []
    for entry in sys.path:
        try:
            folder = Path(entry).resolve()
        except OSError:
            continue
        if entry and folder.is_dir() and folder != course and folder not in course.parents:
            folders.append(folder)
    return folders


def _without(paths: set[Path], hidden: Path) -> list[Path]:
    """``paths`` resolved, each one that holds ``hidden`` replaced by its other entries."""
    allowed: set[Path] = set()
    for path in paths:
        try:
            path = path.resolve()
        except OSError:  # a loop of links: leave it out
            continue
        if hidden == path or path in hidden.parents:
            allowed |= set(_without(set(_siblings_towards(path, hidden)), hidden))
        elif hidden not in path.parents:
            allowed.add(path)
    return sorted(allowed)


def _siblings_towards(root: Path, hidden: Path) -> list[Path]:
    """Everything below ``root`` except ``hidden``: at each level from ``root`` down, the
    entries that are not on the way to ``hidden`` (to be resolved by the caller)."""
    allowed, here = [], root
    for part in hidden.relative_to(root).parts:
        allowed += [entry for entry in here.iterdir() if entry.name != part]
        here = here / part
    return allowed


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


def set_limits(memory_mb: int, file_mb: int, cpu_seconds: int, processes: int = 0) -> None:
    """Resource limits for this process and its children. The address-space limit is the
    memory the process already maps (the pre-imported runtime) plus ``memory_mb``;
    ``processes`` (0: none) limits the processes of this uid, for machines without a pids
    cgroup."""
    mapped = os.sysconf("SC_PAGE_SIZE") * int(Path("/proc/self/statm").read_text().split()[0])
    _lower(resource.RLIMIT_AS, mapped + memory_mb * MiB)
    _lower(resource.RLIMIT_FSIZE, file_mb * MiB)
    _lower(resource.RLIMIT_CORE, 0)
    _lower(resource.RLIMIT_CPU, cpu_seconds)
    if processes:
        _lower(resource.RLIMIT_NPROC, processes)


def _lower(limit: int, value: int) -> None:
    """Set both the soft and the hard limit (the student cannot raise a hard limit back);
    the CPU hard limit is a second later, so that SIGXCPU comes before SIGKILL."""
    _, hard = resource.getrlimit(limit)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    later = value + 1 if hard == resource.RLIM_INFINITY else min(value + 1, hard)
    resource.setrlimit(limit, (value, later if limit == resource.RLIMIT_CPU else value))


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
