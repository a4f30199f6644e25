"""App configuration for `r1studio.traces`."""

from __future__ import annotations

from django.apps import AppConfig


class TracesConfig(AppConfig):
    """Sampled completions with their rewards: browse, inspect and compare."""

    name = "r1studio.traces"
    label = "traces"
    verbose_name = "Traces"
    default_auto_field = "django.db.models.BigAutoField"
