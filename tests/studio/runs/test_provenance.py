"""Every run records what it was made of: config hash, input hashes, parent checkpoint, seed at
launch; the versions it really ran with from its stage's `started` event."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.environment import environment
from r1studio.curation.services import dataset_create, version_write
from r1studio.runs.ingest import events_ingest
from r1studio.runs.models import Run
from r1studio.runs.provenance import config_hash, launch_record
from r1studio.runs.services import run_create, run_launch

pytestmark = pytest.mark.django_db


def test_the_config_hash_does_not_depend_on_key_order():
    one = {"kind": "sft", "seed": 3, "trainer": {"learning_rate": 1e-5, "max_steps": 4}}
    same = {"trainer": {"max_steps": 4, "learning_rate": 1e-5}, "seed": 3, "kind": "sft"}
    other = {**one, "seed": 4}
    assert config_hash(one) == config_hash(same)
    assert config_hash(one) != config_hash(other)
    assert len(config_hash(one)) == 64


def test_launch_records_the_config_hash_seed_base_model_and_input_file_hash(
    researcher, data_dir, toy_config, toy_dir
):
    config = toy_config("sft", seed=7)
    run = run_launch(run=run_create(user=researcher, name="sft", config=config), user=researcher)

    assert run.config_hash == config_hash(run.config)
    assert run.lineage["seed"] == 7
    assert run.lineage["model"] == {"path": config["model"]["path"], "kind": "base"}
    (data,) = run.lineage["inputs"]
    source = Path(config["data"]["source"])
    assert data["loc"] == "data.source" and data["ref"] == str(source)
    assert data["kind"] == "file"
    assert data["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()


def test_launch_records_the_parent_run_of_a_checkpoint(researcher, data_dir, toy_config):
    parent = Run.objects.create(owner=researcher, name="sft", kind="sft", status="finished")
    parent.run_dir = str(data_dir / "runs" / f"{parent.pk}-x")
    parent.save()
    final = Path(parent.run_dir) / "final"
    final.mkdir(parents=True)
    record = launch_record(toy_config("grpo", model={"path": str(final)}))

    assert record["lineage"]["model"] == {
        "path": str(final),
        "kind": "checkpoint",
        "run": parent.pk,
        "run_name": "sft",
        "what": "final",
    }


def test_launch_pins_a_dataset_reference_to_its_version_hash(researcher, data_dir, toy_config):
    dataset = dataset_create(user=researcher, name="cold")
    rows = pa.Table.from_pylist([{"prompt": "1+1?", "completion": "<answer>2</answer>"}] * 4)
    version = version_write(
        dataset=dataset, table=rows, user=researcher, provenance_type="import", provenance={}
    )
    record = launch_record(toy_config("sft", data={"source": "dataset:cold"}))

    (data,) = record["lineage"]["inputs"]
    assert data["kind"] == "dataset" and data["ref"] == "dataset:cold"
    assert data["version"] == "dataset:cold@1" and data["version_id"] == version.pk
    assert data["sha256"] == version.sha256


def test_the_started_event_records_the_environment_the_worker_ran_with(researcher):
    run = Run.objects.create(owner=researcher, name="r", kind="sft", status="running")
    env = environment()
    started = {"type": "status", "state": "started", "time": 1.0, "environment": env}

    events_ingest(run_id=run.pk, events=[started], start_offset=0, end_offset=10)

    run.refresh_from_db()
    assert run.environment["packages"]["trl"] == env["packages"]["trl"] != "not installed"
    assert run.environment["python"] == env["python"]
    assert set(run.environment) <= {"python", "platform", "git_commit", "packages"}


def test_a_malformed_environment_is_kept_small_and_never_fails_ingest(researcher):
    run = Run.objects.create(owner=researcher, name="r", kind="sft", status="running")
    junk = {"python": "x" * 10_000, "packages": {"trl": 3, "torch": "2.0"}, "evil": "y"}
    started = {"type": "status", "state": "started", "time": 1.0, "environment": junk}

    events_ingest(run_id=run.pk, events=[started], start_offset=0, end_offset=10)

    run.refresh_from_db()
    assert run.environment == {"python": "x" * 200, "packages": {"torch": "2.0"}}


def test_a_renamed_trl_argument_is_refused_before_launch_naming_the_replacement(
    researcher, data_dir, toy_config
):
    from r1studio.runs.services import RunConfigError

    config = toy_config("sft")
    config["trainer"]["max_seq_length"] = 256

    with pytest.raises(RunConfigError) as caught:
        run_create(user=researcher, name="old recipe", config=config)

    (error,) = caught.value.config_errors
    assert error["loc"] == "trainer.max_seq_length" and "trainer.max_length" in error["msg"]
    assert not Run.objects.exists()
