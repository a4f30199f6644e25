"""One Launch click parses the config at most twice in the web process, and the checks that
need the files run only on an explicit Check (and on the worker), never on a GET or a Launch."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

import pipeline.checks
import pipeline.config
from r1studio.runs import services
from r1studio.runs.forms import ConfigForm, config_to_yaml
from r1studio.runs.models import Run, RunStatus


@pytest.fixture
def counted(monkeypatch) -> dict[str, int]:
    """Counts calls of the config parser and of the checks that need the files."""
    calls = {"parse": 0, "files": 0}
    parse, files = pipeline.config.parse_config, pipeline.checks.environment_errors

    def counting_parse(data: Any) -> Any:
        calls["parse"] += 1
        return parse(data)

    def counting_files(config: Any) -> Any:
        calls["files"] += 1
        return files(config)

    monkeypatch.setattr(services, "parse_config", counting_parse)
    monkeypatch.setattr(pipeline.checks, "parse_config", counting_parse)
    monkeypatch.setattr(pipeline.checks, "environment_errors", counting_files)
    return calls


@pytest.mark.django_db
def test_one_launch_click_parses_once_and_reads_no_files(
    researcher_client: Any, toy_config: Any, counted: dict[str, int], data_dir: Any
) -> None:
    config = toy_config("sft")
    post = {"kind": "sft", "name": "once", "source": "yaml", "config_yaml": config_to_yaml(config)}

    response = researcher_client.post(reverse("runs:new"), post)

    run = Run.objects.get(name="once")
    assert response.status_code == 302 and run.status == RunStatus.QUEUED
    assert counted["parse"] <= 2, counted
    assert counted["files"] == 0, counted


@pytest.mark.django_db
def test_check_reads_the_files_and_a_get_of_the_edit_page_checks_nothing(
    researcher_client: Any, researcher: Any, toy_config: Any, counted: dict[str, int], data_dir
) -> None:
    config = toy_config("sft")
    config["data"]["source"] = str(data_dir / "missing.jsonl")
    run = services.run_create(user=researcher, name="d", config=config)  # no file check
    counted.update(parse=0, files=0)

    assert researcher_client.get(reverse("runs:edit", args=[run.pk])).status_code == 200
    assert counted == {"parse": 0, "files": 0}

    form = ConfigForm("sft", config)
    assert not form.validate(machine=True)
    assert counted["files"] == 1
    assert any(error["loc"] == "data.source" for error in form.errors)
