"""Recipe definitions checked before anything is stored: each error names the stage and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from r1studio.recipes.graph import RecipeError, config_set, definition_errors, stage_inputs
from r1studio.recipes.presets import RECIPE_PRESETS, preset_definition, toy
from r1studio.recipes.services import recipe_create, recipe_create_from_preset

ROOT = {"path": Path("/")}


@pytest.fixture(autouse=True)
def _paths_runs_may_read(allowed_roots: list[Path]) -> None:
    ROOT["path"] = allowed_roots[0]


def _grpo() -> dict[str, Any]:
    root = ROOT["path"]
    return {
        "kind": "grpo",
        "model": {"path": f"{root}/base"},
        "data": {"source": f"{root}/t.jsonl"},
    }


def _generate() -> dict[str, Any]:
    return {"kind": "generate", "data": {"source": f"{ROOT['path']}/t.jsonl"}}


def _sft() -> dict[str, Any]:
    return {"kind": "sft", "model": {"path": f"{ROOT['path']}/base"}}


def _stage(key: str, config: dict, *inputs: tuple[str, str]) -> dict[str, Any]:
    return {
        "key": key,
        "kind": config["kind"],
        "config": config,
        "inputs": [{"field": field, "stage": stage} for field, stage in inputs],
    }


def _chain() -> list[dict[str, Any]]:
    return [
        _stage("zero", _grpo()),
        _stage("data", _generate(), ("model.path", "zero")),
        _stage("sft", _sft(), ("data.source", "data")),
    ]


def _by_field(errors: list[dict]) -> dict[tuple[str, str], str]:
    return {(e["stage"], e["field"]): e["msg"] for e in errors}


def test_it_accepts_a_chain_of_stages() -> None:
    assert definition_errors({"name": "ok", "stages": _chain()}) == []


def test_it_names_the_stages_of_a_cycle() -> None:
    stages = _chain()
    stages[0]["config"]["model"]["path"] = ""
    stages[0]["inputs"] = [{"field": "model.path", "stage": "sft"}]
    errors = definition_errors({"stages": stages})
    assert errors[0]["field"] == "inputs"
    assert "cycle" in errors[0]["msg"]
    assert {"zero", "data", "sft"} <= set(errors[0]["msg"].replace("<-", " ").split())


def test_it_refuses_an_input_no_stage_makes() -> None:
    stages = _chain()
    stages[2]["inputs"] = [{"field": "data.source", "stage": "rejection-sampling"}]
    errors = _by_field(definition_errors({"stages": stages}))
    assert "no stage 'rejection-sampling'" in errors[("sft", "data.source")]


def test_it_refuses_a_checkpoint_where_a_dataset_goes() -> None:
    stages = _chain()
    stages[2]["inputs"] = [{"field": "data.source", "stage": "zero"}]
    errors = _by_field(definition_errors({"stages": stages}))
    assert errors[("sft", "data.source")] == (
        "stage 'zero' (grpo) makes a checkpoint, not a dataset"
    )


def test_it_refuses_a_dataset_where_a_model_goes() -> None:
    stages = _chain()
    stages[1]["inputs"] = [{"field": "model.path", "stage": "zero"}]
    stages[2]["inputs"] = [{"field": "model.path", "stage": "data"}]
    errors = _by_field(definition_errors({"stages": stages}))
    assert "makes a dataset, not a checkpoint" in errors[("sft", "model.path")]


def test_it_says_what_each_kind_needs() -> None:
    stages = [
        _stage("sft", _sft()),
        {"key": "gen", "kind": "generate", "config": _generate()},
        {"key": "gate", "kind": "gate", "config": {}},
    ]
    errors = _by_field(definition_errors({"stages": stages}))
    assert "needs a dataset" in errors[("sft", "data.source")]
    assert "reads a model" in errors[("gen", "model.path")]
    assert "reads a dataset" in errors[("gate", "data.source")]


def test_it_reports_a_stage_config_error_under_its_stage() -> None:
    stages = _chain()
    stages[0]["config"]["trainer"] = {"per_device_train_batch_size": 3, "num_generations": 2}
    errors = definition_errors({"stages": stages})
    assert [e["stage"] for e in errors] == ["zero"]
    assert errors[0]["loc"].startswith("stages.zero.")


def test_it_refuses_duplicate_keys_and_unknown_kinds() -> None:
    stages = [*_chain(), _stage("zero", _grpo()), {"key": "x", "kind": "train", "config": {}}]
    errors = _by_field(definition_errors({"stages": stages}))
    assert errors[("zero", "key")] == "two stages have this key"
    assert "one of grpo" in errors[("x", "kind")]


def test_runs_placeholders_become_inputs() -> None:
    stage = _stage("sft", {**_sft(), "data": {"source": "${runs}/data/dataset"}})
    assert stage_inputs(stage) == [{"field": "data.source", "stage": "data", "output": "dataset"}]


def test_config_set_writes_a_dotted_field() -> None:
    config = {"benchmarks": [{"name": "x", "path": ""}]}
    assert config_set(config, "benchmarks.0.path", "/p")["benchmarks"][0]["path"] == "/p"
    assert config_set({}, "model.path", "/m") == {"model": {"path": "/m"}}


def test_the_toy_preset_is_valid_with_its_gate_off(toy_dir: Path) -> None:
    definition = toy(toy_dir)
    assert definition_errors(definition) == []
    gate = next(s for s in definition["stages"] if s["kind"] == "gate")
    assert gate["gate_enabled"] is False
    sft = next(s for s in definition["stages"] if s["key"] == "03-cold-start-sft")
    assert stage_inputs(sft) == [
        {"field": "data.source", "stage": gate["key"], "output": "dataset"}
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("key", [p.key for p in RECIPE_PRESETS if p.key != "toy"])
def test_paper_presets_make_drafts_that_name_what_to_fill(key: str, researcher: Any) -> None:
    definition = preset_definition(key)
    errors = definition_errors(definition)
    assert errors and all(e.get("fillable") for e in errors), errors
    recipe = recipe_create_from_preset(user=researcher, preset=key)
    assert recipe.status == "draft"
    assert recipe.stages.count() == len(definition["stages"])


@pytest.mark.django_db
def test_a_full_definition_with_errors_is_refused(researcher: Any) -> None:
    stages = _chain()
    stages[2]["inputs"] = [{"field": "data.source", "stage": "zero"}]
    with pytest.raises(RecipeError) as error:
        recipe_create(user=researcher, definition={"name": "x", "stages": stages})
    assert error.value.errors[0]["loc"] == "stages.sft.data.source"


@pytest.mark.django_db
def test_the_demo_recipe_is_made_once_for_the_first_admin(
    make_user: Any, settings: Any, toy_dir: Path, tmp_path: Path
) -> None:
    from django.core.management import call_command

    from r1studio.recipes.models import Recipe

    data = tmp_path / "data"
    data.mkdir()
    settings.R1STUDIO_DATA_DIR = data
    call_command("recipes_demo")  # no admin, no toy assets: nothing
    admin = make_user("admin")
    call_command("recipes_demo")
    assert not Recipe.objects.exists()
    (data / "toy").symlink_to(toy_dir)
    call_command("recipes_demo")
    call_command("recipes_demo")
    demo = Recipe.objects.get()
    assert (demo.owner, demo.status, demo.preset) == (admin, "draft", "toy")
    assert demo.stages.count() == 10
    assert demo.stages.get(kind="gate").gate_enabled is False
