"""App configuration for `r1studio.curation`."""

from __future__ import annotations

from django.apps import AppConfig


class CurationConfig(AppConfig):
    """Datasets, immutable dataset versions, the annotation queue and labels."""

    name = "r1studio.curation"
    label = "curation"
    verbose_name = "Datasets"
    default_auto_field = "django.db.models.BigAutoField"
