"""The Ray executor on the real thing: a local Ray head, the studio's watcher on a real Celery
worker (queue `ray`), the live server taking the job's events over HTTP ingest.

The head is started once for the module (`ray start --head` on loopback, 1 CPU, a 100 MB
object store, its own temp dir and ports) and stopped after by its process group. Skipped,
with the reason, only when `ray` cannot be imported (`pip install -e '.[ray]'`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

pytest.importorskip("ray.job_submission", reason="`ray` is not installed (pip install -e '.[ray]')")

from r1studio.metrics.selectors import run_metrics_series  # noqa: E402
from r1studio.runs import hooks, ray_executor  # noqa: E402
from r1studio.runs.hooks import run_ended_register  # noqa: E402
from r1studio.runs.models import Checkpoint, Run, RunExecutor, RunStatus  # noqa: E402
from r1studio.runs.services import (  # noqa: E402
    RAY_QUEUE,
    RAY_WATCH_TASK,
    RunStateError,
    run_cancel,
    run_create,
    run_launch,
    run_resume,
)
from tests.conftest import wait_for  # noqa: E402

pytestmark = pytest.mark.ray
RAY_BIN = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop_group(pgid: int, temp_dir: str) -> None:
    """SIGTERM the head's process group, SIGKILL what is left, then any straggler that left
    the group but still names our temp dir (Ray's workers)."""
    for signum, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if temp_dir in " ".join(proc.info["cmdline"] or []):
                proc.kill()
        except psutil.Error:
            continue


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A real one-node Ray cluster on loopback; yields its dashboard (Jobs API) address."""
    temp_dir = tempfile.mkdtemp(prefix="r1ray-")  # short: Ray's socket paths have a limit
    dashboard = _free_port()
    command = [
        str(RAY_BIN), "start", "--head", "--node-ip-address=127.0.0.1",
        f"--port={_free_port()}", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
        f"--ray-client-server-port={_free_port()}",
        f"--dashboard-agent-listen-port={_free_port()}", "--num-cpus=1", "--num-gpus=0",
        "--include-dashboard=true", "--object-store-memory=100000000",
        f"--temp-dir={temp_dir}", "--disable-usage-stats",
    ]  # fmt: skip
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(
        command, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    address = f"http://127.0.0.1:{dashboard}"
    try:
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            pytest.fail(f"ray start failed:\n{out.decode(errors='replace')[-3000:]}")
        ray_executor.ray_client(address)  # the Jobs API answers
        yield address
    finally:
        _stop_group(proc.pid, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def ray_worker(transactional_db: None, redis_url: str) -> Iterator[Any]:
    """A real Celery worker on the `ray` queue only, as a deployment runs it."""
    from celery.contrib.testing.worker import start_worker

    from r1studio.celery import app

    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        queues=[RAY_QUEUE],
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as worker:
        yield worker


@pytest.fixture
def on_ray(settings: Any, ray_head: str, live_server: Any, data_dir: Path) -> str:
    """The studio pointed at the test cluster; its jobs report to the live server."""
    settings.RAY_ADDRESS = ray_head
    settings.R1STUDIO_RAY_PYTHON = sys.executable
    settings.R1STUDIO_RAY_GPUS = 0
    settings.R1STUDIO_RAY_STUDIO_URL = live_server.url
    # A stage starting on a busy 2-core machine may keep a tick waiting for seconds.
    settings.R1STUDIO_LOST_AFTER_SECONDS = 60
    return ray_head


def _refreshed(run: Run) -> Run:
    run.refresh_from_db()
    return run


def _launch_on_ray(user: Any, config: dict, name: str = "toy on ray") -> Run:
    run = run_create(user=user, name=name, config=config)
    return run_launch(run=run, user=user, executor="ray")


def _jobs_of(run: Run, address: str) -> list[Any]:
    prefix = f"r1studio-run-{run.pk}-"
    jobs = ray_executor.ray_client(address).list_jobs()
    return [job for job in jobs if (job.submission_id or "").startswith(prefix)]


@pytest.mark.django_db(transaction=True)
def test_it_cancels_a_ray_run_by_stopping_its_job_and_never_submits_twice(
    on_ray, ray_worker, researcher, toy_config, settings
):
    config = toy_config("grpo", trainer={"max_steps": 500}, output={"save_steps": 1000})
    run = _launch_on_ray(researcher, config, name="long on ray")
    wait_for(lambda: _refreshed(run).job_state.get("status") == "RUNNING", timeout=120)

    # A duplicate watch message (a requeue, a redelivery) and a second submission of the same
    # attempt start nothing: one job for the run.
    ray_worker.app.send_task(RAY_WATCH_TASK, args=[run.pk], queue=RAY_QUEUE)
    again = ray_executor.job_submit(run=run, attempt=1, resume=False)
    assert again == run.job_id
    with pytest.raises(RunStateError):
        run_launch(run=run, user=researcher, executor="ray")
    time.sleep(2 * settings.R1STUDIO_RUN_HEARTBEAT_SECONDS)
    assert [job.submission_id for job in _jobs_of(run, on_ray)] == [run.job_id]

    run_cancel(run=run, user=researcher)
    wait_for(lambda: _refreshed(run).is_ended, timeout=120, interval=0.5)

    assert run.status == RunStatus.CANCELLED, (run.error, run.job_state)
    client = ray_executor.ray_client(on_ray)
    assert client.get_job_status(run.job_id).value == "STOPPED"
    assert run.job_state["stop_sent"] is True


@pytest.mark.django_db(transaction=True)
def test_it_marks_a_ray_run_lost_when_the_cluster_stops_answering(
    settings, ray_worker, researcher, toy_config, data_dir, live_server
):
    settings.RAY_ADDRESS = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    settings.R1STUDIO_LOST_AFTER_SECONDS = 3
    run = _launch_on_ray(researcher, toy_config("evaluate"), name="cluster away")

    wait_for(lambda: _refreshed(run).is_ended, timeout=60, interval=0.5)

    assert run.status == RunStatus.LOST
    assert "did not answer" in run.error and settings.RAY_ADDRESS in run.error
    assert run.job_id == ""  # never submitted: a resume submits attempt 2 from scratch


@pytest.mark.django_db(transaction=True)
def test_it_runs_a_toy_grpo_stage_on_ray_reporting_over_http_and_resumes_it_when_lost(
    on_ray, ray_worker, researcher, toy_config
):
    # Long enough that the first job is still training when the watcher stops it (at 12 steps
    # it now and then ran to its end first, and the resume began at the last step).
    config = toy_config("grpo", trainer={"max_steps": 60}, output={"save_steps": 4})
    run = _launch_on_ray(researcher, config, name="lost on ray")
    assert run.executor == RunExecutor.RAY and run.status == RunStatus.QUEUED
    wait_for(lambda: Checkpoint.objects.filter(run=run).exists(), timeout=180, interval=0.5)
    first_job = _refreshed(run).job_id
    # What the sweep does when the watcher dies: its job must not train on unwatched.
    Run.objects.filter(pk=run.pk).update(status=RunStatus.LOST, error="watcher gone")
    client = ray_executor.ray_client(on_ray)
    wait_for(lambda: client.get_job_status(first_job).is_terminal(), timeout=60)

    run = run_resume(run=_refreshed(run), user=researcher)
    wait_for(lambda: _refreshed(run).is_ended, timeout=240, interval=0.5)

    assert run.status == RunStatus.FINISHED, (run.error, run.traceback, run.job_state)
    assert run.job_id == f"{first_job}-r2" and run.job_state["attempt"] == 2
    assert client.get_job_status(first_job).value == "STOPPED"
    assert client.get_job_status(run.job_id).value == "SUCCEEDED"
    assert "--resume" in client.get_job_info(run.job_id).entrypoint
    assert run.step == 60 and run.progress == 1.0  # no step past max_steps
    assert run.worker == f"ray {on_ray}" and run.job_state["status"] == "SUCCEEDED"
    # Both jobs' logs, followed into the run folder: the run page's log pane.
    log = (Path(run.run_dir) / "stdout.log").read_text()
    assert f"submitted Ray job {first_job}\n" in log and f"submitted Ray job {run.job_id}" in log
    assert "resume" in log
    # Every point came over HTTP ingest (the studio never reads the job's events.jsonl), and
    # no step is missing: the first job's unsent tail came with the second job's spool.
    steps = run_metrics_series(run=run, name="reward")["steps"]
    assert set(range(1, 61)) <= set(steps) and max(steps) == 60


@pytest.mark.django_db(transaction=True)
def test_it_marks_a_ray_run_lost_when_the_cluster_no_longer_knows_its_job(
    on_ray, researcher, toy_config
):
    run = run_create(user=researcher, name="forgotten", config=toy_config("evaluate"))
    Run.objects.filter(pk=run.pk).update(
        executor=RunExecutor.RAY,
        status=RunStatus.RUNNING,
        job_id="r1studio-run-0-restarted-cluster",
        job_state={"watcher": "w1", "address": on_ray, "attempt": 1},
    )
    heard: list[int] = []
    run_ended_register(key="test-ray", handler=lambda run_ids: heard.extend(run_ids))
    try:
        following = ray_executor.ray_tick(run_id=run.pk, watcher="w1")
    finally:
        hooks._registry.pop("test-ray", None)

    run.refresh_from_db()
    assert following is None and run.status == RunStatus.LOST
    assert "no longer knows the job r1studio-run-0-restarted-cluster" in run.error
    assert heard == [run.pk]  # a recipe hears that its stage ended
