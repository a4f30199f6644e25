"""App configuration for `r1studio.workers`."""

from __future__ import annotations

from django.apps import AppConfig


class WorkersConfig(AppConfig):
    """Celery worker heartbeats and the GPU inventory."""

    name = "r1studio.workers"
    label = "workers"
    verbose_name = "Workers"
    default_auto_field = "django.db.models.BigAutoField"
