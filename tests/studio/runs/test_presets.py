"""Presets: every R1 stage, toy-backed when the toy assets exist, chained by earlier runs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from r1studio.runs.models import Run, RunStatus
from r1studio.runs.presets import PRESETS_BY_KEY, preset_config, presets_available
from r1studio.runs.selectors import config_inputs
from r1studio.runs.services import config_check

R1_STAGES = (
    "r1-zero", "cold-start-sft", "reasoning-rl", "rejection-sampling", "sft",
    "secondary-rl", "distillation-data", "student-sft", "evaluation",
)  # fmt: skip


@pytest.fixture
def toy_in_data_dir(data_dir: Path, toy_dir: Path) -> Path:
    (data_dir / "toy").symlink_to(toy_dir, target_is_directory=True)
    return data_dir / "toy"


def test_it_offers_every_r1_stage_without_the_toy_assets(researcher, data_dir):
    keys = [row["preset"].key for row in presets_available()]

    assert set(R1_STAGES) <= set(keys) and not any(k.startswith("toy-") for k in keys)
    config = preset_config(PRESETS_BY_KEY["reasoning-rl"], user=researcher)
    assert [r["name"] for r in config["rewards"]] == ["accuracy", "language_consistency", "format"]
    assert (
        "<think>"
        in preset_config(PRESETS_BY_KEY["r1-zero"], user=researcher)["data"]["system_prompt"]
    )


@pytest.mark.parametrize("key", ["toy-grpo", "toy-sft", "toy-generate", "toy-evaluate", "r1-zero"])
def test_it_makes_toy_presets_that_validate(key, researcher, toy_in_data_dir):
    config = preset_config(PRESETS_BY_KEY[key], user=researcher)

    assert config_check(config) == config


def _finished_run(owner, run_dir: Path, *, name: str, preset: str, minutes_ago: int = 0) -> Run:
    (run_dir / "final").mkdir(parents=True)
    return Run.objects.create(
        name=name, owner=owner, kind="grpo", status=RunStatus.FINISHED, run_dir=str(run_dir),
        preset=preset, finished_at=timezone.now() - timedelta(minutes=minutes_ago),
    )  # fmt: skip


def test_it_points_a_later_stage_at_the_newest_earlier_run(researcher, toy_in_data_dir, data_dir):
    earlier = data_dir / "runs" / "7"
    _finished_run(researcher, earlier, name="R1-Zero GRPO", preset="r1-zero")

    config = preset_config(PRESETS_BY_KEY["cold-start-data"], user=researcher)
    judge = preset_config(PRESETS_BY_KEY["secondary-rl"], user=researcher)

    assert config["model"]["path"] == str(earlier / "final")
    assert judge["model"]["path"] == "${runs}/06-sft/final"  # no SFT run yet: left to pick
    assert judge["rewards"][-1]["name"] == "judge"


def test_it_chains_by_the_preset_a_run_started_from_not_by_its_name(
    researcher, toy_in_data_dir, data_dir
):
    renamed = _finished_run(
        researcher, data_dir / "runs" / "1", name="my zero", preset="r1-zero", minutes_ago=5
    )
    _finished_run(researcher, data_dir / "runs" / "2", name="R1-Zero GRPO (old)", preset="")

    config = preset_config(PRESETS_BY_KEY["cold-start-data"], user=researcher)
    inputs = config_inputs(config=config, user=researcher)

    assert config["model"]["path"] == str(Path(renamed.run_dir) / "final")
    assert [(i.label, i.run, i.what) for i in inputs] == [("model", renamed, "final model")]


def test_it_makes_the_toy_judge_stage_short_with_a_tiny_judge(researcher, toy_in_data_dir):
    config = preset_config(PRESETS_BY_KEY["secondary-rl"], user=researcher)

    judge = config["rewards"][-1]["params"]
    assert judge["model"].endswith("student-base") and judge["max_new_tokens"] <= 8
    assert config["trainer"]["max_steps"] <= 20
    assert "about a minute" in PRESETS_BY_KEY["secondary-rl"].help
