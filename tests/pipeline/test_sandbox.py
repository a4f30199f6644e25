"""The code sandbox: escape attempts score 0 and leave the host untouched.

Each attempt goes around the in-process guard (the original socket class, ``posix.fork``,
``ctypes``), so what stops it is the OS-level isolation. Where it is cheap, a control runs the
same attempt in the weaker ``guard`` mode and shows that it does get out there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from pipeline import rewards
from pipeline.rewards import sandbox

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def real_sandbox(monkeypatch):
    """bubblewrap, whatever R1STUDIO_SANDBOX says; missing, it fails CI and skips elsewhere."""
    monkeypatch.delenv("R1STUDIO_SANDBOX", raising=False)
    reason = sandbox.unavailable_reason()
    if reason:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(reason)


@pytest.fixture
def guard_mode(monkeypatch):
    """The weaker opt-in mode without a network namespace: the controls' baseline."""
    monkeypatch.setenv("R1STUDIO_SANDBOX", "guard")
    monkeypatch.setattr(sandbox, "network_namespace_prefix", lambda: ())


@pytest.fixture
def listener():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.5)
    yield server
    server.close()


def sandboxed_pids() -> set[int]:
    """Host processes living in another PID namespace than ours: sandboxes still running."""
    ours = os.readlink("/proc/self/ns/pid")
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "ns" / "pid") != ours:
                    found.add(int(entry.name))
    return found


def wait_until_gone(pids: set[int], seconds: float = 10.0) -> set[int]:
    deadline = time.monotonic() + seconds
    while (left := pids & sandboxed_pids()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_it_passes_a_correct_solution(real_sandbox):
    result = sandbox.run_tests(
        "def add(a, b):\n    return a + b\n", ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]
    )
    assert (result.passed, result.total, result.status) == (2, 2, "ok")


READ = "def read(path):\n    with open(path, 'rb') as fh:\n        return fh.read()\n"


def test_it_cannot_read_the_studio_files(real_sandbox, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"hunter2")
    pyproject = REPO / "pyproject.toml"
    tests = [
        f"assert read({str(secret)!r}) == b'hunter2'",
        f"assert read({str(pyproject)!r}) == {pyproject.read_bytes()!r}",
        f"import os\nassert os.listdir({str(REPO)!r})",
        f"import os\nassert os.listdir({sys.prefix!r})",  # the studio's virtualenv
        "import os\nassert os.listdir('/root') is not None",
        "import os\nassert os.listdir('/work') is not None",
        "assert read('/etc/passwd')",
        "assert read('/etc/hostname')",
    ]
    result = sandbox.run_tests(READ, tests)
    assert (result.passed, result.total, result.status) == (0, len(tests), "ok")


def test_it_can_read_them_in_guard_mode(guard_mode, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"hunter2")
    result = sandbox.run_tests(READ, [f"assert read({str(secret)!r}) == b'hunter2'"])
    assert result.passed == 1  # the control: the program above does leak without the sandbox


def _connect_around_the_guard(port: int) -> str:
    # socket.socket is the guard's subclass; the C type under it is the unguarded socket.
    return (
        "import socket\n"
        "def leak():\n"
        "    raw = socket.socket.__mro__[-2]\n"
        "    s = raw(socket.AF_INET, socket.SOCK_STREAM)\n"
        "    s.settimeout(2)\n"
        f"    s.connect(('127.0.0.1', {port}))\n"
        "    s.sendall(b'leak')\n"
        "    return True\n"
    )


def test_it_cannot_open_a_socket_to_the_host(real_sandbox, listener):
    program = _connect_around_the_guard(listener.getsockname()[1])
    result = sandbox.run_tests(program, ["assert leak()"], timeout=3)
    assert result.passed == 0
    assert "ConnectionRefusedError" in result.detail  # a loopback of its own, nobody listening
    with pytest.raises(TimeoutError):
        listener.accept()


def test_it_connects_around_the_guard_in_guard_mode(guard_mode, listener):
    program = _connect_around_the_guard(listener.getsockname()[1])
    assert sandbox.run_tests(program, ["assert leak()"], timeout=3).passed == 1
    conn, _ = listener.accept()  # the control: the guard alone lets it through
    conn.close()


def test_it_cannot_write_outside_its_temp_dir(real_sandbox, tmp_path):
    outside = [tmp_path / "pwned.txt", REPO / f"pwned-{uuid.uuid4().hex}.txt"]
    host_tmp = Path("/tmp") / f"r1-sandbox-test-{uuid.uuid4().hex}"
    tests = [f"open({str(p)!r}, 'w').write('x')" for p in outside]
    if not REPO.is_relative_to("/tmp"):
        # (A checkout under /tmp would land in the sandbox's own private /tmp: allowed.)
        tests.append(
            f"import os\nos.makedirs({str(REPO)!r}, exist_ok=True)\n"
            f"open({str(outside[1])!r}, 'w').write('x')"
        )
    tests += ["open('/pwned.txt', 'w').write('x')", "open('/usr/pwned.txt', 'w').write('x')"]
    result = sandbox.run_tests("", tests)
    assert (result.passed, result.total, result.status) == (0, len(tests), "ok")
    # Its own /tmp is writable, and private: nothing of it reaches the host's.
    private = sandbox.run_tests("", [f"open({str(host_tmp)!r}, 'w').write('x')"])
    assert private.passed == 1
    assert not any(p.exists() for p in [*outside, host_tmp])


