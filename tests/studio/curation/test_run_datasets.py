"""Datasets and runs, both ways: a generate run's dataset becomes a version (exactly once, with
its funnel and provenance), and a stage trains on `dataset:NAME@N` (checked on create, resolved
to the version's file for the stage, the use recorded with the version's hash)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from django.urls import reverse
from django.utils import timezone

from r1studio.curation import storage
from r1studio.curation.jobs import job_run
from r1studio.curation.models import Dataset, DatasetJob, DatasetUse, DatasetVersion
from r1studio.curation.run_datasets import (
    dataset_ref_resolve,
    run_dataset_register,
    run_funnel,
)
from r1studio.curation.services import DatasetError, dataset_create, version_delete, version_write
from r1studio.runs.ingest import events_ingest
from r1studio.runs.inputs import InputError, config_inputs_resolve
from r1studio.runs.models import Run, RunStatus
from r1studio.runs.selectors import dataset_choices
from r1studio.runs.services import RunConfigError, config_check, run_create, run_launch
from tests.studio.runs.conftest import FAST, fast_run_timings, merge  # noqa: F401 - autouse

pytestmark = pytest.mark.django_db


@pytest.fixture
def stage_config(toy_dir: Path):
    """Factory: a fast toy stage config (as the runs tests' `toy_config`)."""

    def make(kind: str, **overrides) -> dict:
        base = yaml.safe_load((toy_dir / "configs" / f"{kind}.yaml").read_text())
        return merge(merge(base, FAST.get(kind, {})), overrides)

    return make


COUNTS = {
    "prompts": 45,
    "dropped/decontaminate": 5,
    "samples": 160,
    "dropped/keep_correct": 100,
    "dropped/mixed_language": 0,
    "dropped/dedup": 10,
    "dropped/max_per_prompt": 4,
    "kept": 46,
    "keep_rate": 46 / 160,
    "verifiers/accuracy/mean": 0.4,
}


def _toy_sft_table(toy_dir: Path, n: int = 64) -> pa.Table:
    lines = (toy_dir / "data" / "sft.jsonl").read_text().splitlines()[:n]
    return pa.Table.from_pylist([json.loads(line) for line in lines])


def _version(user, toy_dir: Path, name: str = "toy-sft", n: int = 64) -> DatasetVersion:
    dataset = Dataset.objects.filter(name=name).first() or dataset_create(
        user=user, name=name, kind="cold-start"
    )
    return version_write(
        dataset=dataset,
        table=_toy_sft_table(toy_dir, n),
        user=user,
        provenance_type="import",
        provenance={"file": "sft.jsonl"},
    )


def _generate_run(user, stage_config, data_dir: Path, name: str = "Cold-start data") -> Run:
    run = run_create(user=user, name=name, config=stage_config("generate"))
    run_dir = data_dir / "runs" / f"{run.pk}-gen"
    (run_dir / "dataset").mkdir(parents=True)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, run_dir=str(run_dir))
    run.refresh_from_db()
    return run


def _ingest(run: Run, events: list[dict]) -> None:
    run.refresh_from_db()
    start = run.events_offset
    assert events_ingest(run_id=run.pk, events=events, start_offset=start, end_offset=start + 10)


# ---------------------------------------------------------------------------------------------
# A generate run's dataset


def test_it_queues_one_registration_per_dataset_a_run_wrote(researcher, stage_config, data_dir):
    run = _generate_run(researcher, stage_config, data_dir)
    event = {"type": "dataset", "path": f"{run.run_dir}/dataset", "rows": 46, "kind": "messages"}

    _ingest(run, [event])
    _ingest(run, [event])  # the stage (or a remote script) reported it again
    _ingest(run, [{**event, "path": f"{run.run_dir}/other", "rows": 0}])  # kept nothing

    [job] = DatasetJob.objects.all()
    assert job.kind == "run" and job.status == "queued" and job.created_by == researcher
    assert job.params == {"run": run.pk, "path": event["path"], "rows": 46, "format": "messages"}
    assert job.dataset.name == f"cold-start-data-{run.pk}"
    assert job.dataset.kind == "cold-start" and job.dataset.owner == researcher


