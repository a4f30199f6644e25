"""App configuration for `r1studio.traces`."""

from __future__ import annotations

from django.apps import AppConfig


class TracesConfig(AppConfig):
    """Sampled completions with their rewards: browse, inspect and compare."""

    name = "r1studio.traces"
    label = "traces"
    verbose_name = "Traces"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Sampled completions (training samples and eval items) of every run's events (r1studio.runs.events).
        from r1studio.runs.events import event_handler_register
        from r1studio.traces.services import traces_ingest

        event_handler_register(types=("samples", "eval"), key="traces", handler=traces_ingest)
