"""Run model-written Python against tests in a limited subprocess.

Isolation, honestly stated: this guards against *accidents* (infinite loops, runaway memory, a
stray network call, files scattered in the working directory), not against an adversary who sets
out to escape. Each run gets:

- a fresh temporary directory as working directory and ``HOME``, deleted afterwards;
- a new session (process group) killed with SIGKILL when the wall-clock limit passes;
- ``RLIMIT_CPU`` (CPU seconds), ``RLIMIT_AS`` (address space), ``RLIMIT_FSIZE`` (file size) and
  no core dumps, set by the runner on itself before any untrusted code runs;
- no network: a new, empty network namespace (``unshare -n``, or ``unshare -rn`` for a normal
  user) when the kernel allows it, plus, always, an in-process guard that makes IPv4/IPv6 socket
  creation and process spawning raise. Without a namespace the guard is all there is, and code
  that goes out of its way (``ctypes``, the original socket type via introspection) can get
  around it;
- the interpreter in isolated mode (``-I``: no ``PYTHONPATH``, no user site, cwd not importable).

Results travel in a file the runner opens before the untrusted code runs; the code could in
principle write to it. For RL rewards on benchmark-style tasks that trade-off is the usual one
(HumanEval's own harness makes the same), but do not point this at hostile code.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_RUNNER = r"""
import json, os, resource, signal, sys

spec_path = sys.argv[1]
with open(spec_path) as fh:
    spec = json.load(fh)
os.remove(spec_path)

cpu = int(spec["cpu_seconds"])
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
mem = int(spec["memory_mb"]) * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
fsize = int(spec["max_file_mb"]) * 1024 * 1024
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

out = open(spec["result_path"], "w", buffering=1)


def _guard():
    import socket, _socket, subprocess

    def refuse(*args, **kwargs):
        raise PermissionError("blocked by the R1 Studio sandbox")

    base = socket.socket

    class GuardedSocket(base):
        def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
            if fileno is None and family in (-1, socket.AF_INET, socket.AF_INET6):
                refuse()
            super().__init__(family, type, proto, fileno)

    socket.socket = GuardedSocket
    _socket.socket = GuardedSocket
    for name in ("create_connection", "create_server", "getaddrinfo"):
        setattr(socket, name, refuse)
    subprocess.Popen = refuse
    for name in ("system", "popen", "fork", "forkpty", "execv", "execve", "execvp", "execvpe",
                 "spawnv", "spawnve", "spawnvp", "spawnvpe", "posix_spawn", "posix_spawnp",
                 "kill", "killpg"):
        if hasattr(os, name):
            setattr(os, name, refuse)


_guard()  # also inside a network namespace: defence in depth, and no escaping the session


def _alarm(signum, frame):
    raise TimeoutError("test timed out")


signal.signal(signal.SIGALRM, _alarm)
env = {"__name__": "__sandbox__", "__builtins__": __builtins__}
try:
    exec(compile(spec["program"], "<solution>", "exec"), env)
    out.write("program ok\n")
except BaseException as exc:
    out.write("program error " + type(exc).__name__ + "\n")
    sys.exit(0)
for i, test in enumerate(spec["tests"]):
    signal.alarm(int(spec["per_test_timeout"]))
    try:
        exec(compile(test, "<test %d>" % i, "exec"), env)
        out.write("pass %d\n" % i)
    except BaseException as exc:
        out.write("fail %d " % i + type(exc).__name__ + "\n")
    finally:
        signal.alarm(0)
"""


@dataclass(frozen=True)
class SandboxResult:
    """What a run gave: tests passed out of total, and how it ended (for logs and traces)."""

    passed: int
    total: int
    status: str  # "ok", "program_error", "timeout", "crashed"
    detail: str = ""

    @property
    def fraction(self) -> float:
        return self.passed / self.total if self.total else 0.0


@lru_cache(maxsize=1)
def network_namespace_prefix() -> tuple[str, ...]:
    """``("unshare", "-n")`` or ``("unshare", "-rn")`` if this machine allows it, else ``()``."""
    for prefix in (("unshare", "-n"), ("unshare", "-rn")):
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return prefix
    return ()


def run_tests(
    program: str,
    tests: list[str],
    *,
    timeout: float = 10.0,
    memory_mb: int = 1024,
    per_test_timeout: float | None = None,
    max_file_mb: int = 16,
) -> SandboxResult:
    """Run ``program`` then each test source in the same namespace; count the passing tests.

    A test passes when executing it raises nothing. ``timeout`` bounds the whole run in CPU
    seconds (rounded up; RLIMIT_CPU) and, loosely, in wall seconds (``2 * timeout + 3``, for code
    that sleeps or blocks); ``per_test_timeout`` (default: ``timeout``, wall seconds) stops one
    looping test so the others still run.
    """
    if not tests:
        return SandboxResult(0, 0, "ok", "no tests")
    prefix = network_namespace_prefix()
    with tempfile.TemporaryDirectory(prefix="r1-sandbox-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        runner, spec_path, result_path = work / "_runner.py", work / "_spec.json", work / "_result"
        runner.write_text(_RUNNER)
        spec = {
            "program": program,
            "tests": tests,
            "cpu_seconds": max(1, int(timeout + 0.999)),
            "memory_mb": memory_mb,
            "max_file_mb": max_file_mb,
            "per_test_timeout": max(1, int((per_test_timeout or timeout) + 0.999)),
            "result_path": str(result_path),
            "in_netns": bool(prefix),
        }
        spec_path.write_text(json.dumps(spec))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tmp,
            "TMPDIR": tmp,
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1",
        }
        with open(work / "_output", "wb") as output:
            proc = subprocess.Popen(
                [*prefix, sys.executable, "-I", str(runner), str(spec_path)],
                cwd=tmp,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
            )
            status = "ok"
            try:
                # CPU time is capped by RLIMIT_CPU; the wall clock only catches sleeping/blocking
                # code, so it is generous enough for a busy machine.
                proc.wait(timeout=2 * timeout + 3.0)
            except subprocess.TimeoutExpired:
                status = "timeout"
            finally:
                _kill_group(proc)
        lines = result_path.read_text().splitlines() if result_path.exists() else []
    return _summarise(lines, len(tests), status, proc.returncode)


def _kill_group(proc: subprocess.Popen) -> None:
    # The whole session: the code may have started children before any guard could stop it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _summarise(lines: list[str], total: int, status: str, returncode: int | None) -> SandboxResult:
    passed = {line.split()[1] for line in lines if line.startswith("pass ")}
    errors = [line for line in lines if line.startswith(("program error", "fail "))]
    if status == "ok" and any(line.startswith("program error") for line in lines):
        status = "program_error"
    elif status == "ok" and len(lines) < total + 1:
        status = "crashed"  # killed by a limit (SIGXCPU, SIGKILL on memory, SIGXFSZ) mid-run
    detail = "; ".join(errors[:3]) or f"exit code {returncode}"
    return SandboxResult(len(passed), total, status, detail)


def run_many(
    jobs: list[tuple[str, list[str]]], processes: int | None = None, **limits: float
) -> list[SandboxResult]:
    """:func:`run_tests` for each ``(program, tests)`` job, ``processes`` at a time (all cores).

    Threads are enough here: each one only waits on its own subprocess.
    """
    if not jobs:
        return []
    workers = max(1, processes or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: run_tests(job[0], job[1], **limits), jobs))
