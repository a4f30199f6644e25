"""The first run of a fresh studio, the way `make run` starts it.

`manage.py studio` on a fresh SQLite file with its embedded Redis and its prefork Celery worker;
the run goes in through the API like any client's. The run must start and finish: a pool child
forked while the worker's heartbeat held a SQLite connection used to fail every write with
"database is locked", leaving the first run queued forever.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
import yaml

from r1studio.core.embedded_redis import free_port
from r1studio.runs.supervisor import process_group_alive
from tests.studio.runs.conftest import FAST, merge
from tests.studio.test_launcher import ROOT, Studio, printed_password

HEALTHY = {"status": "ok", "database": "ok", "redis": "ok", "workers": 1}


def _api(studio: Studio, token: str, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{studio.base}/api{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _config(toy_dir: Path, toy: Path, kind: str, **overrides: dict) -> dict:
    """A fast toy stage config whose files are the studio's copy of the toy assets."""
    text = (toy_dir / "configs" / f"{kind}.yaml").read_text().replace(str(toy_dir), str(toy))
    return merge(merge(yaml.safe_load(text), FAST[kind]), overrides)


def _wait_status(studio: Studio, token: str, run_id: int, statuses: tuple, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = _api(studio, token, "GET", f"/runs/{run_id}")
        if run["status"] in statuses or time.monotonic() > deadline:
            return run
        time.sleep(1)


def _start(studio_env: dict[str, str], studios: list, toy_dir: Path) -> tuple[Studio, str, Path]:
    toy = Path(studio_env["R1STUDIO_DATA_DIR"]) / "toy"
    shutil.copytree(toy_dir, toy)
    studio = Studio(studio_env, free_port())
    studios.append(studio)
    studio.wait_until_healthy()
    username, _ = printed_password(studio)
    made = subprocess.run(
        [sys.executable, "manage.py", "createtoken", username],
        cwd=ROOT,
        env=studio_env,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    return studio, made.stdout.strip().splitlines()[-1], toy


@pytest.mark.slow
def test_it_runs_the_first_run_of_a_fresh_studio(
    studio_env: dict[str, str], studios: list[Studio], toy_dir: Path
) -> None:
    studio, token, toy = _start(studio_env, studios, toy_dir)
    config = _config(toy_dir, toy, "sft", trainer={"max_steps": 2})

    run = _api(studio, token, "POST", "/runs", {"name": "first", "config": config})
    _api(studio, token, "POST", f"/runs/{run['id']}/launch")

    run = _wait_status(studio, token, run["id"], ("finished", "failed", "lost"), 240)
    assert run["status"] == "finished", (run, studio.output[-3000:])
    assert "database is locked" not in studio.output
    assert os.path.isdir(os.path.join(run["run_dir"], "final"))


def _child(studio: Studio, word: str) -> psutil.Process:
    return next(
        p for p in psutil.Process(studio.process.pid).children() if word in " ".join(p.cmdline())
    )


@pytest.mark.slow
def test_it_survives_a_killed_redis_and_a_killed_worker_without_losing_a_step(
    studio_env: dict[str, str], studios: list[Studio], toy_dir: Path
) -> None:
    studio, token, toy = _start(studio_env, studios, toy_dir)
    config = _config(toy_dir, toy, "grpo", trainer={"max_steps": 30}, output={"save_steps": 5})
    run = _api(studio, token, "POST", "/runs", {"name": "victim", "config": config})
    run_id = run["id"]
    _api(studio, token, "POST", f"/runs/{run_id}/launch")
    wait_step = lambda n: _wait_until(  # noqa: E731
        lambda: _api(studio, token, "GET", f"/runs/{run_id}")["step"] >= n, 180
    )

    # Redis dies: the launcher starts it again on its port; the run trains on.
    wait_step(3)
    _child(studio, "redis-server").kill()
    _wait_until(lambda: studio.health() == HEALTHY, 60)
    step = _api(studio, token, "GET", f"/runs/{run_id}")["step"]
    wait_step(step + 3)
    assert "starting it again" in studio.output

    # The worker's main process dies: started again, the run is lost, nothing keeps training.
    run_dir = _api(studio, token, "GET", f"/runs/{run_id}")["run_dir"]
    pid = next(
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if "pipeline" in (p.info["cmdline"] or []) and run_dir in " ".join(p.info["cmdline"])
    )
    _child(studio, "celery").kill()
    run = _wait_status(studio, token, run_id, ("lost", "failed", "finished"), 60)
    assert run["status"] == "lost", run
    _wait_until(lambda: not process_group_alive(pid), 60)

    # Resume: every step once, none lost, none stored twice.
    _api(studio, token, "POST", f"/runs/{run_id}/resume")
    run = _wait_status(studio, token, run_id, ("finished", "failed", "lost"), 300)
    assert run["status"] == "finished", (run, studio.output[-3000:])
    series = _api(studio, token, "GET", f"/runs/{run_id}/metrics?name=reward&max_points=1000")
    assert series["steps"] == list(range(1, 31))


def _wait_until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout} s: {predicate}"
        time.sleep(0.5)
