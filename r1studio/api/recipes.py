"""The recipes API: a recipe (a graph of stages) created, launched, watched, cancelled, retried.

    GET  /api/recipes                      recipes you can see, newest first
    POST /api/recipes                      {"preset": "toy"} or a full definition
                                           {"name", "stages": [{key, kind, config, inputs}]}
    GET  /api/recipes/{id}                 {status, progress: {done, total, fraction,
                                           eta_seconds}, stages: [{key, name, kind, status, run,
                                           queue, dataset, ...}]}
    POST /api/recipes/{id}/launch          start the stages whose inputs exist
    POST /api/recipes/{id}/cancel          stop every active run of the recipe
    POST /api/recipes/{id}/retry?stage=K   run the failed stages (or K and what follows) again

Researchers only (RESEARCHER_AUTH: an annotator gets 403 before the body is read). Another
user's draft is a 404; changing another user's recipe a 403. An invalid definition answers 422
with `errors: [{loc, msg, stage, field}]` (`loc` = `stages.<key>.<field>`); an action that does
not fit the recipe's state 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Path, Query, Router, Schema, Status
from pydantic import Field, field_validator

from r1studio.api.auth import RESEARCHER_AUTH
from r1studio.api.parsing import no_nul
from r1studio.api.schemas import ErrorOut
from r1studio.recipes import selectors, services
from r1studio.recipes.graph import MAX_STAGES, RecipeError
from r1studio.recipes.models import Recipe, RecipeStatus
from r1studio.recipes.presets import RECIPE_PRESETS_BY_KEY

MAX_ID = 2**31 - 1
router = Router(auth=RESEARCHER_AUTH, tags=["recipes"])
ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}


class RecipeCreateIn(Schema):
    """A preset's key, or a whole definition (see r1studio.recipes.graph)."""

    preset: str | None = Field(None, description=f"One of {', '.join(RECIPE_PRESETS_BY_KEY)}")
    name: str = Field("", max_length=200)
    description: str = Field("", max_length=5000)
    stages: list[dict[str, Any]] | None = Field(
        None, max_length=MAX_STAGES, description="{key, name, kind, config, inputs, gate_enabled}"
    )

    _checked = field_validator("preset", "name", "description", "stages")(no_nul)


class ProgressOut(Schema):
    done: int
    total: int
    fraction: float
    eta_seconds: float | None


class StageOut(Schema):
    key: str
    name: str
    kind: str
    status: str
    error: str
    inputs: list[dict[str, Any]]
    gate_enabled: bool | None
    run: int | None = Field(description="The stage's current run")
    run_status: str | None
    run_progress: float | None
    run_url: str | None
    queue: int | None = Field(description="A gate's annotation queue")
    queue_url: str | None
    dataset: str | None = Field(description="The version it made or promoted: dataset:NAME@N")
    dataset_url: str | None
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None


class RecipeOut(Schema):
    id: int
    name: str
    description: str
    owner: str
    preset: str
    status: str
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    url: str
    progress: ProgressOut
    stages: list[StageOut]


def _invalid(exc: RecipeError) -> Any:
    errors = [{"loc": e["loc"], "msg": e["msg"]} for e in exc.errors]
    detail = "invalid recipe: " + "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5])
    return Status(422, {"detail": detail, "errors": errors})


def _conflict(exc: ValidationError) -> Any:
    return Status(409, {"detail": " ".join(exc.messages)})


def _recipe(request: HttpRequest, recipe_id: int) -> Recipe:
    return selectors.recipe_get_for_user(user=request.auth, pk=recipe_id)


def _out(recipe: Recipe) -> dict[str, Any]:
    recipe.refresh_from_db()
    return selectors.recipe_status(recipe=recipe)


@router.get("/recipes", response={200: list[RecipeOut], **ERRORS})
def list_recipes(
    request: HttpRequest,
    status: RecipeStatus | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10**9),
) -> Any:
    """Recipes you can see, newest first, each with its stages and progress."""
    recipes = selectors.recipe_list(user=request.auth, status=status)
    return [selectors.recipe_status(recipe=r) for r in recipes[offset : offset + limit]]


@router.post("/recipes", response={201: RecipeOut, **ERRORS})
def create_recipe(request: HttpRequest, body: RecipeCreateIn) -> Any:
    """A draft recipe from a preset (`{"preset": "toy"}`) or a full definition (checked: 422
    names the stage and the field)."""
    try:
        if body.preset:
            recipe = services.recipe_create_from_preset(
                user=request.auth, preset=body.preset, name=body.name
            )
        elif body.stages is not None:
            definition = body.model_dump(exclude={"preset"})
            recipe = services.recipe_create(
                user=request.auth, definition=definition, name=body.name
            )
        else:
            error = {"stage": "", "field": "stages", "loc": "stages", "msg": "a preset or stages"}
            raise RecipeError([error])
    except RecipeError as exc:
        return _invalid(exc)
    return Status(201, _out(recipe))


@router.get("/recipes/{recipe_id}", response={200: RecipeOut, **ERRORS})
def get_recipe(request: HttpRequest, recipe_id: int = Path(..., ge=1, le=MAX_ID)) -> Any:
    """The recipe's status, progress and ETA, and each stage with its run, queue and dataset."""
    return _out(_recipe(request, recipe_id))


@router.post("/recipes/{recipe_id}/launch", response={200: RecipeOut, **ERRORS})
def launch_recipe(request: HttpRequest, recipe_id: int = Path(..., ge=1, le=MAX_ID)) -> Any:
    """Check every stage and start those whose inputs exist (422 names what is wrong)."""
    recipe = _recipe(request, recipe_id)
    try:
        recipe = services.recipe_launch(recipe=recipe, user=request.auth)
    except RecipeError as exc:
        return _invalid(exc)
    except services.RecipeStateError as exc:
        return _conflict(exc)
    return _out(recipe)


@router.post("/recipes/{recipe_id}/cancel", response={200: RecipeOut, **ERRORS})
def cancel_recipe(request: HttpRequest, recipe_id: int = Path(..., ge=1, le=MAX_ID)) -> Any:
    """Cancel every active run of the recipe and every stage not done yet."""
    recipe = _recipe(request, recipe_id)
    try:
        recipe = services.recipe_cancel(recipe=recipe, user=request.auth)
    except services.RecipeStateError as exc:
        return _conflict(exc)
    return _out(recipe)


@router.post("/recipes/{recipe_id}/retry", response={200: RecipeOut, **ERRORS})
def retry_recipe(
    request: HttpRequest,
    recipe_id: int = Path(..., ge=1, le=MAX_ID),
    stage: str = Query("", max_length=64, description="Only this stage and what follows it"),
) -> Any:
    """Run the failed or cancelled stages again (new runs, their parents the old ones); the
    recipe then carries on."""
    recipe = _recipe(request, recipe_id)
    try:
        recipe = services.recipe_retry(recipe=recipe, user=request.auth, stage_key=stage)
    except services.RecipeStateError as exc:
        return _conflict(exc)
    return _out(recipe)
