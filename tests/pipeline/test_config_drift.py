"""Version drift: a trainer argument the installed TRL renamed or removed is refused with an
error that names the field and its replacement, before anything runs."""

from __future__ import annotations

import pytest

from pipeline import config_drift
from pipeline.checks import validate_config
from pipeline.config import ConfigError, parse_config


def _errors(kind: str, trainer: dict) -> list[dict]:
    config = {"kind": kind, "model": {"path": "org/m"}, "data": {"source": "org/d"}}
    with pytest.raises(ConfigError) as caught:
        parse_config({**config, "trainer": trainer})
    return caught.value.errors


def test_the_table_matches_the_installed_trl():
    # What this studio's TRL really has: the entries below fire here, not by assumption.
    assert "max_seq_length" not in config_drift.installed_fields("sft")
    assert "max_length" in config_drift.installed_fields("sft")
    assert "vllm_structured_outputs_regex" in config_drift.installed_fields("grpo")
    assert "vllm_guided_decoding_regex" not in config_drift.installed_fields("grpo")


def test_sft_max_seq_length_names_max_length():
    (error,) = _errors("sft", {"max_seq_length": 512})

    assert error["loc"] == "trainer.max_seq_length"
    assert "renamed 'max_length'" in error["msg"] and "use trainer.max_length" in error["msg"]


def test_warmup_ratio_names_warmup_steps_with_a_fraction():
    (error,) = _errors("grpo", {"warmup_ratio": 0.1})

    assert error["loc"] == "trainer.warmup_ratio"
    assert "use trainer.warmup_steps" in error["msg"] and "0.1" in error["msg"]


def test_grpo_vllm_renames_and_removals_name_what_replaces_them():
    regex, device, prompt = (
        _errors("grpo", {name: value})[0]
        for name, value in (
            ("vllm_guided_decoding_regex", "a+"),
            ("vllm_device", "cuda:1"),
            ("max_prompt_length", 256),
        )
    )

    assert "'vllm_structured_outputs_regex'" in regex["msg"]
    assert "use trainer.vllm_mode" in device["msg"]
    assert "was removed" in prompt["msg"] and "in the dataset" in prompt["msg"]


def test_evaluation_strategy_names_eval_strategy_though_the_studio_sets_it():
    (error,) = _errors("sft", {"evaluation_strategy": "steps"})

    assert "renamed 'eval_strategy'" in error["msg"] and "remove it" in error["msg"]


def test_an_unknown_field_outside_the_table_stays_unknown():
    (error,) = _errors("sft", {"max_seq_lenght": 512})

    assert error["msg"] == "unknown field (not part of this stage's config)"


def test_a_trl_that_still_has_the_old_name_gets_no_drift_message(monkeypatch):
    # An older TRL (say 0.15, where max_seq_length still existed): not drift.
    monkeypatch.setattr(
        config_drift, "installed_fields", lambda kind: frozenset({"max_seq_length"})
    )

    (error,) = _errors("sft", {"max_seq_length": 512})

    assert error["msg"] == "unknown field (not part of this stage's config)"


def test_the_cli_validation_reports_it_too():
    config = {"kind": "sft", "model": {"path": "org/m"}, "data": {"source": "org/d"}}
    errors = validate_config({**config, "trainer": {"max_seq_length": 64}}, machine=False)

    assert errors[0]["loc"] == "trainer.max_seq_length" and "max_length" in errors[0]["msg"]
