"""Run services: who may change what, and in which state."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied

from r1studio.runs.models import Run, RunStatus
from r1studio.runs.services import (
    RunConfigError,
    RunStateError,
    run_cancel,
    run_clone,
    run_create,
    run_launch,
    run_resume,
    run_retry,
    run_update_config,
)


def test_it_validates_the_config_on_create(researcher, toy_config, data_dir):
    with pytest.raises(RunConfigError) as error:
        run_create(user=researcher, name="x", config=toy_config("sft", model={"path": "/nope"}))

    assert error.value.config_errors[0]["loc"] == "model.path"
    assert "model.path" in error.value.message_dict
    assert Run.objects.count() == 0


def test_it_edits_drafts_of_their_owner_only(make_user, toy_config, data_dir):
    owner, other = make_user("researcher"), make_user("researcher")
    run = run_create(user=owner, name="d", config=toy_config("sft"))
    edited = toy_config("sft", trainer={"max_steps": 9})

    with pytest.raises(PermissionDenied):
        run_update_config(run=run, user=other, config=edited)
    run = run_update_config(run=run, user=owner, config=edited, name="renamed")

    assert run.config["trainer"]["max_steps"] == 9 and run.name == "renamed"
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)
    run.refresh_from_db()
    with pytest.raises(RunStateError):
        run_update_config(run=run, user=owner, config=edited)


def test_it_refuses_annotators(annotator, researcher, toy_config, data_dir):
    run = run_create(user=researcher, name="r", config=toy_config("sft"))

    with pytest.raises(PermissionDenied):
        run_create(user=annotator, name="a", config=toy_config("sft"))
    with pytest.raises(PermissionDenied):
        run_launch(run=run, user=annotator)
    with pytest.raises(PermissionDenied):
        run_cancel(run=run, user=annotator)


def test_it_launches_a_draft_once(
    researcher, toy_config, data_dir, django_capture_on_commit_callbacks
):
    run = run_create(user=researcher, name="r", config=toy_config("generate"))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = run_launch(run=run, user=researcher)
    with pytest.raises(RunStateError):
        run_launch(run=run, user=researcher)

    assert run.status == RunStatus.QUEUED and run.queued_at and len(callbacks) == 1


def test_it_resumes_only_from_a_checkpoint_on_disk(researcher, toy_config, data_dir):
    run = run_create(user=researcher, name="r", config=toy_config("sft"))
    run_dir = data_dir / "runs" / str(run.pk)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, run_dir=str(run_dir))
    run.refresh_from_db()

    with pytest.raises(RunStateError):
        run_resume(run=run, user=researcher)
    (run_dir / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    (run_dir / "checkpoints" / "checkpoint-12").mkdir()
    run = run_resume(run=run, user=researcher)

    assert run.status == RunStatus.QUEUED
    assert Path(run.resume_from).name == "checkpoint-12" and run.run_dir == str(run_dir)


def test_it_retries_in_a_fresh_run_dir_and_clones_into_a_draft(researcher, toy_config, data_dir):
    run = run_create(user=researcher, name="r", config=toy_config("sft"))
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, run_dir=str(data_dir / "old"))
    run.refresh_from_db()

    retry = run_retry(run=run, user=researcher)
    clone = run_clone(run=run, user=researcher)

    assert retry.status == RunStatus.QUEUED and retry.parent == run
    assert retry.run_dir == str(data_dir / "runs" / f"{retry.pk}-{retry.uid.hex}")
    assert retry.config == run.config
    assert clone.status == RunStatus.DRAFT and clone.parent == run and clone.run_dir == ""
