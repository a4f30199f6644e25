"""Recipe pages: the list (with new-from-preset and the toy demo's one-click launch) and a
recipe's page (its stages with their runs, queues and datasets; Launch, Cancel, Retry).

Minimal server-rendered pages over `services` and `selectors`; the stage table is an HTMX
partial polled while the recipe is going. The graph view and the editor build on these.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from r1studio.core.roles import RESEARCHER, role_required
from r1studio.recipes import selectors, services
from r1studio.recipes.graph import RecipeError
from r1studio.recipes.models import Recipe
from r1studio.recipes.page import recipe_page
from r1studio.recipes.presets import RECIPE_PRESETS, RECIPE_PRESETS_BY_KEY, toy_available


def _get_recipe_for_user(request: HttpRequest, pk: int) -> Recipe:
    return selectors.recipe_get_for_user(user=request.user, pk=pk)


def _say_errors(request: HttpRequest, exc: RecipeError) -> None:
    for error in exc.errors[:10]:
        where = " · ".join(p for p in (error.get("stage"), error.get("field")) if p)
        messages.error(request, f"{where}: {error['msg']}" if where else error["msg"])


@require_GET
@role_required(RESEARCHER)
def recipe_list(request: HttpRequest) -> HttpResponse:
    """Recipes with status and progress; new ones from a preset; the demo's Launch button."""
    recipes = list(selectors.recipe_list(user=request.user)[:200])
    rows = [
        {
            "recipe": r,
            "progress": selectors.recipe_progress(stages=selectors.recipe_stages(recipe=r)),
        }
        for r in recipes
    ]
    demo = next((r for r in recipes if r.preset == "toy" and r.status == "draft"), None)
    context = {
        "rows": rows,
        "presets": RECIPE_PRESETS,
        "toy_available": toy_available(),
        "demo": demo,
    }
    template = (
        "recipes/list.html#rows" if request.headers.get("HX-Request") else "recipes/list.html"
    )
    return render(request, template, context)


@require_POST
@role_required(RESEARCHER)
def recipe_new(request: HttpRequest) -> HttpResponse:
    """A draft from the preset named in the form (`preset`); `launch=1` launches it at once."""
    key = request.POST.get("preset", "")
    if key not in RECIPE_PRESETS_BY_KEY:
        messages.error(request, "Pick one of the presets.")
        return redirect("recipes:list")
    try:
        recipe = services.recipe_create_from_preset(user=request.user, preset=key)
        if request.POST.get("launch"):
            recipe = services.recipe_launch(recipe=recipe, user=request.user)
            messages.success(request, f"Launched recipe #{recipe.pk}.")
        else:
            messages.success(request, f"Made draft recipe #{recipe.pk}.")
            if request.POST.get("edit"):  # the list's "New from preset": straight to the editor
                return redirect("recipes:edit", recipe_id=recipe.pk)
    except RecipeError as exc:
        _say_errors(request, exc)
        return redirect("recipes:list")
    return redirect("recipes:detail", recipe_id=recipe.pk)


@require_GET
@role_required(RESEARCHER)
def recipe_detail(request: HttpRequest, recipe_id: int) -> HttpResponse:
    """The recipe's stages, each with its run, queue or dataset; an HTMX poll gets the table."""
    recipe = _get_recipe_for_user(request, recipe_id)
    stages = selectors.recipe_stages(recipe=recipe)
    context = {
        "recipe": recipe,
        "stages": stages,
        "progress": selectors.recipe_progress(stages=stages),
        "waiting": selectors.recipe_waiting_queues(stages=stages),
        "can_change": services.recipe_can_change(recipe=recipe, user=request.user),
        **recipe_page(stages=stages),  # the graph and the pass@1 chart
    }
    # HTMX polls the live part (graph, progress, stages) and, less often, the chart.
    part = "chart" if request.GET.get("part") == "chart" else "stages"
    htmx = request.headers.get("HX-Request")
    template = f"recipes/detail.html#{part}" if htmx else "recipes/detail.html"
    return render(request, template, context)


def _action(request: HttpRequest, recipe_id: int, action: str) -> HttpResponse:
    recipe = _get_recipe_for_user(request, recipe_id)
    try:
        if action == "launch":
            services.recipe_launch(recipe=recipe, user=request.user)
            messages.success(request, "Launched the recipe.")
        elif action == "cancel":
            services.recipe_cancel(recipe=recipe, user=request.user)
            messages.success(request, "Cancelled the recipe and its runs.")
        else:
            stage = request.POST.get("stage", "")[:64]
            services.recipe_retry(recipe=recipe, user=request.user, stage_key=stage)
            messages.success(request, "Retrying; the recipe carries on from there.")
    except RecipeError as exc:
        _say_errors(request, exc)
    except services.RecipeStateError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("recipes:detail", recipe_id=recipe.pk)


@require_POST
@role_required(RESEARCHER)
def recipe_launch(request: HttpRequest, recipe_id: int) -> HttpResponse:
    return _action(request, recipe_id, "launch")


@require_POST
@role_required(RESEARCHER)
def recipe_cancel(request: HttpRequest, recipe_id: int) -> HttpResponse:
    return _action(request, recipe_id, "cancel")


@require_POST
@role_required(RESEARCHER)
def recipe_retry(request: HttpRequest, recipe_id: int) -> HttpResponse:
    return _action(request, recipe_id, "retry")
