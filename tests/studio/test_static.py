"""Static files as uvicorn serves them: versioned URLs, year-long caching, gzip, page weight.

Requests go through `r1studio.asgi.application` itself (the static handler runs before Django's
middleware), and the page-weight check sums the bytes each page's scripts take on the wire.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from django.templatetags.static import static

from r1studio.runs.events import events_dispatch
from r1studio.traces.models import Trace
from r1studio.traces.services import traces_ingest

STATIC = Path(__file__).resolve().parents[2] / "static"
PAGE_JS_BUDGET = 1_500_000  # bytes of script a page may make a browser download, compressed
SCRIPT_SRC = re.compile(r'<script[^>]*\ssrc="([^"]+)"')


def asgi_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET `url` (path and query) from the ASGI application: status, headers and body."""
    from asgiref.testing import ApplicationCommunicator

    from r1studio.asgi import application

    path, _, query = url.partition("?")
    raw_headers = [(b"host", b"localhost")]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "headers": raw_headers,
        "client": ("127.0.0.1", 50000), "server": ("localhost", 80),
    }  # fmt: skip

    async def get() -> tuple[dict[str, Any], bytes]:
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(timeout=10)
        body = b""
        while True:
            message = await communicator.receive_output(timeout=10)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await communicator.wait(timeout=10)
        return start, body

    start, body = asyncio.run(get())
    response_headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], response_headers, body


def version_of(relative: str) -> str:
    return hashlib.sha256((STATIC / relative).read_bytes()).hexdigest()[:12]


def test_it_puts_the_content_hash_in_static_urls() -> None:
    assert static("js/charts.js") == f"/static/js/charts.js?v={version_of('js/charts.js')}"
    assert static("js/no-such-file.js") == "/static/js/no-such-file.js"


def test_it_serves_a_versioned_script_gzipped_and_cached_for_a_year() -> None:
    url = static("vendor/plotly.min.js")

    status, headers, body = asgi_get(url, {"Accept-Encoding": "gzip, deflate, br"})

    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert headers["vary"] == "Accept-Encoding"
    assert headers["content-type"].startswith("text/javascript")
    assert int(headers["content-length"]) == len(body)
    assert gzip.decompress(body) == (STATIC / "vendor/plotly.min.js").read_bytes()
    assert len(body) < 500_000  # the trimmed bundle: 1.2 MB, about 0.4 MB on the wire


def test_it_revalidates_an_unversioned_or_stale_url_and_sends_plain_bytes_when_asked() -> None:
    for url in ("/static/js/charts.js", "/static/js/charts.js?v=0123456789ab"):
        status, headers, body = asgi_get(url)
        assert status == 200 and headers["cache-control"] == "no-cache"
        assert "content-encoding" not in headers
        assert body == (STATIC / "js/charts.js").read_bytes()
    _, headers, _ = asgi_get("/static/js/charts.js", {"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in headers


def test_it_answers_304_when_the_compressed_file_did_not_change() -> None:
    _, headers, _ = asgi_get("/static/css/app.css", {"Accept-Encoding": "gzip"})

    status, again, body = asgi_get(
        "/static/css/app.css", {"Accept-Encoding": "gzip", "If-None-Match": headers["etag"]}
    )

    assert status == 304 and body == b"" and again["etag"] == headers["etag"]


@pytest.fixture
def pages(researcher: Any) -> dict[str, bool]:
    """The studio's pages, each with whether it draws charts (data for every chart kind)."""
    from r1studio.runs.models import Run

    run = Run.objects.create(owner=researcher, name="weights", kind="grpo", status="finished")
    item = {"prompt": "1+1?", "completion": "<answer>2</answer>", "reference": "2",
            "rewards": {"accuracy": 1.0}, "reward": 1.0, "advantage": 0.0}  # fmt: skip
    events = [
        {"type": "metrics", "step": 1, "values": {"reward": 0.5}},
        {"type": "samples", "step": 1, "items": [item]},
        {"type": "eval", "step": 1, "benchmark": "toy-heldout", "metrics": {"pass@1": 0.5},
         "n_samples": 1},
    ]  # fmt: skip
    events_dispatch(run=run, events=events)
    traces_ingest(run=run, events=events)
    trace = Trace.objects.get(run=run)
    return {
        "/": False,
        "/runs/": False,
        "/runs/new": False,
        "/traces/": False,
        f"/traces/{trace.pk}/": False,
        "/workers/": False,
        "/datasets/": False,
        "/api/tokens/": False,
        f"/runs/{run.pk}/": True,
        f"/metrics/compare?runs={run.pk}": True,
        "/benchmarks/": True,
        f"/traces/runs/{run.pk}/prompts/{trace.prompt_hash}/": True,
    }


def test_no_page_makes_a_browser_download_more_than_its_javascript_budget(
    researcher_client: Any, pages: dict[str, bool]
) -> None:
    weights = {}
    for path, draws_charts in pages.items():
        response = researcher_client.get(path)
        assert response.status_code == 200, path
        scripts = SCRIPT_SRC.findall(response.content.decode())
        assert scripts, path
        total = 0
        for src in scripts:
            status, headers, body = asgi_get(src, {"Accept-Encoding": "gzip"})
            assert status == 200, src
            assert headers["cache-control"].endswith("immutable"), src  # versioned URL
            total += len(body)
        weights[path] = total
        assert any("plotly" in s for s in scripts) == draws_charts, path
        assert total < PAGE_JS_BUDGET, f"{path}: {total:,} bytes of script"
    # Pages without charts carry no chart library: a few tens of kB.
    assert max(w for p, w in weights.items() if not pages[p]) < 100_000, weights
