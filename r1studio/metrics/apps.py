"""App configuration for `r1studio.metrics`."""

from __future__ import annotations

from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """Metric points reported by runs, downsampled series and live streams."""

    name = "r1studio.metrics"
    label = "metrics"
    verbose_name = "Metrics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Metric points of every run's events, eval figures as `eval/<benchmark>/<metric>`
        # series (handed over by r1studio.runs.events).
        from r1studio.metrics.alerts import runs_alerts
        from r1studio.metrics.services import metrics_ingest
        from r1studio.runs.alerts import run_alerts_register
        from r1studio.runs.events import event_handler_register

        event_handler_register(types=("metrics", "eval"), key="metrics", handler=metrics_ingest)
        # The runs pages show the alerts these rules raise (r1studio.runs.alerts).
        run_alerts_register(provider=runs_alerts)
