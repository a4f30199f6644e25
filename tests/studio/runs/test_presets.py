"""Presets: every R1 stage, toy-backed when the toy assets exist, chained by earlier runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from r1studio.runs.models import Run, RunStatus
from r1studio.runs.presets import PRESETS_BY_KEY, preset_config, presets_available
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


def test_it_points_a_later_stage_at_the_newest_earlier_run(researcher, toy_in_data_dir, data_dir):
    earlier = data_dir / "runs" / "7"
    (earlier / "final").mkdir(parents=True)
    Run.objects.create(
        name="R1-Zero GRPO", owner=researcher, kind="grpo", status=RunStatus.FINISHED,
        run_dir=str(earlier),
    )  # fmt: skip

    config = preset_config(PRESETS_BY_KEY["cold-start-data"], user=researcher)
    judge = preset_config(PRESETS_BY_KEY["secondary-rl"], user=researcher)

    assert config["model"]["path"] == str(earlier / "final")
    assert judge["model"]["path"] == "${runs}/06-sft/final"  # no SFT run yet: left to pick
    assert judge["rewards"][-1]["name"] == "judge"
