"""Configs that reach outside the studio, or cannot run, are refused where they come in.

The security probe's cases, through the API, the form and the supervisor: files outside the
allowed roots (S1), judges the admin did not allow (S2), the YAML alias bomb (S3), Infinity
(C1) and numbers no trainer can hold (W3).
"""

from __future__ import annotations

import json
import time

import pytest
from django.urls import reverse

from r1studio.api.services import api_token_create
from r1studio.runs.models import Run, RunStatus
from r1studio.runs.services import run_create
from tests.pipeline.test_safeyaml import BILLION_LAUGHS


@pytest.fixture
def auth(researcher) -> dict[str, str]:
    _, token = api_token_create(user=researcher, name="test")
    return {"Authorization": f"Bearer {token}"}


def create(client, auth, config: dict, name: str = "probe"):
    body = json.dumps({"name": name, "config": config}, allow_nan=True)
    return client.post("/api/runs", body, "application/json", headers=auth)


def error_locs(response) -> list[str]:
    assert response.status_code == 422, response.content
    return [e["loc"] for e in response.json()["errors"]]


def test_it_refuses_a_benchmark_file_outside_the_allowed_roots(client, auth, toy_config):
    config = toy_config("evaluate")
    config["benchmarks"] = [{"name": "x", "path": "/etc/passwd", "problem_column": "root"}]
    assert error_locs(create(client, auth, config)) == ["benchmarks.0.path"]
    config = toy_config("sft", data={"source": "/etc/passwd"})
    assert error_locs(create(client, auth, config)) == ["data.source"]
    config = toy_config("sft", model={"path": "/usr/lib"})
    assert error_locs(create(client, auth, config)) == ["model.path"]
    assert Run.objects.count() == 0


def test_it_takes_the_data_dir_from_the_settings(client, auth, toy_config, data_dir, settings):
    (data_dir / "prompts.jsonl").write_text('{"problem": "1+1", "answer": "2"}\n')
    config = toy_config("sft", data={"source": str(data_dir / "prompts.jsonl")})
    assert "data.source" not in json.dumps(create(client, auth, config).json())
    settings.R1STUDIO_ALLOWED_ROOTS = []
    settings.R1STUDIO_DATA_DIR = data_dir / "elsewhere"
    refused = create(client, auth, config)
    assert "data.source" in error_locs(refused) and "model.path" in error_locs(refused)


def test_it_refuses_judges_the_admin_did_not_allow(client, auth, toy_config, monkeypatch):
    monkeypatch.setenv("R1STUDIO_JUDGE_URLS", "http://judge.internal:8000/v1")
    monkeypatch.delenv("R1STUDIO_JUDGE_KEY_ENVS", raising=False)
    config = toy_config("grpo")
    params = {"url": "http://attacker.example/v1", "api_key_env": "REDIS_URL"}
    config["rewards"] = [*config["rewards"], {"name": "judge", "params": params}]
    i = len(config["rewards"]) - 1
    assert error_locs(create(client, auth, config)) == [
        f"rewards.{i}.params.url",
        f"rewards.{i}.params.api_key_env",
    ]


def test_it_refuses_infinity_and_numbers_no_trainer_can_hold(client, auth, toy_config):
    for path, value in [
        ("learning_rate", float("inf")),
        ("learning_rate", 1e308),
        ("per_device_train_batch_size", 2**63),
        ("max_completion_length", 10**12),
        ("max_steps", 10**30),
    ]:
        config = toy_config("grpo", trainer={path: value})
        assert error_locs(create(client, auth, config)) == [f"trainer.{path}"], path
    config = toy_config("grpo")
    config["rewards"][0]["weight"] = -1
    assert error_locs(create(client, auth, config)) == ["rewards.0.weight"]


def test_it_answers_the_yaml_alias_bomb_quickly_with_a_small_page(researcher_client):
    started = time.monotonic()
    response = researcher_client.post(
        reverse("runs:new"),
        {"kind": "grpo", "source": "yaml", "config_yaml": BILLION_LAUGHS, "action": "check"},
    )
    assert time.monotonic() - started < 5
    assert response.status_code == 200 and len(response.content) < 1_000_000
    assert "YAML aliases (*name) are not accepted" in response.content.decode()
    assert Run.objects.count() == 0


def test_it_shows_yaml_infinity_and_nul_as_field_errors(researcher_client, toy_config):
    config = toy_config("grpo", trainer={"learning_rate": "INF"}, data={"system_prompt": "NUL"})
    # YAML is a superset of JSON; `.inf` and "\0" are its spellings of Infinity and NUL.
    text = json.dumps(config).replace('"INF"', ".inf").replace('"NUL"', '"a\\0b"')
    response = researcher_client.post(
        reverse("runs:new"),
        {"kind": "grpo", "source": "yaml", "config_yaml": text, "action": "check"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Input should be a finite number" in html and "NUL characters" in html


@pytest.mark.django_db(transaction=True)
def test_the_pipeline_process_refuses_a_path_that_got_past_the_web(
    researcher, data_dir, toy_config
):
    from r1studio.runs.supervisor import supervise

    config = toy_config("evaluate")
    run = run_create(user=researcher, name="sneaky", config=config)
    config["benchmarks"] = [{"name": "x", "path": "/etc/passwd", "problem_column": "root"}]
    Run.objects.filter(pk=run.pk).update(
        config=config, status=RunStatus.QUEUED, run_dir=str(data_dir / "runs" / "sneaky")
    )

    assert supervise(run.pk, hostname="test@localhost") == RunStatus.FAILED
    run.refresh_from_db()
    assert "benchmarks.0.path" in run.error and "outside" in run.error
    assert "root:" not in run.error
