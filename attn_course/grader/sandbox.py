"""The sandbox: the only process that runs a student's code (one per submission).

It is forked from a zygote that has already imported torch (``zygote.py``), so
a submission costs a fork instead of a Python start and an ``import torch``. Before it runs
anything of the student's it isolates and confines itself (``isolate.py``, ``confine.py``),
forgets the course package (only ``attn_course.checks`` can be imported: a stand-in whose
``check`` does nothing), and sends everything back through ``codec`` (no pickle).

Requests, one at a time, each answered by one reply that echoes the request's ``nonce``:
- ``{"op": "cell", "code": str, "name": str}`` runs one cell of the notebook (already turned
  into plain Python) in the notebook's namespace; the reply holds ``ok``, ``error`` (the
  exception in one line, with the line of the cell) and ``output`` (what it printed, capped);
- ``{"op": "exercise", "name": str, "cases": [Case], "forbidden": [str]}`` looks ``name`` up in
  the namespace and calls it on each hidden case with the core's ``run_case``; the reply holds
  ``defined`` and ``outcomes``.

This module must stay light: the zygote imports it, and nothing that imports
``attn_course.reference`` may be loaded into a sandbox.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import importlib.abc
import importlib.util
import io
import os
import sys
import traceback
import types
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import attn_course
from attn_course.grader import DEFAULT_BUDGET, codec, confine, isolate


def _load_core() -> types.ModuleType:
    """``attn_course.checks.core`` loaded on its own: importing it as part of its package would
    load ``attn_course.checks``, and with it ``attn_course.reference``, into the sandbox."""
    path = Path(attn_course.__file__).parent / "checks" / "core.py"
    spec = importlib.util.spec_from_file_location("_attn_course_sandbox_core", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


core = _load_core()
RECORDS = {"Case": core.Case, "Outcome": core.Outcome}
# The built-ins as they were before any student code ran: the reference code placed for fair
# credit (``_place_reference``) looks its built-ins up here, not in the notebook.
_BUILTINS = dict(vars(builtins))


@dataclass(frozen=True)
class Limits:
    """What one sandbox may use. ``timeout`` is enforced by the grader (it kills the
    sandbox); the others by the kernel."""

    timeout: float = 30.0
    memory_mb: int = 4096
    output_kb: int = 64
    file_mb: int = 64  # the largest file, and the disk the whole sandbox may fill
    cpu_seconds: int = 0  # 0: a backstop of 100 timeouts
    processes: int = 32  # processes and threads of a submission together
    budget: float = DEFAULT_BUDGET  # all the time a submission's cells and exercises may take
    # (0: none), the static analysis in the grader's process included
    allowed_imports: tuple[str, ...] = ()  # modules allowed on top of the static rule's own

    def __post_init__(self) -> None:  # one form, whatever the caller (a journal's JSON list)
        object.__setattr__(self, "allowed_imports", tuple(sorted(set(self.allowed_imports))))

    @property
    def cpu_limit(self) -> int:
        return self.cpu_seconds or int(100 * self.timeout) + 60


def serve(
    read_fd: int,
    write_fd: int,
    home: str,
    limits: Limits,
    cgroups: list[str],
    missing: Collection[str] = (),
) -> None:
    """Entry point of a sandbox (a fresh fork of the zygote): isolate and confine, then answer
    requests read from ``read_fd`` on ``write_fd`` until the grader closes the channel.
    ``missing``: the layers the zygote's probe found this machine lacks (see ``_layer``)."""
    output = _confine(Path(home), limits, cgroups, [read_fd, write_fd], missing)
    namespace = _notebook_namespace()
    judging, unjudgeable = False, ""
    while True:
        try:
            request = codec.read_message(read_fd, records=RECORDS)
        except codec.ProtocolError:
            os._exit(0)  # the grader is done with this sandbox
        if request["op"] == "cell":
            reply = _run_cell(request["code"], request["name"], namespace, output)
        else:
            if not judging:  # every cell has run: from here on, exercises only
                unjudgeable = _judging_alone([read_fd, write_fd], missing)
                judging = True
            reply = _run_exercise(request, namespace, unjudgeable)
        codec.write_message(write_fd, {**reply, "nonce": request["nonce"]})


@contextlib.contextmanager
def _layer(name: str, missing: Collection[str]) -> Iterator[None]:
    """Set up one isolation layer (a name of ``isolate.LAYERS``). A layer the probe found
    missing may fail: the grader already decided to grade without it. A layer the probe
    vouched for must not: its failure ends the sandbox before any student code runs (the
    zygote reports that the sandbox could not start), never a sandbox silently weaker."""
    try:
        yield
    except Exception:  # as the probe counts a layer missing: any failure to set it up
        if name not in missing:
            raise


