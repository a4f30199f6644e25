"""App configuration for `r1studio.curation`."""

from __future__ import annotations

from django.apps import AppConfig


class CurationConfig(AppConfig):
    """Datasets, immutable dataset versions, the annotation queue and labels."""

    name = "r1studio.curation"
    label = "curation"
    verbose_name = "Datasets"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # A generate run's dataset becomes a version, and a stage's `dataset:NAME@N` resolves
        # to one (r1studio.curation.run_datasets); `runs` calls these, never imports them.
        from r1studio.curation import run_datasets
        from r1studio.runs.events import event_handler_register
        from r1studio.runs.inputs import input_resolver_register

        event_handler_register(
            types=("dataset",), key="datasets", handler=run_datasets.dataset_events_ingest
        )
        input_resolver_register(
            prefix=run_datasets.PREFIX,
            check=run_datasets.dataset_ref_check,
            resolve=run_datasets.dataset_ref_resolve,
            choices=run_datasets.version_choices,
        )
