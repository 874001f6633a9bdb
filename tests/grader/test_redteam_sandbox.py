"""Red team at the sandbox level: hostile cells run straight in a sandbox, as if the static
allow-list had missed them (defence in depth). Each asserts what the grader concluded and that
nothing outside the sandbox changed."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time
from pathlib import Path

import pytest
import torch

from attn_course.checks.core import Case
from attn_course.grader import codec
from attn_course.grader.kernel import CellCode, ExerciseRequest, Zygote, execute
from attn_course.grader.sandbox import Limits

IDENTITY = "def answer(x):\n    return x\n"
FORGE = (
    "import os\n"
    "for fd in range(3, 64):\n"
    "    try:\n        os.write(fd, MESSAGE)\n    except OSError:\n        pass\n"
)


def test_forged_replies_on_the_reply_pipe_are_refused(run):
    forged = (  # the wire format written by hand: 16-byte header, JSON, tensor bytes
        "import json, struct\n"
        "def message(value, blob=b''):\n"
        "    text = json.dumps(value).encode()\n"
        "    return struct.pack('!QQ', len(text), len(blob)) + text + blob\n"
        "cell = {'dict': {'ok': True, 'error': None, 'output': '', 'nonce': 'guess'}}\n"
        "good = {'Outcome': {'output': {'tensor': ['float32', [2], 0, 8]}}}\n"
        "reply = {'dict': {'defined': True, 'outcomes': {'list': [good]}, 'nonce': 'guess'}}\n"
        "MESSAGE = message(cell) + message(reply, struct.pack('<ff', 42.0, 42.0))\n"
    )
    request = ExerciseRequest("answer", [Case("one", (torch.zeros(2),))], ())
    execution = run([IDENTITY, forged + FORGE], [request])
    assert execution.cells[1].status == "died"
    (outcome,) = execution.exercises["answer"].outcomes  # judged in a fresh sandbox
    assert torch.equal(outcome.output, torch.zeros(2))


def test_a_huge_reply_is_refused_before_it_is_read(run, monkeypatch):
    huge = "import struct\nMESSAGE = struct.pack('!QQ', 60 << 20, 0) + b'[' * (4 << 20)\n"
    asked, read_exactly = [], codec._read_exactly

    def counted(fd, size, deadline):  # what the grader reads of the sandbox's replies
        asked.append(size)
        return read_exactly(fd, size, deadline)

    monkeypatch.setattr(codec, "_read_exactly", counted)
    execution = run([huge + FORGE])
    assert execution.cells[0].status == "died"
    assert asked and sum(asked) < 1 << 20  # the header only: never the 60 MB it announced


def needs(zygote, *layers: str) -> None:
    missing = set(layers) & set(zygote.missing_layers())
    if missing:
        pytest.skip(f"this machine lacks {', '.join(sorted(missing))}")


def statuses(execution) -> list[str]:
    return [cell.status for cell in execution.cells]


@pytest.mark.parametrize("target", ["another-student.ipynb", "grades/grades.csv"])
def test_files_outside_the_sandbox_cannot_be_read(run, zygote, tmp_path, target):
    needs(zygote, "landlock")
    secret = tmp_path / "outside" / target
    secret.parent.mkdir(parents=True)
    secret.write_text("SECRET")
    secret.chmod(0o644)
    cells = [f"print(open({str(secret)!r}).read())"]
    execution = run(cells)
    assert statuses(execution) == ["error"]
    assert "SECRET" not in execution.cells[0].output + execution.cells[0].message


def test_the_course_package_cannot_be_read(run, zygote):
    needs(zygote, "landlock")
    import attn_course

    source = Path(attn_course.__file__).parent / "reference" / "__init__.py"
    execution = run([f"open({str(source)!r}).read()"])
    assert statuses(execution) == ["error"]


def test_the_grader_process_is_invisible(run, zygote):
    needs(zygote, "namespaces")
    cells = [f"open('/proc/{os.getpid()}/{name}').read()" for name in ("environ", "cmdline")]
    cells.append("import os\nassert os.getpid() == 1\nassert sorted(os.listdir('/proc'))")
    assert statuses(run(cells)) == ["error", "error", "ok"]


def test_no_udp_packet_reaches_the_host(run, zygote):
    needs(zygote, "namespaces", "seccomp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.setblocking(False)
        port = listener.getsockname()[1]
        cell = (
            "import socket\nsender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"sender.sendto(b'grades', ('127.0.0.1', {port}))\n"
        )
        assert statuses(run([cell])) == ["error"]
        with pytest.raises(BlockingIOError):
            listener.recv(64)


def test_no_connection_to_a_unix_socket(run, zygote, tmp_path):
    needs(zygote, "seccomp")
    path = tmp_path / "grader.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        path.chmod(0o777)
        listener.listen()
        listener.setblocking(False)
        cell = (
            "import socket\nclient = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
            f"client.connect({str(path)!r})\nclient.sendall(b'grades')\n"
        )
        assert statuses(run([cell])) == ["error"]
        with pytest.raises(BlockingIOError):
            listener.accept()


def live_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and marker in (entry / "cmdline").read_text():
                found.append(int(entry.name))
    return found


def test_setsid_and_double_fork_do_not_outlive_the_grade(run, zygote):
    needs(zygote, "namespaces")
    marker = f"{secrets.randbelow(10**9)}.5"
    cell = (
        "import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        f"        os.execv('/bin/sleep', ['sleep', {marker!r}])\n    os._exit(0)\n"
    )
    assert statuses(run([cell, "x = 1"])) == ["ok", "ok"]
    for _ in range(500):  # the kernel tears the namespace down; give a loaded machine time
        if not live_with(marker):
            break
        time.sleep(0.02)
    assert live_with(marker) == []


def test_process_count_is_limited(run, zygote):
    needs(zygote, "cgroups")
    cell = (
        "import os, time\nfor _ in range(200):\n    if os.fork() == 0:\n"
        "        time.sleep(60)\n        os._exit(0)\n"
    )
    execution = run([cell])
    assert statuses(execution) == ["error"]  # fork refused (the message is the C library's)


def test_hard_limits_cannot_be_raised(run):
    cell = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
    )
    assert statuses(run([cell])) == ["error"]


def test_no_capabilities_and_an_unprivileged_user(run, zygote):
    needs(zygote, "unprivileged-user")
    cell = (
        "import os\nstatus = open('/proc/self/status').read().splitlines()\n"
        "caps = [int(line.split()[1], 16) for line in status if line.startswith('Cap')]\n"
        "assert caps[:3] == [0, 0, 0], caps\n"
        "assert os.getuid() != 0\n"
    )
    assert statuses(run([cell])) == ["ok"]


def test_disk_use_is_bounded(run, zygote):
    needs(zygote, "namespaces")
    cell = "for n in range(200):\n    open(f'fill-{n}', 'wb').write(bytes(1 << 20))\n"
    assert statuses(run([cell])) == ["error"]  # 64 MB at most


def test_writes_outside_the_sandbox_fail(run, zygote, tmp_path):
    needs(zygote, "landlock")
    target = tmp_path / "outside.txt"
    tmp_path.chmod(0o777)
    assert statuses(run([f"open({str(target)!r}, 'w').write('x')"])) == ["error"]
    assert not target.exists()


def test_time_budget_bounds_a_notebook_of_slow_cells(zygote, tmp_path):
    notebook = tmp_path / "submission.ipynb"
    notebook.write_text("{}")
    cells = [CellCode(index, None, "import time\ntime.sleep(0.5)") for index in range(1, 31)]
    request = ExerciseRequest("answer", [Case("one", (torch.zeros(2),))], ())
    limits = Limits(timeout=5, memory_mb=512, budget=4)  # 15 s of sleeping in all
    execution = execute(zygote, notebook, cells, [request], limits)
    assert execution.cells[0].status == "ok"
    assert execution.cells[-1].status == "timeout" and "budget" in execution.cells[-1].message
    assert execution.exercises["answer"].status == "timeout"


def test_a_torch_py_in_the_working_directory_is_not_imported(run, tmp_path, monkeypatch):
    marker = tmp_path / "imported.txt"
    (tmp_path / "torch.py").write_text(f"open({str(marker)!r}, 'w').write('unconfined')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with Zygote() as fresh:
        assert statuses(run(["import torch\nx = torch.ones(2)"], in_zygote=fresh)) == ["ok"]
    assert not marker.exists()


def test_a_layer_the_probe_vouched_for_fails_closed():
    """A layer that fails for one sandbox (a namespace limit reached under load, a refused
    privilege drop) must end that sandbox, not let student code run without the layer; only
    a layer the probe already found missing, which the grader chose to grade without, may."""
    from attn_course.grader.sandbox import _layer

    for layer in ("cgroups", "namespaces", "seccomp", "landlock", "unprivileged-user"):
        with pytest.raises(OSError), _layer(layer, missing=()):
            raise OSError("refused")
        with _layer(layer, missing=(layer,)):
            raise OSError("refused")
    with pytest.raises(OSError), _layer("landlock", missing=("seccomp",)):
        raise OSError("refused")