def _confine(
    home: Path, limits: Limits, cgroups: list[str], channel: list[int], missing: Collection[str]
) -> _CappedText:
    """Every layer this machine offers (``isolate.probe`` told the grader which are missing;
    it decided whether to grade without them)."""
    os.setsid()  # its own process group: the grader kills the sandbox and all it started
    confine.die_with_parent()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # output written straight to the file descriptors goes nowhere
        os.dup2(devnull, fd)
    os.close(devnull)
    with _layer("cgroups", missing):
        isolate.join_cgroups(cgroups)
    number, private_mounts = os.getpid(), False
    with _layer("namespaces", missing):
        number = isolate.enter_namespaces(channel)  # from here on: PID 1 of its namespaces
        isolate.mount_private(home, limits.file_mb)
        private_mounts = True
    with _layer("runtime", missing):  # past private folders above the runtime, if any
        if private_mounts:  # never outside the sandbox's own mount namespace
            isolate.expose([*confine.runtime_roots(), home])
    os.environ.clear()
    os.environ.update(confine.scrubbed_environment(home))
    os.chdir(home)
    torch.set_num_threads(1)
    with _layer("seccomp", missing):  # no pyseccomp or libseccomp: the probe reported it
        isolate.forbid_syscalls()  # after the namespaces and mounts it needs
    with _layer("landlock", missing):  # while still able to see every allowed path
        readable = confine.readable_paths(Path(attn_course.__file__).parent)
        confine.restrict(readable, [home, Path(os.devnull)])
    with _layer("unprivileged-user", missing):
        isolate.drop_privileges(home, number)
    own_uid = os.getuid() >= isolate.SANDBOX_UID_BASE  # else a process limit counts others too
    processes = limits.processes if own_uid else 0
    confine.set_limits(limits.memory_mb, limits.file_mb, limits.cpu_limit, processes)
    _forget_course_package()
    output = _CappedText(limits.output_kb * 1024)
    sys.stdout = sys.stderr = output
    return output


def _judging_alone(channel: list[int], missing: Collection[str]) -> str:
    """Judge in a fork with no other thread, which can start none: the recorders see one
    thread, and no work of the student's runs beside them (``isolate.judge_alone``,
    ``isolate.forbid_new_tasks``). Trace and profile hooks are cleared too. Returns why the
    exercises cannot be judged ("" when they can): the notebook's own processes and threads
    left no room for the fork."""
    try:
        isolate.judge_alone(channel)
    except OSError as error:
        return f"it could not be judged: the notebook left no room for one more process ({error})"
    sys.settrace(None)
    sys.setprofile(None)
    with _layer("seccomp", missing):
        isolate.forbid_new_tasks()
    return ""


class _CappedText(io.TextIOBase):
    """A text stream that keeps the first ``cap`` characters written since ``take`` and
    counts the rest."""

    def __init__(self, cap: int) -> None:
        self.cap, self.kept, self.dropped = cap, [], 0
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        text = str(text)
        room = self.cap - self.size
        if room > 0:
            self.kept.append(text[:room])
            self.size += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def take(self) -> str:
        text = "".join(self.kept)
        if self.dropped:
            text += f"\n[... {self.dropped} more characters of output dropped]"
        self.kept, self.size, self.dropped = [], 0, 0
        return text


# numpy's parts that build and load compiled code, or read raw memory: no honest notebook
# needs them, and none is loaded before the student's code runs (``tests/grader``)
BLOCKED_MODULES = ("numpy.testing", "numpy.f2py", "numpy.distutils", "numpy.ctypeslib")


class _CourseBlocker(importlib.abc.MetaPathFinder):
    """Refuses ``attn_course.reference``, the real checks and ``BLOCKED_MODULES`` to code
    being graded."""

    def find_spec(self, name, path=None, target=None):
        course = name.startswith("attn_course.") and name != "attn_course.checks"
        if course or name.startswith(BLOCKED_MODULES):
            raise ImportError(f"{name} is not available to code being graded")
        return None


def _forget_course_package() -> None:
    for name in [name for name in sys.modules if name.split(".")[0] == "attn_course"]:
        del sys.modules[name]
    package = types.ModuleType("attn_course", "Stand-in: only its checks, which do nothing.")
    checks = types.ModuleType("attn_course.checks", "Stand-in: checks do nothing while grading.")
    package.__path__ = checks.__path__ = []
    package.checks = checks
    checks.__getattr__ = _checks_attribute
    sys.modules.update({"attn_course": package, "attn_course.checks": checks})
    sys.meta_path.insert(0, _CourseBlocker())


def _do_nothing(*args: Any, **kwargs: Any) -> None:
    """``check`` and friends while grading: the grader judges, not the notebook."""


