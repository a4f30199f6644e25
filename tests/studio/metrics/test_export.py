"""Export of a run's metrics as CSV and JSONL, streamed one stored chunk at a time."""

from __future__ import annotations

import csv
import http.client
import io
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from r1studio.metrics import storage
from r1studio.metrics.services import metrics_ingest
from tests.studio.metrics.conftest import session_cookie


def _ingest(run: Any, steps: int) -> None:
    metrics_ingest(
        run=run,
        events=[
            {"type": "metrics", "step": s, "values": {"reward": s / 10, "loss": None}}
            for s in range(1, steps + 1)
        ],
    )


def _body(response: Any) -> tuple[str, int]:
    parts = list(response.streaming_content)
    return b"".join(parts).decode(), len(parts)


def test_it_streams_every_point_as_csv(researcher_client: Any, researcher: Any, make_run: Any):
    run = make_run(researcher)
    _ingest(run, 3)

    response = researcher_client.get(reverse("metrics:export", args=[run.pk, "csv"]))

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="run-{run.pk}-metrics.csv"' in response["Content-Disposition"]
    text, _ = _body(response)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["name", "step", "value"]
    assert rows[1:] == [
        ["loss", "1", ""], ["loss", "2", ""], ["loss", "3", ""],
        ["reward", "1", "0.1"], ["reward", "2", "0.2"], ["reward", "3", "0.3"],
    ]  # fmt: skip


def test_it_streams_every_point_as_jsonl(researcher_client: Any, researcher: Any, make_run: Any):
    run = make_run(researcher)
    _ingest(run, 2)

    response = researcher_client.get(reverse("metrics:export", args=[run.pk, "jsonl"]))

    text, _ = _body(response)
    points = [json.loads(line) for line in text.splitlines()]
    assert points == [
        {"name": "loss", "step": 1, "value": None}, {"name": "loss", "step": 2, "value": None},
        {"name": "reward", "step": 1, "value": 0.1}, {"name": "reward", "step": 2, "value": 0.2},
    ]  # fmt: skip


def test_it_sends_a_long_series_in_one_part_per_stored_chunk(
    researcher_client: Any, researcher: Any, make_run: Any
):
    run = make_run(researcher)
    steps = storage.CHUNK_POINTS * 2 + 10
    metrics_ingest(
        run=run,
        events=[{"type": "metrics", "step": s, "values": {"kl": 0.5}} for s in range(steps)],
    )

    text, parts = _body(researcher_client.get(reverse("metrics:export", args=[run.pk, "csv"])))

    assert parts == 4  # the header, two full chunks, the tail
    assert text.count("\n") == steps + 1


def test_it_refuses_other_formats_and_hidden_runs(
    researcher_client: Any, researcher: Any, make_user: Any, make_run: Any
):
    run = make_run(researcher)
    draft = make_run(make_user("researcher"), status="draft")
    for run_id, fmt in [(run.pk, "xlsx"), (draft.pk, "csv"), (99999, "csv")]:
        url = reverse("metrics:export", args=[run_id, fmt])
        assert researcher_client.get(url).status_code == 404


def test_it_refuses_annotators(annotator_client: Any, researcher: Any, make_run: Any):
    url = reverse("metrics:export", args=[make_run(researcher).pk, "csv"])
    assert annotator_client.get(url).status_code == 403


def test_it_links_the_downloads_from_the_run_page(researcher: Any, make_run: Any) -> None:
    from django.template.loader import render_to_string

    run = make_run(researcher)
    html = render_to_string("metrics/_panels.html", {"run": run})
    assert f'href="/runs/{run.pk}/metrics/export.csv"' in html
    assert f'href="/runs/{run.pk}/metrics/export.jsonl"' in html


@pytest.mark.django_db(transaction=True)
def test_it_streams_under_asgi_chunked_and_complete(
    asgi_server: str, client: Any, researcher: Any, make_run: Any
):
    run = make_run(researcher)
    _ingest(run, storage.CHUNK_POINTS + 5)
    parts = urlsplit(asgi_server)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)

    conn.request(
        "GET",
        reverse("metrics:export", args=[run.pk, "jsonl"]),
        headers={"Cookie": session_cookie(client, researcher)},
    )
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()

    assert response.status == 200
    assert response.getheader("Transfer-Encoding") == "chunked"  # streamed, no Content-Length
    lines = body.splitlines()
    assert len(lines) == 2 * (storage.CHUNK_POINTS + 5)
    assert json.loads(lines[-1]) == {"name": "reward", "step": storage.CHUNK_POINTS + 5,
                                     "value": (storage.CHUNK_POINTS + 5) / 10}  # fmt: skip
