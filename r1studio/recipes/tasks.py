"""Thin Celery tasks that move recipes on: ids in, one scheduler step each.

`advance_enqueue(recipe_id)` sends `recipes.advance` after the current transaction commits; it
is what the run-ended hook, a new dataset version and a worker's start call. A step that waits
for a dataset version being written asks to be run again a little later.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import transaction

from r1studio.recipes.models import ACTIVE_RECIPE, Recipe, RecipeStatus
from r1studio.recipes.scheduler import recipe_advance

QUEUE = "cpu"  # light work: every worker of `make run` and the tests listens to it
AGAIN_SECONDS = 2.0


@shared_task(name="recipes.advance", ignore_result=True, acks_late=True)
def advance_recipe(recipe_id: int) -> None:
    """One scheduler step for the recipe; again in a moment when it waits for a version."""
    if recipe_advance(recipe_id=recipe_id):
        advance_recipe.apply_async(args=[recipe_id], queue=QUEUE, countdown=AGAIN_SECONDS)


@shared_task(name="recipes.reconcile", ignore_result=True, acks_late=True)
def reconcile_recipes() -> int:
    """A step for every recipe still going (a worker just started: whatever it missed while
    it was down is caught up); returns how many."""
    ids = list(
        Recipe.objects.filter(status__in=(*ACTIVE_RECIPE, RecipeStatus.FAILED)).values_list(
            "pk", flat=True
        )
    )
    for recipe_id in ids:
        advance_recipe(recipe_id)
    return len(ids)


def advance_enqueue(recipe_id: int) -> None:
    transaction.on_commit(
        lambda: advance_recipe.apply_async(args=[recipe_id], queue=QUEUE), robust=True
    )


def reconcile_enqueue(**kwargs: Any) -> None:
    """`worker_ready` handler: catch up on every recipe once the worker consumes."""
    reconcile_recipes.apply_async(queue=QUEUE)
