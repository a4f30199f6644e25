"""Writes of the recipe editor: add, remove, reorder and change the stages of a draft, and clone
any recipe into a new draft.

Only a draft changes (a launched recipe is cloned instead, so what ran stays as it ran), and
only by its owner or an admin (`services.recipe_can_change`). A stage's inputs are the truth
for the fields they fill: saving a stage stores its inputs explicitly and blanks those config
fields (a `${runs}/...` placeholder left there would contradict a changed input). A change may
leave the graph invalid for a while (a removed stage still read by another): `recipe_errors`
(the editor's Validate, and launch) names each problem by stage and field.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Max

from r1studio.core.roles import RESEARCHER, user_has_role
from r1studio.recipes.graph import (
    GATE_DEFAULTS,
    KEY,
    MAX_STAGES,
    STAGE_KINDS,
    RecipeError,
    config_set,
    definition_errors,
    stage_inputs,
)
from r1studio.recipes.models import Recipe, RecipeStage, RecipeStatus
from r1studio.recipes.scheduler import stage_dict
from r1studio.recipes.services import (
    RecipeStateError,
    recipe_can_change,
    recipe_create,
    recipe_definition,
)


def _require_draft(recipe: Recipe, user: Any) -> None:
    if not user_has_role(user, RESEARCHER):
        raise PermissionDenied("Recipes need the researcher role.")
    if not recipe_can_change(recipe=recipe, user=user):
        raise PermissionDenied("Only the recipe's owner or an admin can change it.")
    if recipe.status != RecipeStatus.DRAFT:
        raise RecipeStateError("Only a draft can be edited: clone the recipe to change it.")


def _error(stage: str, field: str, msg: str) -> RecipeError:
    loc = ".".join(p for p in ("stages", stage, field) if p)
    return RecipeError([{"stage": stage, "field": field, "loc": loc, "msg": msg}])


def recipe_errors(*, recipe: Recipe) -> list[dict[str, Any]]:
    """Everything that stops `recipe` from launching, each naming its stage and field."""
    return definition_errors(recipe_definition(recipe))


def _new_key(recipe: Recipe, kind: str) -> str:
    """`NN-<kind>`, NN one past the highest number the keys start with."""
    numbers = [int(m.group(1)) for k in recipe.stages.values_list("key", flat=True)
               if (m := re.match(r"(\d+)-", k))]  # fmt: skip
    number = max(numbers, default=0) + 1
    key = f"{number:02d}-{kind}"
    while recipe.stages.filter(key=key).exists():
        number += 1
        key = f"{number:02d}-{kind}"
    return key


@transaction.atomic
def recipe_stage_add(
    *, recipe: Recipe, user: Any, kind: str, config: dict | None = None, key: str = "",
    name: str = "",
) -> RecipeStage:  # fmt: skip
    """A stage of `kind` at the end of the draft, with `config` (a preset's) or the kind's
    defaults; `key` made up when blank."""
    _require_draft(recipe, user)
    if kind not in STAGE_KINDS:
        raise _error("", "kind", f"one of {', '.join(STAGE_KINDS)}")
    if recipe.stages.count() >= MAX_STAGES:
        raise _error("", "stages", f"at most {MAX_STAGES} stages")
    key = key.strip() or _new_key(recipe, kind)
    if not KEY.fullmatch(key):
        raise _error(key, "key", "a key of lowercase letters, digits, . _ - (<= 64)")
    if recipe.stages.filter(key=key).exists():
        raise _error(key, "key", "two stages have this key")
    config = dict(GATE_DEFAULTS) if kind == "gate" else {**(config or {}), "kind": kind}
    order = (recipe.stages.aggregate(top=Max("order"))["top"] or 0) + 1
    return RecipeStage.objects.create(
        recipe=recipe,
        key=key,
        name=name.strip()[:200],
        order=order,
        kind=kind,
        config=config,
        inputs=[],
        gate_enabled=True,
    )


@transaction.atomic
def recipe_stage_remove(*, recipe: Recipe, user: Any, key: str) -> None:
    """Remove the stage; stages that read it keep the input, which Validate then names."""
    _require_draft(recipe, user)
    if not recipe.stages.filter(key=key).delete()[0]:
        raise RecipeStateError(f"This recipe has no stage {key!r}.")


@transaction.atomic
def recipe_stage_move(*, recipe: Recipe, user: Any, key: str, offset: int) -> None:
    """Move the stage `offset` places up (-1) or down (+1) in the recipe's order. The order is
    how the page lists the stages; what runs first is decided by the inputs."""
    _require_draft(recipe, user)
    stages = list(recipe.stages.select_for_update().order_by("order", "pk"))
    index = next((i for i, s in enumerate(stages) if s.key == key), None)
    if index is None:
        raise RecipeStateError(f"This recipe has no stage {key!r}.")
    target = max(0, min(len(stages) - 1, index + offset))
    stages.insert(target, stages.pop(index))
    for order, stage in enumerate(stages):
        if stage.order != order:
            RecipeStage.objects.filter(pk=stage.pk).update(order=order)


@transaction.atomic
def recipe_stage_update(
    *, recipe: Recipe, user: Any, key: str, name: str, config: dict, inputs: list[dict],
    gate_enabled: bool = True,
) -> RecipeStage:  # fmt: skip
    """Replace the stage's name, config and inputs (and a gate's switch). RecipeError (nothing
    saved) when the stage itself is wrong — its config's own checks, an input naming a stage
    that makes nothing of the kind; an empty model or data field may stay, for later."""
    _require_draft(recipe, user)
    stage = recipe.stages.select_for_update().filter(key=key).first()
    if stage is None:
        raise RecipeStateError(f"This recipe has no stage {key!r}.")
    config = dict(config)
    if stage.kind != "gate":
        config["kind"] = stage.kind
        for item in inputs:  # the input fills the field: no stale value beside it
            try:
                config = config_set(config, str(item.get("field") or ""), "")
            except ValueError as exc:
                raise _error(key, str(item.get("field") or "inputs"), str(exc)) from None
    stage_data = {**stage_dict(stage), "name": name, "config": config, "inputs": inputs}
    definition = recipe_definition(recipe)
    definition["stages"] = [stage_data if s["key"] == key else s for s in definition["stages"]]
    errors = [
        e for e in definition_errors(definition) if e["stage"] == key and not e.get("fillable")
    ]
    if errors:
        raise RecipeError(errors)
    stage.name = name.strip()[:200]
    stage.config = config
    stage.inputs = stage_inputs({"config": config, "inputs": inputs})
    if stage.kind == "gate":
        stage.gate_enabled = gate_enabled
    stage.save(update_fields=["name", "config", "inputs", "gate_enabled"])
    return stage


@transaction.atomic
def recipe_update(*, recipe: Recipe, user: Any, name: str, description: str) -> Recipe:
    """Rename the draft and change its description."""
    _require_draft(recipe, user)
    recipe.name = name.strip()[:200] or recipe.name
    recipe.description = description.strip()[:5000]
    recipe.save(update_fields=["name", "description"])
    return recipe


def recipe_clone(*, recipe: Recipe, user: Any) -> Recipe:
    """A new draft of `user` with the recipe's stages, configs and inputs (not its runs)."""
    if not user_has_role(user, RESEARCHER):
        raise PermissionDenied("Recipes need the researcher role.")
    definition = recipe_definition(recipe)
    name = recipe.name if recipe.name.startswith("Copy of ") else f"Copy of {recipe.name}"
    return recipe_create(user=user, definition=definition, name=name[:200], validate=False)
