"""Shared fixtures: a real Redis, a real Celery worker, users with roles, a data directory.

Redis: REDIS_URL when set (CI points it at a DB number of its own), else an embedded
redis-server started once per session. Every Django-side fixture is inert when the suite runs
without pytest-django (`-p no:django`, as the pipeline tests may).

The worker is Celery's own embedded worker (`celery.contrib.testing.worker.start_worker`)
running in a thread of the test process, consuming the `cpu` and `gpu` queues from that Redis
and writing to the test database: it needs `transactional_db`, which it requests itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

TEST_PASSWORD = "a-test-password-7"


def _django_configured() -> bool:
    try:
        from django.conf import settings

        return bool(settings.configured)
    except Exception:
        return False


def wait_for(predicate: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


@pytest.fixture(scope="session", autouse=True)
def redis_url() -> Iterator[str | None]:
    """The Redis every test talks to; settings and the Celery app are pointed at it."""
    if not _django_configured():
        yield None
        return
    from django.conf import settings

    from r1studio.celery import app
    from r1studio.core.embedded_redis import start_embedded_redis

    embedded = None
    url = os.environ.get("REDIS_URL", "").strip()
    if not url:
        embedded = start_embedded_redis(stdout=subprocess.DEVNULL)
        url = embedded.url
    settings.REDIS_URL = settings.CELERY_BROKER_URL = url
    app.conf.broker_url = url
    try:
        yield url
    finally:
        app.pool.force_close_all()
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(settings.R1STUDIO_DATA_DIR, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def allowed_roots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    """Runs may read the test folders too: pytest's base temp (data dirs, toy builds) and a
    prebuilt toy. Production allows only the data dir, the benchmarks and R1STUDIO_ALLOWED_ROOTS;
    the tests add theirs to that variable (the pipeline CLI reads it) and to Django's setting."""
    extra = [tmp_path_factory.getbasetemp().resolve()]
    if os.environ.get("R1STUDIO_TEST_TOY_DIR"):
        extra.append(Path(os.environ["R1STUDIO_TEST_TOY_DIR"]).resolve())
    with pytest.MonkeyPatch.context() as patch:
        current = os.environ.get("R1STUDIO_ALLOWED_ROOTS", "").strip()
        patch.setenv(
            "R1STUDIO_ALLOWED_ROOTS", ":".join([*filter(None, [current]), *map(str, extra)])
        )
        if _django_configured():
            from django.conf import settings

            patch.setattr(
                settings, "R1STUDIO_ALLOWED_ROOTS", [*settings.R1STUDIO_ALLOWED_ROOTS, *extra]
            )
        yield extra


@pytest.fixture
def data_dir(settings: Any, tmp_path: Path) -> Path:
    """A fresh R1STUDIO_DATA_DIR for this test."""
    path = tmp_path / "data"
    path.mkdir()
    settings.R1STUDIO_DATA_DIR = path
    return path


@pytest.fixture
def celery_worker(transactional_db: None, redis_url: str) -> Iterator[Any]:
    """A real Celery worker on queues cpu and gpu; returns once its heartbeat row exists."""
    from celery.contrib.testing.worker import start_worker

    from r1studio.celery import app
    from r1studio.workers.models import WorkerHeartbeat

    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        queues=["cpu", "gpu"],
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as worker:
        wait_for(lambda: WorkerHeartbeat.objects.filter(hostname=worker.hostname).exists())
        yield worker


@pytest.fixture
def make_user(db: None) -> Callable[..., Any]:
    """Factory: `make_user("researcher", username="ada")` → a user with that role."""
    from r1studio.core.services import user_create

    counter = iter(range(1, 10_000))

    def make(role: str, *, username: str | None = None, password: str = TEST_PASSWORD) -> Any:
        username = username or f"{role}-{next(counter)}"
        return user_create(username=username, role=role, password=password).user

    return make


@pytest.fixture
def researcher(make_user: Callable[..., Any]) -> Any:
    return make_user("researcher")


@pytest.fixture
def annotator(make_user: Callable[..., Any]) -> Any:
    return make_user("annotator")


@pytest.fixture
def studio_admin(make_user: Callable[..., Any]) -> Any:
    return make_user("admin")


@pytest.fixture
def researcher_client(client: Any, researcher: Any) -> Any:
    client.force_login(researcher)
    return client


@pytest.fixture
def annotator_client(client: Any, annotator: Any) -> Any:
    client.force_login(annotator)
    return client


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test-size toy assets (`python -m pipeline toy DIR --size test`), built once a session.

    Every suite (pipeline, runs, browser) shares this one build (~20 s); tests that change a
    config write their own copy. `R1STUDIO_TEST_TOY_DIR` points at a prebuilt folder instead.
    """
    override = os.environ.get("R1STUDIO_TEST_TOY_DIR")
    if override:
        return Path(override)
    from pipeline.toy import build_toy

    root = tmp_path_factory.mktemp("toy")
    build_toy(root, size="test", log=lambda message: None)
    return root
