"""Admin: metric series (read-only; their points are packed blobs, see storage.py)."""

from __future__ import annotations

from django.contrib import admin

from r1studio.metrics.models import MetricSeries


@admin.register(MetricSeries)
class MetricSeriesAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "name", "count", "first_step", "last_step", "last_value")
    search_fields = ("name",)
    raw_id_fields = ("run",)
    exclude = ("tail",)

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
