"""The JSON API with Bearer tokens: create, launch, get, cancel, 422s, 403s; tokens."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from r1studio.api.models import ApiToken
from r1studio.api.services import api_token_create
from r1studio.runs.models import Run, RunStatus


def bearer(user) -> dict[str, str]:
    _, token = api_token_create(user=user, name="test")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth(researcher) -> dict[str, str]:
    return bearer(researcher)


def test_it_refuses_requests_without_a_valid_token(client, db):
    assert client.get("/api/runs").status_code == 401
    assert client.get("/api/runs", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_it_creates_gets_launches_and_cancels_a_run(
    client, auth, toy_config, data_dir, django_capture_on_commit_callbacks
):
    created = client.post(
        "/api/runs",
        {"name": "api run", "config": toy_config("sft")},
        "application/json",
        headers=auth,
    )
    assert created.status_code == 201, created.content
    run_id = created.json()["id"]
    assert created.json()["status"] == "draft" and created.json()["config"]["kind"] == "sft"

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        launched = client.post(f"/api/runs/{run_id}/launch", headers=auth)
    assert launched.status_code == 200 and launched.json()["status"] == "queued"
    assert len(callbacks) == 1  # the supervisor task, sent after the commit

    got = client.get(f"/api/runs/{run_id}", headers=auth)
    assert got.json()["status"] == "queued" and got.json()["url"] == f"/runs/{run_id}/"
    listed = client.get("/api/runs", headers=auth).json()
    assert [r["id"] for r in listed] == [run_id]

    cancelled = client.post(f"/api/runs/{run_id}/cancel", headers=auth)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/runs/{run_id}/cancel", headers=auth)
    assert again.status_code == 409


def test_it_resumes_and_retries_an_ended_run(client, researcher, auth, toy_config, data_dir):
    from r1studio.runs.services import run_create

    run = run_create(user=researcher, name="r", config=toy_config("sft"))
    run_dir = data_dir / "runs" / str(run.pk)
    (run_dir / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, run_dir=str(run_dir))

    resumed = client.post(f"/api/runs/{run.pk}/resume", headers=auth)
    assert resumed.status_code == 200, resumed.content
    assert resumed.json()["id"] == run.pk and resumed.json()["status"] == "queued"
    assert resumed.json()["resume_from"].endswith("checkpoint-2")
    assert client.post(f"/api/runs/{run.pk}/resume", headers=auth).status_code == 409

    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED)
    retried = client.post(f"/api/runs/{run.pk}/retry", headers=auth)
    assert retried.status_code == 200, retried.content
    assert retried.json()["id"] != run.pk and retried.json()["parent_id"] == run.pk
    assert retried.json()["status"] == "queued"


def test_it_answers_422_with_the_field_errors(client, auth, toy_config, data_dir):
    config = toy_config("grpo", trainer={"per_device_train_batch_size": 6, "num_generations": 4})

    response = client.post(
        "/api/runs", {"name": "bad", "config": config}, "application/json", headers=auth
    )

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert any(e["loc"] == "trainer.num_generations" for e in errors)
    assert Run.objects.count() == 0


def test_it_answers_422_when_a_draft_became_invalid_before_launch(
    client, researcher, auth, toy_config, data_dir
):
    created = client.post(
        "/api/runs", {"config": toy_config("sft")}, "application/json", headers=auth
    ).json()
    run = Run.objects.get(pk=created["id"])
    # Outside the allowed roots (checked at every launch; a missing file is the worker's check).
    run.config["model"]["path"] = "/etc"
    run.save()

    response = client.post(f"/api/runs/{run.pk}/launch", headers=auth)

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == "model.path"
    assert Run.objects.get(pk=run.pk).status == RunStatus.DRAFT


def test_it_gives_annotators_403(client, annotator, researcher, toy_config, data_dir):
    from r1studio.runs.services import run_create

    run = run_create(user=researcher, name="r", config=toy_config("sft"))
    headers = bearer(annotator)

    assert client.post(f"/api/runs/{run.pk}/launch", headers=headers).status_code == 403
    assert client.post(f"/api/runs/{run.pk}/cancel", headers=headers).status_code == 403
    assert client.get("/api/runs", headers=headers).status_code == 403
    assert Run.objects.get(pk=run.pk).status == RunStatus.DRAFT


def test_it_keeps_another_researchers_draft_out_of_reach(client, make_user, toy_config, data_dir):
    from r1studio.runs.services import run_create

    owner, other = make_user("researcher"), make_user("researcher")
    draft = run_create(user=owner, name="mine", config=toy_config("sft"))
    headers = bearer(other)

    assert client.get(f"/api/runs/{draft.pk}", headers=headers).status_code == 404
    assert client.post(f"/api/runs/{draft.pk}/launch", headers=headers).status_code == 404
    Run.objects.filter(pk=draft.pk).update(status=RunStatus.RUNNING)
    assert client.post(f"/api/runs/{draft.pk}/cancel", headers=headers).status_code == 403


def test_it_serves_metrics_and_traces_of_a_run(client, researcher, auth, toy_config, data_dir):
    from r1studio.runs.ingest import events_ingest
    from r1studio.runs.services import run_create

    run = run_create(user=researcher, name="m", config=toy_config("grpo"))
    events = [
        {"type": "metrics", "time": 1.0, "step": s, "values": {"reward": s / 10}} for s in (1, 2, 3)
    ]
    events.append(
        {
            "type": "samples",
            "time": 1.0,
            "step": 3,
            "items": [
                {"prompt": "p", "completion": "<think>a</think><answer>1</answer>",
                 "reference": "1", "rewards": {"accuracy": 1.0}, "reward": 1.0, "advantage": 0.5}
            ],
        }
    )  # fmt: skip
    events_ingest(run_id=run.pk, events=events, start_offset=0, end_offset=100)

    series = client.get(f"/api/runs/{run.pk}/metrics?name=reward&max_points=500", headers=auth)
    traces = client.get(f"/api/runs/{run.pk}/traces", headers=auth)

    assert series.status_code == 200
    assert series.json()["steps"] == [1, 2, 3] and series.json()["total"] == 3
    assert traces.status_code == 200 and len(traces.json()["items"]) == 1
    assert traces.json()["items"][0]["answer"] == "1"


def test_it_serves_openapi_docs(researcher_client):
    assert researcher_client.get("/api/docs").status_code == 200
    schema = researcher_client.get("/api/openapi.json").json()
    assert "/api/runs/{run_id}/launch" in schema["paths"]


def test_it_makes_shows_once_and_revokes_tokens(researcher_client, researcher):
    client = Client()  # no session: the token alone
    page = researcher_client.post(reverse("api:tokens"), {"name": "script"})
    token = page.context["new_token"]
    row = ApiToken.objects.get(user=researcher)
    assert token.startswith(row.prefix) and row.key_hash != token
    assert token.encode() in page.content
    assert token.encode() not in researcher_client.get(reverse("api:tokens")).content
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/runs", headers=headers).status_code == 200

    researcher_client.post(reverse("api:token_revoke", args=[row.pk]))

    assert client.get("/api/runs", headers=headers).status_code == 401


def test_it_prints_a_token_with_createtoken(researcher, client):
    out = io.StringIO()

    call_command("createtoken", researcher.username, stdout=out)

    token = out.getvalue().strip()
    assert client.get("/api/runs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
