"""The chart JSON under many viewers: computed once per change of the points, 304 while idle."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from r1studio.metrics.services import metrics_ingest
from r1studio.metrics.storage import CHUNK_POINTS
from r1studio.runs.models import Run


def ingest(run: Any, steps: range, names: list[str], scale: float = 0.1) -> None:
    events = [
        {"type": "metrics", "step": s, "values": {n: s * scale for n in names}} for s in steps
    ]
    metrics_ingest(run=run, events=events)


def test_it_answers_not_modified_until_new_points_arrive(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher)
    ingest(run, range(1, 11), ["reward", "loss"])
    url = reverse("metrics:series", args=[run.pk])
    first = researcher_client.get(url)
    etag = first["ETag"]
    assert first.status_code == 200 and first["Cache-Control"] == "private, no-cache"

    again = researcher_client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag and not again.content

    ingest(run, range(11, 13), ["reward"])  # the supervisor's transaction, not the page's
    fresh = researcher_client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert fresh.status_code == 200 and fresh["ETag"] != etag
    assert fresh.json()["last_step"] == 12
    assert [len(s["steps"]) for s in fresh.json()["series"]] == [10, 12]


def test_it_serves_the_same_json_from_the_cache_and_new_json_after_a_change(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher)
    ingest(run, range(1, 6), ["reward"])
    url = reverse("metrics:series", args=[run.pk]) + "?max_points=300"
    cold = researcher_client.get(url).content
    with CaptureQueriesContext(connection) as queries:
        warm = researcher_client.get(url).content
    assert warm == cold
    assert not any("metrics_metricchunk" in q["sql"] for q in queries.captured_queries)
    assert not any('"tail"' in q["sql"] for q in queries.captured_queries)

    Run.objects.filter(pk=run.pk).update(status="finished")
    assert researcher_client.get(url).json()["status"] == "finished"
    other = researcher_client.get(reverse("metrics:series", args=[run.pk]) + "?max_points=3")
    assert other.json()["series"][0]["shown"] <= 5  # max_points is part of the key


def test_it_reads_no_chunk_of_a_series_that_has_none(
    researcher_client: Any, researcher: Any, make_run: Any
) -> None:
    run = make_run(researcher)
    names = [f"rewards/f{i}/mean" for i in range(12)]
    ingest(run, range(1, 101), names)
    with CaptureQueriesContext(connection) as queries:
        data = researcher_client.get(reverse("metrics:series", args=[run.pk])).json()
    assert len(data["series"]) == 12
    assert not any("metrics_metricchunk" in q["sql"] for q in queries.captured_queries)

    ingest(run, range(101, CHUNK_POINTS + 200), ["rewards/f0/mean"])
    data = researcher_client.get(reverse("metrics:series", args=[run.pk])).json()
    assert data["series"][0]["total"] == CHUNK_POINTS + 199 and data["last_step"] == 4295
