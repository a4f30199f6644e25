"""The new-run and edit form: what it says after each action, which tab it keeps, the preset it
loaded, whole numbers kept whole, and where each input comes from."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from r1studio.runs.forms import ConfigForm, config_to_yaml
from r1studio.runs.models import Run, RunStatus


def _yaml_post(config: dict, **extra: str) -> dict:
    return {
        "kind": config["kind"],
        "source": "yaml",
        "config_yaml": config_to_yaml(config),
        **extra,
    }


def _form_post(config: dict, **extra: str) -> dict:
    """What a browser posts from the Form tab for `config` as the form renders it."""
    post = {"kind": config["kind"], "source": "form", **extra}
    for name, spec in ConfigForm(config["kind"], config).fields_by_name().items():
        if spec.widget != "checkbox":
            post[name] = spec.display
        elif spec.value:
            post[name] = "on"
    return post


def _notice(html: str) -> str:
    start = html.index("data-form-notice=")
    return html[start : html.index("</div>", start)]


@pytest.fixture
def toy_in_data_dir(data_dir: Path, toy_dir: Path) -> Path:
    (data_dir / "toy").symlink_to(toy_dir, target_is_directory=True)
    return data_dir / "toy"


def test_it_puts_a_refused_launchs_errors_atop_the_form_each_linking_to_its_field(
    researcher_client, toy_config, data_dir
):
    config = toy_config("grpo", trainer={"per_device_train_batch_size": 6, "num_generations": 4})

    response = researcher_client.post(reverse("runs:new"), _yaml_post(config, action="launch"))

    html = response.content.decode()
    notice = _notice(html)
    assert response.status_code == 422 and Run.objects.count() == 0
    assert 'data-form-notice="errors"' in notice and "Nothing was queued" in notice
    assert 'href="#cfg-trainer-num_generations"' in notice and "multiple of" in notice
    assert 'id="cfg-trainer-num_generations"' in html
    # The twelve preset cards fold away so the form and its errors come first.
    assert '<details class="card presets"' in html and "data-presets open" not in html
    assert html.index("data-form-notice") < html.index('name="trainer.num_generations"')


def test_it_says_a_valid_config_is_valid_on_check(researcher_client, toy_config, data_dir):
    response = researcher_client.post(
        reverse("runs:new"), _yaml_post(toy_config("sft"), action="check")
    )

    assert response.status_code == 200 and Run.objects.count() == 0
    assert "Config is valid." in _notice(response.content.decode())


def test_it_keeps_the_yaml_tab_after_a_failed_check(researcher_client, toy_config, data_dir):
    config = toy_config("grpo", trainer={"per_device_train_batch_size": 6, "num_generations": 4})

    response = researcher_client.post(
        reverse("runs:new"), _yaml_post(config, action="check", tab="yaml")
    )

    html = response.content.decode()
    assert 'data-active-tab="yaml"' in html and 'name="tab" value="yaml"' in html
    assert 'name="source" value="yaml"' in html
    assert 'class="cfg-tab active" role="tab" aria-selected="true" data-tab="yaml"' in html


def test_it_keeps_the_yaml_that_did_not_parse_on_the_yaml_tab(researcher_client):
    response = researcher_client.post(
        reverse("runs:new"),
        {"kind": "grpo", "source": "yaml", "tab": "yaml", "action": "apply-yaml",
         "config_yaml": "kind: grpo\ntrainer: ["},
    )  # fmt: skip

    html = response.content.decode()
    assert 'data-active-tab="yaml"' in html and 'name="source" value="yaml"' in html
    assert 'data-form-notice="errors"' in html and "trainer: [" in html


def test_it_names_the_preset_it_loaded_and_folds_the_others(researcher_client, toy_in_data_dir):
    response = researcher_client.get(reverse("runs:new") + "?preset=toy-grpo")

    html = response.content.decode()
    assert "Loaded the preset <strong data-preset-name>Toy GRPO</strong>" in _notice(html)
    assert 'data-preset="toy-grpo" aria-current="true"' in html
    assert "Start from another preset" in html and "data-presets open" not in html
    assert '<input type="hidden" name="preset" value="toy-grpo">' in html
    assert "?preset=r1-zero#run-form" in html


def test_it_records_the_preset_a_run_was_started_from(researcher_client, toy_config, data_dir):
    researcher_client.post(
        reverse("runs:new"), _yaml_post(toy_config("sft"), action="draft", preset="toy-sft")
    )
    researcher_client.post(
        reverse("runs:new"), _yaml_post(toy_config("sft"), action="draft", preset="made-up")
    )

    assert sorted(Run.objects.values_list("preset", flat=True)) == ["", "toy-sft"]


def test_it_keeps_whole_numbers_whole_in_the_form_and_the_stored_config(
    researcher_client, toy_config, data_dir
):
    config = toy_config("grpo", trainer={"logging_steps": 5}, output={"save_steps": 50})
    broken = {**_form_post(config), "trainer.max_steps": "x"}

    refused = researcher_client.post(reverse("runs:new"), {**broken, "action": "launch"})
    researcher_client.post(reverse("runs:new"), _form_post(config, action="draft", name="d"))

    html = refused.content.decode()
    assert 'name="trainer.logging_steps" value="5"' in html
    assert 'name="output.save_steps" value="50"' in html
    assert "logging_steps: 5\n" in html and "save_steps: 50\n" in html  # the YAML view
    stored = Run.objects.get().config
    assert (
        stored["trainer"]["logging_steps"] == 5 and type(stored["trainer"]["logging_steps"]) is int
    )
    assert stored["output"]["save_steps"] == 50 and type(stored["output"]["save_steps"]) is int
    assert stored["trainer"]["warmup_steps"] == 0 and type(stored["trainer"]["warmup_steps"]) is int


def test_it_keeps_a_fraction_of_the_run_a_fraction(researcher_client, toy_config, data_dir):
    config = toy_config("sft", output={"save_steps": 0.5})

    researcher_client.post(reverse("runs:new"), _form_post(config, action="draft", name="d"))

    assert Run.objects.get().config["output"]["save_steps"] == 0.5


def test_it_shows_which_earlier_run_each_input_comes_from(
    researcher_client, researcher, toy_in_data_dir, data_dir
):
    zero_dir = data_dir / "runs" / "3-abc"
    (zero_dir / "final").mkdir(parents=True)
    zero = Run.objects.create(
        name="renamed zero", owner=researcher, kind="grpo", status=RunStatus.FINISHED,
        run_dir=str(zero_dir), preset="r1-zero", step=30, finished_at=timezone.now(),
    )  # fmt: skip

    page = researcher_client.get(reverse("runs:new") + "?preset=cold-start-data")
    later = researcher_client.get(reverse("runs:new") + "?preset=cold-start-sft")

    html = page.content.decode()
    link = f'<a href="{reverse("runs:detail", args=[zero.pk])}">run #{zero.pk} renamed zero</a>'
    assert f"<strong>model</strong> from {link} (final model, step 30, finished" in html
    field = html[html.index('data-field="model.path"') :]
    assert link in field[: field.index("</div>")]
    missing = later.content.decode()
    assert "needs a finished" in missing and "?preset=cold-start-data#run-form" in missing
