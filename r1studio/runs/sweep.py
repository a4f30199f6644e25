"""The lost-run sweep inside every worker: at start-up and then periodically, no beat needed.

`worker_init` (sent by every Celery worker, embedded test workers included) starts a daemon
thread that first marks `lost` the runs this very worker node was running before it restarted
(a fresh worker runs nothing), then calls `runs_sweep_lost` every half
R1STUDIO_LOST_AFTER_SECONDS until the worker stops. The supervisor loop sweeps too, so a busy
worker notices a dead neighbour as quickly as an idle one. Failures are logged, never raised.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from celery import bootsteps
from django.conf import settings
from django.utils import timezone

from r1studio.core.forksafe import forksafe_db
from r1studio.runs.hooks import runs_ended
from r1studio.runs.models import Run, RunExecutor, RunStatus

logger = logging.getLogger(__name__)

_STOPPING_STATES = (bootsteps.CLOSE, bootsteps.TERMINATE)
_current_worker = {"hostname": ""}


def current_worker_hostname() -> str:
    """The node name (`name@host`) of the worker this process runs, "" outside workers."""
    return _current_worker["hostname"]


def runs_mark_worker_lost(*, hostname: str) -> int:
    """Runs still `running` on `hostname` when that worker starts: its previous life died."""
    running = Run.objects.filter(status=RunStatus.RUNNING, worker=hostname)
    ids = list(running.values_list("pk", flat=True))
    count = running.filter(pk__in=ids).update(
        status=RunStatus.LOST,
        finished_at=timezone.now(),
        eta_seconds=None,
        error=f"The worker {hostname} restarted while the run was going.",
    )
    runs_ended(ids)  # a recipe resumes its stage (r1studio.runs.hooks)
    return count


def _worker_stopping(worker: Any) -> bool:
    blueprint = getattr(worker, "blueprint", None)
    return blueprint is not None and blueprint.state in _STOPPING_STATES


def _sweep_loop(worker: Any, stop: threading.Event) -> None:
    hostname = getattr(worker, "hostname", "") or ""
    first = True
    while not stop.is_set() and not _worker_stopping(worker):
        try:
            # No connection held between sweeps, nor across a fork of the pool.
            with forksafe_db():
                if first and hostname:
                    lost = runs_mark_worker_lost(hostname=hostname)
                    if lost:
                        logger.warning(
                            "marked %s run(s) of the restarted worker %s lost", lost, hostname
                        )
                runs_sweep_lost()
        except Exception:
            logger.warning("lost-run sweep failed; retrying later", exc_info=True)
        finally:
            first = False
        stop.wait(max(1.0, settings.R1STUDIO_LOST_AFTER_SECONDS / 2))


def start_sweeper(sender: Any = None, **kwargs: Any) -> None:
    """`worker_init` handler: one sweeper thread per worker."""
    if sender is not None:
        _current_worker["hostname"] = getattr(sender, "hostname", "") or ""
    stop = threading.Event()
    thread = threading.Thread(
        target=_sweep_loop, args=(sender, stop), name="runs-lost-sweep", daemon=True
    )
    if sender is not None:
        sender._runs_sweep_stop = stop
    thread.start()


def stop_sweeper(sender: Any = None, **kwargs: Any) -> None:
    """`worker_shutdown` handler (embedded workers stop through their blueprint state)."""
    stop = getattr(sender, "_runs_sweep_stop", None)
    if stop is not None:
        stop.set()


def runs_sweep_lost(*, lost_after: float | None = None) -> int:
    """Mark running runs whose supervisor stopped heartbeating `lost`; returns how many.

    A run counts as lost when its `heartbeat_at` (or, before the first beat, `started_at`) is
    older than R1STUDIO_LOST_AFTER_SECONDS. The supervisor beats every few seconds, so only a
    dead worker (killed, machine gone) lets a stamp grow that old. An external run (a script
    that reports over HTTP, r1studio.runs.remote) beats with each batch it sends, and is lost
    after R1STUDIO_EXTERNAL_LOST_AFTER_SECONDS (`lost_after` overrides both).
    """
    worker_seconds = settings.R1STUDIO_LOST_AFTER_SECONDS if lost_after is None else lost_after
    external_seconds = (
        settings.R1STUDIO_EXTERNAL_LOST_AFTER_SECONDS if lost_after is None else lost_after
    )
    now = timezone.now()
    count = 0
    for external, seconds in ((False, worker_seconds), (True, external_seconds)):
        cutoff = now - timedelta(seconds=seconds)
        running = Run.objects.filter(status=RunStatus.RUNNING)
        if external:
            running = running.filter(executor=RunExecutor.EXTERNAL)
            message = f"The script stopped reporting for over {seconds:g} s."
        else:
            running = running.exclude(executor=RunExecutor.EXTERNAL)
            message = (
                f"The worker stopped reporting for over {seconds:g} s (killed or its machine gone)."
            )
        stale = running.filter(heartbeat_at__lt=cutoff)
        never_beat = running.filter(heartbeat_at__isnull=True, started_at__lt=cutoff)
        for queryset in (stale, never_beat):
            ids = list(queryset.values_list("pk", flat=True))
            if not ids:
                continue
            count += queryset.filter(pk__in=ids).update(
                status=RunStatus.LOST, finished_at=now, eta_seconds=None, error=message
            )
            runs_ended(ids)  # handlers read each run's status: a late beat is harmless
    return count
