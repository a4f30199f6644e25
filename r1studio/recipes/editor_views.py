"""The recipe editor: a draft's stages listed in order with Up, Down, Remove and Edit; a stage's
own page with its config form (the runs form, generated from the stage's pydantic model), its
inputs and, for a gate, its switch; Add a stage; Validate; Clone (any recipe, into a new draft).

Every write is a POST to a service of `r1studio.recipes.editing`, which checks the user's right
and that the recipe is a draft; the views only read the request and show the outcome.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pipeline.config import STAGE_MODELS, config_to_dict
from r1studio.core.roles import RESEARCHER, role_required
from r1studio.curation.models import DatasetVersion
from r1studio.recipes import editing, selectors
from r1studio.recipes.graph import MAKES, STAGE_KINDS, RecipeError, gate_settings, stage_inputs
from r1studio.recipes.models import Recipe, RecipeStage, RecipeStatus, StageKind
from r1studio.recipes.scheduler import stage_dict
from r1studio.recipes.services import (
    RecipeStateError,
    recipe_can_change,
    recipe_stage_set_gate,
)
from r1studio.runs import presets as run_presets
from r1studio.runs.forms import ConfigForm

INPUT_FIELDS = ("model.path", "data.source", "eval.benchmark")
MAKES_LABEL = {"checkpoint": "its checkpoint", "dataset": "its dataset version"}


def _get_changeable(request: HttpRequest, recipe_id: int) -> Recipe:
    """The recipe, when the user may change it (others get a 403; unseen ones a 404)."""
    recipe = selectors.recipe_get_for_user(user=request.user, pk=recipe_id)
    if not recipe_can_change(recipe=recipe, user=request.user):
        raise PermissionDenied("Only the recipe's owner or an admin can edit it.")
    return recipe


def _not_draft(request: HttpRequest, recipe: Recipe) -> HttpResponse | None:
    if recipe.status == RecipeStatus.DRAFT:
        return None
    messages.error(request, "Only a draft can be edited: clone the recipe to change it.")
    return redirect("recipes:detail", recipe_id=recipe.pk)


def _source_label(item: dict[str, Any], kinds: dict[str, str]) -> str:
    if item.get("ref"):
        return f"fixed version {item['ref']}"
    key = str(item.get("stage") or "")
    kind = kinds.get(key)
    if kind == "gate":
        return f"{key}: the version its gate passes on"
    return f"{key}: {MAKES_LABEL.get(MAKES.get(kind or '', ''), 'its output')}"


def _add_choices() -> list[dict[str, Any]]:
    """What Add a stage offers: each kind's defaults, then the run presets of that kind."""
    choices = [{"value": f"kind:{k}", "label": f"{label} (defaults)", "kind": k}
               for k, label in StageKind.choices]  # fmt: skip
    for row in run_presets.presets_available():
        preset = row["preset"]
        if preset.kind in STAGE_KINDS:
            choices.append(
                {"value": f"preset:{preset.key}", "label": f"{preset.name} ({preset.kind})",
                 "kind": preset.kind}
            )  # fmt: skip
    return choices


@require_GET
@role_required(RESEARCHER)
def recipe_edit(request: HttpRequest, recipe_id: int) -> HttpResponse:
    """The draft's stages in order; `?validate=1` lists every problem by stage and field."""
    recipe = _get_changeable(request, recipe_id)
    if (refused := _not_draft(request, recipe)) is not None:
        return refused
    stages = selectors.recipe_stages(recipe=recipe)
    kinds = {s.key: s.kind for s in stages}
    validated = bool(request.GET.get("validate"))
    errors = editing.recipe_errors(recipe=recipe) if validated else []
    rows = []
    for stage in stages:
        inputs = stage_inputs(stage_dict(stage))
        rows.append(
            {
                "stage": stage,
                "inputs": [{**i, "source": _source_label(i, kinds)} for i in inputs],
                "errors": [e for e in errors if e.get("stage") == stage.key],
            }
        )
    keys = set(kinds)
    context = {
        "recipe": recipe,
        "rows": rows,
        "validated": validated,
        "errors": errors,
        "general_errors": [e for e in errors if e.get("stage") not in keys],
        "add_choices": _add_choices(),
    }
    return render(request, "recipes/editor.html", context)


@require_POST
@role_required(RESEARCHER)
def recipe_edit_settings(request: HttpRequest, recipe_id: int) -> HttpResponse:
    recipe = _get_changeable(request, recipe_id)
    try:
        editing.recipe_update(
            recipe=recipe,
            user=request.user,
            name=request.POST.get("name", ""),
            description=request.POST.get("description", ""),
        )
        messages.success(request, "Saved the name and description.")
    except RecipeStateError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("recipes:edit", recipe_id=recipe.pk)


