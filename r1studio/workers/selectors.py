"""Reads for the Workers page and /healthz."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from r1studio.workers.models import WorkerHeartbeat


@dataclass(frozen=True)
class WorkerRow:
    heartbeat: WorkerHeartbeat
    online: bool


def workers_online_count() -> int:
    """How many workers heartbeated within the offline threshold and did not shut down."""
    return WorkerHeartbeat.objects.filter(
        stopped_at__isnull=True, last_seen__gt=WorkerHeartbeat.online_since()
    ).count()


def worker_list() -> list[WorkerRow]:
    """Every worker that ever reported, online ones first, each marked online or offline."""
    now = timezone.now()
    rows = [WorkerRow(hb, hb.is_online(now)) for hb in WorkerHeartbeat.objects.all()]
    rows.sort(key=lambda row: (not row.online, row.heartbeat.hostname))
    return rows
