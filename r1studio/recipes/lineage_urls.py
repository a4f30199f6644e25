"""Lineage pages (a run or dataset version walked back to the base model and the raw data)."""

from __future__ import annotations

from django.urls import path

from r1studio.recipes import lineage_views

urlpatterns = [
    path("lineage/run/<int:run_id>/", lineage_views.lineage_run, name="lineage_run"),
    path(
        "lineage/dataset/<int:version_id>/",
        lineage_views.lineage_dataset,
        name="lineage_dataset",
    ),
]
