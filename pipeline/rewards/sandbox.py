"""Run model-written Python against tests in a sandbox the code cannot get out of.

The sandbox is bubblewrap (``bwrap``, Debian/Ubuntu package ``bubblewrap``), the tool Flatpak
uses: it builds the sandbox from Linux namespaces without a daemon, a setuid helper or root,
costs a few milliseconds per run, and runs unchanged in a container that allows user namespaces.
A hand-made ``unshare`` + ``pivot_root`` would be the same kernel features with more code of ours
to get wrong. Each run of untrusted code gets:

- an empty network namespace (no interface but its own loopback), its own PID namespace (it can
  neither see nor signal a host process; when it ends, the kernel kills everything it started),
  its own IPC, UTS and user namespaces, and no way to make further user namespaces;
- a filesystem of read-only binds of ``/usr`` (with the ``/bin``, ``/lib*`` links) and, when it
  lives elsewhere, the interpreter's prefix; a fresh ``/proc`` and minimal ``/dev``; a private
  ``/tmp`` tmpfs of ``tmp_mb`` as working directory and ``HOME``; the root itself read-only.
  Nothing else exists in there: not the repository, the virtualenv, ``R1STUDIO_DATA_DIR``,
  ``/work``, ``/root``, ``/etc`` or any socket of the host;
- an empty environment (``--clearenv``; ``HOME``, ``PATH``, ``LANG`` set anew): no
  ``DATABASE_URL``, ``SECRET_KEY`` or API key gets in. Of the studio's file descriptors only the
  result pipe is inherited (stdin, stdout and stderr are ``/dev/null`` once the code runs);
- when the studio runs as root, an unprivileged host user (``nobody``) outside the namespaces, so
  that ``RLIMIT_NPROC`` binds (the kernel never applies it to root);
- limits the runner sets on itself before any untrusted code runs and cannot raise again:
  ``RLIMIT_CPU`` (CPU seconds), ``RLIMIT_AS`` (address space, per process), ``RLIMIT_FSIZE``,
  ``RLIMIT_NOFILE``, no core dumps, and ``RLIMIT_NPROC`` = ``max_processes`` (the sandbox's own
  two processes included, threads count too) against fork bombs; it is counted in the sandbox's
  own user namespace, so one bomb cannot starve the sandboxes beside it;
- a wall-clock limit, after which the whole process group is killed (``--die-with-parent`` does
  the same if the studio itself dies);
- the system interpreter (``/usr/bin/python3``, or ``R1STUDIO_SANDBOX_PYTHON``), never the
  studio's virtualenv, in isolated mode without ``site`` (``-I -S``): the standard library only;
- as defence in depth, the old in-process guard: IPv4/IPv6 socket creation and process spawning
  raise ``PermissionError``.

Residual risks, stated plainly: memory is capped per process, so a run can hold up to
``max_processes * memory_mb`` plus its tmpfs (cgroups would bound the sum, but need a delegated
cgroup tree); the kernel itself is the attack surface (no seccomp filter is loaded); and the
verdicts come from the runner, which shares an interpreter with the code it judges. They travel
on a pipe, each line tagged with a random nonce only the runner holds, so printing or writing
``pass 0`` forges nothing, but code that digs the nonce out of the runner's memory could. Such
code could as well return an object whose ``__eq__`` is always true: that is reward hacking for
the traces to show, not a way out of the sandbox.

Modes (``R1STUDIO_SANDBOX``): ``bwrap`` (the default) refuses to run when bubblewrap is missing
or cannot start, raising :class:`SandboxUnavailable` (the code reward then scores ``None`` and
logs why); ``guard`` is the old, weaker mode, an explicit opt-in for machines without user
namespaces: a temporary directory, ``unshare -n`` when allowed and the in-process guard only.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MODES = ("bwrap", "guard")
NOBODY = 65534
_MAX_RESULT_BYTES = 1 << 20
_INSTALL_HINT = (
    "install bubblewrap (apt-get install bubblewrap, or `make setup` as root) or set "
    "R1STUDIO_SANDBOX=guard to accept the weaker in-process guard"
)

_RUNNER = r"""
import json, os, resource, signal, sys


def _limit(which, value):
    resource.setrlimit(which, (value, value))


def _reporter(fd, nonce):
    def report(line):
        os.write(fd, ("%s %s\n" % (nonce, line)).encode())

    return report


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


def _alarm(signum, frame):
    raise TimeoutError("test timed out")


