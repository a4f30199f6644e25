"""The supervisor task: a thin shell around `supervisor.supervise` (ids in, row out).

Routed per launch by `services.run_launch` to queue `gpu` (grpo, sft) or `cpu` (generate,
evaluate). No retries: a run that cannot be supervised ends `failed` or `lost` on its row, and
the user decides to resume or retry it.
"""

from __future__ import annotations

from celery import shared_task

from r1studio.runs.supervisor import supervise
from r1studio.runs.sweep import current_worker_hostname


@shared_task(bind=True, name="runs.supervise", ignore_result=True, acks_late=True)
def supervise_run(self, run_id: int) -> str | None:
    """Claim run `run_id`, spawn its pipeline process and supervise it until it ends."""
    return supervise(run_id, hostname=current_worker_hostname() or self.request.hostname or "")
