"""Launching on a Ray cluster from the pages: the "Run on" choice (only with RAY_ADDRESS), the
resources it asks for, the refusals, and the run page's Ray job facts. The cluster itself is
exercised in test_ray_executor.py; here the tests' transactions are never committed, so no
watch task is even sent."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from r1studio.api.services import api_token_create
from r1studio.runs.forms import config_to_yaml
from r1studio.runs.models import Run, RunExecutor, RunStatus
from r1studio.runs.services import RunStateError, run_create, run_launch


def _post(config: dict, **extra: str) -> dict:
    return {
        "kind": config["kind"],
        "source": "yaml",
        "config_yaml": config_to_yaml(config),
        **extra,
    }


@pytest.fixture
def ray_configured(settings: Any) -> str:
    settings.RAY_ADDRESS = "http://127.0.0.1:8265"
    settings.R1STUDIO_RAY_GPUS = 1
    return settings.RAY_ADDRESS


def test_it_offers_the_ray_cluster_only_when_one_is_configured(
    researcher_client, settings, data_dir
):
    settings.RAY_ADDRESS = ""
    html = researcher_client.get(reverse("runs:new")).content.decode()
    assert 'name="executor"' not in html

    settings.RAY_ADDRESS = "http://ray-head.internal:8265"
    html = researcher_client.get(reverse("runs:new")).content.decode()
    assert 'name="executor" value="ray"' in html and "ray-head.internal:8265" in html


def test_it_launches_a_run_on_ray_with_the_gpus_asked_for(
    researcher_client, ray_configured, toy_config, data_dir
):
    post = _post(toy_config("grpo"), action="launch", executor="ray", ray_gpus="2")

    response = researcher_client.post(reverse("runs:new"), post)

    run = Run.objects.get()
    assert response.status_code == 302 and run.status == RunStatus.QUEUED
    assert run.executor == RunExecutor.RAY and run.job_state == {"resources": {"gpus": 2}}
    page = researcher_client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert "data-ray-job" in page and "not submitted yet" in page
    assert "waiting for the Ray watcher" in page


def test_it_refuses_the_ray_choice_without_a_cluster_and_queues_nothing(
    researcher_client, settings, toy_config, data_dir
):
    settings.RAY_ADDRESS = ""
    post = _post(toy_config("grpo"), action="launch", executor="ray")

    response = researcher_client.post(reverse("runs:new"), post)

    assert response.status_code == 422 and not Run.objects.exists()
    assert "No Ray cluster is configured" in response.content.decode()


@pytest.mark.parametrize(
    "resources, message",
    [({"gpus": "-1"}, "gpus: expected a whole number"), ({"nodes": 2}, "nodes: a Ray job")],
)
def test_it_refuses_resources_it_cannot_ask_ray_for(
    researcher, ray_configured, toy_config, data_dir, resources, message
):
    run = run_create(user=researcher, name="r", config=toy_config("sft"))

    with pytest.raises(RunStateError, match=message):
        run_launch(run=run, user=researcher, executor="ray", resources=resources)

    run.refresh_from_db()
    assert run.status == RunStatus.DRAFT and run.executor == RunExecutor.WORKER


def test_the_api_creates_a_ray_draft_and_launches_it_on_the_cluster(
    client, researcher, ray_configured, toy_config, data_dir
):
    _, token = api_token_create(user=researcher, name="test")
    headers = {"Authorization": f"Bearer {token}"}
    body = {"name": "api on ray", "config": toy_config("sft"), "executor": "ray", "gpus": 2}

    created = client.post("/api/runs", body, content_type="application/json", headers=headers)
    assert created.status_code == 201, created.content
    run_id = created.json()["id"]
    launched = client.post(f"/api/runs/{run_id}/launch", headers=headers)

    answer = launched.json()
    assert launched.status_code == 200 and answer["status"] == "queued"
    assert answer["executor"] == "ray" and answer["job_state"] == {"resources": {"gpus": 2}}
    assert answer["job_id"] == ""  # the watcher submits it


def test_the_api_refuses_a_ray_run_without_a_cluster(client, researcher, settings, toy_config):
    settings.RAY_ADDRESS = ""
    _, token = api_token_create(user=researcher, name="test")
    body = {"config": toy_config("sft"), "executor": "ray"}

    answer = client.post(
        "/api/runs",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert answer.status_code == 409 and "No Ray cluster" in answer.json()["detail"]
    assert not Run.objects.exists()