def _main():
    report_fd = int(sys.argv[1])
    spec = json.loads(sys.stdin.buffer.read())
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # the code's prints go nowhere; the results travel on report_fd
        os.dup2(devnull, fd)
    os.close(devnull)
    _limit(resource.RLIMIT_CPU, int(spec["cpu_seconds"]))
    _limit(resource.RLIMIT_AS, int(spec["memory_mb"]) * 1024 * 1024)
    _limit(resource.RLIMIT_FSIZE, int(spec["max_file_mb"]) * 1024 * 1024)
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_NOFILE, 256)
    if spec["max_processes"]:
        _limit(resource.RLIMIT_NPROC, int(spec["max_processes"]))
    report = _reporter(report_fd, spec.pop("nonce"))
    _guard()
    signal.signal(signal.SIGALRM, _alarm)
    program, tests, per_test = spec["program"], spec["tests"], int(spec["per_test_timeout"])
    del spec
    env = {"__name__": "__sandbox__", "__builtins__": __builtins__}
    try:
        exec(compile(program, "<solution>", "exec"), env)
        report("program ok")
    except BaseException as exc:
        report("program error " + type(exc).__name__)
        report("done")
        os._exit(0)
    for i, test in enumerate(tests):
        signal.alarm(per_test)
        try:
            exec(compile(test, "<test %d>" % i, "exec"), env)
            report("pass %d" % i)
        except BaseException as exc:
            report("fail %d %s" % (i, type(exc).__name__))
        finally:
            signal.alarm(0)
    report("done")
    os._exit(0)  # no atexit hooks or lingering threads of the code's


_main()
"""


class SandboxUnavailable(RuntimeError):
    """The configured sandbox cannot run here; the message says how to fix that."""


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


def sandbox_mode() -> str:
    """``R1STUDIO_SANDBOX``: ``bwrap`` (default, the real sandbox) or ``guard`` (weaker)."""
    mode = os.environ.get("R1STUDIO_SANDBOX", "").strip().lower() or "bwrap"
    if mode not in MODES:
        raise SandboxUnavailable(f"R1STUDIO_SANDBOX={mode!r}: expected one of {', '.join(MODES)}")
    return mode


def sandbox_python() -> str:
    """The interpreter run inside bubblewrap: ``R1STUDIO_SANDBOX_PYTHON``, else the system's
    ``/usr/bin/python3``, else this interpreter's base installation (never a virtualenv)."""
    chosen = os.environ.get("R1STUDIO_SANDBOX_PYTHON")
    if not chosen:
        system = Path("/usr/bin/python3")
        chosen = str(system) if system.exists() else getattr(sys, "_base_executable", "")
    return os.path.realpath(chosen or sys.executable)


def unavailable_reason() -> str | None:
    """Why :func:`run_tests` would refuse to run here, or ``None`` when it can."""
    try:
        if sandbox_mode() == "guard":
            return None
        return _bwrap_probe(tuple(_bwrap_command(sandbox_python(), tmp_mb=64)))
    except SandboxUnavailable as exc:
        return str(exc)


@lru_cache(maxsize=1)
def _bwrap_options() -> tuple[str, frozenset[str]]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(f"bubblewrap (bwrap) is not installed: {_INSTALL_HINT}")
    try:
        usage = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxUnavailable(f"{bwrap} --help failed ({exc}): {_INSTALL_HINT}") from exc
    # --size and --disable-userns arrived in bubblewrap 0.8 (Debian 12); older ones run without.
    return bwrap, frozenset(w for w in usage.stdout.split() if w.startswith("--"))


