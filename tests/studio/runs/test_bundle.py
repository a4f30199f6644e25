"""The reproducibility bundle: a zip of the config (JSON and YAML), versions, input hashes, seed,
parent checkpoint, the exact command with its environment, and a README."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import yaml
from django.urls import reverse

from pipeline.environment import environment
from r1studio.runs.ingest import events_ingest
from r1studio.runs.models import Run
from r1studio.runs.services import run_create, run_launch

pytestmark = pytest.mark.django_db

FILES = {
    "config.json",
    "config.yaml",
    "config.studio.json",
    "versions.json",
    "inputs.json",
    "reproduce.sh",
    "README.txt",
}


def _bundle(client, run: Run) -> dict[str, str]:
    answer = client.get(reverse("runs:bundle", args=[run.pk]))
    assert answer.status_code == 200 and answer["Content-Type"] == "application/zip"
    assert f"run-{run.pk}-bundle.zip" in answer["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        return {name.split("/", 1)[1]: archive.read(name).decode() for name in archive.namelist()}


def test_the_bundle_holds_config_versions_hashes_seed_and_the_command(
    researcher, researcher_client, data_dir, toy_config
):
    run = run_create(user=researcher, name="sft", config=toy_config("sft", seed=11))
    run = run_launch(run=run, user=researcher)
    started = {"type": "status", "state": "started", "time": 1.0, "environment": environment()}
    events_ingest(run_id=run.pk, events=[started], start_offset=0, end_offset=1)
    run.refresh_from_db()

    files = _bundle(researcher_client, run)

    assert set(files) == FILES
    assert json.loads(files["config.json"]) == run.config
    assert yaml.safe_load(files["config.yaml"]) == run.config
    inputs = json.loads(files["inputs.json"])
    assert inputs["config_hash"] == run.config_hash and inputs["seed"] == 11
    assert inputs["model"]["kind"] == "base"
    assert inputs["parent_checkpoint"] == run.config["model"]["path"]
    assert inputs["inputs"][0]["sha256"] == run.lineage["inputs"][0]["sha256"]
    assert (
        json.loads(files["versions.json"])["packages"]["trl"] == run.environment["packages"]["trl"]
    )
    script = files["reproduce.sh"]
    assert "python -m pipeline run config.json --run-dir reproduced" in script
    assert "export R1STUDIO_" in script
    assert run.config_hash in files["README.txt"] and "How to reproduce" in files["README.txt"]


def test_the_run_page_offers_the_bundle_and_shows_the_record(
    researcher, researcher_client, data_dir, toy_config
):
    run = run_launch(
        run=run_create(user=researcher, name="sft", config=toy_config("sft")), user=researcher
    )

    html = researcher_client.get(reverse("runs:detail", args=[run.pk])).content.decode()

    assert reverse("runs:bundle", args=[run.pk]) in html
    assert f"sha256 {run.config_hash[:16]}" in html
    assert "recorded when a worker starts the stage" in html


def test_another_researchers_draft_has_no_bundle(researcher, make_user, client, toy_config):
    draft = run_create(user=researcher, name="draft", config=toy_config("sft"))
    client.force_login(make_user("researcher"))

    assert client.get(reverse("runs:bundle", args=[draft.pk])).status_code == 404
