"""Reads for the studio as a whole: the health of its services."""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from django.db import connection


def _error(exc: BaseException) -> str:
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"error: {type(exc).__name__}: {message}"[:300]


def database_status() -> str:
    """'ok' when the database answers a query, else a one-line error."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not healthy"
        return _error(exc)
    return "ok"


def redis_status(url: str | None = None) -> str:
    """'ok' when Redis at `url` (default REDIS_URL) answers PING within a second."""
    try:
        client = redis.Redis.from_url(
            url or settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return _error(exc)
    return "ok"


def system_health() -> dict[str, Any]:
    """What /healthz reports: status is 'ok' when the database and Redis both answer."""
    from r1studio.workers.selectors import workers_online_count

    database = database_status()
    workers = workers_online_count() if database == "ok" else 0
    redis_state = redis_status()
    healthy = database == "ok" and redis_state == "ok"
    return {
        "status": "ok" if healthy else "degraded",
        "database": database,
        "redis": redis_state,
        "workers": workers,
    }