def _bwrap_command(python: str, *, tmp_mb: int) -> list[str]:
    bwrap, options = _bwrap_options()
    cmd = [bwrap, "--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-net"]
    cmd += ["--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    cmd += ["--die-with-parent", "--new-session", "--clearenv"]
    for name, value in (("HOME", "/tmp"), ("TMPDIR", "/tmp"), ("PATH", "/usr/bin:/bin")):
        cmd += ["--setenv", name, value]
    cmd += ["--setenv", "LANG", "C.UTF-8", "--setenv", "OMP_NUM_THREADS", "1"]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/", name)
        if path.is_symlink():  # merged /usr: /bin -> usr/bin
            cmd += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            cmd += ["--ro-bind", str(path), str(path)]
    prefix = Path(python).parent.parent
    if not prefix.is_relative_to("/usr"):
        cmd += ["--ro-bind", str(prefix), str(prefix)]
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    if "--size" in options:
        cmd += ["--size", str(tmp_mb * 1024 * 1024)]
    cmd += ["--tmpfs", "/tmp", "--remount-ro", "/", "--chdir", "/tmp"]
    if "--disable-userns" in options:
        cmd += ["--disable-userns"]
    return [*cmd, python, "-I", "-S"]


def _unprivileged() -> dict:
    # Root is exempt from RLIMIT_NPROC; bwrap then runs as nobody with a user namespace.
    if os.geteuid() != 0:
        return {}
    return {"user": NOBODY, "group": NOBODY, "extra_groups": []}


_WORKING: set[tuple[str, ...]] = set()


def _bwrap_probe(command: tuple[str, ...]) -> str | None:
    # Successes are remembered; a failure is tried again next time (it may have been transient).
    if command in _WORKING:
        return None
    try:
        done = subprocess.run(
            [*command, "-c", "pass"],
            capture_output=True,
            text=True,
            timeout=30,
            env={},
            cwd="/",
            **_unprivileged(),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap could not start ({exc}); {_INSTALL_HINT}"
    if done.returncode != 0:
        why = done.stderr.strip()[-400:] or f"exit code {done.returncode}"
        return (
            f"bubblewrap could not start a sandbox ({why}); it needs user namespaces (in Docker: "
            "a seccomp profile that allows them) and an interpreter an unprivileged user can "
            f"read (R1STUDIO_SANDBOX_PYTHON); or {_INSTALL_HINT}"
        )
    _WORKING.add(command)
    return None


@lru_cache(maxsize=1)
def network_namespace_prefix() -> tuple[str, ...]:
    """Guard mode: ``("unshare", "-n")`` or ``("unshare", "-rn")`` if allowed, else ``()``."""
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
    max_processes: int = 8,
    tmp_mb: int = 64,
) -> SandboxResult:
    """Run ``program`` then each test source in the same namespace; count the passing tests.

    A test passes when executing it raises nothing. ``timeout`` bounds the whole run in CPU
    seconds (rounded up; RLIMIT_CPU) and, loosely, in wall seconds (``2 * timeout + 3``, for code
    that sleeps or blocks); ``per_test_timeout`` (default: ``timeout``, wall seconds) stops one
    looping test so the others still run. Raises :class:`SandboxUnavailable` when the sandbox
    cannot run here (see the module docstring).
    """
    if not tests:
        return SandboxResult(0, 0, "ok", "no tests")
    spec = {
        "program": program,
        "tests": tests,
        "cpu_seconds": max(1, int(timeout + 0.999)),
        "memory_mb": memory_mb,
        "max_file_mb": max_file_mb,
        "per_test_timeout": max(1, int((per_test_timeout or timeout) + 0.999)),
        "max_processes": 0,
    }
    wall = 2 * timeout + 3.0
    if sandbox_mode() == "guard":
        with tempfile.TemporaryDirectory(prefix="r1-sandbox-", ignore_cleanup_errors=True) as tmp:
            env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8"}
            command = [*network_namespace_prefix(), sys.executable, "-I", "-S", "-c", _RUNNER]
            return _execute(command, spec, wall, cwd=tmp, env={**env, "OMP_NUM_THREADS": "1"})
    command = _bwrap_command(sandbox_python(), tmp_mb=tmp_mb)
    reason = _bwrap_probe(tuple(command))
    if reason:
        raise SandboxUnavailable(reason)
    spec["max_processes"] = max(3, max_processes)
    return _execute([*command, "-c", _RUNNER], spec, wall, cwd="/", env={}, **_unprivileged())


def _execute(
    command: list[str], spec: dict, wall: float, *, cwd: str, env: dict, **user: object
) -> SandboxResult:
    nonce = secrets.token_hex(16)
    read_fd, write_fd = os.pipe()
    try:
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(
                [*command, str(write_fd)],
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=errors,  # bwrap's own complaints; the runner silences the code's output
                pass_fds=(write_fd,),
                start_new_session=True,
                **user,
            )
            os.close(write_fd)
            write_fd = -1
            try:
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.write(json.dumps({**spec, "nonce": nonce}).encode())
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.close()
                data, timed_out = _read_until_closed(read_fd, time.monotonic() + wall)
                if not timed_out:  # the pipe closed: the run is ending, let it say how
                    _wait_briefly(proc, 1.0)
            finally:
                _kill_group(proc)
            errors.seek(0)
            stderr = errors.read(4000).decode(errors="replace").strip()
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    tag = nonce + " "
    text = data.decode(errors="replace")
    lines = [raw[len(tag) :] for raw in text.splitlines() if raw.startswith(tag)]
    status = "timeout" if timed_out else "ok"
    return _summarise(lines, len(spec["tests"]), status, proc.returncode, stderr)


def _read_until_closed(fd: int, deadline: float) -> tuple[bytes, bool]:
    # The pipe closes when every process of the run has ended; poll() (not select) because a
    # busy studio may hold more than FD_SETSIZE descriptors.
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    chunks, size = [], 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), True
        if not poller.poll(left * 1000):
            continue
        data = os.read(fd, 65536)
        if not data:
            return b"".join(chunks), False
        if size < _MAX_RESULT_BYTES:  # keep draining a flood, keep none of it
            chunks.append(data)
            size += len(data)


def _wait_briefly(proc: subprocess.Popen, seconds: float) -> None:
    # Popen.wait(timeout) sleeps in steps of up to 50 ms; a pidfd wakes the moment it exits.
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if poller.poll(seconds * 1000):
            proc.wait()
    finally:
        os.close(pidfd)


def _kill_group(proc: subprocess.Popen) -> None:
    # The whole session: in guard mode the code may have started children the guard missed.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _summarise(
    lines: list[str], total: int, status: str, returncode: int | None, stderr: str = ""
) -> SandboxResult:
    passed = {line.split()[1] for line in lines if line.startswith("pass ")}
    passed &= {str(i) for i in range(total)}
    errors = [line for line in lines if line.startswith(("program error", "fail "))]
    if status == "ok" and any(line.startswith("program error") for line in lines):
        status = "program_error"
    elif status == "ok" and "done" not in lines:
        status = "crashed"  # killed by a limit (SIGXCPU, SIGKILL on memory, SIGXFSZ) mid-run
    detail = "; ".join(errors[:3]) or stderr[-300:] or f"exit code {returncode}"
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
