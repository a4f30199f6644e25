"""Live updates: Redis pub/sub on channel `run:<id>`, served to browsers as Server-Sent Events.

The supervisor publishes each committed batch (r1studio.runs.live.publish). `sse_stream` is
what `GET /runs/<id>/stream` returns: it subscribes first, then sends the points stored after
the client's last step (so nothing published meanwhile is missed, and a reconnect resumes
where it stopped), then forwards live messages, a `: keep-alive` comment every
`KEEPALIVE_SECONDS`, and ends with `event: status` once the run has ended.

SSE events: `update` (data: the payload, `id:` the last metric step in it, which EventSource
sends back as `Last-Event-ID` when it reconnects) and `status` (the run's final state).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

from r1studio.metrics.selectors import run_metrics_after
from r1studio.runs.live import channel, json_safe, publish, run_state  # noqa: F401 - re-exported
from r1studio.runs.models import Run

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15.0
ENDED = {"finished", "failed", "cancelled", "lost"}


def sse(data: Any, *, event: str | None = None, event_id: int | None = None) -> bytes:
    """One Server-Sent Event (JSON data on a single line)."""
    lines = []
    if event:
        lines.append(f"event: {event}")
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(json_safe(data), separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def _last_step(metrics: dict[str, list]) -> int | None:
    steps = [points[-1][0] for points in metrics.values() if points]
    return max(steps) if steps else None


def _db(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run an ORM read in a worker thread and close its connection after: an open stream
    must not hold a database connection for hours."""

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        finally:
            if not connection.in_atomic_block:
                connection.close()

    return sync_to_async(call)


def _snapshot(run_id: int, after_step: int | None) -> dict[str, Any] | None:
    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        return None
    return {
        **run_state(run),
        "metrics": run_metrics_after(run=run, after_step=after_step),
        "traces": 0,
    }


def _status(run_id: int) -> dict[str, Any] | None:
    run = Run.objects.filter(pk=run_id).first()
    return run_state(run) if run is not None else None


async def sse_stream(run_id: int, after_step: int | None) -> AsyncIterator[bytes]:
    """The event stream of one run for one browser (see the module docstring)."""
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    pubsub = client.pubsub()
    sent: dict[str, int] = {}
    try:
        await pubsub.subscribe(channel(run_id))
        yield b"retry: 3000\n\n"
        snapshot = await _db(_snapshot)(run_id, after_step)
        if snapshot is None:
            yield sse({"run": run_id, "status": "deleted"}, event="status")
            return
        sent = {name: points[-1][0] for name, points in snapshot["metrics"].items() if points}
        yield sse(snapshot, event="update", event_id=_last_step(snapshot["metrics"]))
        if snapshot["status"] in ENDED:
            yield sse({k: v for k, v in snapshot.items() if k != "metrics"}, event="status")
            return
        last_beat = time.monotonic()
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None and message.get("type") == "message":
                payload = json.loads(message["data"])
                metrics = {}
                for name, points in (payload.get("metrics") or {}).items():
                    floor = sent.get(name, after_step if after_step is not None else -1)
                    fresh = [p for p in points if p[0] > floor]
                    if fresh:
                        metrics[name] = fresh
                        sent[name] = fresh[-1][0]
                payload["metrics"] = metrics
                yield sse(payload, event="update", event_id=_last_step(metrics))
                if payload.get("status") in ENDED:
                    state = {k: v for k, v in payload.items() if k != "metrics"}
                    yield sse(state, event="status")
                    return
            if time.monotonic() - last_beat >= KEEPALIVE_SECONDS:
                last_beat = time.monotonic()
                yield b": keep-alive\n\n"
                # A run can end without a message (the sweep marks it lost): ask the database.
                state = await _db(_status)(run_id)
                if state is None or state["status"] in ENDED:
                    yield sse(state or {"run": run_id, "status": "deleted"}, event="status")
                    return
    finally:
        try:
            await pubsub.unsubscribe()
            await pubsub.aclose()
            await client.aclose()
        except Exception as exc:  # closing after a dropped connection may fail; nothing to do
            log.debug("closing the pub/sub of run %s: %s", run_id, exc)
