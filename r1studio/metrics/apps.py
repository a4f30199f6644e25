"""App configuration for `r1studio.metrics`."""

from __future__ import annotations

from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """Metric points reported by runs, downsampled series and live streams."""

    name = "r1studio.metrics"
    label = "metrics"
    verbose_name = "Metrics"
    default_auto_field = "django.db.models.BigAutoField"
