"""The Celery app (`celery -A r1studio worker -Q cpu,gpu -c 1 --prefetch-multiplier 1`).

Configuration comes from Django settings (the `CELERY_` names in settings.py): the broker is
REDIS_URL, there is no result backend (the database is the source of truth), tasks are
acknowledged late and each worker takes one task at a time. Training goes to the `gpu` queue and
light work to `cpu`; a worker listens to the queues its hardware can serve.

Every worker also runs the heartbeat bootstep, which records it on the Workers page.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "r1studio.settings")

# `ray`: the watchers of runs on a Ray cluster (r1studio/runs/ray_tasks.py), short tasks.
QUEUES = ("cpu", "gpu", "ray")

app = Celery("r1studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Explicit exchanges: without them both queues would bind to the default queue's exchange and
# a task sent to `gpu` would land in `cpu`.
app.conf.task_queues = tuple(Queue(name, Exchange(name), routing_key=name) for name in QUEUES)
app.autodiscover_tasks()
app.autodiscover_tasks(related_name="ray_tasks")


def _add_heartbeat_step() -> None:
    # Imported here: the step module must not touch Django models before apps are ready.
    from r1studio.workers.heartbeat import HeartbeatStep

    app.steps["worker"].add(HeartbeatStep)


_add_heartbeat_step()
