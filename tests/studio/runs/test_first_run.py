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

import pytest
import yaml

from r1studio.core.embedded_redis import free_port
from tests.studio.test_launcher import ROOT, Studio, printed_password


def _api(studio: Studio, token: str, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{studio.base}/api{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _sft_config(toy: Path) -> dict:
    config = yaml.safe_load((toy / "configs" / "sft.yaml").read_text())
    config["model"]["path"] = str(toy / "models" / "base")
    config["data"]["source"] = str(toy / "data" / "sft.jsonl")
    config["trainer"].update(max_steps=2, logging_steps=1, per_device_train_batch_size=8)
    config["output"].update(save_steps=2, save_total_limit=1)
    return config


@pytest.mark.slow
def test_it_runs_the_first_run_of_a_fresh_studio(
    tmp_path: Path, studio_env: dict[str, str], studios: list[Studio], toy_dir: Path
) -> None:
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
    token = made.stdout.strip().splitlines()[-1]

    run = _api(studio, token, "POST", "/runs", {"name": "first", "config": _sft_config(toy)})
    _api(studio, token, "POST", f"/runs/{run['id']}/launch")

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        run = _api(studio, token, "GET", f"/runs/{run['id']}")
        if run["status"] not in ("queued", "running"):
            break
        time.sleep(1)
    assert run["status"] == "finished", (run, studio.output[-3000:])
    assert "database is locked" not in studio.output
    assert os.path.isdir(os.path.join(run["run_dir"], "final"))
