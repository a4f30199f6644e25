"""Exporting the trace browser's filtered traces as CSV and JSON Lines, streamed."""

from __future__ import annotations

import csv
import http.client
import io
import json
import warnings
from typing import Any
from urllib.parse import urlsplit

from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from r1studio.traces.export import FIELDS
from r1studio.traces.models import Trace
from tests.studio.metrics.conftest import asgi_server, session_cookie  # noqa: F401 - fixture
from tests.studio.traces.conftest import sample

FORMULA = '=HYPERLINK("http://evil")'


def body(response: Any) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


def test_it_streams_the_filtered_traces_as_csv(
    researcher_client: Any, researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run, other = make_run(researcher, name="zero"), make_run(researcher)
    add_samples(run, 1, [sample(prompt=FORMULA, accuracy=0.0), sample(prompt="kept", accuracy=1.0)])
    add_samples(run, 2, [sample(prompt="right", accuracy=1.0)])
    add_samples(other, 3, [sample(prompt="other run")])

    response = researcher_client.get(
        reverse("traces:export", args=["csv"]), {"run": run.pk, "correct": "yes"}
    )

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert f'filename="traces-run{run.pk}-' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body(response))))
    assert [r["prompt"] for r in rows] == ["right", "kept"]  # newest first, filtered
    assert list(rows[0]) == list(FIELDS)
    assert rows[0]["run_name"] == "zero" and rows[0]["source"] == "train"
    assert json.loads(rows[0]["rewards"]) == {"format": 1.0, "accuracy": 1.0}
    assert rows[0]["completion"] == "<think>2+3 is 5</think> <answer>5</answer>"
    # A cell a spreadsheet would run as a formula is defused.
    wrong = researcher_client.get(reverse("traces:export", args=["csv"]), {"correct": "no"})
    assert list(csv.DictReader(io.StringIO(body(wrong))))[0]["prompt"] == "'" + FORMULA


def test_it_streams_jsonl_with_the_texts_exact(
    researcher_client: Any, researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    for step in range(1, 8):
        add_samples(run, step, [sample(prompt=f"{FORMULA} {step}", advantage=-0.5)])

    response = researcher_client.get(reverse("traces:export", args=["jsonl"]), {"step_min": 3})

    records = [json.loads(line) for line in body(response).splitlines()]
    assert response["Content-Type"].startswith("application/x-ndjson")
    assert [r["step"] for r in records] == [7, 6, 5, 4, 3]
    assert records[0]["prompt"] == f"{FORMULA} 7" and records[0]["advantage"] == -0.5
    assert records[0]["id"] == Trace.objects.get(run=run, step=7).pk


def test_it_links_the_export_with_the_current_filters(
    researcher_client: Any, researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    add_samples(run, 1, [sample()])

    html = researcher_client.get(
        reverse("traces:list"), {"run": run.pk, "q": "2+3", "step_min": ""}
    ).content.decode()

    assert f'href="/traces/export.csv?run={run.pk}&amp;q=2%2B3" download' in html
    assert f'href="/traces/export.jsonl?run={run.pk}&amp;q=2%2B3" download' in html


def test_it_exports_nothing_the_user_may_not_read(
    researcher: Any, annotator: Any, make_user: Any, make_run: Any, add_samples: Any
) -> None:
    draft = make_run(make_user("researcher"), status="draft")
    add_samples(draft, 1, [sample(prompt="secret")])
    as_researcher, as_annotator = Client(), Client()
    as_researcher.force_login(researcher)
    as_annotator.force_login(annotator)
    url = reverse("traces:export", args=["csv"])

    assert "secret" not in body(as_researcher.get(url))
    assert as_researcher.get(url, {"run": draft.pk}).status_code == 404
    assert as_annotator.get(url).status_code == 403
    assert as_researcher.get("/traces/export.xlsx").status_code == 404


def test_it_streams_an_export_over_asgi(
    asgi_server: str,  # noqa: F811
    client: Any,
    researcher: Any,
    make_run: Any,
    add_samples: Any,
) -> None:
    run = make_run(researcher)
    for step in range(1, 1201):
        add_samples(run, step, [sample(prompt=f"problem {step}")])
    parts = urlsplit(asgi_server)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        conn.request(
            "GET",
            f"/traces/export.jsonl?run={run.pk}",
            headers={"Cookie": session_cookie(client, researcher)},
        )
        response = conn.getresponse()
        lines = response.read().decode().splitlines()
    conn.close()

    assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
    assert len(lines) == 1200 and json.loads(lines[0])["prompt"] == "problem 1200"
    # Over ASGI, Django reads a plain iterator whole before sending it, and warns.
    assert not [w for w in caught if "must consume synchronous iterators" in str(w.message)]