def _checks_attribute(name: str) -> Any:
    if name.startswith("_"):
        raise AttributeError(name)
    return _do_nothing


def warm_up() -> None:
    """Run what every sandbox runs once, in the zygote, so that torch's lazy imports (the
    dispatch modes behind ``record_forbidden``, ``nn.Linear``) are paid once, not per fork;
    import every module a notebook may import (``static.allowed_modules()``, those installed):
    a sandbox's user may not be able to read the runtime's files. tqdm's monitor thread is
    switched off: a progress bar starts no thread in a sandbox."""
    from attn_course.grader import static

    for name in sorted(static.allowed_modules() - {"__future__", "attn_course.checks"}):
        with contextlib.suppress(Exception):  # a broken install: the notebook's cell says so
            importlib.import_module(name)
    if "tqdm" in sys.modules:
        sys.modules["tqdm"].tqdm.monitor_interval = 0
    importlib.import_module("torch.testing")  # assert_close in a scratch cell
    importlib.import_module("torch._dynamo")  # torch.compile's (no recorder imports it now)
    module = torch.nn.Linear(3, 1)
    module.load_state_dict({"weight": torch.ones(1, 3), "bias": torch.zeros(1)})
    case = core.Case("warm-up", (torch.ones(2, 3),))
    core.run_case(lambda x: module(x).exp().softmax(-1), case, ("softmax", "scaled_dot_product"))


class _Shell:
    """What ``get_ipython()`` returns in a sandbox: magics and shell commands do nothing,
    except the cell magics that only measure or capture, whose body runs."""

    def __init__(self, namespace: dict) -> None:
        self._namespace = namespace  # private: no way back to the namespace's __builtins__

    def run_line_magic(self, name: str, line: str, *args: Any) -> None:
        return None

    def run_cell_magic(self, name: str, line: str, body: str) -> None:
        if name in ("time", "capture", "timeit"):
            exec(compile(body, f"<%%{name}>", "exec"), self._namespace)

    def system(self, command: str) -> None:
        return None

    getoutput = system


def _notebook_namespace() -> dict:
    main = types.ModuleType("__main__")
    namespace = main.__dict__
    namespace["get_ipython"] = lambda: shell
    namespace["display"] = _do_nothing
    shell = _Shell(namespace)
    sys.modules["__main__"] = main
    return namespace


def _run_cell(code: str, name: str, namespace: dict, output: _CappedText) -> dict:
    try:
        exec(compile(code, name, "exec"), namespace)
        return {"ok": True, "error": None, "output": output.take()}
    except BaseException as error:  # the student's code may raise anything, SystemExit too
        return {"ok": False, "error": _describe(error, name), "output": output.take()}


def _describe(error: BaseException, cell_name: str) -> str:
    try:
        text = f"{type(error).__name__}: {error}"
    except BaseException:
        text = type(error).__name__
    lines = [
        frame.lineno
        for frame in traceback.extract_tb(error.__traceback__)
        if frame.filename == cell_name
    ]
    if isinstance(error, SyntaxError) and error.filename == cell_name:
        lines = [error.lineno]
    where = f"line {lines[-1]}: " if lines else ""
    return (where + text)[:2000]


def _run_exercise(request: dict, namespace: dict, unjudgeable: str = "") -> dict:
    if unjudgeable:
        return {
            "defined": True,
            "outcomes": [core.Outcome(error=unjudgeable)] * len(request["cases"]),
        }
    if request.get("reference"):
        _place_reference(request["reference"], namespace)
    if request["name"] not in namespace:
        return {"defined": False, "outcomes": []}
    obj = namespace[request["name"]]
    outcomes = [_outcome(obj, case, request["forbidden"]) for case in request["cases"]]
    return {"defined": True, "outcomes": outcomes}


def _place_reference(piece: dict, namespace: dict) -> None:
    """Fair credit: run the reference code in ``piece`` (``credit.ReferencePiece``'s fields)
    in a namespace of its own, with the built-ins of before the student's code, then bind
    its names in the notebook. A piece that fails leaves the notebook's names as they are."""
    own = {"__builtins__": _BUILTINS, "__name__": "attn_course_reference"}
    try:
        exec(compile(piece["source"], "<reference>", "exec"), own)
    except Exception:
        return
    namespace.update({name: own[name] for name in piece["names"] if name in own})


def _outcome(obj: Any, case: Any, forbidden: list[str]) -> Any:
    try:
        outcome = core.run_case(obj, case, tuple(forbidden))
        if outcome.error is not None:
            outcome.error = outcome.error[:2000]
        codec.encode(outcome)  # fails here, not in the reply, if the output cannot be sent
        return outcome
    except BaseException as error:  # SystemExit, an unsendable output, ...
        return core.Outcome(error=_describe(error, "")[:2000])
