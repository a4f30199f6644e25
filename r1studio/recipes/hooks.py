"""What moves a recipe on, registered by `RecipesConfig.ready` (runs and curation never import
recipes): a run ended (r1studio.runs.hooks), a dataset version was written (a generate stage's
registered output, or a gate's queue promoted), a worker started."""

from __future__ import annotations

from typing import Any

from r1studio.curation.models import DatasetVersion
from r1studio.recipes.models import RecipeStage, RecipeStatus, StageStatus
from r1studio.recipes.tasks import advance_enqueue

FOLLOWED = (RecipeStatus.RUNNING, RecipeStatus.WAITING, RecipeStatus.FAILED)


def recipe_runs_ended(*, run_ids: list[int]) -> None:
    """A step for each recipe one of whose stages ran one of `run_ids`."""
    recipe_ids = (
        RecipeStage.objects.filter(run_id__in=run_ids, recipe__status__in=FOLLOWED)
        .values_list("recipe_id", flat=True)
        .distinct()
    )
    for recipe_id in recipe_ids:
        advance_enqueue(recipe_id)


def recipe_version_saved(
    sender: Any, instance: DatasetVersion, created: bool, **kwargs: Any
) -> None:
    """`post_save` of a DatasetVersion: a step for the recipe waiting for it."""
    if not created:
        return
    stages = RecipeStage.objects.none()
    if instance.source_run_id:
        stages = RecipeStage.objects.filter(run_id=instance.source_run_id)
    queue = (
        (instance.provenance or {}).get("queue")
        if instance.provenance_type == "annotation"
        else None
    )
    if isinstance(queue, int):
        stages = stages | RecipeStage.objects.filter(
            gate_queue_id=queue, status=StageStatus.WAITING
        )
    ids = set(stages.filter(recipe__status__in=FOLLOWED).values_list("recipe_id", flat=True))
    for recipe_id in ids:
        advance_enqueue(recipe_id)
