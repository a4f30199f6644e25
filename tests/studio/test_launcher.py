"""`manage.py studio` (what `make run` calls), run for real in a subprocess.

It must bring up Redis, a Celery worker and uvicorn; /healthz must say ok with one worker; the
admin password, in the owner-only file the closing banner names, must log in; Ctrl+C must leave
no process behind; a second start must
reuse everything; and the death of any child must stop the rest with a non-zero exit.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest

from r1studio.core.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[2]


class Studio:
    """A `manage.py studio` subprocess whose output is collected by a thread."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "studio", "--no-toy", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def health(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"{self.base}/healthz", timeout=2) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            return json.load(error)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def wait_until_healthy(self, timeout: float = 180.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"studio exited early:\n{self.output}"
            health = self.health()
            ready = "R1 Studio is running at" in self.output
            if ready and health == {"status": "ok", "database": "ok", "redis": "ok", "workers": 1}:
                return health
            time.sleep(0.5)
        pytest.fail(f"studio not healthy within {timeout} s (last: {health}):\n{self.output}")

    def kill_everything(self) -> None:
        processes = [self.process_handle(), *self.descendants()]
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(processes, timeout=10)

    def process_handle(self) -> psutil.Process:
        return psutil.Process(self.process.pid)


def log_in(studio: Studio, username: str, password: str) -> str:
    """Sign in through the real login form; return the page it lands on."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{studio.base}/accounts/login/", timeout=10) as response:
        form = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    data = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token, "next": "/"}
    ).encode()
    with opener.open(f"{studio.base}/accounts/login/", data=data, timeout=10) as response:
        assert response.url == f"{studio.base}/"
        return response.read().decode()


def printed_password(studio: Studio) -> tuple[str, str]:
    """The admin's username and password, from the file the closing banner points to."""
    username = re.search(r"^\s+Sign in as:\s+(\S+)$", studio.output, re.M).group(1)
    path = Path(re.search(r"^\s+Password:\s+in (\S+) \(", studio.output, re.M).group(1))
    assert path.stat().st_mode & 0o777 == 0o600
    lines = dict(line.split(": ", 1) for line in path.read_text().splitlines())
    assert lines["username"] == username
    return username, lines["password"]


def assert_all_gone(processes: list[psutil.Process]) -> None:
    _, alive = psutil.wait_procs(processes, timeout=15)
    assert alive == [], f"left running: {alive}"


def test_it_runs_the_studio_and_leaves_nothing_behind(
    studio_env: dict[str, str], studios: list[Studio]
) -> None:
    # First start: set-up, demo admin, all three services.
    studio = Studio(studio_env, free_port())
    studios.append(studio)
    studio.wait_until_healthy()
    assert f"R1 Studio is running at http://127.0.0.1:{studio.port}" in studio.output
    username, password = printed_password(studio)
    assert password not in studio.output  # only in the file, named last, after the server is up
    assert studio.output.rindex("Password:") > studio.output.index("Started the embedded Redis")
    dashboard = log_in(studio, username, password)
    assert "Where to start" in dashboard
    assert "Workers online" in dashboard
    with urllib.request.urlopen(f"{studio.base}/static/css/app.css", timeout=10) as response:
        assert response.status == 200  # static files are served without a login

    children = studio.descendants()
    names = " ".join(" ".join(p.cmdline()) for p in children)
    assert "redis-server" in names and "celery" in names and "uvicorn" in names
    studio.process.send_signal(signal.SIGINT)
    assert studio.process.wait(60) == 0
    assert "Stopped." in studio.output
    assert_all_gone(children)

    # Second start: everything is reused and no new admin is made.
    again = Studio(studio_env, free_port())
    studios.append(again)
    again.wait_until_healthy()
    assert "Created the demo admin" not in again.output and password not in again.output
    assert printed_password(again) == (username, password)  # the banner still says where
    assert "Where to start" in log_in(again, username, password)

    # A child that dies is started again; Ctrl+C still leaves nothing behind.
    direct = psutil.Process(again.process.pid).children()
    worker = next(p for p in direct if "celery" in " ".join(p.cmdline()))
    worker.kill()
    deadline = time.monotonic() + 60
    while "celery worker exited" not in again.output and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "starting it again" in again.output
    again.wait_until_healthy()
    children = again.descendants()
    again.process.send_signal(signal.SIGINT)
    assert again.process.wait(60) == 0
    assert_all_gone(children)


def test_it_stops_the_studio_when_a_child_keeps_crashing(monkeypatch) -> None:
    from r1studio.core import launcher as launcher_module

    monkeypatch.setattr(launcher_module, "MAX_RESTARTS", 2)
    said: list[str] = []
    launcher = launcher_module.Launcher(grace=2, say=said.append)
    crashing = [sys.executable, "-c", "import sys; sys.exit(3)"]
    launcher.start("crasher", crashing, env=dict(os.environ), cwd=str(ROOT))
    try:
        dead = launcher.watch()
    finally:
        launcher.stop_all()

    assert dead.name == "crasher" and dead.process.returncode == 3
    assert sum("starting it again" in line for line in said) == 2
