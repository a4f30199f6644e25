"""Metric series and live streams of a run (chart JSON, Server-Sent Events, CSV/JSONL export),
and compare.

Included at the site root: the per-run endpoints live under `/runs/<id>/` next to the run page,
the compare page under `/metrics/`.
"""

from __future__ import annotations

from django.urls import path

from r1studio.metrics import views

app_name = "metrics"
urlpatterns = [
    path("metrics/compare", views.compare, name="compare"),
    path("runs/<int:run_id>/metrics.json", views.series_json, name="series"),
    path("runs/<int:run_id>/metrics/export.<str:fmt>", views.export, name="export"),
    path("runs/<int:run_id>/stream", views.run_stream, name="stream"),
]
