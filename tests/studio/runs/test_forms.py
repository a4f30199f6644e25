"""The config form generated from pipeline.config: widgets, round trip, errors at the field."""

from __future__ import annotations

import pytest

from r1studio.runs.forms import ConfigForm, config_from_yaml, config_to_yaml

KINDS = ("grpo", "sft", "generate", "evaluate")


def _inputs(form: ConfigForm) -> dict[str, str]:
    """What a browser would post for the form as rendered."""
    post: dict[str, str] = {}

    def walk(section):
        for f in section.fields:
            if f.widget != "checkbox":
                post[f.name] = f.display
            elif f.value:
                post[f.name] = "on"
        for rows in section.rows:
            for row in rows.rows:
                for cell in row:
                    post[cell.name] = cell.display
        for sub in section.sections:
            walk(sub)

    walk(form.root)
    return post


def _field(form: ConfigForm, name: str):
    def walk(section):
        for f in section.fields:
            if f.name == name:
                return f
        for rows in section.rows:
            for row in rows.rows:
                for cell in row:
                    if cell.name == name:
                        return cell
        for sub in section.sections:
            found = walk(sub)
            if found:
                return found
        return None

    return walk(form.root)


@pytest.mark.parametrize("kind", KINDS)
def test_it_round_trips_every_stage_kind_through_its_inputs(kind, toy_config):
    config = toy_config(kind)
    from pipeline.config import config_to_dict, parse_config

    full = config_to_dict(parse_config(config))
    form = ConfigForm(kind, full)

    posted = ConfigForm.from_post(kind, _inputs(form))

    assert posted.errors == [] and posted.config == full


def test_it_picks_widgets_from_the_field_types():
    form = ConfigForm("grpo")

    assert _field(form, "trainer.loss_type").widget == "select"
    assert "dapo" in _field(form, "trainer.loss_type").choices
    assert _field(form, "trainer.bf16").widget == "tristate"  # bool | None
    assert _field(form, "trainer.num_generations").number == "int"
    assert _field(form, "trainer.num_generations").minimum == 2
    assert _field(form, "trainer.top_k").advanced and not _field(form, "trainer.beta").advanced
    assert _field(form, "rewards.1.weight").value == 0.2
    assert _field(form, "model.path").datalist == "picker-models"
    assert [c.name for c in form.root.rows[0].columns] == ["name", "weight", "params"]


def test_it_takes_widgets_and_pickers_from_the_field_hints():
    from pydantic import BaseModel

    from pipeline.config_sections import _f
    from r1studio.runs.forms import section_from_model

    class Step(BaseModel):
        grader: str = _f("", "A reward.", picker="rewards")
        note: str = _f("", "Plain text.")

    class Extra(BaseModel):
        kind: str = _f("toy", "Fixed by the form.", hidden=True)
        notes: str = _f("", "Long text.", widget="textarea")
        base: str = _f("", "A model.", picker="models")
        corpus: str = _f("", "A dataset.", True, picker="datasets")
        steps: list[Step] = _f([], "Rows.")

    section = section_from_model(Extra)
    fields = {f.name: f for f in section.fields}

    assert list(fields) == ["notes", "base", "corpus"]  # `kind` is hidden
    assert fields["notes"].widget == "textarea" and fields["notes"].datalist == ""
    assert fields["base"].widget == "text" and fields["base"].datalist == "picker-models"
    assert fields["corpus"].datalist == "picker-datasets" and fields["corpus"].advanced
    columns = {c.name: c for c in section.rows[0].columns}
    assert columns["grader"].datalist == "picker-rewards" and columns["note"].datalist == ""
    assert not section.rows[0].advanced


def test_it_maps_errors_to_fields_rows_and_the_form(toy_config):
    config = toy_config("grpo", trainer={"per_device_train_batch_size": 6, "num_generations": 4})
    config["rewards"][1]["params"] = {"nope": 1}
    form = ConfigForm("grpo", config)

    assert not form.validate()

    assert "multiple of num_generations" in _field(form, "trainer.num_generations").errors[0]
    assert "has no param 'nope'" in _field(form, "rewards.1.params").errors[0]
    assert form.non_field_errors == []


def test_it_reports_bad_numbers_and_json_at_their_inputs():
    post = _inputs(ConfigForm("grpo"))
    post.update({"trainer.max_steps": "1.5", "rewards.0.params": "{oops"})

    form = ConfigForm.from_post("grpo", post)

    assert _field(form, "trainer.max_steps").errors == ["a whole number is required, got '1.5'"]
    assert "not valid JSON" in _field(form, "rewards.0.params").errors[0]


def test_it_adds_and_drops_reward_rows():
    post = _inputs(ConfigForm("grpo"))
    post.update(
        {"rewards.1.name": "", "rewards.1007.name": "tag_count", "rewards.1007.weight": "0.5"}
    )

    form = ConfigForm.from_post("grpo", post)

    assert [r["name"] for r in form.config["rewards"]] == ["accuracy", "tag_count"]
    assert form.config["rewards"][1] == {"name": "tag_count", "weight": 0.5, "params": {}}


def test_it_reads_and_writes_the_yaml_view(toy_config):
    config = toy_config("sft")

    assert config_from_yaml(config_to_yaml(config)) == (config, [])
    assert config_from_yaml("- a list")[0] is None
    assert "YAML" in config_from_yaml("a: [")[1][0]["msg"]