@require_POST
@role_required(RESEARCHER)
def stage_add(request: HttpRequest, recipe_id: int) -> HttpResponse:
    """Add a stage at the end: `start` is `kind:<kind>` (its defaults) or `preset:<run preset>`."""
    recipe = _get_changeable(request, recipe_id)
    kind_or_preset, _, value = request.POST.get("start", "").partition(":")
    config: dict | None = None
    kind = value
    if kind_or_preset == "preset" and value in run_presets.PRESETS_BY_KEY:
        preset = run_presets.PRESETS_BY_KEY[value]
        kind = preset.kind
        config = run_presets.preset_config(preset, user=request.user)
    elif kind_or_preset == "kind" and value in STAGE_MODELS:
        config = config_to_dict(STAGE_MODELS[value]())
    try:
        stage = editing.recipe_stage_add(
            recipe=recipe,
            user=request.user,
            kind=kind,
            config=config,
            key=request.POST.get("key", "")[:64],
            name=request.POST.get("name", ""),
        )
    except RecipeError as exc:
        for error in exc.errors:
            messages.error(request, f"{error['loc']}: {error['msg']}")
        return redirect("recipes:edit", recipe_id=recipe.pk)
    except RecipeStateError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("recipes:edit", recipe_id=recipe.pk)
    messages.success(request, f"Added stage {stage.key}: set its inputs and config.")
    return redirect("recipes:stage_edit", recipe_id=recipe.pk, key=stage.key)


@require_POST
@role_required(RESEARCHER)
def stage_remove(request: HttpRequest, recipe_id: int, key: str) -> HttpResponse:
    recipe = _get_changeable(request, recipe_id)
    try:
        editing.recipe_stage_remove(recipe=recipe, user=request.user, key=key)
        messages.success(request, f"Removed stage {key}.")
    except RecipeStateError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("recipes:edit", recipe_id=recipe.pk)


@require_POST
@role_required(RESEARCHER)
def stage_move(request: HttpRequest, recipe_id: int, key: str) -> HttpResponse:
    """`direction` up or down."""
    recipe = _get_changeable(request, recipe_id)
    offset = -1 if request.POST.get("direction") == "up" else 1
    try:
        editing.recipe_stage_move(recipe=recipe, user=request.user, key=key, offset=offset)
    except RecipeStateError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect(reverse("recipes:edit", args=[recipe.pk]) + f"#stage-{key}")


@require_POST
@role_required(RESEARCHER)
def recipe_clone(request: HttpRequest, recipe_id: int) -> HttpResponse:
    """Any recipe the user may see, as a new draft of theirs, opened in the editor."""
    recipe = selectors.recipe_get_for_user(user=request.user, pk=recipe_id)
    try:
        copy = editing.recipe_clone(recipe=recipe, user=request.user)
    except RecipeError as exc:
        for error in exc.errors[:10]:
            messages.error(request, f"{error['loc']}: {error['msg']}")
        return redirect("recipes:detail", recipe_id=recipe.pk)
    messages.success(request, f"Cloned into draft #{copy.pk}: edit it, then launch it.")
    return redirect("recipes:edit", recipe_id=copy.pk)


@require_POST
@role_required(RESEARCHER)
def stage_gate(request: HttpRequest, recipe_id: int, key: str) -> HttpResponse:
    """Switch a gate on (`enabled=1`) or off before the recipe reaches it, launched or not."""
    recipe = _get_changeable(request, recipe_id)
    stage = recipe.stages.filter(key=key, kind="gate").first()
    if stage is None:
        messages.error(request, f"This recipe has no gate {key!r}.")
        return redirect("recipes:detail", recipe_id=recipe.pk)
    enabled = request.POST.get("enabled") == "1"
    try:
        recipe_stage_set_gate(stage=stage, user=request.user, enabled=enabled)
        state = "on: people review its data" if enabled else "off: its data passes on"
        messages.success(request, f"Gate {key} switched {state}.")
    except RecipeStateError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("recipes:detail", recipe_id=recipe.pk)


def _posted_inputs(request: HttpRequest) -> list[dict[str, Any]]:
    """The inputs table: rows `in-N-field`, `in-N-source` (a stage key, or `ref`), `in-N-ref`."""
    indices = sorted({int(k.split("-")[1]) for k in request.POST
                      if k.startswith("in-") and k.split("-")[1].isdigit()})  # fmt: skip
    inputs = []
    for i in indices:
        field = request.POST.get(f"in-{i}-field", "").strip()
        source = request.POST.get(f"in-{i}-source", "").strip()
        if not field or not source:
            continue  # the blank row, or a row emptied to remove it
        if source == "ref":
            inputs.append({"field": field, "ref": request.POST.get(f"in-{i}-ref", "").strip()})
        else:
            inputs.append({"field": field, "stage": source})
    return inputs