def test_it_writes_the_version_with_its_funnel_and_provenance(
    researcher, stage_config, data_dir, toy_dir
):
    run = _generate_run(researcher, stage_config, data_dir, name="Rejection sampling")
    table = _toy_sft_table(toy_dir, 46)
    pq.write_table(table, Path(run.run_dir) / "dataset" / "data.parquet")
    dataset_event = {"type": "dataset", "path": f"{run.run_dir}/dataset", "rows": 46}
    _ingest(run, [{"type": "metrics", "step": 0, "values": COUNTS}, dataset_event])
    job = DatasetJob.objects.get()

    assert job_run(job.pk) == "finished"

    job.refresh_from_db()
    version = job.result
    assert version.ref == f"dataset:rejection-sampling-{run.pk}@1"
    assert version.dataset.kind == "reasoning"
    assert version.rows == 46 and version.sha256 == storage.table_sha256(table)
    assert version.source_run == run and version.provenance_type == "run"
    assert storage.parquet_open(version.path).read().equals(table)
    provenance = version.provenance
    assert provenance["run"] == run.pk and provenance["path"] == dataset_event["path"]
    assert provenance["model"] == run.config["model"]["path"]
    assert provenance["filters"] == run.config["filters"]
    assert provenance["verifiers"] == run.config["verifiers"]
    assert provenance["counts"]["kept"] == 46 and provenance["counts"]["dropped/dedup"] == 10
    assert [(s["step"], s["rows_in"], s["rows_out"]) for s in version.funnel] == [
        ("decontaminate", 45, 40),
        ("completions", 40, 160),
        ("keep_correct", 160, 60),
        ("mixed_language", 60, 60),
        ("dedup", 60, 50),
        ("max_per_prompt", 50, 46),
    ]
    # A second run of the registration (a job retried by hand) writes nothing new.
    assert run_dataset_register(job, lambda *a, **k: None) == version
    assert DatasetVersion.objects.count() == 1


def test_it_registers_no_file_outside_the_folders_runs_may_read(researcher, stage_config, data_dir):
    run = _generate_run(researcher, stage_config, data_dir)
    _ingest(run, [{"type": "dataset", "path": "/etc", "rows": 3}])

    assert job_run(DatasetJob.objects.get().pk) == "failed"

    job = DatasetJob.objects.get()
    assert "outside the folders runs may read" in job.error
    assert not DatasetVersion.objects.exists()


def test_it_builds_the_funnel_from_the_counts_the_stage_logged():
    assert run_funnel({}) == []
    assert run_funnel({"prompts": 4, "samples": 16, "dropped/dedup": 3, "kept": 13}) == [
        {"step": "completions", "op": "generate", "rows_in": 4, "rows_out": 16}
        | {"dropped": 0, "added": 12},
        {"step": "dedup", "op": "dedup", "rows_in": 16, "rows_out": 13, "dropped": 3},
    ]


# ---------------------------------------------------------------------------------------------
# A stage reads a version


def _sft_on(stage_config, source: str) -> dict:
    return stage_config("sft", data={"source": source})


def test_it_checks_the_version_a_config_names_on_create(
    researcher, stage_config, data_dir, toy_dir
):
    _version(researcher, toy_dir)

    assert run_create(user=researcher, name="ok", config=_sft_on(stage_config, "dataset:toy-sft@1"))
    assert run_create(
        user=researcher, name="latest", config=_sft_on(stage_config, "dataset:toy-sft")
    )
    for source, message in (
        ("dataset:toy-sft@2", "dataset 'toy-sft' has no version 2 (its latest is @1)"),
        ("dataset:nope@1", "there is no dataset named 'nope'"),
        ("dataset:toy sft", "is not a dataset version: write dataset:NAME@VERSION"),
    ):
        with pytest.raises(RunConfigError) as error:
            run_create(user=researcher, name="bad", config=_sft_on(stage_config, source))
        [problem] = error.value.config_errors
        assert problem["loc"] == "data.source" and message in problem["msg"], problem


def test_it_checks_the_versions_rows_as_the_stage_will_read_them(
    researcher, stage_config, data_dir, toy_dir
):
    _version(researcher, toy_dir)
    config = _sft_on(stage_config, "dataset:toy-sft@1")

    assert config_check(config) == config  # the form's Check: resolved, then the files checked

    too_short = _sft_on(stage_config, "dataset:toy-sft@1")
    too_short["trainer"]["max_length"] = 4
    with pytest.raises(RunConfigError) as error:
        config_check(too_short)
    assert [e["loc"] for e in error.value.config_errors] == ["trainer.max_length"]


