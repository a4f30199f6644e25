"""HTTP ingest (`POST /api/runs/{id}/events`) and external runs: tokens, sequence numbers,
status from events, the lost sweep, and the same storage and live channel as the supervisor."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.utils import timezone

from r1studio.api.services import api_token_create
from r1studio.metrics.selectors import run_metrics_series
from r1studio.runs.hooks import _registry, run_ended_register
from r1studio.runs.live import channel
from r1studio.runs.models import Checkpoint, Run, RunExecutor, RunStatus, RunToken
from r1studio.runs.sweep import runs_sweep_lost
from r1studio.traces.models import Trace
from tests.conftest import wait_for


@pytest.fixture
def user_auth(researcher: Any) -> dict[str, str]:
    _, token = api_token_create(user=researcher, name="test")
    return {"Authorization": f"Bearer {token}"}


def create_external(client: Any, auth: dict[str, str], name: str = "my-grpo") -> tuple[int, str]:
    answer = client.post(
        "/api/runs",
        {"name": name, "external": True, "kind": "grpo", "config": {"lr": 1e-6}},
        "application/json",
        headers=auth,
    )
    assert answer.status_code == 201, answer.content
    return answer.json()["id"], answer.json()["token"]


def send(client: Any, run_id: int, token: str, seq: int, events: list[dict]) -> Any:
    return client.post(
        f"/api/runs/{run_id}/events",
        json.dumps({"seq": seq, "events": events}),
        "application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def metrics(step: int) -> dict:
    return {"type": "metrics", "time": 1.7e9 + step, "step": step, "values": {"reward": step / 10}}


SAMPLES = {
    "type": "samples",
    "step": 2,
    "items": [
        {"prompt": "1+1?", "completion": "<answer>2</answer>", "rewards": {"acc": 1.0}},
        {"prompt": "2+2?", "completion": "<answer>5</answer>", "rewards": {"acc": 0.0}},
    ],
}
CHECKPOINT = {"type": "checkpoint", "step": 2, "path": "/elsewhere/checkpoint-2"}


def reward_steps(run_id: int) -> list[int]:
    run = Run.objects.get(pk=run_id)
    return run_metrics_series(run=run, name="reward", max_points=10_000)["steps"]


def test_it_creates_an_external_run_with_a_token_shown_once(client, user_auth):
    run_id, token = create_external(client, user_auth)
    run = Run.objects.get(pk=run_id)
    assert run.executor == RunExecutor.EXTERNAL and run.status == RunStatus.QUEUED
    assert run.config == {"kind": "grpo", "lr": 1e-6}
    assert token.startswith("r1r_")
    stored = RunToken.objects.get(run=run)
    assert token not in (stored.key_hash, stored.prefix) and stored.revoked_at is None
    got = client.get(f"/api/runs/{run_id}", headers=user_auth).json()
    assert "token" not in got and got["executor"] == "external"


def test_a_create_retried_with_its_client_key_returns_the_same_run_with_a_new_token(
    client, user_auth, studio_admin
):
    def create(key: str, auth: dict[str, str] = user_auth) -> Any:
        body = {"name": "keyed", "external": True, "kind": "sft", "client_key": key}
        return client.post("/api/runs", body, "application/json", headers=auth)

    first, retry = create("5f0c-key"), create("5f0c-key")
    assert (first.status_code, retry.status_code) == (201, 200)
    assert first.json()["id"] == retry.json()["id"]
    run_id = first.json()["id"]
    assert send(client, run_id, first.json()["token"], 0, [metrics(1)]).status_code == 401
    assert send(client, run_id, retry.json()["token"], 0, [metrics(1)]).status_code == 200
    assert create("other-key").json()["id"] != run_id
    # Another user's run is never handed out by guessing its key.
    _, admin_token = api_token_create(user=studio_admin, name="test")
    theirs = create("5f0c-key", {"Authorization": f"Bearer {admin_token}"})
    assert theirs.status_code == 201 and theirs.json()["id"] != run_id
    assert Run.objects.filter(name="keyed").count() == 3
    bad = create("no spaces")
    assert bad.status_code == 422 and "client_key" in bad.content.decode()


def test_it_stores_a_batch_once_even_when_it_is_retried(client, user_auth):
    run_id, token = create_external(client, user_auth)
    batch = [
        {"type": "status", "state": "started", "total_steps": 3},
        metrics(1),
        metrics(2),
        SAMPLES,
        CHECKPOINT,
        metrics(3),
    ]
    first = send(client, run_id, token, 0, batch)
    assert first.status_code == 200, first.content
    assert first.json() == {
        "stored": 6,
        "next_seq": 6,
        "status": "running",
        "cancel_requested": False,
    }
    retried = send(client, run_id, token, 0, batch)  # the answer was lost: sent again
    assert retried.status_code == 200 and retried.json()["stored"] == 0
    assert retried.json()["next_seq"] == 6

    assert reward_steps(run_id) == [1, 2, 3]
    assert Trace.objects.filter(run_id=run_id).count() == 2
    assert list(Checkpoint.objects.filter(run_id=run_id).values_list("step", "path")) == [
        (2, "/elsewhere/checkpoint-2")
    ]
    run = Run.objects.get(pk=run_id)
    assert run.status == RunStatus.RUNNING and run.started_at is not None
    assert run.step == 3 and run.total_steps == 3 and run.events_offset == 6
    assert run.heartbeat_at is not None and run.last_event_at is not None


def test_it_stores_only_the_new_part_of_an_overlapping_batch(client, user_auth):
    run_id, token = create_external(client, user_auth)
    assert send(client, run_id, token, 0, [metrics(s) for s in (1, 2, 3)]).status_code == 200
    overlap = send(client, run_id, token, 1, [metrics(s) for s in (2, 3, 4, 5)])
    assert overlap.json()["stored"] == 2 and overlap.json()["next_seq"] == 5
    assert reward_steps(run_id) == [1, 2, 3, 4, 5]


def test_it_answers_a_gap_with_409_and_the_expected_seq(client, user_auth):
    run_id, token = create_external(client, user_auth)
    assert send(client, run_id, token, 0, [metrics(1), metrics(2)]).status_code == 200
    gap = send(client, run_id, token, 5, [metrics(6)])
    assert gap.status_code == 409
    assert gap.json()["expected_seq"] == 2 and "seq 2" in gap.json()["detail"]
    assert reward_steps(run_id) == [1, 2]


def test_it_refuses_wrong_tokens_and_other_runs_tokens(client, user_auth, researcher):
    run_id, token = create_external(client, user_auth, "one")
    other_id, other_token = create_external(client, user_auth, "two")
    assert send(client, run_id, "r1r_not-a-token", 0, [metrics(1)]).status_code == 401
    no_header = client.post(
        f"/api/runs/{run_id}/events", json.dumps({"seq": 0, "events": []}), "application/json"
    )
    assert no_header.status_code == 401
    user_token = user_auth["Authorization"].split()[1]
    assert send(client, run_id, user_token, 0, [metrics(1)]).status_code == 401
    assert send(client, run_id, other_token, 0, [metrics(1)]).status_code == 403
    assert Run.objects.get(pk=run_id).events_offset == 0

    # A new token revokes the old one.
    rotated = client.post(f"/api/runs/{run_id}/token", headers=user_auth)
    assert rotated.status_code == 200
    assert send(client, run_id, token, 0, [metrics(1)]).status_code == 401
    assert send(client, run_id, rotated.json()["token"], 0, [metrics(1)]).status_code == 200


def test_status_events_end_an_external_run_and_later_events_get_409(client, user_auth):
    run_id, token = create_external(client, user_auth)
    ended = [metrics(1), {"type": "status", "state": "finished", "message": ""}]
    assert send(client, run_id, token, 0, ended).json()["status"] == "finished"
    run = Run.objects.get(pk=run_id)
    assert run.status == RunStatus.FINISHED and run.finished_at and run.progress == 1.0
    late = send(client, run_id, token, 2, [metrics(2)])
    assert late.status_code == 409 and "finished" in late.json()["detail"]
    assert send(client, run_id, token, 0, ended).status_code == 200  # a retry is still fine


def test_an_external_run_ending_over_http_tells_the_run_ended_hooks_once(
    client, user_auth, django_capture_on_commit_callbacks
):
    heard: list[int] = []
    run_ended_register(key="test-http", handler=lambda *, run_ids: heard.extend(run_ids))
    try:
        run_id, token = create_external(client, user_auth)
        send(client, run_id, token, 0, [metrics(1)])
        assert heard == []  # still running
        ended = [{"type": "status", "state": "finished", "message": ""}]
        with django_capture_on_commit_callbacks(execute=True):
            send(client, run_id, token, 1, ended)
            send(client, run_id, token, 1, ended)  # a retry of the same batch
        assert heard == [run_id]
    finally:
        _registry.pop("test-http", None)


def test_a_failed_status_puts_the_error_on_the_run(client, user_auth):
    run_id, token = create_external(client, user_auth)
    message = "Traceback (most recent call last):\n  File x\nRuntimeError: CUDA out of memory"
    send(client, run_id, token, 0, [{"type": "status", "state": "failed", "message": message}])
    run = Run.objects.get(pk=run_id)
    assert run.status == RunStatus.FAILED
    assert run.error == "RuntimeError: CUDA out of memory" and run.traceback == message


def test_a_silent_external_run_is_marked_lost_and_comes_back_when_it_reports(
    client, user_auth, settings
):
    settings.R1STUDIO_EXTERNAL_LOST_AFTER_SECONDS = 30
    run_id, token = create_external(client, user_auth)
    send(client, run_id, token, 0, [metrics(1)])
    assert runs_sweep_lost() == 0  # it just reported
    Run.objects.filter(pk=run_id).update(heartbeat_at=timezone.now() - timedelta(seconds=31))
    assert runs_sweep_lost() == 1
    run = Run.objects.get(pk=run_id)
    assert run.status == RunStatus.LOST and "stopped reporting" in run.error

    # It was cut off, not dead: its next batch (a heartbeat here) makes it running again.
    back = send(client, run_id, token, 1, [])
    assert back.status_code == 200 and back.json()["status"] == "running"
    assert Run.objects.get(pk=run_id).error == ""


def test_the_worker_threshold_does_not_apply_to_external_runs(client, user_auth, settings):
    settings.R1STUDIO_LOST_AFTER_SECONDS = 4
    settings.R1STUDIO_EXTERNAL_LOST_AFTER_SECONDS = 300
    run_id, token = create_external(client, user_auth)
    send(client, run_id, token, 0, [metrics(1)])
    Run.objects.filter(pk=run_id).update(heartbeat_at=timezone.now() - timedelta(seconds=60))
    assert runs_sweep_lost() == 0
    assert Run.objects.get(pk=run_id).status == RunStatus.RUNNING


def test_a_cancel_reaches_the_script_in_the_next_answer(client, user_auth):
    run_id, token = create_external(client, user_auth)
    send(client, run_id, token, 0, [metrics(1)])
    assert client.post(f"/api/runs/{run_id}/cancel", headers=user_auth).status_code == 200
    answer = send(client, run_id, token, 1, [])
    assert answer.json()["cancel_requested"] is True
    send(client, run_id, token, 1, [{"type": "status", "state": "cancelled"}])
    assert Run.objects.get(pk=run_id).status == RunStatus.CANCELLED


def test_an_external_run_cannot_be_resumed_or_retried_by_a_worker(client, user_auth):
    run_id, token = create_external(client, user_auth)
    send(client, run_id, token, 0, [{"type": "status", "state": "failed", "message": "boom"}])
    for action in ("resume", "retry"):
        answer = client.post(f"/api/runs/{run_id}/{action}", headers=user_auth)
        assert answer.status_code == 409 and "script" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": []}, "seq"),
        ({"seq": -1, "events": []}, "seq"),
        ({"seq": 0, "events": {}}, "events"),
        ({"seq": 0, "events": [{"type": "nope"}]}, "events[0].type"),
        ({"seq": 0, "events": [{"type": "metrics", "values": {}}]}, "events[0].step"),
        ({"seq": 0, "events": [{"type": "metrics", "step": 1, "values": {"a": "x"}}]}, "a"),
        ({"seq": 0, "events": [{"type": "checkpoint", "step": 1}]}, "events[0].path"),
        ({"seq": 0, "events": [{"type": "status", "state": "done"}]}, "events[0].state"),
        ({"seq": 0, "events": [{"type": "log", "message": "a\x00b"}]}, "NUL"),
    ],
)
def test_a_bad_body_gets_400_naming_the_field(client, user_auth, body, field):
    run_id, token = create_external(client, user_auth)
    answer = client.post(
        f"/api/runs/{run_id}/events",
        json.dumps(body),
        "application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 400 and field in answer.json()["detail"]
    assert Run.objects.get(pk=run_id).events_offset == 0


def test_nan_and_non_json_bodies_are_refused(client, user_auth):
    run_id, token = create_external(client, user_auth)
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/api/runs/{run_id}/events"
    nan = '{"seq": 0, "events": [{"type": "metrics", "step": 1, "values": {"a": NaN}}]}'
    assert client.post(url, nan, "application/json", headers=headers).status_code == 400
    assert client.post(url, "seq=0", "text/plain", headers=headers).status_code == 415
    assert client.post(url, "{", "application/json", headers=headers).status_code == 400


def test_dataset_events_are_counted_but_not_taken_over_http(client, user_auth):
    run_id, token = create_external(client, user_auth)
    event = {"type": "dataset", "path": "/etc/passwd", "rows": 1, "kind": "sft"}
    answer = send(client, run_id, token, 0, [event, metrics(1)])
    assert answer.json() == {
        "stored": 1,
        "next_seq": 2,
        "status": "running",
        "cancel_requested": False,
    }


def test_a_batch_is_published_on_the_runs_live_channel(client, user_auth, redis_url):
    run_id, token = create_external(client, user_auth)
    pubsub = redis.Redis.from_url(redis_url).pubsub()
    pubsub.subscribe(channel(run_id))
    wait_for(lambda: pubsub.get_message(timeout=1))  # the subscribe confirmation
    send(client, run_id, token, 0, [metrics(1), metrics(2)])
    message = wait_for(lambda: pubsub.get_message(timeout=1))
    payload = json.loads(message["data"])
    assert payload["status"] == "running" and payload["metrics"]["reward"] == [[1, 0.1], [2, 0.2]]
    pubsub.close()


def test_the_run_page_shows_an_external_run(client, user_auth, researcher):
    run_id, token = create_external(client, user_auth)
    send(client, run_id, token, 0, [metrics(1), SAMPLES, CHECKPOINT])
    client.force_login(researcher)
    page = client.get(f"/runs/{run_id}/")
    assert page.status_code == 200 and b"my-grpo" in page.content
