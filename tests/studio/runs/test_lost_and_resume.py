"""A worker SIGKILLed mid-run: the run goes `lost` with every point so far, and resumes; and
PostgreSQL restarting mid-run costs no step.

The worker here is a real `celery worker` PROCESS (the embedded test worker lives in the test
process, which cannot be killed), pointed at the test database and the test Redis.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from r1studio.metrics.selectors import run_metrics_series
from r1studio.runs.models import Checkpoint, Run, RunStatus
from r1studio.runs.services import run_create, run_launch, run_resume
from r1studio.runs.supervisor import process_group_alive
from r1studio.workers.models import WorkerHeartbeat
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[3]


def database_url_of_this_test() -> str:
    """A DATABASE_URL naming the database this test runs on (the test DB, not the dev one)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker_process(
    redis_url: str, data_dir: Path, tmp_path: Path
) -> Iterator[Callable[[str], subprocess.Popen]]:
    """Factory: start `celery worker` named `<name>@<host>` in its own process
    (`start(name, VAR="value")` adds to its environment)."""
    started: list[subprocess.Popen] = []
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "r1studio.settings",
        "DATABASE_URL": database_url_of_this_test(),
        "REDIS_URL": redis_url,
        "R1STUDIO_DATA_DIR": str(data_dir),
        "R1STUDIO_HEARTBEAT_SECONDS": "1",
        "R1STUDIO_RUN_HEARTBEAT_SECONDS": "1",
        "R1STUDIO_LOST_AFTER_SECONDS": "3",
        "R1STUDIO_CANCEL_GRACE_SECONDS": "10",
    }

    def start(name: str, **extra_env: str) -> subprocess.Popen:
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "r1studio", "worker", "-Q", "cpu,gpu",
             "-c", "1", "-P", "solo", "-n", f"{name}@%h", "--loglevel", "INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env={**env, **extra_env}, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(proc)
        wait_for(
            lambda: (
                proc.poll() is not None
                or WorkerHeartbeat.objects.filter(hostname__startswith=f"{name}@").exists()
            ),
            timeout=60,
        )
        assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()[-3000:]
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _reward_steps(run: Run) -> list[int]:
    return run_metrics_series(run=run, name="reward", max_points=10_000)["steps"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_marks_a_killed_workers_run_lost_and_resumes_it_from_its_checkpoint(
    worker_process: Any, researcher: Any, toy_config: Any, data_dir: Path
):
    victim = worker_process("victim")
    config = toy_config("grpo", trainer={"max_steps": 120}, output={"save_steps": 5})
    run = run_launch(run=run_create(user=researcher, name="doomed", config=config), user=researcher)
    wait_for(
        lambda: (
            Run.objects.filter(pk=run.pk, step__gte=8, pid__isnull=False).exists()
            and Checkpoint.objects.filter(run=run).exists()
        ),
        timeout=180,
    )

    victim.send_signal(signal.SIGKILL)
    victim.wait()
    run.refresh_from_db()
    pipeline_pid = run.pid
    assert run.status == RunStatus.RUNNING  # nobody has noticed yet
    # The pipeline dies with its worker (parent-death signal), after saving a checkpoint.
    wait_for(lambda: not process_group_alive(pipeline_pid), timeout=60)

    worker_process("rescuer")  # any live worker sweeps: lost after 3 s without a heartbeat
    wait_for(lambda: Run.objects.filter(pk=run.pk, status=RunStatus.LOST).exists(), timeout=60)
    run.refresh_from_db()
    stored = _reward_steps(run)
    assert stored == list(range(1, len(stored) + 1)) and len(stored) >= 8  # every point so far
    assert "stopped reporting" in run.error

    run = run_resume(run=run, user=researcher)
    assert run.resume_from.startswith(run.run_dir) and "checkpoint-" in run.resume_from
    wait_for(lambda: Run.objects.filter(pk=run.pk, status=RunStatus.FINISHED).exists(), timeout=300)

    run.refresh_from_db()
    steps = _reward_steps(run)
    assert steps == list(range(1, 121))  # each step once: none lost, none stored twice
    assert run.step == 120 and run.progress == 1.0
    log = (Path(run.run_dir) / "stdout.log").read_text()
    assert "--resume" in log  # the same run dir, resumed
    assert not process_group_alive(run.pid)


class Relay:
    """A loopback TCP relay to host:port that can be cut (all connections dropped) and resumed."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.up.clear()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def resume(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.cut()
        self.server.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_rides_out_a_database_restart_without_losing_a_step(
    worker_process: Any, researcher: Any, toy_config: Any, data_dir: Path
) -> None:
    db = connection.settings_dict
    if not db["ENGINE"].endswith("postgresql"):
        pytest.skip("a database server restart needs PostgreSQL (CI runs this on it)")
    relay = Relay(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    url = database_url_of_this_test().replace(f":{db['PORT'] or 5432}/", f":{relay.port}/")
    try:
        worker_process("steady", DATABASE_URL=url, R1STUDIO_LOST_AFTER_SECONDS="60")
        config = toy_config("grpo", trainer={"max_steps": 40}, output={"save_steps": 10})
        run = run_launch(run=run_create(user=researcher, name="db", config=config), user=researcher)
        wait_for(lambda: Run.objects.filter(pk=run.pk, step__gte=3).exists(), timeout=180)

        relay.cut()  # the database is down for 8 s (under the 60 s lost timeout of production)
        time.sleep(8)
        relay.resume()

        wait_for(lambda: Run.objects.get(pk=run.pk).is_ended, timeout=300)
    finally:
        relay.close()
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED, (run.error, run.traceback)
    steps = run_metrics_series(run=run, name="reward", max_points=10_000)["steps"]
    assert steps == list(range(1, 41))
