"""App configuration for `r1studio.api`."""

from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The JSON API at /api/ and its tokens."""

    name = "r1studio.api"
    label = "api"
    verbose_name = "API"
    default_auto_field = "django.db.models.BigAutoField"
