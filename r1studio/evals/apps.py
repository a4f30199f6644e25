"""App configuration for `r1studio.evals`."""

from __future__ import annotations

from django.apps import AppConfig


class EvalsConfig(AppConfig):
    """Benchmarks, evaluation results and the leaderboard."""

    name = "r1studio.evals"
    label = "evals"
    verbose_name = "Benchmarks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # One result per benchmark and step of every run's events (r1studio.runs.events).
        from r1studio.evals.services import evals_ingest
        from r1studio.runs.events import event_handler_register

        event_handler_register(types=("eval",), key="evals", handler=evals_ingest)
