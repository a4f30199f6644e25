"""Fixtures for the metrics tests, some reused by other test packages.

- `asgi_server`: the real ASGI application served by uvicorn in a thread, over the test
  database (committed data: it requests `transactional_db`), for the SSE endpoint. The runs
  tests import it: `from tests.studio.metrics.conftest import asgi_server  # noqa: F401`.
- `make_run`: a factory for Run rows.
- `SSEReader` / `session_cookie`: read a Server-Sent Events stream with the standard library.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import wait_for


@pytest.fixture
def asgi_server(transactional_db: None, redis_url: str) -> Iterator[str]:
    """Base URL of uvicorn serving `r1studio.asgi:application` from a thread of this process."""
    import uvicorn

    from r1studio.asgi import application
    from r1studio.core.embedded_redis import free_port

    port = free_port()
    config = uvicorn.Config(
        application,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="asgi-server", daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), timeout=30)
    if not server.started:
        pytest.fail("uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def make_run(db: None) -> Callable[..., Any]:
    """Factory: `make_run(owner, status="running", kind="grpo", **fields)` → a saved Run."""
    from r1studio.runs.models import Run

    counter = iter(range(1, 10_000))

    def make(owner: Any, *, status: str = "running", kind: str = "grpo", **fields: Any) -> Any:
        fields.setdefault("name", f"run-{next(counter)}")
        return Run.objects.create(owner=owner, status=status, kind=kind, **fields)

    return make


def session_cookie(client: Any, user: Any) -> str:
    """A `Cookie` header value for `user`, made with Django's test client."""
    from django.conf import settings

    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


class SSEReader:
    """A blocking reader of one SSE response: `next_event()` → {"event", "id", "data"}."""

    def __init__(self, url: str, *, cookie: str = "", headers: dict[str, str] | None = None):
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        all_headers = {"Accept": "text/event-stream", **(headers or {})}
        if cookie:
            all_headers["Cookie"] = cookie
        self.conn.request("GET", path, headers=all_headers)
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.comments: list[str] = []

    def next_event(self) -> dict[str, Any] | None:
        """The next event with data (comments and `retry:` lines are collected and skipped);
        None when the stream ended."""
        event: dict[str, Any] = {"event": "message", "id": None, "data": None}
        data_lines: list[str] = []
        while True:
            raw = self.response.readline()
            if not raw:
                return None
            line = raw.decode().rstrip("\n")
            if line == "":
                if data_lines:
                    event["data"] = json.loads("\n".join(data_lines))
                    return event
                continue
            if line.startswith(":"):
                self.comments.append(line)
            elif line.startswith("event: "):
                event["event"] = line[7:]
            elif line.startswith("id: "):
                event["id"] = line[4:]
            elif line.startswith("data: "):
                data_lines.append(line[6:])

    def close(self) -> None:
        self.conn.close()
