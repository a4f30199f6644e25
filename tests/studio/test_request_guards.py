"""Bad requests get a 4xx before they reach a view or the database, never a 500.

NUL characters (PostgreSQL cannot store or compare them in text), oversized API bodies and
API bodies that are not JSON. CI runs this file on PostgreSQL too.
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from r1studio.api.services import api_token_create
from r1studio.runs.models import Run
from r1studio.runs.services import run_create

# Valid without touching a file: hub ids are names.
SFT = {"kind": "sft", "model": {"path": "org/model"}, "data": {"source": "org/data"}}


@pytest.fixture
def auth(researcher) -> dict[str, str]:
    _, token = api_token_create(user=researcher, name="test")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def run(researcher) -> Run:
    return run_create(user=researcher, name="r", config={"kind": "sft"}, validate=False)


def test_it_refuses_nul_characters_in_page_query_strings(researcher_client):
    for url in ("/runs/?status=%00", "/runs/?q=a%00b", "/runs/?%00=1"):
        response = researcher_client.get(url)
        assert response.status_code == 400, url
        assert b"NUL" in response.content


def test_it_refuses_nul_characters_in_api_query_strings_in_json(client, auth, run):
    for url in (
        "/api/runs?status=%00",
        "/api/runs?kind=%00",
        f"/api/runs/{run.pk}/traces?q=%00",
        f"/api/runs/{run.pk}/traces?after=%00",
        f"/api/runs/{run.pk}/metrics?name=%00",
    ):
        response = client.get(url, headers=auth)
        assert response.status_code == 400, url
        assert "NUL" in response.json()["detail"]


def test_it_refuses_nul_characters_in_form_fields(researcher_client):
    for content_type in ("multipart", "urlencoded"):
        data = {"kind": "grpo", "name": "a\x00b", "action": "draft"}
        if content_type == "multipart":
            response = researcher_client.post(reverse("runs:new"), data)
        else:
            body = "kind=grpo&name=a%00b&action=draft"
            response = researcher_client.post(
                reverse("runs:new"), body, "application/x-www-form-urlencoded"
            )
        assert response.status_code == 400, content_type
    assert Run.objects.count() == 0


def test_it_refuses_nul_characters_in_api_run_names_and_configs(client, auth):
    def post(name: str, config: dict):
        body = json.dumps({"name": name, "config": config})
        return client.post("/api/runs", body, "application/json", headers=auth)

    named = post("a\x00b", SFT)
    assert named.status_code == 422 and "NUL" in json.dumps(named.json())
    prompt = post("ok", {**SFT, "data": {**SFT["data"], "system_prompt": "a\x00b"}})
    assert prompt.status_code == 422
    assert prompt.json()["errors"][0]["loc"] == "data.system_prompt"
    key = post("ok", {**SFT, "\x00": 1})
    assert key.status_code == 422
    assert Run.objects.count() == 0


def test_it_answers_an_oversized_api_body_with_json_413(client, auth, settings):
    body = json.dumps({"name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1), "config": {}})
    response = client.post("/api/runs", body, "application/json", headers=auth)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert "at most" in response.json()["detail"]


def test_it_answers_an_oversized_form_with_a_400_not_a_500(researcher_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = "kind=grpo&action=check&config_yaml=" + "a" * 4096
    response = researcher_client.post(
        reverse("runs:new"), body, "application/x-www-form-urlencoded"
    )
    assert response.status_code == 400


def test_it_answers_415_to_api_bodies_that_are_not_json(client, auth):
    body = json.dumps({"name": "x", "config": SFT})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        response = client.post("/api/runs", body, content_type, headers=auth)
        assert response.status_code == 415, content_type
        assert "application/json" in response.json()["detail"]
    multipart = client.post("/api/runs", {"name": "x"}, headers=auth)
    assert multipart.status_code == 415
    charset = client.post("/api/runs", body, "application/json; charset=utf-8", headers=auth)
    assert charset.status_code == 201, charset.content
    assert Run.objects.count() == 1


def test_it_answers_json_400_to_malformed_json(client, auth):
    for body in ("{", "[" * 100_000, '{"name": "\\ud800"}'):
        response = client.post("/api/runs", body, "application/json", headers=auth)
        assert response.status_code in (400, 422), body[:10]
        assert "detail" in response.json()


def test_it_still_lets_body_less_api_actions_through(client, auth, run):
    # The test client sends an empty multipart body with a POST: no body to parse, no 415.
    response = client.post(f"/api/runs/{run.pk}/cancel", headers=auth)
    assert response.status_code == 409
