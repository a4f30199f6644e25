"""/healthz reports the database, Redis and the online workers without a login."""

from __future__ import annotations

from typing import Any

from r1studio.core.embedded_redis import free_port


def test_it_is_ok_with_one_worker_online(client: Any, celery_worker: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok", "workers": 1}


def test_it_is_degraded_when_redis_is_down(client: Any, db: None, settings: Any) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"] == "ok"
    assert body["redis"].startswith("error: ConnectionError")
    assert body["workers"] == 0


def test_it_counts_no_workers_when_none_runs(client: Any, db: None) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["workers"] == 0
