"""App configuration for `r1studio.recipes`."""

from __future__ import annotations

from django.apps import AppConfig


class RecipesConfig(AppConfig):
    """Recipes (a graph of stages launched as one), their scheduler, and lineage.

    The top app below the API: it may import runs, metrics, traces, evals and curation;
    none of them imports it (DESIGN.md §3).
    """

    name = "r1studio.recipes"
    label = "recipes"
    verbose_name = "Recipes"
    default_auto_field = "django.db.models.BigAutoField"
