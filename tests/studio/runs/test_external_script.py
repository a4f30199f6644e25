"""An outside training script reports to the studio with R1StudioCallback while the studio's
HTTP ingest is away: it starts before the studio answers, the studio goes down again mid-run
and comes back, and every metric step arrives exactly once.

Everything is real: the script is a subprocess training the toy model with TRL's GRPOTrainer
(docs/examples/grpo_script.py), the studio is uvicorn serving the ASGI app over the test
database, started late, stopped and started again on the same port.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from r1studio.api.services import api_token_create
from r1studio.core.embedded_redis import free_port
from r1studio.metrics.selectors import run_metrics_series
from r1studio.runs.models import Checkpoint, Run, RunExecutor, RunStatus
from r1studio.traces.models import Trace
from tests.conftest import wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "docs" / "examples" / "grpo_script.py"
STEPS = 24


class Studio:
    """uvicorn serving the studio on a fixed port, in a thread; stop() and start() again."""

    def __init__(self, port: int):
        self.port = port
        self.server: Any = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        import uvicorn

        from r1studio.asgi import application

        config = uvicorn.Config(
            application,
            host="127.0.0.1",
            port=self.port,
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="studio", daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started or not self.thread.is_alive(), timeout=30)
        assert self.server.started, "uvicorn did not start"

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            self.thread.join(timeout=15)
            self.server = None


def spooled_metrics(output_dir: Path) -> int:
    """Metric events the script has written to its spool so far."""
    return sum(
        path.read_text().count('"type": "metrics"')
        for path in output_dir.glob("r1studio/*/events.jsonl")
    )


def unsent(output_dir: Path) -> int:
    """Events of the spool the studio has not acknowledged (events.sent: seq offset base)."""
    for path in output_dir.glob("r1studio/*/events.jsonl"):
        sent = path.with_name("events.sent")
        acked = int(sent.read_text().split()[0]) if sent.exists() else 0
        return len(path.read_text().splitlines()) - acked
    return 0


def test_a_script_reports_through_a_studio_outage_without_losing_a_step(
    transactional_db, redis_url, researcher, toy_dir, tmp_path
):
    _, user_token = api_token_create(user=researcher, name="script")
    port = free_port()
    studio = Studio(port)
    output_dir = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable, str(SCRIPT), "--toy", str(toy_dir), "--output-dir", str(output_dir),
        "--steps", str(STEPS), "--save-steps", "4", "--url", f"http://127.0.0.1:{port}",
        "--token", user_token, "--run", "outside grpo",
    ]  # fmt: skip
    log = open(tmp_path / "script.log", "wb")  # noqa: SIM115 - closed in finally
    script = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        # 1. The studio is not there yet: the script trains and spools.
        wait_for(lambda: spooled_metrics(output_dir) >= 2 or script.poll() is not None, timeout=300)
        assert Run.objects.count() == 0
        studio.start()
        # 2. It comes up: the run is created and catches up.
        wait_for(lambda: Run.objects.filter(step__gte=1).exists(), timeout=120)
        # 3. It goes down again while the script trains on (or waits to flush at its end),
        # and is back once events are waiting in the spool.
        studio.stop()
        wait_for(lambda: unsent(output_dir) > 0 or script.poll() is not None, timeout=300)
        studio.start()
        assert script.wait(timeout=600) == 0, (tmp_path / "script.log").read_text()[-3000:]
    finally:
        if script.poll() is None:
            script.kill()
        log.close()
        studio.stop()

    run = Run.objects.get()
    assert run.name == "outside grpo" and run.executor == RunExecutor.EXTERNAL
    assert run.status == RunStatus.FINISHED, run.error
    steps = run_metrics_series(run=run, name="reward", max_points=10_000)["steps"]
    assert steps == list(range(1, STEPS + 1))  # none lost, none twice
    assert run.events_offset == len(
        next(output_dir.glob("r1studio/*/events.jsonl")).read_text().splitlines()
    )
    checkpoints = set(Checkpoint.objects.filter(run=run).values_list("step", flat=True))
    assert checkpoints == set(range(4, STEPS + 1, 4))
    traces = Trace.objects.filter(run=run)
    assert traces.exists()
    assert set(traces.first().rewards) == {"accuracy", "format_reward"}
    assert run.config["trainer"]["max_steps"] == STEPS
