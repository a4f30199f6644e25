"""The run page under many viewers (bench/load.py): the same page, from reads that do not grow
with the run."""

from __future__ import annotations

from pathlib import Path

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from r1studio.metrics.services import metrics_ingest
from r1studio.runs.forms import config_to_yaml
from r1studio.runs.models import Checkpoint, Run, RunStatus


def _running(owner, config: dict) -> Run:
    return Run.objects.create(
        name="live", owner=owner, kind="grpo", status=RunStatus.RUNNING, config=config
    )


def test_it_shows_the_config_as_yaml_and_a_new_config_at_once(researcher_client, researcher):
    config = {"kind": "grpo", "trainer": {"learning_rate": 1e-06, "num_generations": 8}}
    run = _running(researcher, config)
    url = reverse("runs:detail", args=[run.pk])

    html = researcher_client.get(url).content.decode()
    assert config_to_yaml(config) in html and "num_generations: 8" in html

    config["trainer"]["num_generations"] = 16
    Run.objects.filter(pk=run.pk).update(config=config)
    assert "num_generations: 16" in researcher_client.get(url).content.decode()


def test_it_reads_as_many_rows_for_a_big_run_as_for_a_small_one(
    researcher_client, researcher, tmp_path: Path
):
    def queries(series: int, steps: int, checkpoints: int) -> int:
        run = _running(researcher, {"kind": "grpo"})
        names = ["reward", "loss", *[f"rewards/f{i}/mean" for i in range(series - 2)]]
        events = [
            {"type": "metrics", "step": s, "values": {n: 0.5 for n in names}}
            for s in range(1, steps + 1)
        ]
        metrics_ingest(run=run, events=events)
        for step in range(checkpoints):
            Checkpoint.objects.create(run=run, step=step, path=str(tmp_path / f"c-{step}"))
        url = reverse("runs:detail", args=[run.pk])
        researcher_client.get(url)
        with CaptureQueriesContext(connection) as captured:
            assert researcher_client.get(url).status_code == 200
        return len(captured)

    assert queries(series=20, steps=3000, checkpoints=6) == queries(
        series=2, steps=5, checkpoints=1
    )
