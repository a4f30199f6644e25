"""App configuration for `r1studio.evals`."""

from __future__ import annotations

from django.apps import AppConfig


class EvalsConfig(AppConfig):
    """Benchmarks, evaluation results and the leaderboard."""

    name = "r1studio.evals"
    label = "evals"
    verbose_name = "Benchmarks"
    default_auto_field = "django.db.models.BigAutoField"