def test_it_resolves_for_the_stage_and_records_the_use_once(
    researcher, stage_config, data_dir, toy_dir
):
    first = _version(researcher, toy_dir)
    run = run_create(user=researcher, name="sft", config=_sft_on(stage_config, "dataset:toy-sft"))

    resolved = config_inputs_resolve(run.config, run=run)
    second = _version(researcher, toy_dir, n=32)  # written while the run was going
    again = config_inputs_resolve(run.config, run=run)  # a resume

    assert resolved["data"]["source"] == str(storage.version_file(first.path).resolve())
    assert again == resolved and run.config["data"]["source"] == "dataset:toy-sft"
    [use] = DatasetUse.objects.all()
    assert (use.version, use.run, use.field, use.sha256) == (
        first,
        run,
        "data.source",
        first.sha256,
    )
    # Someone else's Check now reads the latest version, and records nothing.
    assert dataset_ref_resolve(value="dataset:toy-sft") == str(
        storage.version_file(second.path).resolve()
    )
    assert DatasetUse.objects.count() == 1
    with pytest.raises(DatasetError, match="used by run"):
        version_delete(version=first, user=researcher)
    version_delete(version=second, user=researcher)  # unused: it can go
    DatasetUse.objects.all().delete()
    version_delete(version=first, user=researcher)
    with pytest.raises(InputError, match="no version yet"):
        config_inputs_resolve(_sft_on(stage_config, "dataset:toy-sft"))


def test_it_offers_versions_in_the_forms_dataset_picker(researcher, annotator, data_dir, toy_dir):
    version = _version(researcher, toy_dir)

    choices = {c.path: c for c in dataset_choices(user=researcher)}

    assert choices[version.ref].group == "Datasets"
    assert choices[version.ref].label == "toy-sft v1: 64 rows, cold-start"
    assert version.ref not in {c.path for c in dataset_choices(user=annotator)}


def test_the_run_page_links_the_versions_a_run_read_and_wrote(
    researcher_client, researcher, stage_config, data_dir, toy_dir
):
    used = _version(researcher, toy_dir)
    run = run_create(user=researcher, name="sft", config=_sft_on(stage_config, used.ref))
    config_inputs_resolve(run.config, run=run)
    written = _version(researcher, toy_dir, name="written", n=8)
    DatasetVersion.objects.filter(pk=written.pk).update(source_run=run)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FINISHED, finished_at=timezone.now())

    html = researcher_client.get(reverse("runs:detail", args=[run.pk])).content.decode()

    assert 'data-dataset-version="dataset:toy-sft@1"' in html
    assert f"sha256 {used.sha256[:12]}" in html
    assert 'data-dataset-version="dataset:written@1"' in html and "8 rows" in html


# ---------------------------------------------------------------------------------------------
# Through the studio, with a real worker


def _ended(run: Run) -> Run | None:
    run.refresh_from_db()
    return run if run.is_ended else None


@pytest.mark.django_db(transaction=True)
def test_it_trains_an_sft_run_on_a_version(
    celery_worker, researcher, data_dir, stage_config, toy_dir
):
    from tests.conftest import wait_for

    version = _version(researcher, toy_dir, n=512)
    run = run_create(user=researcher, name="sft on v1", config=_sft_on(stage_config, version.ref))
    run = run_launch(run=run, user=researcher)

    wait_for(lambda: _ended(run), timeout=180)

    assert run.status == RunStatus.FINISHED, (run.error, run.traceback)
    assert run.step == 4 and (Path(run.run_dir) / "final").is_dir()
    written = json.loads((Path(run.run_dir) / "config.json").read_text())
    assert written["data"]["source"] == str(storage.version_file(version.path).resolve())
    assert run.config["data"]["source"] == "dataset:toy-sft@1"
    use = DatasetUse.objects.get(run=run)
    assert use.version == version and use.sha256 == version.sha256
    with pytest.raises(DatasetError, match="used by run"):
        version_delete(version=version, user=researcher)


@pytest.mark.django_db(transaction=True)
def test_a_generate_run_registers_its_dataset_with_its_funnel(
    celery_worker, researcher, data_dir, stage_config
):
    from tests.conftest import wait_for

    config = stage_config("generate", data={"limit": 40}, sampling={"k": 4})
    run = run_launch(
        run=run_create(user=researcher, name="Rejection", config=config), user=researcher
    )

    wait_for(lambda: _ended(run), timeout=180)
    assert run.status == RunStatus.FINISHED, (run.error, run.traceback)
    version = wait_for(lambda: DatasetVersion.objects.filter(source_run=run).first(), timeout=60)

    table = pq.read_table(Path(run.run_dir) / "dataset" / "data.parquet")
    assert version.ref == f"dataset:rejection-{run.pk}@1" and version.rows == table.num_rows > 0
    assert version.sha256 == storage.table_sha256(table)
    assert version.provenance["counts"]["kept"] == version.rows
    assert version.funnel[0]["step"] == "decontaminate" and version.funnel[1]["rows_out"] == 160
    assert version.funnel[-1]["rows_out"] == version.rows
    assert DatasetJob.objects.get().status == "finished"
