"""Database work in background threads of a process that forks (the Celery worker's parent).

SQLite keeps its file-lock bookkeeping per process. A pool child forked while another thread of
the parent has a connection open inherits locks it does not own, and every write of that child
then fails with "database is locked" (a fresh studio's first run never started). Threads of the
worker's parent (heartbeat, lost-run sweep) therefore do their database work inside
`forksafe_db()`: it closes the thread's connections on the way out, and every fork of the
process waits until no such block is in flight (`os.register_at_fork`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections

# Held by a block from its first query until its connections are closed, and by the forking
# thread around every fork(), so no child is forked with such a connection open.
_DB_IN_USE = threading.Lock()


def _release_after_fork() -> None:
    _DB_IN_USE.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_DB_IN_USE.acquire,
        after_in_parent=_release_after_fork,
        after_in_child=_release_after_fork,
    )


@contextmanager
def forksafe_db() -> Iterator[None]:
    """Run a block of database work that no fork may interrupt; closes its connections."""
    with _DB_IN_USE:
        try:
            yield
        finally:
            connections.close_all()
