"""Admin for worker heartbeats (read-only: only workers write them)."""

from __future__ import annotations

from django.contrib import admin

from r1studio.workers.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["hostname", "pid", "cpu_count", "last_seen", "stopped_at"]
    readonly_fields = [field.name for field in WorkerHeartbeat._meta.fields]
