"""Admin: runs and checkpoints, read-mostly (the services and the supervisor own the writes)."""

from __future__ import annotations

from django.contrib import admin

from r1studio.runs.models import Checkpoint, Run


class CheckpointInline(admin.TabularInline):
    model = Checkpoint
    extra = 0
    readonly_fields = ("step", "path", "created_at")


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "kind", "status", "owner", "step", "total_steps", "worker")
    list_filter = ("status", "kind")
    search_fields = ("name", "owner__username", "worker")
    readonly_fields = (
        "events_offset", "heartbeat_at", "pid", "worker", "run_dir", "created_at", "queued_at",
        "started_at", "finished_at", "last_event_at",
    )  # fmt: skip
    inlines = [CheckpointInline]
