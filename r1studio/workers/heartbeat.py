"""The worker heartbeat: a Celery bootstep that records the worker in the database.

It runs inside every worker, the `celery worker` command and the test fixture's embedded worker
alike (it is a bootstep, not a `worker_ready` handler, because embedded workers send no
`worker_ready`). A daemon thread writes a `WorkerHeartbeat` row at start and every
R1STUDIO_HEARTBEAT_SECONDS; a clean shutdown stamps `stopped_at` so the worker shows as offline
at once. A failed write is logged and retried at the next beat: the heartbeat never takes the
worker down.

Each beat opens and closes its own connection inside `forksafe_db`, so the pool children the
worker forks never inherit one (see r1studio.core.forksafe).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import psutil
from celery import bootsteps

from r1studio.core.forksafe import forksafe_db

logger = logging.getLogger(__name__)


def gpu_inventory() -> list[dict[str, Any]]:
    """GPUs seen through NVML (`pynvml`, from the `gpu` extra); empty without NVML or GPUs."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver: a CPU machine with the package installed
        return []
    gpus = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(
                {
                    "index": index,
                    "name": name.decode() if isinstance(name, bytes) else str(name),
                    "memory_total_mb": int(memory.total // 2**20),
                    "memory_used_mb": int(memory.used // 2**20),
                }
            )
    finally:
        pynvml.nvmlShutdown()
    return gpus


def worker_queues(worker: Any) -> list[str]:
    """The queue names the worker consumes."""
    try:
        return sorted(worker.app.amqp.queues.consume_from)
    except Exception:
        return []


class Heartbeat:
    """Writes one worker's heartbeat row from a background thread."""

    def __init__(self, *, hostname: str, queues: list[str], interval: float) -> None:
        self.hostname = hostname
        self.queues = queues
        self.interval = interval
        self.started_at = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"heartbeat-{hostname}", daemon=True
        )

    def start(self) -> None:
        from django.utils import timezone

        self.started_at = timezone.now()
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def beat(self, *, stopping: bool = False) -> None:
        """Write the row once (the thread calls this; tests may too)."""
        from django.utils import timezone

        from r1studio.workers.models import WorkerHeartbeat

        now = timezone.now()
        memory = psutil.virtual_memory()
        WorkerHeartbeat.objects.update_or_create(
            hostname=self.hostname,
            defaults={
                "queues": self.queues,
                "pid": os.getpid(),
                "cpu_count": os.cpu_count() or 0,
                "ram_total_bytes": memory.total,
                "ram_available_bytes": memory.available,
                "gpus": gpu_inventory(),
                "started_at": self.started_at or now,
                "last_seen": now,
                "stopped_at": now if stopping else None,
            },
        )

    def _safe_beat(self, *, stopping: bool = False) -> None:
        try:
            with forksafe_db():
                self.beat(stopping=stopping)
        except Exception:
            logger.warning("worker heartbeat failed; retrying at the next beat", exc_info=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._safe_beat()
            self._stop.wait(self.interval)
        self._safe_beat(stopping=True)


class HeartbeatStep(bootsteps.StartStopStep):
    """Worker bootstep that owns the heartbeat thread for the worker's lifetime."""

    label = "R1 Studio heartbeat"

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self.heartbeat: Heartbeat | None = None
        super().__init__(worker, **kwargs)

    def start(self, worker: Any) -> None:
        from django.conf import settings

        self.heartbeat = Heartbeat(
            hostname=worker.hostname,
            queues=worker_queues(worker),
            interval=settings.R1STUDIO_HEARTBEAT_SECONDS,
        )
        self.heartbeat.start()

    def stop(self, worker: Any) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
            self.heartbeat = None

    terminate = stop  # a cold shutdown (and the test worker) ends through terminate()
