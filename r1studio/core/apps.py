"""App configuration for `r1studio.core`."""

from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Sign-in, roles, the dashboard, health checks and the `studio` launcher."""

    name = "r1studio.core"
    label = "core"
    verbose_name = "Core"
    default_auto_field = "django.db.models.BigAutoField"
