"""Diagnostic task: proves a worker consumes a queue, end to end through the broker."""

from __future__ import annotations

import redis
from celery import shared_task
from django.conf import settings

PING_KEY = "r1studio:ping:{token}"


@shared_task(name="workers.ping", ignore_result=True)
def ping(token: str) -> None:
    """Write `token` into Redis as `r1studio:ping:<token>` (there is no result backend to ask)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.set(PING_KEY.format(token=token), "pong", ex=300)
    finally:
        client.close()
