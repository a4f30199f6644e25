"""Run pages: the list, the generated config form, presets, the run page and its actions."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from r1studio.runs.forms import config_to_yaml
from r1studio.runs.models import Run, RunStatus
from r1studio.runs.services import run_create


def _post_config(config: dict, **extra: str) -> dict:
    """The new-run form's POST for `config` sent through the YAML view."""
    return {
        "kind": config["kind"],
        "source": "yaml",
        "config_yaml": config_to_yaml(config),
        **extra,
    }


@pytest.fixture
def toy_in_data_dir(data_dir: Path, toy_dir: Path) -> Path:
    (data_dir / "toy").symlink_to(toy_dir, target_is_directory=True)
    return data_dir / "toy"


def test_it_shows_a_helpful_empty_list(researcher_client):
    response = researcher_client.get(reverse("runs:list"))

    assert response.status_code == 200
    assert b"No runs yet" in response.content
    assert reverse("runs:new").encode() in response.content


def test_it_lists_runs_with_a_polled_table_while_active(researcher_client, researcher, toy_config):
    run = run_create(user=researcher, name="polled", config=toy_config("grpo"))
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, step=3, total_steps=6, progress=0.5
    )

    page = researcher_client.get(reverse("runs:list"))
    fragment = researcher_client.get(reverse("runs:list"), headers={"HX-Request": "true"})

    assert b"polled" in page.content and b'hx-trigger="every 3s"' in page.content
    assert b"<html" not in fragment.content and b"step 3 / 6" in fragment.content


def test_it_renders_the_form_generated_from_the_stage_model(researcher_client):
    response = researcher_client.get(reverse("runs:new") + "?kind=grpo")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="trainer.num_generations"' in html and 'type="number"' in html
    assert 'name="trainer.loss_type"' in html and "<select" in html  # a Literal
    assert 'name="data.use_chat_template"' in html and 'type="checkbox"' in html
    assert "Completions sampled per prompt" in html  # help text from the description
    assert '<details class="cfg-advanced"' in html  # advanced fields folded
    assert 'name="rewards.0.name"' in html and 'name="rewards.0.params"' in html
    assert 'name="config_yaml"' in html and "num_generations: 8" in html


def test_it_fills_the_form_from_a_toy_preset(researcher_client, toy_in_data_dir):
    response = researcher_client.get(reverse("runs:new") + "?preset=toy-grpo")

    html = response.content.decode()
    assert str(toy_in_data_dir / "models" / "base") in html
    assert 'value="Toy GRPO"' in html
    for key in ("r1-zero", "cold-start-sft", "reasoning-rl", "rejection-sampling", "evaluation"):
        assert f"?preset={key}" in html


def test_it_refuses_an_invalid_config_at_the_field_and_queues_nothing(
    researcher_client, toy_config, data_dir
):
    config = toy_config("grpo", trainer={"per_device_train_batch_size": 6, "num_generations": 4})

    response = researcher_client.post(reverse("runs:new"), _post_config(config, name="bad"))

    assert response.status_code == 422
    html = response.content.decode()
    field = html[html.index('data-field="trainer.num_generations"') :]
    field = field[: field.index("</div>")]
    assert "must be a multiple of num_generations" in field and "has-error" in html
    assert Run.objects.count() == 0


def test_it_reads_the_form_fields_and_keeps_what_was_typed_on_error(researcher_client):
    response = researcher_client.get(reverse("runs:new") + "?kind=sft")
    assert response.status_code == 200

    posted = researcher_client.post(
        reverse("runs:new"),
        {"kind": "sft", "source": "form", "model.path": "/nowhere", "trainer.max_steps": "x"},
    )

    html = posted.content.decode()
    assert posted.status_code == 422
    assert "a whole number is required" in html and 'value="/nowhere"' in html
    assert Run.objects.count() == 0


def test_it_launches_a_valid_config_from_the_form(
    researcher_client, toy_config, data_dir, django_capture_on_commit_callbacks
):
    config = toy_config("sft")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = researcher_client.post(reverse("runs:new"), _post_config(config, name="ok"))

    run = Run.objects.get()
    assert response.status_code == 302 and response.url == reverse("runs:detail", args=[run.pk])
    assert run.status == RunStatus.QUEUED and run.name == "ok" and len(callbacks) == 1
    assert run.run_dir == str(data_dir / "runs" / f"{run.pk}-{run.uid.hex}")


