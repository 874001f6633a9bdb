"""The operating system's isolation around each sandbox (Linux): namespaces, an unprivileged
user, seccomp and cgroups. ``confine`` adds resource limits and Landlock inside it.

A sandbox (a fork of the zygote) calls ``enter`` before it runs anything of the student's:

1. it joins the cgroups the grader made for it (``Cgroup``: memory and process count of all
   its processes together, and a way to kill them all);
2. it unshares PID, network, mount and IPC namespaces (with a user namespace too when the
   grader is not root) and forks: the child is PID 1 of the new PID namespace, so every process
   the student starts, ``setsid`` and double-forked ones included, dies with it; the parent
   waits and passes its exit status on to the zygote;
3. the child mounts a fresh ``/proc`` (it sees only its own processes) and a size-limited
   tmpfs as its home (the disk it may fill), makes the runtime reachable past private folders
   (``expose``), then drops to an unprivileged uid with no capabilities (root grader) or
   drops every capability (user namespace);
4. a seccomp filter refuses to create sockets: no network of any kind, pathname unix sockets
   and UDP included (the network namespace has only a loopback that is down anyway), and
   the kernel interfaces of ``DENIED_SYSCALLS`` (io_uring, bpf, ptrace, new namespaces, ...).

``LAYERS`` names each layer; ``probe`` (run once per batch, in a throwaway fork) says which of
them this machine lacks, so that ``attn-course grade`` can refuse to grade without them. Among
them, ``runtime``: a sandbox set up like the grader's can import a module torch imports lazily
(never grade with a runtime the sandbox's user cannot read: every such import would fail).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import importlib
import importlib.util
import os
import resource
import signal
import stat
import sys
import tempfile
import time
import typing
from pathlib import Path

try:  # imported here, while the runtime can still be read
    import pyseccomp
except (ImportError, OSError):  # not installed, or no libseccomp on this system
    pyseccomp = None

LAYERS = {
    "namespaces": "PID, network, mount and IPC namespaces (run as root, or enable unprivileged "
    "user namespaces: sysctl kernel.unprivileged_userns_clone=1 / "
    "kernel.apparmor_restrict_unprivileged_userns=0)",
    "unprivileged-user": "an unprivileged uid and no capabilities (needs the namespaces)",
    "landlock": "Landlock read and write rules (Linux 5.13+ with lsm=landlock; 6.7+ for TCP, "
    "6.12+ for signals)",
    "seccomp": "a seccomp filter refusing sockets (pip install pyseccomp; apt install libseccomp2)",
    "cgroups": "memory and pids cgroups (run as root, cgroup v1 or v2)",
    "runtime": "the Python runtime and its packages readable by the sandbox's user (the grader "
    "reaches them past private folders such as a home of mode 700, but not files or folders "
    "inside them that others may not read: run chmod -R o+rX on the virtual environment and "
    "the Python installation, or recreate them with umask 022)",
}
# Modules the probe imports as a sandbox would (or reads, where already imported): one that
# torch imports only when a notebook needs it, one of the standard library.
RUNTIME_MODULES = ("torch._subclasses.schema_check_mode", "colorsys")

_CLONE_NEWNS, _CLONE_NEWIPC, _CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
_CLONE_NEWPID, _CLONE_NEWNET = 0x20000000, 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 1 << 14, 1 << 18
_MS_BIND = 1 << 12
SANDBOX_UID_BASE = 1 << 20  # far above any real user's uid; one uid per live sandbox

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


class Cgroup:
    """A submission's cgroups (the grader's side): made before the sandbox starts, joined by
    it, emptied and removed when the sandbox is closed. ``paths`` is empty where this
    machine offers no cgroups the grader may write."""

    def __init__(self, name: str, memory_mb: int, max_processes: int) -> None:
        self.paths: list[Path] = []
        for controller, settings in _controllers(memory_mb, max_processes):
            path = controller / name
            try:
                path.mkdir()
                self.paths.append(path)
                for file, value in settings.items():
                    (path / file).write_text(value)
            except OSError:
                self.remove()
                self.paths = []
                return

    def kill(self) -> None:
        """Kill every process left in the cgroups."""
        for path in self.paths:
            if (path / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    (path / "cgroup.kill").write_text("1")
                continue
            with contextlib.suppress(OSError):
                for pid in (path / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)

    def remove(self) -> None:
        for path in self.paths:
            for _ in range(200):  # the last processes may still be exiting
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    self.kill()
                    time.sleep(0.01)


def _controllers(memory_mb: int, max_processes: int) -> list[tuple[Path, dict[str, str]]]:
    """(folder to make a submission's cgroup in, what to write into it), for cgroup v2 when
    it has the memory and pids controllers, else for v1's memory and pids hierarchies."""
    root = Path("/sys/fs/cgroup")
    memory = str(memory_mb << 20)
    v2 = root / "cgroup.controllers"
    if v2.exists() and {"memory", "pids"} <= set(v2.read_text().split()):
        base = root / "attn-course"
        with contextlib.suppress(OSError):
            base.mkdir(exist_ok=True)
            (root / "cgroup.subtree_control").write_text("+memory +pids")
            (base / "cgroup.subtree_control").write_text("+memory +pids")
        settings = {"memory.max": memory, "pids.max": str(max_processes)}
        return [(base, settings)]
    found = []
    for controller, settings in (
        ("memory", {"memory.limit_in_bytes": memory}),
        ("pids", {"pids.max": str(max_processes)}),
    ):
        own = _own_cgroup(controller)
        if own is not None and (root / controller).is_dir():
            found.append((root / controller / own.lstrip("/"), settings))
    return found if len(found) == 2 else []


def _own_cgroup(controller: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                return path
    return None


def join_cgroups(paths: list[str]) -> None:
    """Move this process (and so all it will start) into the submission's cgroups."""
    for path in paths:
        Path(path, "cgroup.procs").write_text(str(os.getpid()))


def enter_namespaces(waiter_closes: list[int]) -> int:
    """Unshare the namespaces and fork. Returns in the child (PID 1 of the new PID namespace),
    with the parent's pid (unique among live sandboxes); the parent (the waiter) closes
    ``waiter_closes`` (the sandbox's channel: only the child uses it), waits for the child and
    ends as it did, never returning."""
    waiter = os.getpid()
    root = os.geteuid() == 0
    uid, gid = os.geteuid(), os.getegid()
    flags = _CLONE_NEWPID | _CLONE_NEWNET | _CLONE_NEWNS | _CLONE_NEWIPC
    _check(_libc.unshare(flags | (0 if root else _CLONE_NEWUSER)), "unshare")
    if not root:  # the same ids inside as outside: files in the home stay the grader's
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    pid = os.fork()
    if pid == 0:
        _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the waiter
        return waiter
    _wait_and_end_like(pid, waiter_closes)


def _wait_and_end_like(pid: int, fds: list[int]) -> typing.NoReturn:
    """The waiter: close ``fds``, wait for ``pid`` and end the way it ended: the same exit
    status, or killed by the same signal (re-raised on itself with no core dump; where it
    cannot be, exit status 128 + the signal, as a shell reports it). Never returns, whatever
    fails: nothing of the sandbox's set-up may run on in the waiter."""
    code = 70
    try:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
        code = os.waitstatus_to_exitcode(status)
        if code < 0:
            number, code = -code, 128 - code
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if number != signal.SIGKILL:  # SIGKILL cannot be caught: no handler to reset
                signal.signal(number, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [number])
            os.kill(os.getpid(), number)
    except BaseException:  # whatever it was, the waiter ends below, and only there
        pass
    finally:
        os._exit(code & 0xFF)


def mount_private(home: Path, disk_mb: int) -> None:
    """In the new mount namespace: nothing propagates back, a ``/proc`` of the new PID
    namespace, and a tmpfs of ``disk_mb`` as the home (its files copied in)."""
    _check(_libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount --make-rprivate")
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    _check(_libc.mount(b"proc", b"/proc", b"proc", flags, None), "mount /proc")
    files = {path.name: path.read_bytes() for path in home.iterdir() if path.is_file()}
    options = f"size={disk_mb}m,mode=0700".encode()
    _check(_libc.mount(b"tmpfs", bytes(home), b"tmpfs", flags, options), "mount tmpfs")
    for name, data in files.items():
        (home / name).write_bytes(data)


def expose(paths: list[Path]) -> list[Path]:
    """Root, in the sandbox's own mount namespace (after ``mount_private``): make each of
    ``paths`` reachable by the sandbox's unprivileged user whatever the permissions of the
    folders above it, changing nothing outside the namespace; return the folders covered.

    Over the highest folder above a path that others may not pass through (a clone in a
    folder made by ``mktemp -d``, a venv or pyenv in a home of mode 700) it mounts a small
    tmpfs of mode 755, remakes the way down to each of ``paths`` below that folder and binds
    the path there: the sandbox sees those paths and nothing else of the folder (the rest it
    could not reach anyway). What lies inside ``paths`` keeps its own permissions. Not root
    (a user namespace, where the sandbox's user is the invoking user): nothing to do."""
    if os.geteuid() != 0:
        return []
    covers = _covers(paths)
    for cover, below in covers.items():
        handles = {path: os.open(path, os.O_PATH | os.O_CLOEXEC) for path in below}
        try:
            flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
            options = b"size=64k,nr_inodes=4096,mode=0755"
            _check(_libc.mount(b"tmpfs", bytes(cover), b"tmpfs", flags, options), "mount tmpfs")
            for path, handle in handles.items():
                _bind_below(cover, path, handle)
        finally:
            for handle in handles.values():
                os.close(handle)
    return sorted(covers)


def _covers(paths: list[Path]) -> dict[Path, list[Path]]:
    """For each highest folder above one of ``paths`` that others may not pass through (no
    ``o+x``; the sandbox's user is in no group): the outermost of ``paths`` below it. Paths
    that do not exist are left out."""
    below: dict[Path, set[Path]] = {}
    for path in paths:
        resolved, cover = closed_folder_above(path)
        if cover is not None:
            below.setdefault(cover, set()).add(resolved)
    return {
        cover: sorted(p for p in inside if not any(q in p.parents for q in inside))
        for cover, inside in below.items()
    }


@functools.cache
def closed_folder_above(path: Path) -> tuple[Path, Path | None]:
    """``path`` resolved, and the highest folder above it that others may not pass through
    (None: there is none, or ``path`` does not exist). Cached: the zygote asks once for the
    runtime's folders, so that each sandbox only mounts."""
    try:
        resolved = path.resolve(strict=True)
    except OSError:
        return path, None
    for folder in reversed(resolved.parents):  # from / down
        if not os.stat(folder).st_mode & stat.S_IXOTH:
            return resolved, folder
    return resolved, None


def _bind_below(cover: Path, path: Path, handle: int) -> None:
    """On the fresh tmpfs at ``cover``: make the folders down to ``path`` (mode 755) and an
    empty folder or file at ``path``, and bind there what ``handle`` (opened before the tmpfs
    hid it) refers to, with whatever is mounted below it."""
    here = cover
    for part in path.relative_to(cover).parts[:-1]:
        here = here / part
        with contextlib.suppress(FileExistsError):
            here.mkdir()
        os.chmod(here, 0o755)
    if stat.S_ISDIR(os.fstat(handle).st_mode):
        with contextlib.suppress(FileExistsError):
            path.mkdir()
    else:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    source = f"/proc/self/fd/{handle}".encode()
    _check(_libc.mount(source, bytes(path), None, _MS_BIND | _MS_REC, None), f"bind {path}")


def drop_privileges(home: Path, number: int) -> None:
    """Root: become uid ``SANDBOX_UID_BASE + number`` (owner of the home; ``number`` unique
    among live sandboxes, so that per-uid limits are the sandbox's own), no groups, no
    capabilities. Otherwise (inside a user namespace): drop every capability."""
    if os.geteuid() == 0:
        uid = SANDBOX_UID_BASE + number
        for path in [home, *home.iterdir()]:
            os.chown(path, uid, uid)
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # all uids leave 0: the kernel clears the capabilities
    else:
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
        data = (ctypes.c_uint32 * 6)()
        _check(_libc.capset(header, data), "capset")


# Kernel interfaces a submission never needs and that have been the way out of sandboxes:
# async I/O that bypasses seccomp, BPF, keyrings, tracing, page-fault handling, new namespaces
# and mounts (the sandbox has made its own before the filter is loaded).
DENIED_SYSCALLS = (
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "ptrace",
    "perf_event_open",
    "userfaultfd",
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
)
# clone() with any of these flags would make new namespaces; threads and fork use none.
_CLONE_NAMESPACES = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000)
_CLONE_NAMESPACES += (0x40000000,)  # NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET


def forbid_syscalls() -> None:
    """A seccomp filter: ``socket()`` fails with EACCES, whatever the family; the calls of
    ``DENIED_SYSCALLS`` and ``clone()`` with namespace flags with EPERM; ``clone3()`` (whose
    flags seccomp cannot read) with ENOSYS, so that glibc falls back to ``clone()``."""
    if pyseccomp is None:
        raise OSError(errno.ENOSYS, "pyseccomp or libseccomp is not installed")
    rules = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
    rules.add_rule(pyseccomp.ERRNO(errno.EACCES), "socket")
    for name in DENIED_SYSCALLS:
        rules.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
    for flag in _CLONE_NAMESPACES:
        masked = pyseccomp.Arg(0, pyseccomp.MASKED_EQ, flag, flag)
        rules.add_rule(pyseccomp.ERRNO(errno.EPERM), "clone", masked)
    rules.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    rules.load()


def probe() -> list[str]:
    """The layers of ``LAYERS`` this machine cannot give a sandbox, tried in a throwaway
    fork of this process."""
    home = Path(tempfile.mkdtemp(prefix="attn-course-probe-"))
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            missing = _try_layers(home)
            os.write(write_fd, ",".join(missing).encode() or b"-")
        finally:
            os._exit(0)  # an exception: nothing written, so every layer counts as missing
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as stream:
        answer = stream.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    with contextlib.suppress(OSError):
        home.rmdir()
    if not answer or status != 0:  # the probe crashed: it vouches for no layer
        return list(LAYERS)
    return [name for name in answer.split(",") if name in LAYERS]


def _try_layers(home: Path) -> list[str]:
    """Set up every layer as a sandbox does (in a throwaway fork), then try to import what a
    notebook may need from the runtime; the names of the layers that failed."""
    import attn_course
    from attn_course.grader import confine

    missing = []
    cgroup = Cgroup(f"attn-course-probe-{os.getpid()}", 64, 8)
    if not cgroup.paths:
        missing.append("cgroups")
    cgroup.remove()
    installed = [name for name in RUNTIME_MODULES if _installed(name)]
    try:
        number = enter_namespaces([])
        mount_private(home, 1)
    except OSError:
        missing += ["namespaces", "unprivileged-user"]
        number = None
    else:
        with contextlib.suppress(OSError):  # a failure shows below: the imports fail
            expose([*confine.runtime_roots(), home])
    try:
        readable = confine.readable_paths(Path(attn_course.__file__).parent)
        if not confine.restrict(readable, [home]):
            missing.append("landlock")
    except OSError:
        missing.append("landlock")
    if number is not None:
        try:
            drop_privileges(home, number)
        except OSError:
            missing.append("unprivileged-user")
    try:
        forbid_syscalls()
    except Exception:  # not installed, no libseccomp, or refused by the kernel
        missing.append("seccomp")
    if not _can_import(installed):
        missing.append("runtime")
    return missing


def _installed(name: str) -> bool:
    """Whether the top-level package of module ``name`` is installed (asked before the probe
    confines itself)."""
    try:
        return importlib.util.find_spec(name.partition(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def _can_import(names: list[str]) -> bool:
    """Whether this process can import each of ``names``, or read its source where it is
    already imported."""
    for name in names:
        try:
            module = sys.modules.get(name)
            if module is None:
                importlib.import_module(name)
            else:
                with open(module.__file__, "rb") as source:
                    source.read(1)
        except Exception:  # unreadable: ImportError, PermissionError, ...
            return False
    return True


def judge_alone(channel: list[int]) -> None:
    """Before the first exercise is judged: fork, and go on alone in the child. The parent
    closes ``channel``, waits and ends as the child did (like ``enter_namespaces``' waiter).
    The child has only the thread that forked: threads a cell started are not there to act
    while the recorders, which see one thread, are on."""
    pid = os.fork()
    if pid == 0:
        _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the parent
        return
    _wait_and_end_like(pid, channel)


def forbid_new_tasks() -> None:
    """A seccomp filter (stacked on ``forbid_syscalls``'): no new thread or process, so no
    work escapes the recorders while exercises are judged. ``clone``, ``fork`` and ``vfork``
    fail with EPERM (``clone3`` already answers ENOSYS)."""
    if pyseccomp is None:
        raise OSError(errno.ENOSYS, "pyseccomp or libseccomp is not installed")
    rules = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
    for name in ("clone", "fork", "vfork"):
        rules.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
    rules.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    rules.load()


if __name__ == "__main__":
    lacking = probe()
    for layer in lacking:
        print(f"missing {layer}: {LAYERS[layer]}")
    if not lacking:
        print("all layers available")
