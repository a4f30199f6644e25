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

    def ready(self) -> None:
        # A run's launch record pins each `dataset:NAME@N` it names to the version's content
        # hash (r1studio.runs.provenance); `runs` calls this, never imports it.
        from r1studio.recipes.lineage import dataset_ref_describe
        from r1studio.runs.provenance import input_describer_register

        input_describer_register(prefix="dataset:", describe=dataset_ref_describe)

        # The scheduler hears when a run ends, when a dataset version is written (a generate
        # stage's output registered, a gate's queue promoted) and when a worker starts.
        from celery import signals
        from django.db.models.signals import post_save

        from r1studio.curation.models import DatasetVersion
        from r1studio.recipes import hooks, tasks
        from r1studio.runs.hooks import run_ended_register

        run_ended_register(key="recipes", handler=hooks.recipe_runs_ended)
        post_save.connect(
            hooks.recipe_version_saved, sender=DatasetVersion, dispatch_uid="recipes-version"
        )
        signals.worker_ready.connect(tasks.reconcile_enqueue, weak=False)
