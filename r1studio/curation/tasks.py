"""Celery tasks of the curation app: ids in, one service call (STYLE.md 4)."""

from __future__ import annotations

from celery import shared_task

from r1studio.curation.jobs import job_run


@shared_task(name="curation.run_job", ignore_result=True, acks_late=True)
def run_job(job_id: int) -> str | None:
    """Run dataset job `job_id` (an import or a curation) to its end."""
    return job_run(job_id)
