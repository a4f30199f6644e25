"""The studio as `make run` starts it, for a bench: a fresh database, Redis, a worker, the web.

`Studio(work)` points this process at a new SQLite database and data directory under `work`
(before Django is set up), migrates it, makes a researcher with an API token, and starts an
embedded Redis, one Celery worker (`launcher.worker_argv`, as `manage.py studio` does) and
uvicorn (`launcher.web_argv`) on a free port. `studio.api(method, path, body)` speaks to the
JSON API over HTTP with the token. `studio.stop()` stops everything it started.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Studio:
    def __init__(self, work: Path, data_dir: Path) -> None:
        self.work = work
        self.data_dir = data_dir
        self.procs: list[subprocess.Popen] = []
        self.redis: Any = None
        os.environ.update(
            DJANGO_SETTINGS_MODULE="r1studio.settings",
            DATABASE_URL=f"sqlite:///{work / 'studio.sqlite3'}",
            R1STUDIO_DATA_DIR=str(data_dir),
            SECRET_KEY=os.environ.get("SECRET_KEY") or "bench-recipe-secret-key-0123456789",
        )
        os.environ.pop("REDIS_URL", None)

    def start(self) -> None:
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        from r1studio.api.services import api_token_create
        from r1studio.core.embedded_redis import start_embedded_redis
        from r1studio.core.launcher import child_env, web_argv, worker_argv
        from r1studio.core.services import user_create

        call_command("migrate", verbosity=0)
        user = user_create(username="bench", role="researcher", password="bench-password-1").user
        _, self.token = api_token_create(user=user, name="bench")
        connections.close_all()
        self.redis = start_embedded_redis(stdout=subprocess.DEVNULL)
        env = child_env({"REDIS_URL": self.redis.url})
        self.port = _free_port()
        for name, argv in (
            ("worker", worker_argv()),
            ("web", web_argv(host="127.0.0.1", port=self.port)),
        ):
            log = open(self.work / f"{name}.log", "wb")  # noqa: SIM115 - closed on stop
            self.procs.append(
                subprocess.Popen(
                    argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )  # fmt: skip
        self._wait_for_web()

    def _wait_for_web(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if any(proc.poll() is not None for proc in self.procs):
                raise RuntimeError(f"the studio stopped; see {self.work}/worker.log and web.log")
            try:
                self.api("GET", "/recipes")
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError, RuntimeError):
                time.sleep(0.3)
        raise RuntimeError("the web server did not answer within 90 s")

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise RuntimeError(
                f"{method} {path}: HTTP {error.code} {error.read()[:2000]!r}"
            ) from None

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.redis is not None:
            self.redis.stop()