def test_it_writes_outside_in_guard_mode(guard_mode, tmp_path):
    target = tmp_path / "pwned.txt"
    assert sandbox.run_tests("", [f"open({str(target)!r}, 'w').write('x')"]).passed == 1
    assert target.exists()  # the control


def test_it_sees_no_studio_environment_or_process(real_sandbox, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "s3cr3t-key")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:pw@db/r1")
    tests = [
        "import os\nassert os.environ.get('SECRET_KEY') == 's3cr3t-key'",
        "import os\nassert 'DATABASE_URL' in os.environ",
        "assert b's3cr3t-key' in open('/proc/1/environ', 'rb').read()",
        f"assert b's3cr3t-key' in open('/proc/{os.getpid()}/environ', 'rb').read()",
        f"import posix\nposix.kill({os.getpid()}, 0)",  # signal 0: only asks whether it exists
    ]
    result = sandbox.run_tests(READ, tests)
    assert (result.passed, result.total, result.status) == (0, len(tests), "ok")


def test_a_fork_bomb_ends_in_time_and_leaves_no_process(real_sandbox):
    before = sandboxed_pids()
    bombs = [
        "import ctypes\nlibc = ctypes.CDLL(None)\ndef bomb():\n    while True:\n        libc.fork()\n",
        "import posix\ndef bomb():\n    while True:\n        try:\n            posix.fork()\n"
        "        except BlockingIOError:\n            pass\n",
    ]
    counted = (
        "import posix, time\ndef forks():\n    n = 0\n    while True:\n        try:\n"
        "            if posix.fork() == 0:\n                time.sleep(60)\n"
        "        except BlockingIOError:\n            return n\n        n += 1\n"
    )
    jobs = [(b, ["bomb()"]) for b in bombs]
    jobs += [(counted, ["assert 1 <= forks() <= 6"]), ("def ok():\n    return 1\n", ["ok()"])]
    start = time.monotonic()
    results = sandbox.run_many(jobs, processes=len(jobs), timeout=2)
    assert time.monotonic() - start < 12
    # max_processes (8) counts the sandbox's init and runner; a neighbour still runs, as each
    # sandbox counts its processes in a user namespace of its own.
    assert [r.passed for r in results] == [0, 0, 1, 1]
    assert wait_until_gone(sandboxed_pids() - before) == set()


def test_it_kills_code_that_ignores_its_time_limits(real_sandbox):
    before = sandboxed_pids()
    stubborn = (
        "import posix, time\ndef f():\n    posix.fork()\n    while True:\n        try:\n"
        "            time.sleep(100)\n        except BaseException:\n            pass\n"
    )
    start = time.monotonic()
    result = sandbox.run_tests(stubborn, ["f()"], timeout=1)
    assert (result.passed, result.status) == (0, "timeout")
    assert time.monotonic() - start < 8  # the wall clock: 2 * timeout + 3 s
    assert wait_until_gone(sandboxed_pids() - before) == set()


def test_it_kills_the_sandbox_when_the_studio_dies(real_sandbox):
    before = sandboxed_pids()
    code = (
        "from pipeline.rewards import sandbox\n"
        "sandbox.run_tests('import time\\ntime.sleep(60)\\n', ['pass'], timeout=30)\n"
    )
    studio = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    try:
        deadline = time.monotonic() + 10
        while not (started := sandboxed_pids() - before) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started, "the sandbox never started"
    finally:
        studio.kill()
        studio.wait()
    assert wait_until_gone(started) == set()


def test_it_refuses_to_score_without_bubblewrap(monkeypatch, caplog):
    def missing():
        raise sandbox.SandboxUnavailable("bubblewrap (bwrap) is not installed: install it")

    monkeypatch.delenv("R1STUDIO_SANDBOX", raising=False)
    monkeypatch.setattr(sandbox, "_bwrap_options", missing)
    code = rewards.get("code", tests_column="tests")
    completion = "<answer>```python\ndef f():\n    return 1\n```</answer>"
    with caplog.at_level(logging.ERROR):
        assert code(None, [completion], tests=[["assert f() == 1"]]) == [None]
    assert "bwrap" in caplog.text
    assert "bwrap" in sandbox.unavailable_reason()
    monkeypatch.setenv("R1STUDIO_SANDBOX", "guard")  # the explicit, weaker opt-in
    assert code(None, [completion], tests=[["assert f() == 1"]]) == [1.0]
    monkeypatch.setenv("R1STUDIO_SANDBOX", "none")
    assert code(None, [completion], tests=[["assert f() == 1"]]) == [None]
