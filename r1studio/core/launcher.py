"""The process supervisor behind `manage.py studio`: Redis, one Celery worker and uvicorn.

Each child runs in its own process group, so the launcher decides the order in which they stop
(Ctrl+C in a terminal reaches only the launcher). A child that dies is started again after a
backoff (1 s, doubling to 30 s; the embedded Redis on the same port and password, so that its
clients reconnect); one that dies MAX_RESTARTS times within RESTART_WINDOW seconds is broken,
and the studio stops. On SIGINT or SIGTERM it stops the web server and the worker (SIGTERM to
the group, SIGKILL after a grace period), then kills any descendant still alive (e.g. a
training process a task started in a group of its own), then stops Redis. On Linux each child
also gets SIGTERM if the launcher itself dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

from r1studio.core.embedded_redis import EmbeddedRedis, start_embedded_redis

PR_SET_PDEATHSIG = 1
MAX_RESTARTS = 5
RESTART_WINDOW = 300.0
BACKOFF_MAX = 30.0


class StopRequested(Exception):
    """Raised from the signal handler to unwind start-up or the wait loop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM this child when the launcher dies (best effort)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = ""
    restarts: list[float] = field(default_factory=list)  # monotonic times of recent restarts

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)


class Launcher:
    """Starts children, watches them, and stops them all; see the module docstring."""

    def __init__(
        self,
        *,
        grace: float = 10.0,
        say: Callable[[str], None] = print,
        on_redis_restart: Callable[[EmbeddedRedis], None] | None = None,
    ) -> None:
        self.grace = grace
        self.say = say
        self.children: list[Child] = []
        self.redis: EmbeddedRedis | None = None
        self.redis_restarts: list[float] = []
        self.on_redis_restart = on_redis_restart
        self._hurry = False

    # --- signals -----------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        def on_signal(signum: int, frame: object) -> None:
            raise StopRequested(signum)

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

    def _quiet_signal_handlers(self) -> None:
        # A second Ctrl+C while stopping skips the grace period instead of aborting cleanup.
        def hurry(signum: int, frame: object) -> None:
            self._hurry = True

        signal.signal(signal.SIGINT, hurry)
        signal.signal(signal.SIGTERM, hurry)

    # --- children ----------------------------------------------------------------------------
    def start(self, name: str, argv: list[str], *, env: dict[str, str], cwd: str) -> Child:
        child = Child(name, self._spawn(argv, env, cwd), argv, env, cwd)
        self.children.append(child)
        return child

    @staticmethod
    def _spawn(argv: list[str], env: dict[str, str], cwd: str) -> subprocess.Popen:
        return subprocess.Popen(argv, env=env, cwd=cwd, process_group=0, preexec_fn=die_with_parent)

    def _may_restart(self, restarts: list[float]) -> float | None:
        """The backoff before the next restart, or None when it has crashed too often."""
        now = time.monotonic()
        restarts[:] = [t for t in restarts if now - t < RESTART_WINDOW]
        if len(restarts) >= MAX_RESTARTS:
            return None
        restarts.append(now)
        return min(BACKOFF_MAX, 2.0 ** (len(restarts) - 1))

    def restart(self, child: Child) -> bool:
        """Start a dead child again after its backoff; False when it crashes too often."""
        # A dead worker's own children (the pipeline, in a group of its own) go with it.
        child.signal_group(signal.SIGKILL)
        backoff = self._may_restart(child.restarts)
        if backoff is None:
            return False
        self.say(
            f"{child.name} exited with status {child.process.returncode}; "
            f"starting it again in {backoff:.0f} s"
        )
        self._sleep(backoff)
        child.process = self._spawn(child.argv, child.env, child.cwd)
        return True

    def restart_redis(self) -> bool:
        """Start the embedded Redis again on its port and password; False when it cannot."""
        old = self.redis
        assert old is not None
        backoff = self._may_restart(self.redis_restarts)
        if backoff is None:
            return False
        self.say(
            f"the embedded Redis exited with status {old.process.returncode}; "
            f"starting it again in {backoff:.0f} s"
        )
        self._sleep(backoff)
        try:
            self.redis = start_embedded_redis(
                workdir=old.workdir,
                port=old.port,
                password=old.password,
                preexec_fn=die_with_parent,
                stdout=subprocess.DEVNULL,
            )
        except Exception as error:  # the port was taken meanwhile: clients cannot follow
            self.say(f"could not start the embedded Redis again: {error}")
            return False
        self.redis.owns_workdir = old.owns_workdir
        if self.on_redis_restart is not None:
            self.on_redis_restart(self.redis)
        return True

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(min(0.2, seconds))

    def dead_child(self) -> Child | None:
        return next((child for child in self.children if not child.alive()), None)

    def wait_for_http(self, url: str, *, timeout: float = 120.0) -> None:
        """Block until `url` answers any HTTP status; raise if a child dies first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = self.dead_child()
            if dead is not None:
                raise RuntimeError(f"{dead.name} exited with status {dead.process.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # the server answered; a 503 from /healthz still means "up"
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")

    def watch(self) -> Child:
        """Restart children that die; return the one that dies too often (the studio then
        stops), or raise StopRequested on a signal."""
        while True:
            redis_dead = self.redis is not None and self.redis.process.poll() is not None
            if redis_dead and not self.restart_redis():
                return Child("the embedded Redis", self.redis.process)
            dead = self.dead_child()
            if dead is not None and not self.restart(dead):
                return dead
            time.sleep(0.5)

    # --- stopping ----------------------------------------------------------------------------
    def _descendants(self) -> list[psutil.Process]:
        """The processes our children started (only theirs: the launcher may run inside
        another program, such as a test session, whose other children are not ours)."""
        found = []
        for child in self.children:
            with contextlib.suppress(psutil.Error):
                found += psutil.Process(child.process.pid).children(recursive=True)
        return found

    def stop_all(self) -> None:
        """Stop every child and every process they started; safe to call more than once."""
        self._quiet_signal_handlers()
        descendants = self._descendants()
        for child in reversed(self.children):
            if child.alive():
                self.say(f"Stopping {child.name} (pid {child.process.pid})")
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline and not self._hurry:
            if not any(child.alive() for child in self.children):
                break
            time.sleep(0.1)
        for child in self.children:
            if child.alive():
                self.say(f"{child.name} did not stop within {self.grace:.0f} s; killing it")
            child.signal_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(5)
        # Anything a child started in a group or session of its own is still ours to end.
        redis_pid = self.redis.process.pid if self.redis else None
        leftovers = descendants + self._descendants()
        leftovers = [p for p in leftovers if p.pid != redis_pid and p.is_running()]
        for process in leftovers:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(leftovers, timeout=5)
        if self.redis is not None:
            self.redis.stop()
            self.redis = None


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """The launcher's environment plus `extra`, unbuffered so logs interleave in order."""
    env = dict(os.environ)
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("DJANGO_SETTINGS_MODULE", "r1studio.settings")
    return env


def worker_argv() -> list[str]:
    """One Celery worker on both queues, one task at a time."""
    return [
        sys.executable, "-m", "celery", "-A", "r1studio", "worker",
        "-Q", "cpu,gpu", "-c", "1", "--prefetch-multiplier", "1",
        "--loglevel", "INFO", "--without-mingle", "--without-gossip",
    ]  # fmt: skip


def ray_worker_argv() -> list[str]:
    """The watchers of runs on a Ray cluster (queue `ray`): short polls, several at once in
    threads, apart from the worker whose one slot a local run holds for hours."""
    return [
        sys.executable, "-m", "celery", "-A", "r1studio", "worker",
        "-Q", "ray", "-P", "threads", "-c", "4", "-n", "ray@%h",
        "--loglevel", "INFO", "--without-mingle", "--without-gossip",
    ]  # fmt: skip


def web_argv(*, host: str, port: int) -> list[str]:
    """uvicorn serving the ASGI app; open SSE streams get 5 s to finish on shutdown."""
    return [
        sys.executable, "-m", "uvicorn", "r1studio.asgi:application",
        "--host", host, "--port", str(port), "--lifespan", "off",
        "--timeout-graceful-shutdown", "5", "--no-access-log",
    ]  # fmt: skip
