"""Workers report a heartbeat through a real Celery worker; the Workers page lists them."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import uuid
from datetime import timedelta
from typing import Any

import psutil
import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.urls import reverse
from django.utils import timezone

from r1studio.celery import app
from r1studio.workers.models import WorkerHeartbeat
from r1studio.workers.selectors import workers_online_count
from r1studio.workers.tasks import PING_KEY, ping
from tests.conftest import wait_for


def test_it_records_the_worker_with_its_hardware(celery_worker: Any) -> None:
    heartbeat = WorkerHeartbeat.objects.get(hostname=celery_worker.hostname)
    assert heartbeat.queues == ["cpu", "gpu"]
    assert heartbeat.pid == os.getpid()  # the embedded worker runs in the test process
    assert heartbeat.cpu_count == os.cpu_count()
    assert heartbeat.ram_total_bytes == psutil.virtual_memory().total
    # Whatever the machine has: the inventory's shape, and the GPUs themselves where they can
    # be listed independently of the worker (nvidia-smi); no NVML binding, no GPUs reported.
    assert isinstance(heartbeat.gpus, list)
    for gpu in heartbeat.gpus:
        assert set(gpu) == {"index", "name", "memory_total_mb", "memory_used_mb"}
        assert isinstance(gpu["index"], int) and isinstance(gpu["name"], str)
        assert 0 <= gpu["memory_used_mb"] <= gpu["memory_total_mb"]
    if importlib.util.find_spec("pynvml") is None:
        assert heartbeat.gpus == []
    elif (listed := nvidia_smi_gpus()) is not None:
        assert [(g["index"], g["name"], g["memory_total_mb"]) for g in heartbeat.gpus] == listed
    assert heartbeat.is_online()


def nvidia_smi_gpus() -> list[tuple[int, str, int]] | None:
    """(index, name, MiB) of each GPU as nvidia-smi lists them; None without a working nvidia-smi."""
    if shutil.which("nvidia-smi") is None:
        return None
    query = ["nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"]
    done = subprocess.run(query, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        return None
    gpus = []
    for line in filter(str.strip, done.stdout.splitlines()):
        index, rest = line.split(", ", 1)
        name, total = rest.rsplit(", ", 1)
        gpus.append((int(index), name, int(total)))
    return gpus


def test_it_refreshes_the_heartbeat(celery_worker: Any) -> None:
    first = WorkerHeartbeat.objects.get(hostname=celery_worker.hostname).last_seen
    wait_for(lambda: WorkerHeartbeat.objects.get(hostname=celery_worker.hostname).last_seen > first)


def test_it_runs_tasks_from_both_queues(celery_worker: Any, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    tokens = {queue: uuid.uuid4().hex for queue in ("cpu", "gpu")}
    for queue, token in tokens.items():
        ping.apply_async(args=[token], queue=queue)
    for token in tokens.values():
        wait_for(lambda token=token: client.get(PING_KEY.format(token=token)) == b"pong")
    client.close()


def test_it_routes_each_queue_to_its_own_list(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    before = {queue: client.llen(queue) for queue in ("cpu", "gpu")}
    ping.apply_async(args=["routing"], queue="gpu")
    assert client.llen("gpu") == before["gpu"] + 1
    assert client.llen("cpu") == before["cpu"]
    client.rpop("gpu")  # the oldest message; nothing consumes this queue now
    client.close()


def test_it_marks_a_cleanly_stopped_worker_offline(transactional_db: None, redis_url: str) -> None:
    with start_worker(app, pool="solo", perform_ping_check=False, queues=["cpu"]) as worker:
        wait_for(lambda: workers_online_count() == 1)
        hostname = worker.hostname
    heartbeat = WorkerHeartbeat.objects.get(hostname=hostname)
    assert heartbeat.stopped_at is not None
    assert workers_online_count() == 0


def test_it_lists_online_and_offline_workers(researcher_client: Any, celery_worker: Any) -> None:
    WorkerHeartbeat.objects.create(
        hostname="celery@gpu-node-7",
        queues=["gpu"],
        pid=4242,
        cpu_count=64,
        ram_total_bytes=512 * 2**30,
        gpus=[{"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory_total_mb": 81559}],
        last_seen=timezone.now() - timedelta(seconds=61),
    )
    response = researcher_client.get(reverse("workers:list"))
    assert response.status_code == 200
    rows = {row.heartbeat.hostname: row.online for row in response.context["rows"]}
    assert rows == {celery_worker.hostname: True, "celery@gpu-node-7": False}
    html = response.content.decode()
    assert "NVIDIA H100 80GB HBM3 · 81559 MiB" in html
    assert "1 of 2 online" in html
    assert html.index(celery_worker.hostname) < html.index("celery@gpu-node-7")


@pytest.mark.django_db
def test_it_sends_only_the_table_to_htmx_polls(researcher_client: Any) -> None:
    response = researcher_client.get(reverse("workers:list"), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert "No worker has reported in" in html
    assert "<html" not in html
    assert 'hx-trigger="every 5s"' not in html
