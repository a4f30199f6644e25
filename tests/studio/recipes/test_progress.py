"""Progress and ETA of a recipe, from its stages (r1studio.recipes.selectors.recipe_progress)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from r1studio.recipes.models import RecipeStage
from r1studio.recipes.selectors import recipe_progress
from r1studio.runs.models import Run

NOW = timezone.now()


def _stage(
    kind: str, status: str, seconds: float | None = None, run: Run | None = None
) -> RecipeStage:
    stage = RecipeStage(key=f"{kind}-{status}", kind=kind, status=status, run=run)
    if seconds is not None:
        stage.started_at = NOW - timedelta(seconds=seconds)
        stage.finished_at = NOW
    return stage


def test_it_counts_done_stages_and_the_running_runs_progress() -> None:
    running = Run(progress=0.5, eta_seconds=30.0)
    stages = [
        _stage("grpo", "finished", 100),
        _stage("gate", "skipped"),
        _stage("sft", "running", run=running),
        _stage("sft", "pending"),
        _stage("generate", "pending"),
    ]
    progress = recipe_progress(stages=stages)
    assert (progress["done"], progress["total"]) == (2, 5)
    assert progress["fraction"] == 0.5  # (2 + 0.5) / 5
    # the running run's 30 s, then the mean finished duration (only grpo's 100 s) for each
    assert progress["eta_seconds"] == 230.0


def test_it_uses_the_durations_of_the_same_kind_when_there_are_some() -> None:
    stages = [
        _stage("grpo", "finished", 100),
        _stage("sft", "finished", 10),
        _stage("sft", "pending"),
    ]
    assert recipe_progress(stages=stages)["eta_seconds"] == 10.0


def test_no_eta_while_a_person_must_act_or_before_anything_finished() -> None:
    waiting = [_stage("grpo", "finished", 50), _stage("gate", "waiting"), _stage("sft", "pending")]
    assert recipe_progress(stages=waiting)["eta_seconds"] is None
    fresh = [_stage("grpo", "running", run=Run(progress=0.0)), _stage("sft", "pending")]
    assert recipe_progress(stages=fresh)["eta_seconds"] is None
    done = [_stage("grpo", "finished", 5)]
    assert recipe_progress(stages=done) == {
        "done": 1, "total": 1, "fraction": 1.0, "eta_seconds": 0.0,
    }  # fmt: skip
