"""Reads on recipes: who sees which, a recipe's stages with their runs, progress and ETA.

Researchers share recipes as they share runs: every recipe but another user's draft (a 404);
admins see all. `recipe_status` is what the API and the pages show: each stage with its run,
its gate's queue and the dataset version it made, and the whole recipe's progress and ETA.
"""

from __future__ import annotations

from statistics import mean
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404
from django.urls import reverse

from r1studio.core.roles import ADMIN, RESEARCHER, user_has_role, user_role
from r1studio.recipes.models import (
    DONE_STAGE,
    Recipe,
    RecipeStage,
    RecipeStatus,
    StageStatus,
)


def recipes_visible_to(*, user: Any) -> QuerySet[Recipe]:
    """The recipes `user` may see (see the module docstring)."""
    if user_role(user) == ADMIN:
        return Recipe.objects.all()
    if not user_has_role(user, RESEARCHER):
        return Recipe.objects.none()
    return Recipe.objects.filter(~Q(status=RecipeStatus.DRAFT) | Q(owner=user))


def recipe_list(*, user: Any, status: str | None = None) -> QuerySet[Recipe]:
    recipes = recipes_visible_to(user=user).select_related("owner")
    if status:
        recipes = recipes.filter(status=status)
    return recipes.order_by("-created_at", "-id")


def recipe_get_for_user(*, user: Any, pk: int) -> Recipe:
    """The recipe `pk` if `user` may see it; Http404 otherwise (hiding that it exists)."""
    recipe = recipes_visible_to(user=user).select_related("owner").filter(pk=pk).first()
    if recipe is None:
        raise Http404("No such recipe")
    return recipe


def recipe_stages(*, recipe: Recipe) -> list[RecipeStage]:
    return list(
        recipe.stages.select_related("run", "gate_queue", "output_version__dataset").order_by(
            "order", "pk"
        )
    )


def recipe_progress(*, stages: list[RecipeStage]) -> dict[str, Any]:
    """`{done, total, fraction, eta_seconds}`: stages done (finished or skipped) of all, the
    running runs' progress counted in; the ETA adds the running runs' own ETAs (the longest of
    them: the worker runs stages side by side when it can) and, for each stage not started, the
    mean duration of the finished stages of its kind (else of any kind). None while a gate
    waits for a person or when nothing has finished to learn from."""
    total = len(stages)
    done = sum(1 for s in stages if s.status in DONE_STAGE)
    running = [s for s in stages if s.status == StageStatus.RUNNING and s.run is not None]
    partial = sum(max(0.0, min(1.0, s.run.progress or 0.0)) for s in running)
    fraction = (done + partial) / total if total else 0.0
    durations: dict[str, list[float]] = {}
    for stage in stages:
        if stage.status == StageStatus.FINISHED and stage.kind != "gate" and stage.duration_seconds:
            durations.setdefault(stage.kind, []).append(stage.duration_seconds)
    every = [d for values in durations.values() for d in values]
    eta: float | None = None
    waiting = any(s.status == StageStatus.WAITING for s in stages)
    todo = [s for s in stages if s.status in (StageStatus.PENDING, StageStatus.READY)]
    if not waiting and (every or not todo):
        eta = max((s.run.eta_seconds or 0.0 for s in running), default=0.0)
        for stage in todo:
            if stage.kind == "gate":
                continue
            eta += mean(durations.get(stage.kind) or every)
    if done == total:
        eta = 0.0
    return {
        "done": done,
        "total": total,
        "fraction": round(fraction, 4),
        "eta_seconds": None if eta is None else round(eta, 1),
    }


def _stage_out(stage: RecipeStage) -> dict[str, Any]:
    run = stage.run
    version = stage.output_version
    return {
        "key": stage.key,
        "name": stage.label,
        "kind": stage.kind,
        "status": stage.status,
        "error": stage.error,
        "inputs": stage.inputs,
        "gate_enabled": stage.gate_enabled if stage.kind == "gate" else None,
        "run": run.pk if run else None,
        "run_status": run.status if run else None,
        "run_progress": run.progress if run else None,
        "run_url": reverse("runs:detail", args=[run.pk]) if run else None,
        "queue": stage.gate_queue_id,
        "queue_url": (
            reverse("curation:queue", args=[stage.gate_queue_id]) if stage.gate_queue_id else None
        ),
        "dataset": version.ref if version else None,
        "dataset_url": (
            reverse("curation:version", args=[version.dataset_id, version.number])
            if version
            else None
        ),
        "attempts": stage.attempts,
        "started_at": stage.started_at,
        "finished_at": stage.finished_at,
        "duration_seconds": stage.duration_seconds,
    }


def recipe_status(*, recipe: Recipe) -> dict[str, Any]:
    """The recipe, its stages and its progress as plain data (the API's answer)."""
    stages = recipe_stages(recipe=recipe)
    return {
        "id": recipe.pk,
        "name": recipe.name,
        "description": recipe.description,
        "owner": recipe.owner.get_username(),
        "preset": recipe.preset,
        "status": recipe.status,
        "error": recipe.error,
        "created_at": recipe.created_at,
        "started_at": recipe.started_at,
        "finished_at": recipe.finished_at,
        "url": reverse("recipes:detail", args=[recipe.pk]),
        "progress": recipe_progress(stages=stages),
        "stages": [_stage_out(stage) for stage in stages],
    }


def recipe_waiting_queues(*, stages: list[RecipeStage]) -> list[RecipeStage]:
    """The gates waiting for a person (their queue is where the recipe's page links)."""
    return [s for s in stages if s.status == StageStatus.WAITING and s.gate_queue_id]
