"""The recipe editor's pages and actions (r1studio.recipes.editor_views), under /recipes/<id>/."""

from __future__ import annotations

from django.urls import path

from r1studio.recipes import editor_views as views

urlpatterns = [
    path("recipes/<int:recipe_id>/edit", views.recipe_edit, name="edit"),
    path("recipes/<int:recipe_id>/edit/settings", views.recipe_edit_settings, name="edit_settings"),
    path("recipes/<int:recipe_id>/edit/stages/add", views.stage_add, name="stage_add"),
    path("recipes/<int:recipe_id>/edit/stages/<str:key>/", views.stage_edit, name="stage_edit"),
    path("recipes/<int:recipe_id>/edit/stages/<str:key>/move", views.stage_move, name="stage_move"),
    path(
        "recipes/<int:recipe_id>/edit/stages/<str:key>/remove",
        views.stage_remove,
        name="stage_remove",
    ),
    path("recipes/<int:recipe_id>/stages/<str:key>/gate", views.stage_gate, name="stage_gate"),
    path("recipes/<int:recipe_id>/clone", views.recipe_clone, name="clone"),
]
