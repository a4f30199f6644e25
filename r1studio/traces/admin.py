"""Admin: traces are read-only records of what a run reported."""

from __future__ import annotations

from django.contrib import admin

from r1studio.traces.models import Trace


@admin.register(Trace)
class TraceAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "step", "source", "benchmark", "reward", "advantage", "correct")
    list_filter = ("source", "correct")
    search_fields = ("prompt_hash", "benchmark")
    raw_id_fields = ("run",)

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
