"""The process supervisor behind `manage.py studio`: Redis, one Celery worker and uvicorn.

Each child runs in its own process group, so the launcher decides the order in which they stop
(Ctrl+C in a terminal reaches only the launcher). On SIGINT or SIGTERM, or when any child dies,
it stops the web server and the worker (SIGTERM to the group, SIGKILL after a grace period),
then kills any descendant still alive (e.g. a training process a task started in a group of
its own), then stops Redis. On Linux each child also gets SIGTERM if the launcher itself dies.
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
from dataclasses import dataclass

import psutil

from r1studio.core.embedded_redis import EmbeddedRedis

PR_SET_PDEATHSIG = 1


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

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)


class Launcher:
    """Starts children, watches them, and stops them all; see the module docstring."""

    def __init__(self, *, grace: float = 10.0, say: Callable[[str], None] = print) -> None:
        self.grace = grace
        self.say = say
        self.children: list[Child] = []
        self.redis: EmbeddedRedis | None = None
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
        process = subprocess.Popen(
            argv, env=env, cwd=cwd, process_group=0, preexec_fn=die_with_parent
        )
        child = Child(name, process)
        self.children.append(child)
        return child

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
        """Wait until a child dies (returned) or a signal raises StopRequested."""
        while True:
            dead = self.dead_child()
            if dead is not None:
                return dead
            if self.redis is not None and self.redis.process.poll() is not None:
                return Child("redis", self.redis.process)
            time.sleep(0.5)

    # --- stopping ----------------------------------------------------------------------------
    def stop_all(self) -> None:
        """Stop every child and every process they started; safe to call more than once."""
        self._quiet_signal_handlers()
        me = psutil.Process()
        descendants = me.children(recursive=True)
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
        leftovers = descendants + me.children(recursive=True)
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


def web_argv(*, host: str, port: int) -> list[str]:
    """uvicorn serving the ASGI app; open SSE streams get 5 s to finish on shutdown."""
    return [
        sys.executable, "-m", "uvicorn", "r1studio.asgi:application",
        "--host", host, "--port", str(port), "--lifespan", "off",
        "--timeout-graceful-shutdown", "5", "--no-access-log",
    ]  # fmt: skip
