"""Dataset jobs (imports, curations) as rows with a status, run by a Celery worker.

`job_create` inserts a queued `DatasetJob` and enqueues `curation.run_job` after the commit.
`job_run` (what the task calls) claims the row atomically (queued → running), calls the handler
for the job's kind with a `Progress` to report through, stores the version the handler returns
as the job's result, and on any exception marks the job failed with the error and traceback:
the UI reads only the row. Handlers are named here, imported when a job runs.
"""

from __future__ import annotations

import importlib
import logging
import time
import traceback
from typing import Any

from django.db import transaction
from django.utils import timezone

from r1studio.celery import app as celery_app
from r1studio.curation.models import DatasetJob, JobStatus

logger = logging.getLogger(__name__)

# kind -> "module:function"; a handler is `handler(job, progress) -> DatasetVersion`.
HANDLERS = {
    "import": "r1studio.curation.imports:import_run",
    "curate": "r1studio.curation.curate:curate_run",
    "run": "r1studio.curation.run_datasets:run_dataset_register",
}
# Progress is written at most this often (a row update per batch would dominate small jobs).
PROGRESS_EVERY_SECONDS = 0.5


class JobError(Exception):
    """A job that cannot be done as asked; its message is shown to the user as is."""


class Progress:
    """Reports a running job's progress (0..1), an ETA from the rate so far, and a message."""

    def __init__(self, job: DatasetJob) -> None:
        self.job = job
        self.started = time.monotonic()
        self.last_write = 0.0

    def __call__(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_write < PROGRESS_EVERY_SECONDS:
            return
        self.last_write = now
        fraction = max(0.0, min(1.0, fraction))
        elapsed = now - self.started
        eta = elapsed * (1 - fraction) / fraction if fraction > 0.01 else None
        DatasetJob.objects.filter(pk=self.job.pk).update(
            progress=fraction, eta_seconds=eta, message=message[:500]
        )


def _enqueue(job_id: int) -> None:
    # By name: the task module (tasks.py) imports this one.
    celery_app.send_task("curation.run_job", args=[job_id], queue="cpu")


def job_create(
    *, kind: str, dataset: Any, user: Any, params: dict, source: Any = None
) -> DatasetJob:
    """Queue a job; the worker starts it once the transaction commits."""
    if kind not in HANDLERS:
        raise ValueError(f"unknown job kind {kind!r}")
    job = DatasetJob.objects.create(
        kind=kind, dataset=dataset, source=source, params=params, created_by=user
    )
    transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _handler(kind: str) -> Any:
    module, _, name = HANDLERS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def job_run(job_id: int) -> str | None:
    """Claim and run job `job_id`; returns its final status (None: not ours to run)."""
    now = timezone.now()
    if not DatasetJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now
    ):
        return None
    job = DatasetJob.objects.get(pk=job_id)
    progress = Progress(job)
    try:
        version = _handler(job.kind)(job, progress)
    except Exception as exc:
        if not isinstance(exc, JobError):
            logger.exception("dataset job %s failed", job_id)
        DatasetJob.objects.filter(pk=job_id).update(
            status=JobStatus.FAILED,
            finished_at=timezone.now(),
            eta_seconds=None,
            error=str(exc)[:5000] or type(exc).__name__,
            traceback="" if isinstance(exc, JobError) else traceback.format_exc(),
        )
        return JobStatus.FAILED
    DatasetJob.objects.filter(pk=job_id).update(
        status=JobStatus.FINISHED,
        finished_at=timezone.now(),
        progress=1.0,
        eta_seconds=None,
        result=version,
        message=f"{version} written: {version.rows} rows",
    )
    return JobStatus.FINISHED
