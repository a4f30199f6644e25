"""Recipe pages (the list, a recipe's stages and its actions)."""

from __future__ import annotations

from django.urls import path

from r1studio.recipes import views

urlpatterns: list = [
    path("recipes/", views.recipe_list, name="list"),
    path("recipes/new/", views.recipe_new, name="new"),
    path("recipes/<int:recipe_id>/", views.recipe_detail, name="detail"),
    path("recipes/<int:recipe_id>/launch/", views.recipe_launch, name="launch"),
    path("recipes/<int:recipe_id>/cancel/", views.recipe_cancel, name="cancel"),
    path("recipes/<int:recipe_id>/retry/", views.recipe_retry, name="retry"),
]
