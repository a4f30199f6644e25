"""The Ray watcher task: one short look at a Ray run's job, then the next one queued.

`runs.ray_watch` runs on the `ray` queue (a light worker: `celery -A r1studio worker -Q ray`),
never on the `gpu`/`cpu` ones, where a local run holds the only slot for hours and the watch
would stall until its runs counted as lost. Kept out of tasks.py: this module imports the Ray
executor, which needs run tokens (r1studio.runs.remote), which need the services that import
tasks.py. Celery finds it through `autodiscover_tasks(related_name="ray_tasks")`.
"""

from __future__ import annotations

from celery import shared_task

from r1studio.runs.ray_executor import RAY_QUEUE, WATCH_TASK, ray_tick


@shared_task(name=WATCH_TASK, ignore_result=True, acks_late=True)
def ray_watch(run_id: int, watcher: str | None = None) -> None:
    """Claim, submit or look at Ray run `run_id` once, and queue the next look while it goes on."""
    following = ray_tick(run_id=run_id, watcher=watcher)
    if following is not None:
        ray_watch.apply_async(
            args=[run_id, following.watcher], countdown=following.delay, queue=RAY_QUEUE
        )
