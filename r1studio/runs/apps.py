"""App configuration for `r1studio.runs`."""

from __future__ import annotations

from django.apps import AppConfig


class RunsConfig(AppConfig):
    """Recipes, stages and runs: configure, launch, cancel and resume training stages."""

    name = "r1studio.runs"
    label = "runs"
    verbose_name = "Runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every worker sweeps lost runs, from start-up on (see r1studio.runs.sweep).
        from celery import signals

        from r1studio.runs import sweep

        signals.worker_init.connect(sweep.start_sweeper, weak=False)
        signals.worker_shutdown.connect(sweep.stop_sweeper, weak=False)
