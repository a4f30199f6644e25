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
    run_set_tags,
    run_update_config,
    tags_normalize,
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


def test_it_numbers_retries_and_copies_instead_of_stacking_suffixes(
    researcher, toy_config, data_dir
):
    run = run_create(
        user=researcher, name="R1-Zero GRPO", config=toy_config("sft"), preset="r1-zero"
    )
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED)
    run.refresh_from_db()

    first = run_retry(run=run, user=researcher)
    Run.objects.filter(pk=first.pk).update(status=RunStatus.FAILED)
    first.refresh_from_db()
    second = run_retry(run=first, user=researcher)
    third = run_retry(run=run, user=researcher)
    copy = run_clone(run=second, user=researcher)
    copy_again = run_clone(run=copy, user=researcher)

    assert first.name == "R1-Zero GRPO (retry)"
    assert second.name == "R1-Zero GRPO (retry 2)"
    assert third.name == "R1-Zero GRPO (retry 3)"
    assert copy.name == "R1-Zero GRPO (copy)" and copy_again.name == "R1-Zero GRPO (copy 2)"
    assert {r.preset for r in (first, second, third, copy)} == {"r1-zero"}  # still chained


def test_it_keeps_tags_trimmed_unique_and_exact(researcher, make_user, toy_config, data_dir):
    run = run_create(user=researcher, name="r", config=toy_config("sft"), tags="a, b ,a")
    other = make_user("researcher")

    assert tags_normalize(" rl,  lr   sweep,,rl ") == ",rl,lr sweep,"
    assert tags_normalize(" , ") == ""
    assert run.tag_list == ["a", "b"]
    assert run_set_tags(run=run, user=researcher, tags="c").tag_list == ["c"]
    assert Run.objects.get(pk=run.pk).tags == ",c,"
    with pytest.raises(PermissionDenied):
        run_set_tags(run=run, user=other, tags="mine")
