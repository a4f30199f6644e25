"""The worker heartbeat never holds a database connection across a fork.

A Celery pool child forked while the heartbeat thread had a SQLite connection open inherited
lock bookkeeping it did not own, and every write of that child failed with "database is locked".
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest
from django.db import connections

from r1studio.core import forksafe
from r1studio.workers import heartbeat


@pytest.mark.django_db(transaction=True)
def test_it_closes_its_connection_after_every_beat() -> None:
    beat = heartbeat.Heartbeat(hostname="celery@fork-test", queues=["cpu"], interval=60)
    seen: dict[str, Any] = {}

    def in_thread() -> None:
        beat._safe_beat()
        seen["open"] = connections["default"].connection is not None

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(30)

    assert seen == {"open": False}
    from r1studio.workers.models import WorkerHeartbeat

    assert WorkerHeartbeat.objects.filter(hostname="celery@fork-test").exists()


def test_a_fork_waits_for_a_beat_in_flight() -> None:
    released_at: dict[str, float] = {}
    holding = threading.Event()

    def beat_in_flight() -> None:
        with forksafe._DB_IN_USE:
            holding.set()
            time.sleep(0.5)
            released_at["t"] = time.monotonic()

    thread = threading.Thread(target=beat_in_flight)
    thread.start()
    holding.wait(5)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports when it came to life
        os.write(write, repr(time.monotonic()).encode())
        os._exit(0)
    os.close(write)
    child_started = float(os.read(read, 64))
    os.waitpid(pid, 0)
    thread.join(5)

    assert child_started >= released_at["t"]
    assert forksafe._DB_IN_USE.acquire(timeout=1)  # released in the parent after the fork
    forksafe._DB_IN_USE.release()
