"""The live stream: stored points after `after`, then live messages, then the end of the run.

Real uvicorn (the `asgi_server` fixture), real Redis pub/sub, the test database.
"""

from __future__ import annotations

import json
import math
from typing import Any

import redis

from r1studio.metrics.live import publish
from r1studio.metrics.services import metrics_ingest
from tests.conftest import wait_for
from tests.studio.metrics.conftest import SSEReader, session_cookie


def ingest(run: Any, steps: range) -> None:
    events = [{"type": "metrics", "step": s, "values": {"reward": s / 10}} for s in steps]
    metrics_ingest(run=run, events=events)


def test_it_streams_stored_points_then_live_ones_then_the_end(
    asgi_server: str, client: Any, researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher)
    ingest(run, range(1, 11))
    stream = SSEReader(
        f"{asgi_server}/runs/{run.pk}/stream?after=5", cookie=session_cookie(client, researcher)
    )
    try:
        assert stream.status == 200
        assert stream.response.getheader("Content-Type").startswith("text/event-stream")

        first = stream.next_event()
        assert first["event"] == "update"
        assert first["id"] == "10"
        assert first["data"]["status"] == "running"
        assert first["data"]["metrics"] == {"reward": [[s, s / 10] for s in range(6, 11)]}

        # The stream is subscribed before it reads the database, so this cannot be missed.
        publish(
            run.pk,
            {
                "run": run.pk,
                "status": "running",
                "step": 11,
                "metrics": {"reward": [[10, 9.9], [11, 1.1]], "kl": [[11, 0.01]]},
            },
        )
        live = stream.next_event()
        assert live["event"] == "update" and live["id"] == "11"
        assert live["data"]["metrics"] == {"reward": [[11, 1.1]], "kl": [[11, 0.01]]}

        publish(run.pk, {"run": run.pk, "status": "finished", "step": 12, "metrics": {}})
        assert stream.next_event()["event"] == "update"
        end = stream.next_event()
        assert end["event"] == "status" and end["data"]["status"] == "finished"
        assert stream.next_event() is None  # the server closed the stream
    finally:
        stream.close()


def test_it_resumes_after_the_last_event_id_on_reconnect(
    asgi_server: str, client: Any, researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher, status="finished")
    ingest(run, range(1, 21))
    stream = SSEReader(
        f"{asgi_server}/runs/{run.pk}/stream?after=3",
        cookie=session_cookie(client, researcher),
        headers={"Last-Event-ID": "18"},
    )
    try:
        update = stream.next_event()
        assert [p[0] for p in update["data"]["metrics"]["reward"]] == [19, 20]
        end = stream.next_event()
        assert end["event"] == "status" and end["data"]["status"] == "finished"
        assert stream.next_event() is None
    finally:
        stream.close()


def test_it_refuses_annotators_and_anonymous_users(
    asgi_server: str, client: Any, researcher: Any, annotator: Any, make_run: Any
) -> None:
    run = make_run(researcher)
    url = f"{asgi_server}/runs/{run.pk}/stream"

    anonymous = SSEReader(url)
    assert anonymous.status == 302
    assert "/accounts/login/" in anonymous.response.getheader("Location")
    anonymous.close()

    forbidden = SSEReader(url, cookie=session_cookie(client, annotator))
    assert forbidden.status == 403
    forbidden.close()

    missing = SSEReader(
        f"{asgi_server}/runs/{run.pk + 1000}/stream", cookie=session_cookie(client, researcher)
    )
    assert missing.status == 404
    missing.close()


def test_it_publishes_json_with_nan_as_null(redis_url: str, researcher: Any, make_run: Any) -> None:
    run = make_run(researcher)
    subscriber = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe(f"run:{run.pk}")
    try:
        wait_for(lambda: publish(run.pk, {"run": run.pk, "metrics": {"loss": [[1, math.nan]]}}))
        message = wait_for(lambda: subscriber.get_message(timeout=0.5))
        assert json.loads(message["data"]) == {"run": run.pk, "metrics": {"loss": [[1, None]]}}
    finally:
        subscriber.close()