def test_it_saves_a_draft_and_shows_its_page(researcher_client, toy_config, data_dir):
    response = researcher_client.post(
        reverse("runs:new"), _post_config(toy_config("sft"), name="d", action="draft")
    )
    run = Run.objects.get()
    page = researcher_client.get(response.url)

    assert run.status == RunStatus.DRAFT
    assert (
        b"Launch" in page.content and reverse("runs:edit", args=[run.pk]).encode() in page.content
    )


def test_it_names_the_queue_and_offers_resume_only_from_a_checkpoint(
    researcher_client, researcher, toy_config, data_dir
):
    run = run_create(user=researcher, name="r", config=toy_config("sft"))
    run_dir = data_dir / "runs" / str(run.pk)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED, run_dir=str(run_dir))
    queued = researcher_client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, error="boom")
    no_checkpoint = researcher_client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    (run_dir / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    resumable = researcher_client.get(reverse("runs:detail", args=[run.pk])).content.decode()

    assert "on the <code>gpu</code> queue" in queued
    assert 'data-action="resume" disabled' in no_checkpoint and "It can resume" not in no_checkpoint
    assert 'data-action="resume">' in resumable
    assert (
        f"It can resume from <code>{run_dir / 'checkpoints' / 'checkpoint-2'}</code>" in resumable
    )


def test_it_hides_another_researchers_draft(client, make_user, toy_config, data_dir):
    owner, other = make_user("researcher"), make_user("researcher")
    draft = run_create(user=owner, name="mine", config=toy_config("sft"))
    client.force_login(other)

    assert client.get(reverse("runs:detail", args=[draft.pk])).status_code == 404
    assert client.get(reverse("runs:edit", args=[draft.pk])).status_code == 404
    assert client.post(reverse("runs:launch", args=[draft.pk])).status_code == 404


def test_it_refuses_changes_to_another_researchers_run(client, make_user, toy_config, data_dir):
    owner, other = make_user("researcher"), make_user("researcher")
    run = run_create(user=owner, name="theirs", config=toy_config("sft"))
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    client.force_login(other)

    assert client.get(reverse("runs:detail", args=[run.pk])).status_code == 200
    assert client.post(reverse("runs:cancel", args=[run.pk])).status_code == 403
    assert Run.objects.get(pk=run.pk).cancel_requested is False


def test_it_gives_annotators_403(annotator_client, researcher, toy_config, data_dir):
    run = run_create(user=researcher, name="r", config=toy_config("sft"))

    assert annotator_client.get(reverse("runs:list")).status_code == 403
    assert annotator_client.post(reverse("runs:launch", args=[run.pk])).status_code == 403
    assert annotator_client.post(reverse("runs:cancel", args=[run.pk])).status_code == 403
    assert Run.objects.get(pk=run.pk).status == RunStatus.DRAFT


def test_it_clones_a_run_into_an_editable_draft(
    researcher_client, researcher, toy_config, data_dir
):
    run = run_create(user=researcher, name="orig", config=toy_config("sft"))
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FINISHED)

    response = researcher_client.post(reverse("runs:clone", args=[run.pk]))

    clone = Run.objects.exclude(pk=run.pk).get()
    assert response.url == reverse("runs:edit", args=[clone.pk])
    assert clone.status == RunStatus.DRAFT and clone.parent == run and clone.config == run.config
    edit = researcher_client.get(response.url)
    assert edit.status_code == 200 and b"Save and launch" in edit.content


def test_it_keeps_unparsable_yaml_as_typed(researcher_client):
    response = researcher_client.post(
        reverse("runs:new"),
        {
            "kind": "grpo",
            "source": "yaml",
            "config_yaml": "kind: grpo\ntrainer: [",
            "action": "check",
        },
    )

    html = response.content.decode()
    assert "YAML:" in html and "trainer: [" in html
    assert Run.objects.count() == 0
