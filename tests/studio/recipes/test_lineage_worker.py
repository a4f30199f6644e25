"""Lineage through the real worker: a generate run samples from the base model, its dataset
becomes a version, an SFT run trains the base model on that version; each records the versions
its worker ran with, and the checkpoint of a GRPO run started from the SFT run walks back to
the base model and the raw prompts file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.environment import package_version
from r1studio.curation.models import DatasetVersion
from r1studio.recipes.lineage import run_lineage
from r1studio.runs.models import Run, RunStatus
from r1studio.runs.services import run_create, run_launch
from tests.conftest import wait_for
from tests.studio.runs.conftest import FAST, fast_run_timings, merge  # noqa: F401 - autouse


@pytest.fixture
def stage_config(toy_dir: Path):
    def make(kind: str, **overrides) -> dict:
        base = yaml.safe_load((toy_dir / "configs" / f"{kind}.yaml").read_text())
        return merge(merge(base, FAST.get(kind, {})), overrides)

    return make


def _finished(run: Run) -> Run:
    def ended() -> Run | None:
        run.refresh_from_db()
        return run if run.is_ended else None

    wait_for(ended, timeout=240)
    assert run.status == RunStatus.FINISHED, (run.error, run.traceback)
    return run


@pytest.mark.django_db(transaction=True)
def test_a_chain_run_by_the_worker_records_its_versions_and_walks_back_to_its_sources(
    celery_worker, researcher, data_dir, stage_config
):
    generate_config = stage_config("generate", data={"limit": 40}, sampling={"k": 4})
    generate = run_create(user=researcher, name="Rejection", config=generate_config)
    generate = _finished(run_launch(run=generate, user=researcher))
    version = wait_for(
        lambda: DatasetVersion.objects.filter(source_run=generate).first(), timeout=90
    )
    sft = run_create(
        user=researcher, name="SFT", config=stage_config("sft", data={"source": version.ref})
    )
    sft = _finished(run_launch(run=sft, user=researcher))
    final = str(Path(sft.run_dir) / "final")
    grpo = run_create(
        user=researcher, name="RL", config=stage_config("grpo", model={"path": final})
    )

    # what the worker ran with, from each stage's started event
    for run in (generate, sft):
        assert run.environment["packages"]["trl"] == package_version("trl")
        assert run.environment["packages"]["torch"] == package_version("torch")
        assert run.environment["python"]
    # what each was launched on
    (data,) = sft.lineage["inputs"]
    assert data["version_id"] == version.pk and data["sha256"] == version.sha256
    assert sft.lineage["model"]["kind"] == "base" and sft.config_hash

    graph = run_lineage(run=grpo, user=researcher).as_dict()

    base = generate_config["model"]["path"]
    prompts = generate_config["data"]["source"]
    edges = {tuple(edge) for edge in graph["edges"]}
    assert (f"model:{base}", f"run:{generate.pk}") in edges
    assert (f"raw:{prompts}", f"run:{generate.pk}") in edges
    assert (f"run:{generate.pk}", f"version:{version.pk}") in edges
    assert (f"version:{version.pk}", f"run:{sft.pk}") in edges
    assert (f"model:{base}", f"run:{sft.pk}") in edges  # SFT starts again from the base model
    assert (f"run:{sft.pk}", f"checkpoint:{final}") in edges
    assert (f"checkpoint:{final}", f"run:{grpo.pk}") in edges