def _merge(stored: dict, posted: dict) -> dict:
    """The posted config over the stored one: fields the form does not show are kept."""
    out = dict(stored)
    for key, value in posted.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _with_defaults(stage: RecipeStage) -> dict[str, Any]:
    """The stage's config over its kind's defaults, so the form shows every field's value (a
    preset's config names only what it changes; a missing list would post as empty)."""
    return _merge(config_to_dict(STAGE_MODELS[stage.kind]()), stage.config)


def _gate_config(request: HttpRequest, errors: list[dict[str, str]]) -> dict[str, Any]:
    config: dict[str, Any] = {"guidelines": request.POST.get("guidelines", "")}
    for field in ("limit", "overlap"):
        text = request.POST.get(field, "").strip()
        if text.isdigit():
            config[field] = int(text)
        else:
            errors.append({"loc": field, "msg": "a whole number is required"})
    return config


@require_http_methods(["GET", "POST"])
@role_required(RESEARCHER)
def stage_edit(request: HttpRequest, recipe_id: int, key: str) -> HttpResponse:
    """One stage: name, inputs, config (or a gate's settings and switch); Save."""
    recipe = _get_changeable(request, recipe_id)
    if (refused := _not_draft(request, recipe)) is not None:
        return refused
    stages = selectors.recipe_stages(recipe=recipe)
    stage = next((s for s in stages if s.key == key), None)
    if stage is None:
        messages.error(request, f"This recipe has no stage {key!r}.")
        return redirect("recipes:edit", recipe_id=recipe.pk)
    if request.method == "GET":
        form = ConfigForm(stage.kind, _with_defaults(stage)) if stage.kind != "gate" else None
        inputs = stage_inputs(stage_dict(stage))
        return _stage_page(request, recipe, stage, stages, form, inputs, stage.name, [], 200)

    name = request.POST.get("name", "")
    inputs = _posted_inputs(request)
    errors: list[dict[str, str]] = []
    form = None
    if stage.kind == "gate":
        config = _gate_config(request, errors)
        gate_enabled = bool(request.POST.get("gate_enabled"))
    else:
        form = ConfigForm.from_post(stage.kind, request.POST)
        errors = list(form.errors)
        config = _merge(stage.config, form.config)
        gate_enabled = True
    if not errors:
        try:
            editing.recipe_stage_update(
                recipe=recipe, user=request.user, key=key, name=name, config=config,
                inputs=inputs, gate_enabled=gate_enabled,
            )  # fmt: skip
        except RecipeError as exc:
            errors = [{"loc": e["field"], "msg": e["msg"]} for e in exc.errors]
        else:
            messages.success(request, f"Saved stage {key}.")
            return redirect(reverse("recipes:edit", args=[recipe.pk]) + f"#stage-{key}")
    if form is not None:
        form.config = config
        form.set_errors(errors)
    stage.config = config
    stage.gate_enabled = gate_enabled
    return _stage_page(request, recipe, stage, stages, form, inputs, name, errors, 422)


def _stage_page(
    request: HttpRequest, recipe: Recipe, stage: RecipeStage, stages: list[RecipeStage],
    form: ConfigForm | None, inputs: list[dict], name: str, errors: list[dict], status: int,
) -> HttpResponse:  # fmt: skip
    kinds = {s.key: s.kind for s in stages}
    upstream = [
        {"key": s.key, "label": f"{s.label} · {_source_label({'stage': s.key}, kinds)}"}
        for s in stages
        if s.key != stage.key and s.kind in MAKES
    ]
    by_field = {}
    for e in errors:
        by_field.setdefault(e.get("loc"), []).append(e["msg"])
    rows = [{**item, "index": i, "errors": by_field.get(item.get("field"), [])}
            for i, item in enumerate(inputs)]  # fmt: skip
    versions = DatasetVersion.objects.select_related("dataset").order_by("-created_at")[:200]
    context = {
        "recipe": recipe,
        "stage": stage,
        "name": name,
        "form": form,
        "gate": gate_settings(stage.config) if stage.kind == "gate" else None,
        "inputs": rows,
        "blank_index": len(rows),
        "upstream": upstream,
        "upstream_keys": [u["key"] for u in upstream],
        "input_fields": INPUT_FIELDS,
        "fed": [item.get("field") for item in inputs],
        "errors": errors,
        "version_refs": [v.ref for v in versions],
    }
    return render(request, "recipes/stage_edit.html", context, status=status)
