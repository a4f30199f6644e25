"""Worker heartbeats: one row per Celery worker, refreshed every few seconds while it runs."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class WorkerHeartbeat(models.Model):
    """The last thing a worker said about itself (written by `workers.heartbeat`)."""

    hostname = models.CharField(max_length=255, unique=True, help_text="Celery node name")
    queues = models.JSONField(default=list, help_text="Queues the worker consumes")
    pid = models.PositiveIntegerField(default=0)
    cpu_count = models.PositiveIntegerField(default=0)
    ram_total_bytes = models.BigIntegerField(default=0)
    ram_available_bytes = models.BigIntegerField(default=0)
    gpus = models.JSONField(
        default=list, help_text="[{index, name, memory_total_mb, memory_used_mb}] from NVML"
    )
    started_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)
    stopped_at = models.DateTimeField(null=True, blank=True, help_text="Set on a clean shutdown")

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname

    @staticmethod
    def online_since(now: datetime | None = None) -> datetime:
        """Workers seen after this moment count as online."""
        now = now or timezone.now()
        return now - timedelta(seconds=settings.R1STUDIO_WORKER_OFFLINE_AFTER)

    def is_online(self, now: datetime | None = None) -> bool:
        """Seen within R1STUDIO_WORKER_OFFLINE_AFTER seconds and not shut down."""
        return self.stopped_at is None and self.last_seen > self.online_since(now)

    @property
    def gpu_memory_total_mb(self) -> int:
        return sum(int(gpu.get("memory_total_mb", 0)) for gpu in self.gpus)
