"""Writes on recipes: create (from a preset or a full definition), launch, cancel, retry.

Every function takes keyword arguments and the acting user and checks the user's right to do
it (`PermissionDenied`: researchers create; the owner or an admin change). A definition is
checked by `graph.definition_errors` (RecipeError names the stage and the field); a draft made
from a paper-scale preset may keep empty models and data (`validate=False`): its launch checks
it all. The scheduler (r1studio.recipes.scheduler) does the rest; these functions only set rows
and call one scheduler step, in the same transaction.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from r1studio.core.roles import ADMIN, RESEARCHER, require_role, user_has_role
from r1studio.recipes.graph import RecipeError, definition_errors, stage_inputs
from r1studio.recipes.models import Recipe, RecipeStage, RecipeStatus, StageStatus
from r1studio.recipes.presets import TOY_GATE, PresetError, preset_definition
from r1studio.recipes.scheduler import recipe_advance, stage_dict
from r1studio.runs.models import ACTIVE_STATUSES
from r1studio.runs.services import RunStateError, run_cancel

DEMO_NAME = "Toy R1 recipe (demo)"


class RecipeStateError(ValidationError):
    """The recipe is not in a state that allows the action (launching a running recipe)."""


def _require_researcher(user: Any) -> None:
    require_role(user, RESEARCHER, "Recipes")


def recipe_can_change(*, recipe: Recipe, user: Any) -> bool:
    return recipe.owner_id == getattr(user, "pk", None) or user_has_role(user, ADMIN)


def _require_change(recipe: Recipe, user: Any) -> None:
    _require_researcher(user)
    if not recipe_can_change(recipe=recipe, user=user):
        raise PermissionDenied("Only the recipe's owner or an admin can change it.")


def _graph_only(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    """The errors a draft may not keep: all but an empty model or data field to fill in."""
    return [e for e in errors if not e.get("fillable")]


@transaction.atomic
def recipe_create(*, user: Any, definition: dict, name: str = "", validate: bool = True) -> Recipe:
    """A draft recipe from a definition (r1studio.recipes.graph); RecipeError when invalid.

    `validate=False` still refuses a broken graph, but lets empty model and data fields through
    (a paper preset to fill in)."""
    _require_researcher(user)
    errors = definition_errors(definition)
    if not validate and isinstance(definition, dict):
        errors = _graph_only(errors)
    if errors:
        raise RecipeError(errors)
    title = (name or definition.get("name") or "Recipe").strip()[:200] or "Recipe"
    recipe = Recipe.objects.create(
        name=title,
        owner=user,
        preset=str(definition.get("preset") or "")[:64],
        description=str(definition.get("description") or "")[:5000],
    )
    for order, stage in enumerate(definition["stages"]):
        config = dict(stage.get("config") or {})
        if stage["kind"] != "gate":
            config["kind"] = stage["kind"]
        RecipeStage.objects.create(
            recipe=recipe,
            key=stage["key"],
            name=str(stage.get("name") or "")[:200],
            order=order,
            kind=stage["kind"],
            config=config,
            inputs=stage_inputs(stage),
            gate_enabled=bool(stage.get("gate_enabled", True)),
        )
    return recipe


def recipe_create_from_preset(*, user: Any, preset: str, name: str = "") -> Recipe:
    """A draft from preset `preset` (r1studio.recipes.presets); RecipeError when the preset
    cannot be built here (the toy assets missing)."""
    _require_researcher(user)
    try:
        definition = preset_definition(preset)
    except PresetError as exc:
        error = {"stage": "", "field": "preset", "loc": "preset", "msg": str(exc)}
        raise RecipeError([error]) from None
    return recipe_create(user=user, definition=definition, name=name, validate=preset == "toy")


def recipe_definition(recipe: Recipe) -> dict[str, Any]:
    """The recipe as a definition: what `recipe_create` takes (a copy, an export, the editor)."""
    return {
        "name": recipe.name,
        "description": recipe.description,
        "preset": recipe.preset,
        "stages": [stage_dict(stage) for stage in recipe.stages.order_by("order", "pk")],
    }


@transaction.atomic
def recipe_launch(*, recipe: Recipe, user: Any) -> Recipe:
    """Check the whole recipe and start the stages whose inputs exist; RecipeError (nothing
    started) when a stage is invalid."""
    _require_change(recipe, user)
    recipe = Recipe.objects.select_for_update().get(pk=recipe.pk)
    if recipe.status != RecipeStatus.DRAFT:
        raise RecipeStateError(f"Only a draft recipe can be launched; this one is {recipe.status}.")
    errors = definition_errors(recipe_definition(recipe))
    if errors:
        raise RecipeError(errors)
    Recipe.objects.filter(pk=recipe.pk).update(
        status=RecipeStatus.RUNNING, started_at=timezone.now(), error=""
    )
    recipe_advance(recipe_id=recipe.pk)
    recipe.refresh_from_db()
    return recipe


@transaction.atomic
def recipe_cancel(*, recipe: Recipe, user: Any) -> Recipe:
    """Stop every active run of the recipe and every stage not yet done."""
    _require_change(recipe, user)
    recipe = Recipe.objects.select_for_update().get(pk=recipe.pk)
    stages = list(recipe.stages.select_related("run"))
    active = [s for s in stages if s.run is not None and s.run.status in ACTIVE_STATUSES]
    if recipe.status not in (RecipeStatus.RUNNING, RecipeStatus.WAITING) and not active:
        raise RecipeStateError(
            f"Only a running recipe can be cancelled; this one is {recipe.status}."
        )
    now = timezone.now()
    for stage in active:
        with contextlib.suppress(RunStateError):  # it ended meanwhile
            run_cancel(run=stage.run, user=user)
    RecipeStage.objects.filter(
        recipe=recipe,
        status__in=(
            StageStatus.PENDING,
            StageStatus.READY,
            StageStatus.RUNNING,
            StageStatus.WAITING,
            StageStatus.BLOCKED,
        ),
    ).update(status=StageStatus.CANCELLED, finished_at=now)
    Recipe.objects.filter(pk=recipe.pk).update(
        status=RecipeStatus.CANCELLED, finished_at=now, error=f"cancelled by {user.get_username()}"
    )
    recipe.refresh_from_db()
    return recipe


def _downstream(stages: list[RecipeStage], key: str) -> set[str]:
    """`key` and every stage that reads it, directly or not."""
    found = {key}
    grew = True
    while grew:
        grew = False
        for stage in stages:
            if stage.key in found:
                continue
            if any(item.get("stage") in found for item in stage.inputs):
                found.add(stage.key)
                grew = True
    return found


@transaction.atomic
def recipe_retry(*, recipe: Recipe, user: Any, stage_key: str = "") -> Recipe:
    """Run the failed (or cancelled) stages again — only `stage_key` and what depends on it when
    given — and carry on with the recipe. Each new run's parent is the stage's previous run."""
    _require_change(recipe, user)
    recipe = Recipe.objects.select_for_update().get(pk=recipe.pk)
    if recipe.status not in (RecipeStatus.FAILED, RecipeStatus.CANCELLED):
        raise RecipeStateError(
            f"Only a failed or cancelled recipe can be retried; this one is {recipe.status}."
        )
    stages = list(recipe.stages.all())
    stopped = (StageStatus.FAILED, StageStatus.CANCELLED, StageStatus.BLOCKED)
    if stage_key:
        if stage_key not in {s.key for s in stages}:
            raise RecipeStateError(f"This recipe has no stage {stage_key!r}.")
        keys = _downstream(stages, stage_key)
    else:
        keys = {s.key for s in stages}
    retried = RecipeStage.objects.filter(recipe=recipe, key__in=keys, status__in=stopped)
    if not retried.update(status=StageStatus.PENDING, error="", finished_at=None):
        raise RecipeStateError("Nothing to retry: no stage failed or was cancelled.")
    Recipe.objects.filter(pk=recipe.pk).update(
        status=RecipeStatus.RUNNING, error="", finished_at=None
    )
    recipe_advance(recipe_id=recipe.pk)
    recipe.refresh_from_db()
    return recipe


def recipe_stage_set_gate(*, stage: RecipeStage, user: Any, enabled: bool) -> RecipeStage:
    """Switch a gate on or off before it is reached."""
    _require_change(stage.recipe, user)
    if stage.kind != "gate":
        raise RecipeStateError("Only a gate stage can be switched on or off.")
    if stage.status not in (StageStatus.PENDING, StageStatus.BLOCKED):
        raise RecipeStateError("The gate was reached already.")
    RecipeStage.objects.filter(pk=stage.pk).update(gate_enabled=enabled)
    stage.gate_enabled = enabled
    return stage


def recipe_delete(*, recipe: Recipe, user: Any) -> None:
    """Delete a recipe that is not running (its runs stay)."""
    _require_change(recipe, user)
    if recipe.is_active:
        raise RecipeStateError("Cancel the recipe before deleting it.")
    recipe.delete()


def recipe_demo_ensure(*, user: Any) -> Recipe | None:
    """The toy demo recipe (a draft owned by `user`), made once when the toy assets exist."""
    if Recipe.objects.filter(preset="toy", name=DEMO_NAME).exists():
        return None
    try:
        return recipe_create_from_preset(user=user, preset="toy", name=DEMO_NAME)
    except RecipeError:
        return None  # no toy assets (yet): made on a later start


__all__ = ["TOY_GATE", "RecipeError", "RecipeStateError"]
