"""Stage configs: defaults, help text, TRL's names, and the errors users actually hit."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pipeline.checks import validate_config
from pipeline.config import (
    STAGE_MODELS,
    ConfigError,
    GRPOStage,
    config_to_dict,
    load_config,
    parse_config,
)

MINIMAL = {
    "grpo": {"kind": "grpo", "model": {"path": "org/model"}, "data": {"source": "org/data"}},
    "sft": {"kind": "sft", "model": {"path": "org/model"}, "data": {"source": "org/data"}},
    "generate": {"kind": "generate", "model": {"path": "org/model"}, "data": {"source": "gsm8k"}},
    "evaluate": {"kind": "evaluate", "model": {"path": "org/model"}},
}


def locs(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return [e["loc"] for e in info.value.errors]


@pytest.mark.parametrize("kind", sorted(STAGE_MODELS))
def test_it_parses_every_stage_kind_from_a_minimal_config(kind: str) -> None:
    config = parse_config(MINIMAL[kind])
    assert config.kind == kind
    assert config_to_dict(config)["kind"] == kind
    assert parse_config(json.loads(json.dumps(config_to_dict(config)))) == config


@pytest.mark.parametrize("kind", sorted(STAGE_MODELS))
def test_it_gives_every_field_a_default_and_help_text(kind: str) -> None:
    schema = STAGE_MODELS[kind].model_json_schema()
    sections = [schema, *schema.get("$defs", {}).values()]
    for section in sections:
        for name, field in section.get("properties", {}).items():
            assert field.get("description"), f"{section.get('title')}.{name} has no help text"
    for name, field in STAGE_MODELS[kind].model_fields.items():
        assert not field.is_required(), f"{kind}.{name} has no default"


def test_it_keeps_trl_names_and_defaults_for_trainer_fields() -> None:
    from trl import GRPOConfig, SFTConfig

    trl_grpo = {f.name: f.default for f in dataclasses.fields(GRPOConfig)}
    ours = GRPOStage().trainer
    for name in (
        "num_generations",
        "max_completion_length",
        "beta",
        "loss_type",
        "scale_rewards",
        "temperature",
        "top_p",
        "learning_rate",
        "lr_scheduler_type",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "num_iterations",
        "epsilon",
        "use_vllm",
        "vllm_mode",
        "max_steps",
        "logging_steps",
    ):
        assert name in trl_grpo, name
        assert getattr(ours, name) == trl_grpo[name], name
    trl_sft = {f.name: f.default for f in dataclasses.fields(SFTConfig)}
    sft = STAGE_MODELS["sft"]().trainer
    for name in ("learning_rate", "max_length", "packing", "num_train_epochs"):
        assert getattr(sft, name) == trl_sft[name], name
    # Decided at build time (CPU: off), not TRL's always-on.
    assert ours.bf16 is None and ours.gradient_checkpointing is None


def test_it_rejects_unknown_fields_naming_them() -> None:
    data = {**MINIMAL["grpo"], "trainer": {"num_generation": 4}}
    assert locs(data) == ["trainer.num_generation"]
    assert locs({**MINIMAL["sft"], "colour": "blue"}) == ["colour"]


def test_it_rejects_unknown_reward_names_and_params() -> None:
    data = {**MINIMAL["grpo"], "rewards": [{"name": "accuracy"}, {"name": "vibes"}]}
    assert locs(data) == ["rewards.1.name"]
    data = {**MINIMAL["grpo"], "rewards": [{"name": "format", "params": {"strictness": 2}}]}
    assert locs(data) == ["rewards.0.params"]


def test_it_rejects_a_generation_batch_not_divisible_by_num_generations() -> None:
    trainer = {"per_device_train_batch_size": 6, "gradient_accumulation_steps": 2}
    with pytest.raises(ConfigError) as info:
        parse_config({**MINIMAL["grpo"], "trainer": {**trainer, "num_generations": 8}})
    [error] = info.value.errors
    assert error["loc"] == "trainer.num_generations"
    assert "6 x 2 = 12" in error["msg"]
    parse_config({**MINIMAL["grpo"], "trainer": {**trainer, "num_generations": 4}})


def test_it_rejects_a_prefilled_think_that_the_format_reward_expects_to_be_written() -> None:
    data = {**MINIMAL["grpo"], "data": {"source": "org/data", "prefill_think": True}}
    assert locs(data) == ["data.prefill_think"]
    data["rewards"] = [
        {"name": "accuracy"},
        {"name": "format", "params": {"think_prefilled": True}},
    ]
    assert parse_config(data).data.prefill_think


def test_it_requires_a_known_kind_and_a_model() -> None:
    assert locs({"kind": "dpo"}) == ["kind"]
    assert locs({"kind": "evaluate"}) == ["model.path"]


def test_load_config_reads_yaml_and_substitutes_the_runs_root(tmp_path: Path) -> None:
    path = tmp_path / "sft.yaml"
    path.write_text(
        "kind: sft\nmodel: {path: org/model}\ndata: {source: '${runs}/02-data/dataset'}\n"
    )
    config = load_config(path, runs_root=tmp_path / "runs")
    assert config.data.source == f"{tmp_path}/runs/02-data/dataset"


def test_validate_reports_a_missing_model_folder_and_data_file(tmp_path: Path) -> None:
    data = {
        "kind": "sft",
        "model": {"path": str(tmp_path / "no-model")},
        "data": {"source": str(tmp_path / "no-data.jsonl")},
    }
    errors = validate_config(data)
    assert {e["loc"] for e in errors} == {"model.path", "data.source"}
    assert all("no such" in e["msg"] for e in errors)


def test_validate_rejects_use_vllm_without_vllm_installed(toy_config) -> None:
    from pipeline.stages.common import vllm_available

    if vllm_available():
        pytest.skip("vLLM is installed here")
    data = toy_config("grpo")
    data["trainer"]["use_vllm"] = True
    assert [e["loc"] for e in validate_config(data)] == ["trainer.use_vllm"]


def test_validate_reports_a_completion_budget_shorter_than_the_answers(toy_config) -> None:
    data = toy_config("grpo")
    data["trainer"]["max_completion_length"] = 4
    [error] = validate_config(data)
    assert error["loc"] == "trainer.max_completion_length"
    assert "<answer>" in error["msg"]


def test_validate_flags_a_chat_template_that_already_opens_think(toy_dir, toy_config, tmp_path):
    import shutil

    model = tmp_path / "thinking-model"
    shutil.copytree(toy_dir / "models" / "base", model)
    template = model / "chat_template.jinja"
    template.write_text(template.read_text().replace("<|assistant|>", "<|assistant|><think>"))
    data = toy_config("grpo")
    data["model"]["path"] = str(model)
    [error] = validate_config(data)
    assert error["loc"] == "data.use_chat_template"
    assert "'format'" in error["msg"]


def test_validate_accepts_every_toy_config(toy_dir: Path) -> None:
    from pipeline.config import read_config_file

    for path in sorted((toy_dir / "configs").glob("*.yaml")):
        assert validate_config(read_config_file(path)) == [], path.name
    # Recipe stages name outputs of earlier stages; unresolved, those paths are not checked.
    for path in sorted((toy_dir / "recipe").glob("*.yaml")):
        assert validate_config(read_config_file(path)) == [], path.name


# ---------------------------------------------------------------------------------------------
# Values the trainer or the database cannot hold are refused at validation, naming the field


def _with(kind: str, path: str, value) -> dict:
    data = json.loads(json.dumps(MINIMAL[kind]))
    node = data
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return data


@pytest.mark.parametrize(
    "kind,path,value",
    [
        ("grpo", "trainer.per_device_train_batch_size", 2**63),
        ("grpo", "trainer.max_completion_length", 10**12),
        ("grpo", "trainer.learning_rate", 1e308),
        ("grpo", "trainer.max_steps", 10**30),
        ("grpo", "trainer.learning_rate", float("inf")),
        ("grpo", "trainer.learning_rate", float("nan")),
        ("grpo", "trainer.temperature", float("-inf")),
        ("sft", "trainer.num_train_epochs", float("inf")),
        ("sft", "output.save_steps", float("inf")),
        ("sft", "trainer.max_length", 10**12),
        ("grpo", "seed", -1),
        ("generate", "sampling.k", 10**9),
        ("generate", "filters.min_score", float("nan")),
    ],
)
def test_it_refuses_numbers_past_what_the_trainer_can_hold(kind, path, value) -> None:
    assert locs(_with(kind, path, value)) == [path]


def test_it_refuses_negative_reward_weights_penalties_are_negative_rewards() -> None:
    data = _with("grpo", "rewards", [{"name": "accuracy"}, {"name": "repetition", "weight": -1}])
    assert locs(data) == ["rewards.1.weight"]
    data["rewards"][1] = {"name": "repetition", "weight": 1, "params": {"max_penalty": -1}}
    parse_config(data)


def test_it_refuses_infinity_in_the_json_and_yaml_spellings(tmp_path: Path) -> None:
    assert locs(json.loads('{"kind": "grpo", "trainer": {"learning_rate": Infinity}}')) == [
        "trainer.learning_rate"
    ]
    (tmp_path / "c.yaml").write_text("kind: grpo\ntrainer: {learning_rate: .inf}\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "c.yaml")
    assert [e["loc"] for e in info.value.errors] == ["trainer.learning_rate"]
    assert "finite" in info.value.errors[0]["msg"]


def test_it_refuses_infinity_and_nul_inside_reward_params() -> None:
    inf = [{"name": "judge", "params": {"url": "http://x", "max_score": float("inf")}}]
    assert locs(_with("grpo", "rewards", inf)) == ["rewards.0.params"]
    nul = [{"name": "judge", "params": {"template": "{completion}\x00"}}]
    assert locs(_with("grpo", "rewards", nul)) == ["rewards.0.params"]


@pytest.mark.parametrize(
    "kind,path",
    [("sft", "data.system_prompt"), ("grpo", "model.path"), ("evaluate", "prompt.prompt_template")],
)
def test_it_refuses_nul_characters_in_strings(kind, path) -> None:
    errors = []
    with pytest.raises(ConfigError) as info:
        parse_config(_with(kind, path, "a\x00b"))
    errors = info.value.errors
    assert [e["loc"] for e in errors] == [path] and "NUL" in errors[0]["msg"]


def test_it_refuses_configs_nested_absurdly_deep() -> None:
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    data = _with("grpo", "rewards", [{"name": "accuracy", "params": {"x": deep}}])
    [loc] = locs(data)
    assert loc.startswith("rewards.0.params.x.0")
